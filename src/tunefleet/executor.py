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
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from tunefleet.execution import Objective, WorkerJob
from tunefleet.space import SearchSpace
from tunefleet.storage import storage_url
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


@dataclass
class WorkerPool(Executor):
    """An executor whose workers open the study from its storage URL and run its trials.

    Each worker makes its own sampler (``sampler``, a strategy name over ``space`` or an
    Optuna sampler, seeded from ``seed`` apart from the others) and runs trials until the
    shared budget is spent; the objective and the sampler are pickled into the workers.
    Subclasses: :class:`tunefleet.dispatch.ProcessPool`,
    :class:`tunefleet.ray_workers.RayWorkers`.
    """

    objective: Objective
    sampler: str | optuna.samplers.BaseSampler
    space: SearchSpace
    seed: int | None
    pruner: optuna.pruners.BasePruner
    n_workers: int | None = None
    population_size: int | None = None

    def worker_job(
        self,
        study: optuna.Study,
        budget: Budget,
        grid_points: list[dict[str, Any]] | None,
        who: str,
        **settings: Any,
    ) -> WorkerJob:
        """What every worker runs; ``who`` names the setting that needs a storage URL."""
        url = storage_url(study._storage)
        if url is None:
            raise ValueError(
                f"{who}, which open the study from its storage URL: give storage= one they "
                "can reach (sqlite:///... or journal:///... on one machine, postgresql://... "
                "on a cluster)."
            )
        return WorkerJob(
            storage_url=url,
            study_name=study.study_name,
            sampler=self.sampler,
            space=self.space,
            seed=self.seed,
            pruner=self.pruner,
            objective=self.objective,
            budget=budget,
            grid_points=grid_points,
            population_size=self.population_size,
            **settings,
        )
