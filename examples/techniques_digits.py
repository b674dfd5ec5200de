"""Training and compression techniques end to end on scikit-learn's digits.

1. LR finder: a learning-rate range test on the MLP gives a learning rate.
2. Accuracy-versus-size search: a random search over depth, width, dropout, L2, the
   learning-rate schedule and a learning rate around the LR finder's suggestion, with
   ``build_mlp``, that maximizes accuracy and minimizes the number of parameters
   (``objectives=["n_params"]``); it prints the Pareto front and the smallest
   configuration within one point of the best accuracy (``tunefleet.smallest_within``).
3. Compression of the most accurate model: int8 and int4 quantization, magnitude
   pruning, distillation into a much smaller student.
4. The size/accuracy table, and the smallest model within one point of the best.

About two minutes on a CPU:

    python examples/techniques_digits.py [--trials 6] [--epochs 10] [--plot lr_find.png]
        [--report report.html]
"""

from __future__ import annotations

import argparse
import math
import time

import tunefleet  # before Keras: selects the JAX backend when KERAS_BACKEND is unset

# isort: split
import keras
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tunefleet.keras import (
    KerasClassifier,
    build_mlp,
    compression_table,
    distill,
    lr_find,
    pick_smallest_within,
    prune,
    quantize,
)

MLP = {"input_shape": (64,), "output": "multiclass:10"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6, help="configurations to try")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per fit")
    parser.add_argument("--plot", default=None, help="save the LR finder's curve here")
    parser.add_argument(
        "--report", default=None, help="write the search's HTML report (with the LR finder) here"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"Keras {keras.__version__}, {keras.backend.backend()} backend")

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )

    # 1. LR finder ------------------------------------------------------------------
    finder = lr_find(build_mlp, X_train, y_train, build_kwargs={**MLP, "n_neurons": 64})
    lr = finder.suggestion
    print(f"\n1. LR finder: {finder}")
    if args.plot:
        finder.plot(path=args.plot)
        print(f"   curve saved to {args.plot}")

    # 2. Accuracy against size: schedules and regularization, around the suggested rate
    batch_size, folds = 32, 3
    fold_size = len(X_train) * (folds - 1) // folds
    estimator = KerasClassifier(
        build_mlp,
        **MLP,
        # a named schedule spans the whole training of a fold
        schedule_steps=args.epochs * math.ceil(fold_size / batch_size),
        epochs=args.epochs,
        batch_size=batch_size,
        verbose=0,
        random_state=0,
    )
    search = tunefleet.RandomizedSearchCV(
        estimator,
        {
            "n_hidden": [1, 2],
            "n_neurons": [64, 128, 256],
            "dropout": [0.0, 0.1, 0.2],
            "l2": [0.0, 1e-4],
            "batchnorm": [False, True],
            "schedule": [None, "cosine", "warmup_cosine", "onecycle"],
            "learning_rate": loguniform(lr / 3, lr * 3),
        },
        n_iter=args.trials,
        cv=folds,
        random_state=0,
        objectives=["n_params"],  # a multi-objective study: maximize accuracy, minimize size
    )
    search.fit(X_train, y_train)  # refit=True: the most accurate configuration
    best = search.best_estimator_.model_
    print(f"\n2. Search: best cross-validated accuracy {search.best_score_:.4f} with")
    print_params(search.best_params_)
    print("   Pareto front (no other trial is both more accurate and smaller):")
    print("   trial  accuracy  params  configuration")
    for trial in search.best_trials_:
        config = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(trial.params.items())
        )
        print(f"   {trial.number:>5}  {trial.score:8.4f}  {trial.costs['n_params']:6.0f}  {config}")
    # the refit rule as a function of cv_results_ (pass it as refit= to refit that one)
    small = tunefleet.smallest_within(0.01, "n_params")(search.cv_results_)
    print(
        f"   smallest within 1 point of the best: trial "
        f"{search.cv_results_['trial_number'][small]}, "
        f"{search.cv_results_['mean_test_n_params'][small]:.0f} parameters, accuracy "
        f"{search.cv_results_['mean_test_score'][small]:.4f}"
    )
    if args.report:
        finder.save_to_study(search.study_)  # the report draws the LR finder's curve too
        search.report(args.report)
        print(f"   report written to {args.report}")

    # 3. Compress the most accurate model ---------------------------------------------
    held_out = (X_test, y_test)
    _, int8 = quantize(best, "int8", *held_out)
    _, int4 = quantize(best, "int4", *held_out)
    _, pruned = prune(
        best,
        X_train,
        y_train,
        target_sparsity=0.8,
        validation_data=held_out,
    )
    _, student = distill(
        best,
        build_mlp,
        X_train,
        y_train,
        temperature=4.0,
        alpha=0.1,
        epochs=args.epochs * 2,
        build_kwargs={**MLP, "n_hidden": 1, "n_neurons": 16, "learning_rate": 1e-2},
        validation_data=held_out,
        baseline=True,
    )
    reports = [int8, int4, pruned, student]
    print("\n3. Compression (bytes: .keras file without optimizer state; test-set accuracy)")
    print(compression_table(reports, original="best model"))
    alone = student.details["baseline_metrics"]["accuracy"]
    print(
        f"   the same 16-unit student trained alone: accuracy {alone:.4f} (distillation pays "
        "most when labelled data is scarce; see docs/techniques.md)"
    )

    # 4. The smallest model within one point of the best ---------------------------------
    # sizes compared gzip-compressed, where pruning's zeros pay off
    records = [
        {"model": "best model", "accuracy": int8.accuracy_before, "bytes": int8.gzip_bytes_before}
    ]
    records += [
        {"model": r.method, "accuracy": r.accuracy_after, "bytes": r.gzip_bytes_after}
        for r in reports
    ]
    choice = pick_smallest_within(records, tolerance=0.01, size="bytes")
    print(
        f"\n4. Smallest within 1 point of the best accuracy: {choice['model']} "
        f"({choice['bytes']:,} gzip bytes, accuracy {choice['accuracy']:.4f})"
    )
    print(f"\nDone in {time.perf_counter() - start:.0f} s.")


def print_params(params: dict) -> None:
    for name, value in sorted(params.items()):
        print(f"   {name} = {value:.3g}" if isinstance(value, float) else f"   {name} = {value}")


if __name__ == "__main__":
    main()
