"""The two tuning tasks: a digits MLP and a 1-D CNN on mnist1d, with their search space.

Both have four parameters (depth, width, learning rate, dropout) searched on the same
ranges by every method; each method turns :data:`SPACE`'s rows into its own API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: name, kind, low, high, log scale: the same four parameters for both tasks.
SPACE: list[tuple[str, str, float, float, bool]] = [
    ("depth", "int", 1, 3, False),
    ("width", "int", 16, 256, True),
    ("learning_rate", "float", 1e-4, 1e-1, True),
    ("dropout", "float", 0.0, 0.5, False),
]


@dataclass(frozen=True)
class Task:
    """A data set, a model family over :data:`SPACE`, and the accuracy to reach."""

    name: str
    target: float  # validation accuracy a search must reach
    max_epochs: int  # at most this many epochs a trial
    load: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    layers: Callable[[int, int, float], list[Any]]  # (depth, width, dropout) -> hidden layers
    input_shape: tuple[int, ...]
    n_classes: int = 10
    batch_size: int = 32

    def build(
        self, depth: int = 1, width: int = 64, learning_rate: float = 1e-3, dropout: float = 0.0
    ) -> Any:
        """The compiled model of one configuration."""
        import keras

        model = keras.Sequential(
            [keras.Input(self.input_shape), *self.layers(int(depth), int(width), float(dropout))]
        )
        model.add(keras.layers.Dense(self.n_classes, activation="softmax"))
        model.compile(
            keras.optimizers.Adam(float(learning_rate)),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model


def _load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    return x_train, y_train.astype("int32"), x_val, y_val.astype("int32")


def _load_mnist1d() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """mnist1d (Greydanus 2020), generated offline by its package with its default settings."""
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())
    x_train = data["x"].astype("float32")[..., None]
    x_val = data["x_test"].astype("float32")[..., None]
    return x_train, data["y"].astype("int32"), x_val, data["y_test"].astype("int32")


def _mlp(depth: int, width: int, dropout: float) -> list[Any]:
    import keras

    layers = []
    for _ in range(depth):
        layers += [keras.layers.Dense(width, activation="relu"), keras.layers.Dropout(dropout)]
    return layers


def _cnn(depth: int, width: int, dropout: float) -> list[Any]:
    import keras

    layers = []
    for _ in range(depth):
        layers += [
            keras.layers.Conv1D(width, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling1D(2),
        ]
    return [*layers, keras.layers.GlobalAveragePooling1D(), keras.layers.Dropout(dropout)]


TASKS = {
    "digits-mlp": Task("digits-mlp", 0.975, 27, _load_digits, _mlp, (64,)),
    "mnist1d-cnn": Task("mnist1d-cnn", 0.95, 27, _load_mnist1d, _cnn, (40, 1), batch_size=64),
}
