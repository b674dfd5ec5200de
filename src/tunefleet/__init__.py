"""tunefleet: tune and optimize Keras 3 and scikit-learn models.

Three drop-in faces (scikit-learn ``*SearchCV``, Keras Tuner-style tuners, Keras
scikit-learn wrappers) on one engine built on Optuna. Keras's backend is JAX when none
is chosen and TensorFlow is not installed (see ``_tunefleet_keras_backend``).

Example:

>>> from tunefleet import RandomizedSearchCV          # instead of sklearn.model_selection
>>> from tunefleet.keras import KerasClassifier        # instead of keras.wrappers.scikit_learn
>>> import tunefleet as kt                             # instead of import keras_tuner as kt
"""

import sys
from typing import Any

if "keras" not in sys.modules:  # else too late: Keras chose its backend when imported
    from _tunefleet_keras_backend import fill_in_backend

    fill_in_backend()  # the installed start-up hook's rule, for a checkout on PYTHONPATH

from tunefleet.compilation_cache import enable_compilation_cache
from tunefleet.sklearn import (
    BayesSearchCV,
    EvolutionSearchCV,
    GridSearchCV,
    HyperbandSearchCV,
    RandomizedSearchCV,
)
from tunefleet.space import Categorical, Float, Int
from tunefleet.tradeoff import smallest_within

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
    "enable_compilation_cache",
    "smallest_within",
]
