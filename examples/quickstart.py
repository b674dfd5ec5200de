"""Quick start: tune a Keras MLP on scikit-learn's digits into a SQLite file.

Run it twice: the second run finds the stored trials and only prints the results (or
raises --trials to go further). Everything lives in ``tunefleet.db`` in the current
folder: ``optuna-dashboard sqlite:///tunefleet.db`` or ``tunefleet`` commands can read it.

    python examples/quickstart.py [--trials 12] [--storage sqlite:///tunefleet.db]
"""

from __future__ import annotations

import argparse

import tunefleet  # before Keras: selects the JAX backend when KERAS_BACKEND is unset

# isort: split
import keras
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tunefleet.keras import KerasClassifier


def build_mlp(
    n_hidden: int = 1, n_neurons: int = 32, learning_rate: float = 1e-3, dropout: float = 0.0
):
    """A compiled MLP for 8x8 digit images (64 features, 10 classes)."""
    model = keras.Sequential([keras.Input((64,))])
    for _ in range(n_hidden):
        model.add(keras.layers.Dense(n_neurons, activation="relu"))
        if dropout:
            model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description="Tune a Keras MLP on digits.")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--storage", default="sqlite:///tunefleet.db")
    parser.add_argument("--study", default="quickstart-digits-mlp")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )

    search = tunefleet.BayesSearchCV(
        KerasClassifier(build_mlp, epochs=10, batch_size=32, random_state=0),
        {
            "n_hidden": [1, 2],
            "n_neurons": tunefleet.Int(16, 128, log=True),
            "learning_rate": tunefleet.Float(1e-4, 3e-2, log=True),
            "dropout": tunefleet.Float(0.0, 0.4),
        },
        n_iter=args.trials,
        cv=3,
        storage=args.storage,
        study_name=args.study,
        random_state=0,
        verbose=1,
    )
    search.fit(X_train, y_train)

    console = Console()
    table = Table(title=f"study {args.study!r} in {args.storage}")
    for column in ("trial", "state", "mean CV accuracy", *search.space_.names):
        table.add_column(column, justify="right")
    results = search.cv_results_
    order = sorted(range(len(results["params"])), key=lambda i: results["rank_test_score"][i])
    for i in order:
        params = results["params"][i]
        table.add_row(
            str(results["trial_number"][i]),
            results["state"][i],
            f"{results['mean_test_score'][i]:.4f}",
            *(
                f"{params[n]:.4g}" if isinstance(params[n], float) else str(params[n])
                for n in search.space_.names
            ),
        )
    console.print(table)
    console.print(f"best parameters: {search.best_params_}")
    console.print(
        f"best CV accuracy: {search.best_score_:.4f}; held-out accuracy: {search.score(X_test, y_test):.4f}"
    )


if __name__ == "__main__":
    main()
