"""Where a search's trials run: one dispatcher for every face.

A face says what one trial is (an objective, and for fleets a batch runner) and how
much to run (a :class:`~tunefleet.study.Budget`); the dispatcher decides where it runs:

* :class:`InProcess`: one trial after another in this process;
* :class:`FleetBatches`: many trials of one Keras model at once, trained as one compiled
  JAX program (see :mod:`tunefleet.fleet`), freed rows refilled with new trials;
* :class:`ProcessPool`: worker processes on this machine, sharing the study's database.

Each is an :class:`Executor`; an executor for more machines plugs in beside them. The
choice is made the same way for every face: :func:`n_workers` reads ``n_jobs`` as
scikit-learn and joblib do, :func:`fleet_size` reads ``fleet`` and sizes the batches,
and :func:`choose_executor` picks the executor from the two.
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from tunefleet.execution import (
    BatchRunner,
    Objective,
    default_trials_per_worker,
    run_in_processes,
    run_trial_batches,
    run_trials,
)
from tunefleet.executor import Executor, Poll, TrialEnd, WorkerPool
from tunefleet.space import SearchSpace
from tunefleet.study import Budget

logger = logging.getLogger("tunefleet")


def n_workers(n_jobs: Any, param: str = "n_jobs") -> int:
    """How many trials run at once for ``n_jobs``, as in scikit-learn and joblib.

    ``None`` or 1: one, in this process; ``k > 1``: ``k`` worker processes; ``-1``: one
    per CPU core, ``-2``: all cores but one, and so on (at least one).

    Example:

    >>> from tunefleet.dispatch import n_workers
    >>> n_workers(None), n_workers(3)
    (1, 3)
    >>> n_workers(-1) == (os.cpu_count() or 1)
    True
    >>> n_workers(0)
    Traceback (most recent call last):
    ...
    ValueError: n_jobs must be a non-zero integer or None (-1: all CPU cores), got 0.
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(
            f"{param} must be a non-zero integer or None (-1: all CPU cores), got {n_jobs!r}."
        )
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))
    return int(n_jobs)


#: Where trials run: ``"local"`` (this process, fleets, ``n_jobs`` worker processes) or
#: ``"ray"`` (actors on a Ray cluster).
BACKENDS = ("local", "ray")
#: Why a search on Ray trains one trial at a time per actor.
RAY_ACTORS = 'backend="ray" trains one trial at a time in each Ray actor'


def check_backend(backend: Any, param: str = "backend") -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else a ``ValueError`` naming ``param``.

    Example:

    >>> check_backend("ray")
    'ray'
    >>> check_backend("dask")
    Traceback (most recent call last):
    ...
    ValueError: backend must be 'local' or 'ray', got 'dask'.
    """
    if backend not in BACKENDS:
        raise ValueError(f"{param} must be 'local' or 'ray', got {backend!r}.")
    return str(backend)


def check_fleet(fleet: Any) -> None:
    """Refuse a ``fleet`` setting that is not ``"auto"``, a bool, ``None`` or a count."""
    if any(fleet is v for v in (True, False, None)) or fleet == "auto":
        return
    if isinstance(fleet, numbers.Integral) and not isinstance(fleet, bool) and fleet >= 1:
        return
    raise ValueError(f"fleet must be 'auto', True, False or a positive integer, got {fleet!r}.")


def default_fleet_size(strategy: Any, n_trials: int | None) -> int:
    """Trials per batch when ``fleet="auto"``/``True``.

    Random and grid search lose nothing by asking many trials at once; model-based
    samplers learn between batches, so they get a quarter of the budget (4 to 64).
    """
    if strategy in ("random", "grid"):
        return 64
    return int(min(64, max(4, (n_trials or 16) // 4)))


#: Why a search with worker processes (``n_jobs`` > 1) trains no fleets.
WORKER_PROCESSES = "n_jobs > 1 trains in worker processes, one trial at a time each"

#: The "training one by one" notices already logged in this process (each is said once).
_LOGGED: set[str] = set()


def fleet_size(
    fleet: Any,
    *,
    reason: str | None,
    strategy: Any,
    n_trials: int | None,
    who: str,
    level: int = logging.INFO,
    n_workers: int = 1,
    default: int | None = None,
) -> int | None:
    """Trials per fleet batch, or ``None`` to run trials one at a time.

    ``reason``: why this search cannot train fleets (``None`` if it can); with
    ``n_workers > 1`` (see :func:`n_workers`) the reason is :data:`WORKER_PROCESSES`.
    With ``fleet="auto"`` such a search runs trials one at a time and says why once, in
    the ``tunefleet`` log at ``level``; asked for explicitly (``True`` or a count), it is
    refused. ``True``/``"auto"`` size batches as ``default`` says, else by
    :func:`default_fleet_size`.

    Example:

    >>> from tunefleet.dispatch import fleet_size
    >>> fleet_size("auto", reason=None, strategy="random", n_trials=20, who="search")
    64
    >>> fleet_size(8, reason=None, strategy="tpe", n_trials=20, who="search")
    8
    >>> fleet_size("auto", reason="n_jobs > 1", strategy="tpe", n_trials=20, who="search")
    >>> fleet_size("auto", reason=None, strategy="tpe", n_trials=20, who="search", n_workers=2)
    >>> fleet_size(True, reason=None, strategy="tpe", n_trials=20, who="search", default=32)
    32
    >>> fleet_size(True, reason="n_jobs > 1", strategy="tpe", n_trials=20, who="search")
    Traceback (most recent call last):
    ...
    ValueError: fleet=True cannot be used: n_jobs > 1.
    """
    check_fleet(fleet)
    if fleet is False or fleet is None:
        return None
    if n_workers > 1:
        reason = WORKER_PROCESSES
    if reason is not None:
        if fleet != "auto":
            raise ValueError(f"fleet={fleet!r} cannot be used: {reason}.")
        message = f"{who}: training trials one by one: {reason}."
        if message not in _LOGGED:
            _LOGGED.add(message)
            logger.log(level, message)
        return None
    if fleet is True or fleet == "auto":
        return default_fleet_size(strategy, n_trials) if default is None else int(default)
    return int(fleet)


@dataclass
class InProcess(Executor):
    """One trial after another in this process.

    Example:

    >>> import optuna
    >>> from tunefleet.dispatch import InProcess
    >>> from tunefleet.study import Budget
    >>> study = optuna.create_study()
    >>> InProcess(lambda trial: trial.suggest_float("x", 0, 1) ** 2).run(study, Budget(3, grid=False))
    >>> len(study.trials)
    3
    """

    objective: Objective

    def run(
        self,
        study: optuna.Study,
        budget: Budget,
        *,
        grid_points: list[dict[str, Any]] | None = None,
        on_trial_end: TrialEnd | None = None,
        poll: Poll | None = None,
    ) -> None:
        run_trials(
            study, self.objective, budget, grid_points=grid_points, on_trial_end=on_trial_end
        )


@dataclass
class FleetBatches(Executor):
    """Batches of ``batch_size`` trials trained at once by ``run_batch``.

    ``run_batch(study, trials, ask)`` returns each trial's outcome (a value,
    ``"pruned"`` or ``"failed"``); it may call ``ask(n)`` for new trials to train in
    rows freed by trials that ended early (see :func:`~tunefleet.execution.run_trial_batches`).

    Example:

    >>> import optuna
    >>> from tunefleet.dispatch import FleetBatches
    >>> from tunefleet.study import Budget
    >>> def run_batch(study, trials, ask):  # a fleet trains these together
    ...     return [t.suggest_float("x", 0, 1) for t in trials]
    >>> study = optuna.create_study()
    >>> FleetBatches(run_batch, batch_size=4).run(study, Budget(6, grid=False))
    >>> len(study.trials)
    6
    """

    run_batch: BatchRunner
    batch_size: int

    def run(
        self,
        study: optuna.Study,
        budget: Budget,
        *,
        grid_points: list[dict[str, Any]] | None = None,
        on_trial_end: TrialEnd | None = None,
        poll: Poll | None = None,
    ) -> None:
        run_trial_batches(
            study,
            self.run_batch,
            budget,
            self.batch_size,
            grid_points=grid_points,
            on_trial_end=on_trial_end,
            refill=True,
        )


@dataclass
class ProcessPool(WorkerPool):
    """``n_workers`` worker processes (spawned, safe with JAX) on the study's database.

    Each worker opens the study from its storage URL, makes its own sampler (seeded
    apart from the others) and runs trials until the shared budget is spent. The
    objective and the sampler are pickled into the workers.
    """

    def run(
        self,
        study: optuna.Study,
        budget: Budget,
        *,
        grid_points: list[dict[str, Any]] | None = None,
        on_trial_end: TrialEnd | None = None,
        poll: Poll | None = None,
    ) -> None:
        job = self.worker_job(
            study, budget, grid_points, f"n_jobs={self.n_workers} runs worker processes"
        )
        run_in_processes(job, self.n_workers or 1, poll=poll)


#: Why a long search on TensorFlow runs its trials in a worker process (said once).
TENSORFLOW_WORKER = (
    "TensorFlow keeps memory per model that nothing in this process releases, so the "
    "trials run in a worker process replaced every {limit} trials "
    "(tunefleet.execution.TENSORFLOW_TRIALS_PER_WORKER; None runs them here)"
)


def runs_in_worker_process(n_workers: int, n_trials: int | None, backend: str = "local") -> bool:
    """Whether a search that would run its trials in this process runs them in a worker.

    On the TensorFlow backend a process grows by several MiB with every model of new
    shapes, so a search of more trials than a worker process runs before it is replaced
    (:func:`~tunefleet.execution.default_trials_per_worker`) runs them in one worker
    process at a time, replaced after that many trials, even with ``n_jobs=1``. On the
    other backends, and for a search of fewer trials (``n_trials``; ``None``: unknown,
    as for a grid not yet expanded, counts as many), trials run here.

    Example:

    >>> from tunefleet.dispatch import runs_in_worker_process
    >>> runs_in_worker_process(1, 1000)  # JAX: memory is released in-process
    False
    """
    limit = default_trials_per_worker()
    if n_workers != 1 or backend != "local" or limit is None:
        return False
    if n_trials is not None and n_trials <= limit:
        return False
    message = TENSORFLOW_WORKER.format(limit=limit)
    if message not in _LOGGED:
        _LOGGED.add(message)
        logger.info("%s.", message)
    return True


def choose_executor(
    objective: Objective,
    *,
    n_workers: int | None = 1,
    worker_process: bool = False,
    batch_size: int | None = None,
    run_batch: BatchRunner | None = None,
    sampler: str | optuna.samplers.BaseSampler = "random",
    space: SearchSpace | None = None,
    seed: int | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    population_size: int | None = None,
    backend: str = "local",
    resources_per_trial: Mapping[str, Any] | None = None,
    ray_address: str | None = None,
) -> Executor:
    """Where a search's trials run, chosen the same way for every face.

    ``batch_size`` (from :func:`fleet_size`; ``None``: one trial at a time) with
    ``run_batch``: :class:`FleetBatches`; else ``n_workers`` (from :func:`n_workers`)
    of 1: :class:`InProcess`, or with ``worker_process`` (see
    :func:`runs_in_worker_process`) a :class:`ProcessPool` of one replaced worker
    process; else a :class:`ProcessPool` of ``n_workers``, whose
    workers each make their own ``sampler`` (a strategy name over ``space``, or an
    Optuna sampler) seeded from ``seed``, and use ``pruner``. With ``backend="ray"``
    (see :func:`check_backend`): :class:`tunefleet.ray_workers.RayWorkers`, ``n_workers``
    Ray actors (``None``: as many as the cluster holds) of ``resources_per_trial`` each,
    on the cluster at ``ray_address``.

    Example:

    >>> from tunefleet.dispatch import choose_executor
    >>> objective = lambda trial: trial.suggest_float("x", 0, 1)
    >>> type(choose_executor(objective)).__name__
    'InProcess'
    >>> type(choose_executor(objective, n_workers=4)).__name__
    'ProcessPool'
    >>> run_batch = lambda study, trials, ask: [objective(t) for t in trials]
    >>> type(choose_executor(objective, batch_size=8, run_batch=run_batch)).__name__
    'FleetBatches'
    """
    workers: dict[str, Any] = {
        "sampler": sampler,
        "space": SearchSpace([[]]) if space is None else space,
        "seed": seed,
        "pruner": optuna.pruners.NopPruner() if pruner is None else pruner,
        "n_workers": n_workers,
        "population_size": population_size,
    }
    if check_backend(backend) == "ray":
        from tunefleet.ray_workers import RayWorkers

        return RayWorkers(
            objective, **workers, resources_per_trial=resources_per_trial, address=ray_address
        )
    if batch_size is not None:
        if run_batch is None:
            raise ValueError("batch_size is given without run_batch, which trains a batch.")
        return FleetBatches(run_batch, batch_size)
    if (n_workers is None or n_workers == 1) and not worker_process:
        return InProcess(objective)
    return ProcessPool(objective, **workers)
