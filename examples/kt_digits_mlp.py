"""Keras Tuner-style search: an MLP on scikit-learn's digits.

Written as a Keras Tuner script: only the import line differs (``import tunefleet as
kt`` instead of ``import keras_tuner as kt``). The trials live in
``tunefleet_runs/kt_digits_mlp/study.db``; run the script again to resume, or go on
with the command line, which reads ``search`` and ``data()`` from this file:

    python examples/kt_digits_mlp.py
    tunefleet tune examples/kt_digits_mlp.py --trials 16 --storage runs.db
    tunefleet trials runs.db --study kt_digits_mlp
"""

from __future__ import annotations

import tunefleet as kt  # before Keras: selects the JAX backend when none is set

# isort: split
import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def build_model(hp):
    """A compiled MLP for 8x8 digit images; its shape and training are hyperparameters."""
    model = keras.Sequential([keras.Input((64,))])
    activation = hp.Choice("activation", ["relu", "tanh"])
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 16, 128, step=16), activation=activation))
    if hp.Boolean("dropout"):
        with hp.conditional_scope("dropout", [True]):
            model.add(keras.layers.Dropout(hp.Float("rate", 0.1, 0.5, step=0.1)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def data():
    """Training inputs and labels, and the arguments of ``model.fit``."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    return x_train, y_train, {"epochs": 8, "batch_size": 64, "validation_data": (x_val, y_val)}


search = kt.RandomSearch(
    build_model,
    objective="val_accuracy",
    max_trials=8,
    seed=42,
    directory="tunefleet_runs",
    project_name="kt_digits_mlp",
)


if __name__ == "__main__":
    x_train, y_train, fit_kwargs = data()
    search.search_space_summary()
    search.search(x_train, y_train, **fit_kwargs)
    search.results_summary(3)
    best_model = search.get_best_models(num_models=1)[0]
    x_val, y_val = fit_kwargs["validation_data"]
    loss, accuracy = best_model.evaluate(x_val, y_val, verbose=0)
    print(f"best model: validation accuracy {accuracy:.4f}")
    print("best hyperparameters:", search.get_best_hyperparameters(1)[0].values)
