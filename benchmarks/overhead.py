"""Per-trial overhead of tunefleet against plain Optuna, and memory over many Keras fits.

Part 1 runs N trivial trials (a 2-fold cross-validation of a tiny logistic regression
on 40 samples) with the same sampler and storage, in one process, side by side:

* plain Optuna: ``study.optimize`` with an objective that calls ``cross_val_score``;
* tunefleet: ``RandomizedSearchCV(..., n_iter=N, storage=...)`` (refit off).

and prints the median per-trial wall time of each and their ratio (target: <= 1.25x).

Part 2 fits a small Keras MLP 100 times in one process through ``KerasClassifier`` and
prints the resident memory (RSS) after fits 10, 50 and 100.

Part 1 also counts the SQL statements and transactions per trial on SQLite (a figure that,
unlike times, does not depend on the machine's load; ``--sql-only`` prints only that).

Usage: python benchmarks/overhead.py [--trials 1000] [--repeats 3] [--fits 100] [--skip-keras]
[--sql-only]
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # the default backend; override to compare

import argparse
import gc
import platform
import statistics
import tempfile
import time
import warnings

import numpy as np
import optuna
import psutil
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

import tunefleet

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tiny_data():
    X, y = load_iris(return_X_y=True)
    keep = np.r_[0:20, 50:70]
    return X[keep], y[keep]


def plain_optuna(n_trials: int, url: str | None, X, y) -> float:
    # The same work tunefleet does in a trial (clone, fit and score each fold), written
    # by hand, so the difference is bookkeeping only. (``cross_val_score`` would add
    # ~40 ms of its own per trial here and flatter us.)
    splits = list(StratifiedKFold(2).split(X, y))
    base = LogisticRegression(max_iter=200)

    def objective(trial: optuna.Trial) -> float:
        C = trial.suggest_float("C", 1e-3, 1e2, log=True)
        scores = []
        for train, test in splits:
            model = clone(base).set_params(C=C).fit(X[train], y[train])
            scores.append(model.score(X[test], y[test]))
        return float(np.mean(scores))

    study = optuna.create_study(
        direction="maximize", storage=url, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    return (time.perf_counter() - start) / n_trials


def ours(n_trials: int, url: str | None, X, y) -> float:
    search = tunefleet.RandomizedSearchCV(
        LogisticRegression(max_iter=200),
        {"C": tunefleet.Float(1e-3, 1e2, log=True)},
        n_iter=n_trials,
        cv=StratifiedKFold(2),
        refit=False,
        storage=url,
        random_state=0,
        progress=False,
    )
    start = time.perf_counter()
    search.fit(X, y)
    return (time.perf_counter() - start) / n_trials


def overhead(n_trials: int, repeats: int) -> None:
    X, y = tiny_data()
    print(f"## Per-trial time over {n_trials} trivial trials (median of {repeats} runs)")
    print(f"{'storage':<10} {'plain Optuna':>14} {'tunefleet':>12} {'ratio':>7}")
    for label in ("memory", "sqlite"):
        plain_times, our_times = [], []
        for r in range(repeats):
            for runner, times in ((plain_optuna, plain_times), (ours, our_times)):
                with tempfile.TemporaryDirectory() as tmp:
                    url = None if label == "memory" else f"sqlite:///{tmp}/bench-{r}.db"
                    times.append(runner(n_trials, url, X, y))
        p, o = statistics.median(plain_times), statistics.median(our_times)
        print(f"{label:<10} {p * 1e3:>11.2f} ms {o * 1e3:>9.2f} ms {o / p:>6.2f}x")


def sql_per_trial(n_trials: int) -> None:
    """Statements and transactions per trial on SQLite, counted through SQLAlchemy's events.

    Independent of the machine's load; write transactions are the ones that cost a commit
    to disk.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen = {"statements": 0, "transactions": 0, "write transactions": 0}
    wrote = [False]

    def on_statement(conn, cursor, statement, *args):
        seen["statements"] += 1
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            wrote[0] = True

    def on_commit(conn):
        seen["transactions"] += 1
        seen["write transactions"] += wrote[0]
        wrote[0] = False

    X, y = tiny_data()
    print(f"\n## SQL per trial on SQLite over {n_trials} trivial trials (study creation included)")
    print(f"{'':<14} {'statements':>10} {'transactions':>13} {'writes':>7}")
    event.listen(Engine, "before_cursor_execute", on_statement)
    event.listen(Engine, "commit", on_commit)
    try:
        for label, runner in (("plain Optuna", plain_optuna), ("tunefleet", ours)):
            for key in seen:
                seen[key] = 0
            with tempfile.TemporaryDirectory() as tmp:
                runner(n_trials, f"sqlite:///{tmp}/sql.db", X, y)
            per = {k: v / n_trials for k, v in seen.items()}
            print(
                f"{label:<14} {per['statements']:>10.1f} {per['transactions']:>13.1f} "
                f"{per['write transactions']:>7.1f}"
            )
    finally:
        event.remove(Engine, "before_cursor_execute", on_statement)
        event.remove(Engine, "commit", on_commit)


def rss_over_keras_fits(n_fits: int) -> None:
    import keras

    from tunefleet.keras import KerasClassifier

    def build(units=32):
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(units, activation="relu"),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    X, y = load_iris(return_X_y=True)
    process = psutil.Process()
    marks = {}
    print(
        f"\n## Resident memory over {n_fits} KerasClassifier fits (backend {keras.backend.backend()})"
    )
    for i in range(1, n_fits + 1):
        KerasClassifier(build, units=16 + i % 32, epochs=2, batch_size=32).fit(X, y)
        if i in (1, 10, 50, n_fits):
            gc.collect()
            marks[i] = process.memory_info().rss / 2**20
            print(f"after fit {i:>4}: {marks[i]:8.1f} MiB")
    print(f"growth fit 10 -> {n_fits}: {marks[n_fits] - marks[10]:+.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fits", type=int, default=100)
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument(
        "--sql-only", action="store_true", help="only count SQL per trial (fast, load-independent)"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"optuna {optuna.__version__}, tunefleet {tunefleet.__version__}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.sql_only:
            sql_per_trial(min(args.trials, 100))
            return
        overhead(args.trials, args.repeats)
        sql_per_trial(min(args.trials, 100))
        if not args.skip_keras:
            rss_over_keras_fits(args.fits)


if __name__ == "__main__":
    main()
