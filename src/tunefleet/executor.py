"""The dispatcher's interface: an executor runs a study's trials until its budget is spent.

Its implementations: :class:`tunefleet.dispatch.InProcess`,
:class:`~tunefleet.dispatch.FleetBatches`, :class:`~tunefleet.dispatch.ProcessPool`
(this machine) and :class:`tunefleet.ray_workers.RayWorkers` (a Ray cluster);
:func:`tunefleet.dispatch.choose_executor` picks one for a search.

Example:

>>> import optuna
>>> from tunefleet.executor import Executor
>>> from tunefleet.study import Budget
>>> class Twice(Executor):  # runs the objective, twice
...     def __init__(self, objective):
...         self.objective = objective
...     def run(self, study, budget, *, grid_points=None, on_trial_end=None, poll=None):
...         study.optimize(self.objective, n_trials=2)
>>> study = optuna.create_study()
>>> Twice(lambda t: t.suggest_float("x", 0, 1)).run(study, Budget(2, grid=False))
>>> len(study.trials)
2
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from tunefleet.study import Budget

TrialEnd = Callable[[FrozenTrial], None]
Poll = Callable[[], None]


class Executor(abc.ABC):
    """Runs trials of a study until its budget is spent (the dispatcher's interface).

    ``on_trial_end`` is called with each trial this process finishes; ``poll`` is called
    now and then while trials run elsewhere (worker processes, other machines), for
    progress shown from the storage.
    """

    @abc.abstractmethod
    def run(
        self,
        study: optuna.Study,
        budget: Budget,
        *,
        grid_points: list[dict[str, Any]] | None = None,
        on_trial_end: TrialEnd | None = None,
        poll: Poll | None = None,
    ) -> None:
        """Run trials until ``budget`` is spent (grid: until the queue is empty)."""
