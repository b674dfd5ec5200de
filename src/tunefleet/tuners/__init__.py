"""Keras Tuner-style face: ``hp.*`` define-by-run spaces and tuners on tunefleet's engine.

``import tunefleet as kt`` in place of ``import keras_tuner as kt``: ``kt.HyperParameters``,
``kt.HyperModel``, ``kt.Objective``, ``kt.RandomSearch``, ``kt.GridSearch``,
``kt.BayesianOptimization`` and ``kt.Hyperband`` take Keras Tuner's arguments, plus
``storage``, ``study_name``, ``cv``, ``pruner``, ``strategy`` and ``n_jobs``.
See ``docs/tuners.md``.
"""

from typing import Any

from tunefleet.tuners.hypermodel import HyperModel
from tunefleet.tuners.hyperparameter_types import (
    Boolean,
    Choice,
    Fixed,
    Float,
    HyperParameter,
    Int,
)
from tunefleet.tuners.hyperparameters import HyperParameters
from tunefleet.tuners.oracle import Objective, Oracle, Trial

# The tuners import Keras: loaded on first use, so the hp objects and the storage
# conventions (used by the command line) stay free of Keras.
_LAZY = {
    "BaseTuner": "base_tuner",
    "BayesianOptimization": "bayesian",
    "GridSearch": "grid_search",
    "ObjectiveNotReported": "trial_runner",
    "RandomSearch": "random_search",
    "Hyperband": "hyperband",
    "HyperbandPlan": "hyperband",
    "hyperband_plan": "hyperband",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"tunefleet.tuners.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tunefleet.tuners' has no attribute {name!r}")


__all__ = [
    "BaseTuner",
    "BayesianOptimization",
    "Boolean",
    "Choice",
    "Fixed",
    "Float",
    "GridSearch",
    "HyperModel",
    "HyperParameter",
    "HyperParameters",
    "Hyperband",
    "HyperbandPlan",
    "Int",
    "Objective",
    "ObjectiveNotReported",
    "Oracle",
    "RandomSearch",
    "Trial",
    "hyperband_plan",
]
