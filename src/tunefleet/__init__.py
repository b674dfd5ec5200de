"""tunefleet: tune and optimize Keras 3 and scikit-learn models.

Three drop-in faces (scikit-learn ``*SearchCV``, Keras Tuner-style tuners, Keras
scikit-learn wrappers) on one engine built on Optuna. Importing tunefleet selects the
JAX Keras backend when ``KERAS_BACKEND`` is unset and TensorFlow is not installed.

Example:

>>> from tunefleet import RandomizedSearchCV          # instead of sklearn.model_selection
>>> from tunefleet.keras import KerasClassifier        # instead of keras.wrappers.scikit_learn
>>> import tunefleet as kt                             # instead of import keras_tuner as kt
"""

from typing import Any

from tunefleet._backend import configure_default_backend

configure_default_backend()

from tunefleet.sklearn import (  # noqa: E402
    BayesSearchCV,
    EvolutionSearchCV,
    GridSearchCV,
    HyperbandSearchCV,
    RandomizedSearchCV,
)
from tunefleet.space import Categorical, Float, Int  # noqa: E402
from tunefleet.tradeoff import smallest_within  # noqa: E402

__version__ = "0.1.0"

_KERAS_NAMES = ("KerasClassifier", "KerasRegressor")
_TUNER_NAMES = (
    "BayesianOptimization",
    "GridSearch",
    "HyperModel",
    "HyperParameters",
    "Hyperband",
    "Objective",
    "RandomSearch",
)


def __getattr__(name: str) -> Any:
    # Keras (and its backend) is imported only when a Keras name is first used.
    if name in _KERAS_NAMES:
        from tunefleet import keras as _keras

        return getattr(_keras, name)
    if name in _TUNER_NAMES:
        from tunefleet import tuners as _tuners

        return getattr(_tuners, name)
    raise AttributeError(f"module 'tunefleet' has no attribute {name!r}")


__all__ = [
    "BayesSearchCV",
    "BayesianOptimization",
    "Categorical",
    "EvolutionSearchCV",
    "Float",
    "GridSearch",
    "GridSearchCV",
    "HyperModel",
    "HyperParameters",
    "Hyperband",
    "HyperbandSearchCV",
    "Int",
    "KerasClassifier",
    "KerasRegressor",
    "Objective",
    "RandomSearch",
    "RandomizedSearchCV",
    "__version__",
    "smallest_within",
]
