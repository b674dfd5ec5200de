"""Seed-style scikit-learn search: a Keras regressor on diabetes with ``RandomizedSearchCV``.

The code of the classic tf.keras recipe (a ``build_model`` function wrapped for
scikit-learn, then ``RandomizedSearchCV`` over its arguments), with tunefleet's imports.
The search is stored in ``tunefleet.db``: run the script again to resume, or use the
command line, which reads ``search`` and ``data()`` from this file:

    python examples/sklearn_diabetes_randomized.py
    tunefleet tune examples/sklearn_diabetes_randomized.py --trials 20
    tunefleet best --study diabetes-mlp
"""

from __future__ import annotations

import tunefleet  # before Keras: selects the JAX backend when none is set

# isort: split
import keras
import numpy as np
from scipy.stats import reciprocal
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from tunefleet.keras import KerasRegressor


def build_model(n_hidden=1, n_neurons=30, learning_rate=3e-3, input_shape=(10,)):
    """A compiled MLP regressor (the seed code's ``build_model``)."""
    model = keras.Sequential([keras.Input(input_shape)])
    for _ in range(n_hidden):
        model.add(keras.layers.Dense(n_neurons, activation="relu"))
    model.add(keras.layers.Dense(1))
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate))
    return model


def data():
    """Scaled training data, and the fit arguments (validation set, early stopping)."""
    X, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=42)
    scaler = StandardScaler().fit(X_train)
    X_train, X_valid = scaler.transform(X_train), scaler.transform(X_valid)
    return (
        X_train,
        y_train,
        {
            "epochs": 30,
            "validation_data": (X_valid, y_valid),
            "callbacks": [keras.callbacks.EarlyStopping(patience=5)],
        },
    )


keras_reg = KerasRegressor(build_model, random_state=42)
param_distribs = {
    "n_hidden": [0, 1, 2, 3],
    "n_neurons": np.arange(1, 100),
    "learning_rate": reciprocal(3e-4, 3e-2),
}
search = tunefleet.RandomizedSearchCV(
    keras_reg,
    param_distribs,
    n_iter=10,
    cv=3,
    random_state=42,
    storage="sqlite:///tunefleet.db",
    study_name="diabetes-mlp",
    verbose=1,
)


if __name__ == "__main__":
    X_train, y_train, fit_kwargs = data()
    search.fit(X_train, y_train, **fit_kwargs)
    print("best parameters:", search.best_params_)
    print(f"best CV score (R2): {search.best_score_:.4f}")
