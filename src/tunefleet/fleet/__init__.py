"""Fleet training: many Keras configurations trained at once as vmapped JAX programs.

``tunefleet.fleet`` knows nothing of Optuna or scikit-learn. Its seam is small:

Example:

>>> from functools import partial
>>> from sklearn.datasets import load_iris
>>> from tunefleet.fleet import FleetTrainer, fleet_support
>>> from tunefleet.keras import build_mlp
>>> x, y = load_iris(return_X_y=True)
>>> build_fn = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)  # build_fn(**config)
>>> configs = [{"n_neurons": 8, "learning_rate": 0.01}, {"n_neurons": 16, "learning_rate": 0.001}]
>>> print(fleet_support(build_fn, configs))           # None, or what is unsupported
None
>>> trainer = FleetTrainer(build_fn, seed=0)
>>> [list(group) for group in trainer.plan(configs)]   # compile groups
[[0, 1]]
>>> result = trainer.fit(configs, x, y, epochs=1, validation_split=0.2)
>>> result.final("val_loss").shape                     # one value per config
(2,)
>>> result.export(1).count_params()                    # an ordinary keras.Model
131

See ``docs/fleet.md`` for how it works and what it supports.
"""

from tunefleet.fleet.introspect import SUPPORTED_LAYERS, UnsupportedModelError
from tunefleet.fleet.plan import FleetPlan, MemoryEstimate, ThroughputCurve
from tunefleet.fleet.refill import NewTrial, Refill
from tunefleet.fleet.result import EpochLogs, FleetResult
from tunefleet.fleet.trainer import FleetTrainer, fleet_support

__all__ = [
    "SUPPORTED_LAYERS",
    "EpochLogs",
    "FleetPlan",
    "FleetResult",
    "FleetTrainer",
    "MemoryEstimate",
    "NewTrial",
    "Refill",
    "ThroughputCurve",
    "UnsupportedModelError",
    "fleet_support",
]
