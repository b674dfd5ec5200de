"""Fleet training: many Keras configurations trained at once as vmapped JAX programs.

``tunefleet.fleet`` knows nothing of Optuna or scikit-learn. Its seam is small:

>>> from tunefleet.fleet import FleetTrainer, fleet_support
>>> why = fleet_support(build_fn, configs)            # None, or what is unsupported
>>> trainer = FleetTrainer(build_fn, seed=0)
>>> plan = trainer.plan(configs)                       # compile groups + fleet sizes
>>> result = trainer.fit(configs, x, y, epochs=20, validation_data=(xv, yv),
...                      on_epoch_end=callback)        # doctest: +SKIP
>>> model = result.export(3)                           # doctest: +SKIP

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
