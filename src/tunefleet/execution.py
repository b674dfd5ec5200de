"""Executors: run trials in this process, or in worker processes on a shared storage.

The loop is Optuna's ask-and-tell: ask the study for a trial (a queued grid point or a
sampled configuration), run the trial function, tell the result. Every worker, in this
process or another, runs the same loop on the same storage; the storage decides which
trial each gets, so grids are not repeated and budgets are shared.

A loop that is not one of these (the Keras Tuner face's Hyperband brackets) uses the same
steps, so its trials are recovered and counted as every other trial:

* :func:`ask_trial` / :func:`ask_trials`: start trials within a :class:`~tunefleet.study.Budget`,
  each recording its worker (:class:`~tunefleet.study.Worker`) from its first commit;
* :func:`tell`: end a trial, or take the stored one if another worker finished it first
  (:func:`finished_elsewhere`);
* :func:`interrupt`: mark a trial cut short (``Ctrl-C``, an error that stops the search)
  interrupted, so that it runs again on resume and counts nowhere.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tunefleet.attrs import (
    DUPLICATE,
    ERROR_ATTR,
    GRID_ATTR,
    INTERRUPTED,
    error_text,
    non_finite_error,
)
from tunefleet.compilation_cache import worker_environment
from tunefleet.heap import frozen_heap
from tunefleet.space import SearchSpace
from tunefleet.storage import StorageUnavailable, open_storage
from tunefleet.strategies import make_sampler
from tunefleet.study import Budget, Worker, mark_excluded
from tunefleet.trial import TrialFailed

logger = logging.getLogger("tunefleet")

#: A trial function: one value, or one per objective of a multi-objective study.
Objective = Callable[[optuna.Trial], float | list[float]]


def run_trials(
    study: optuna.Study,
    objective: Objective,
    budget: Budget,
    *,
    grid_points: list[dict[str, Any]] | None = None,
    on_trial_end: Callable[[FrozenTrial], None] | None = None,
    max_trials: int | None = None,
) -> bool:
    """Ask, run and tell trials until ``budget`` is spent (or ``max_trials`` ran).

    A ``KeyboardInterrupt`` (or any other ``BaseException``) marks the running trial as
    interrupted, so a resumed search runs it again, and propagates.

    Returns:
        ``True`` if it stopped after ``max_trials`` trials with budget left.
    """
    ran = 0
    with Worker() as worker, frozen_heap():
        while True:
            if max_trials is not None and ran >= max_trials:
                return budget.remaining(study) > 0
            trial = ask_trial(study, budget, worker.owner)
            if trial is None:
                break
            frozen = _run_one(study, trial, objective, grid_points)
            ran += 1
            if on_trial_end is not None:
                on_trial_end(frozen)
    return False


def finished_elsewhere(study: optuna.Study, trial: optuna.Trial, refusal: Exception) -> FrozenTrial:
    """The stored trial, finished by another worker while this one ran it.

    Optuna on SQLite (no row locks) can hand one queued trial, e.g. a grid point, to two
    workers that pop it at the same moment. Both run it; the first to finish it wins and
    the other's writes are refused. The trial then ran once for the study, and the
    loser moves on. If the trial is not finished, ``refusal`` was about something
    else and is raised again.
    """
    frozen = study._storage.get_trial(trial._trial_id)
    if not frozen.state.is_finished():
        raise refusal
    logger.info("trial %d was run and finished by another worker too", trial.number)
    return frozen


def tell(study: optuna.Study, trial: optuna.Trial, *args: Any, **kwargs: Any) -> FrozenTrial:
    """``study.tell(trial, ...)``, or the stored trial if another worker finished it first.

    Every engine loop ends its trials through here, so a trial two workers ran (see
    :func:`finished_elsewhere`) is told once and counted once.
    """
    try:
        return study.tell(trial, *args, **kwargs)
    except (UpdateFinishedTrialError, ValueError) as refusal:
        return finished_elsewhere(study, trial, refusal)


def _run_one(
    study: optuna.Study,
    trial: optuna.Trial,
    objective: Objective,
    grid_points: list[dict[str, Any]] | None,
) -> FrozenTrial:
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        return tell(study, trial, state=TrialState.PRUNED)
    except TrialFailed:
        return tell(study, trial, state=TrialState.FAIL)
    except UpdateFinishedTrialError as refusal:  # before Exception: it is one
        return finished_elsewhere(study, trial, refusal)
    except Exception as exc:  # error_score="raise": record, then propagate
        if ERROR_ATTR not in trial.user_attrs:
            trial.set_user_attr(
                ERROR_ATTR, error_text("".join(traceback.format_exception_only(type(exc), exc)))
            )
        study.tell(trial, state=TrialState.FAIL)
        raise
    except BaseException:
        interrupt(study, trial, grid_points)
        raise
    if not all(math.isfinite(v) for v in (value if isinstance(value, list) else [value])):
        trial.set_user_attr(ERROR_ATTR, non_finite_error(value))
        return tell(study, trial, state=TrialState.FAIL)
    return tell(study, trial, value)


#: ``ask(n)``: up to ``n`` more trials for the running batch (fewer, or none, once the
#: budget is spent); see :func:`run_trial_batches`.
Ask = Callable[[int], list[optuna.Trial]]
#: ``run_batch(study, trials)``, or ``run_batch(study, trials, ask)`` with ``refill=True``.
BatchRunner = Callable[..., list[Any]]


def ask_trial(
    study: optuna.Study,
    budget: Budget,
    owner: str,
    attrs: Mapping[str, Any] | None = None,
) -> optuna.Trial | None:
    """Start the next trial to run, owned by ``owner``; ``None`` once the budget is spent.

    The trial is created (or popped from the queue) with its owner, the user attributes
    ``attrs`` and within the budget in one write (:meth:`Budget.ask`). A second copy of
    a grid point is finished as excluded, so it neither runs nor counts.

    Example:

    >>> import optuna
    >>> from tunefleet.execution import ask_trial, tell
    >>> from tunefleet.study import Budget, Worker
    >>> study, budget = optuna.create_study(), Budget(1, grid=False)
    >>> with Worker() as worker:
    ...     trial = ask_trial(study, budget, worker.owner, attrs={"note": "first"})
    ...     tell(study, trial, 0.5).user_attrs["note"], ask_trial(study, budget, worker.owner)
    ('first', None)
    """
    while True:
        trial = budget.ask(study, owner, attrs)
        if trial is None or not budget.is_duplicate(study, trial):
            return trial
        mark_excluded(study, trial, DUPLICATE)


def ask_trials(
    study: optuna.Study,
    budget: Budget,
    owner: str,
    n: int,
    attrs: Mapping[str, Any] | None = None,
) -> list[optuna.Trial]:
    """Ask up to ``n`` trials the budget allows (fewer once it is spent); see :func:`ask_trial`."""
    trials: list[optuna.Trial] = []
    for _ in range(n):
        trial = ask_trial(study, budget, owner, attrs)
        if trial is None:
            break
        trials.append(trial)
    return trials


def run_trial_batches(
    study: optuna.Study,
    run_batch: BatchRunner,
    budget: Budget,
    batch_size: int,
    *,
    grid_points: list[dict[str, Any]] | None = None,
    on_trial_end: Callable[[FrozenTrial], None] | None = None,
    refill: bool = False,
) -> None:
    """Like :func:`run_trials`, but ask up to ``batch_size`` trials at once (fleets).

    Model-based samplers see the batch's running trials through the constant liar, so
    a batch holds distinct configurations. ``run_batch`` returns per trial a value,
    ``"pruned"`` or ``"failed"``; the study is told here. With ``refill=True`` it is
    called as ``run_batch(study, trials, ask)``: while it runs it may call ``ask(n)``
    for up to ``n`` more trials within the budget (to refill rows that pruned trials
    freed), and returns the outcomes of ``trials`` followed by those of every asked
    trial, in the order asked; all are told here and passed to ``on_trial_end``.
    """
    with Worker() as worker, frozen_heap():
        while True:
            trials = ask_trials(study, budget, worker.owner, batch_size)
            if not trials:
                break
            asked: list[optuna.Trial] = []

            def ask(n: int, asked: list[optuna.Trial] = asked) -> list[optuna.Trial]:
                new = ask_trials(study, budget, worker.owner, n)
                asked.extend(new)
                return new

            try:
                outcomes = run_batch(study, trials, ask) if refill else run_batch(study, trials)
            except BaseException as exc:
                for trial in trials + asked:
                    if isinstance(exc, Exception) and ERROR_ATTR in trial.user_attrs:
                        study.tell(trial, state=TrialState.FAIL)  # error_score="raise"
                    else:
                        interrupt(study, trial, grid_points)
                raise
            told = []  # tell the whole batch first: a callback may stop the search
            for trial, outcome in zip(trials + asked, outcomes, strict=True):
                if outcome == "pruned":
                    told.append(tell(study, trial, state=TrialState.PRUNED))
                elif outcome == "failed" or not math.isfinite(outcome):
                    told.append(tell(study, trial, state=TrialState.FAIL))
                else:
                    told.append(tell(study, trial, outcome))
            for frozen in told:
                if on_trial_end is not None:
                    on_trial_end(frozen)


def interrupt(
    study: optuna.Study, trial: optuna.Trial, grid_points: list[dict[str, Any]] | None = None
) -> None:
    """Mark ``trial`` interrupted (it runs again on resume) and requeue its grid point.

    A trial that another worker finished meanwhile is left as that worker stored it.

    Example:

    >>> import optuna
    >>> from tunefleet.execution import interrupt
    >>> from tunefleet.study import counts
    >>> study = optuna.create_study()
    >>> trial = study.ask()
    >>> interrupt(study, trial)
    >>> stored = study.trials[0]
    >>> stored.state.name, stored.user_attrs, counts(stored)
    ('FAIL', {'tunefleet:status': 'interrupted'}, False)
    """
    try:
        mark_excluded(study, trial, INTERRUPTED)
    except (UpdateFinishedTrialError, ValueError) as refusal:
        finished_elsewhere(study, trial, refusal)  # left as that worker stored it
        return
    index = trial.user_attrs.get(GRID_ATTR)
    if grid_points is not None and index is not None:
        study.enqueue_trial(grid_points[index], user_attrs={GRID_ATTR: index})


#: Trials a worker process runs on the TensorFlow backend before it is replaced by a
#: fresh one: TensorFlow keeps per-model state that nothing in-process releases.
TENSORFLOW_TRIALS_PER_WORKER = 25

#: Exit status of a worker that ran its ``max_trials_per_worker`` and leaves budget left.
RETIRED_EXIT = 75


def default_trials_per_worker() -> int | None:
    """Trials per worker process before it is replaced: bounded on TensorFlow, else none."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        backend = keras.backend.backend()
    except AttributeError:  # a partly imported Keras
        return None
    return TENSORFLOW_TRIALS_PER_WORKER if backend == "tensorflow" else None


@dataclass
class WorkerJob:
    """Everything a worker process needs (pickled into it).

    ``max_trials_per_worker``: trials after which a worker process exits and is replaced
    by a fresh one (while budget is left), which bounds what a backend keeps per process
    (default: :func:`default_trials_per_worker`). ``None``: workers run to the end.
    """

    storage_url: str
    study_name: str
    sampler: str | optuna.samplers.BaseSampler
    space: SearchSpace
    seed: int | None
    pruner: optuna.pruners.BasePruner
    objective: Objective
    budget: Budget
    grid_points: list[dict[str, Any]] | None = None
    population_size: int | None = None
    max_trials_per_worker: int | None = field(default_factory=default_trials_per_worker)

    def __post_init__(self) -> None:
        limit = self.max_trials_per_worker
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(
                f"max_trials_per_worker: expected a positive integer or None, got {limit!r}."
            )


def _worker_sampler(job: WorkerJob, index: int, generation: int = 0) -> optuna.samplers.BaseSampler:
    """The job's sampler with a distinct, reproducible random stream per worker.

    ``generation`` counts the processes that took worker ``index``'s place before it
    (see ``max_trials_per_worker``), so a replacement does not repeat their draws.
    """
    seed = None if job.seed is None else job.seed + 7919 * (index + 1) + 104729 * generation
    sampler = make_sampler(
        job.sampler,
        space=job.space,
        seed=seed,
        population_size=job.population_size,
        n_trials=job.budget.n_trials,
    )
    if isinstance(job.sampler, optuna.samplers.BaseSampler):
        sampler.reseed_rng()  # a user's instance (a copy, unpickled here)
    return sampler


def _exit_with_parent(parent: int, interval: float = 0.2) -> None:
    """Exit this worker process at once when ``parent`` (the one that started it) dies.

    An orphan is adopted by another process, so its parent pid changes. The trial it
    was running stays ``RUNNING`` with this (then dead) worker as owner, and the next
    start marks it interrupted (:func:`tunefleet.study.recover_interrupted`).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        logger.warning("worker %d: the search process died; stopping", os.getpid())
        os._exit(3)

    threading.Thread(target=watch, name="tunefleet-parent-watch", daemon=True).start()


def run_worker(job: WorkerJob, index: int, generation: int = 0) -> bool:
    """Run worker ``index``'s share of ``job`` in this process (a worker process, a Ray actor).

    Opens the study from ``job.storage_url`` with the worker's own sampler and runs
    trials until the shared budget is spent. Returns ``True`` when it stopped after
    ``job.max_trials_per_worker`` trials with budget left (a fresh worker should take
    its place).
    """
    storage = open_storage(job.storage_url)
    study = optuna.load_study(
        study_name=job.study_name,
        storage=storage,
        sampler=_worker_sampler(job, index, generation),
        pruner=job.pruner,
    )
    return run_trials(
        study,
        job.objective,
        job.budget,
        grid_points=job.grid_points,
        max_trials=job.max_trials_per_worker,
    )


def worker_process_main(stdin: Any, error_path: str) -> None:
    """A worker process's life: read its job from ``stdin``, run it, exit.

    ``stdin`` holds what :func:`run_in_processes` wrote: the parent's ``sys.path`` and
    the cloudpickled ``(job, index, parent, generation)``. A failure is written to
    ``error_path`` (pickled ``(exception, traceback text)``) and the process exits with
    1; a worker that retired after ``job.max_trials_per_worker`` trials exits with
    :data:`RETIRED_EXIT`.
    """
    import pickle

    try:
        paths, payload = pickle.load(stdin)
        sys.path[:0] = [path for path in paths if path not in sys.path]
        job, index, parent, generation = pickle.loads(payload)
        _exit_with_parent(parent)
        retired = run_worker(job, index, generation)
    except BaseException as exc:
        with open(error_path, "wb") as out:
            pickle.dump((_picklable(exc), traceback.format_exc()), out)
        raise SystemExit(1) from None
    if retired:
        raise SystemExit(RETIRED_EXIT)  # the parent starts a fresh worker in its place


def _picklable(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


@dataclass
class _WorkerProcess:
    """One worker process started by :func:`run_in_processes`."""

    process: subprocess.Popen
    error_path: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def error(self) -> tuple[BaseException, str] | None:
        import pickle

        if not self.error_path.exists() or self.error_path.stat().st_size == 0:
            return None
        with self.error_path.open("rb") as stored:
            return pickle.load(stored)


def run_in_processes(
    job: WorkerJob,
    n_workers: int,
    *,
    poll: Callable[[], None] | None = None,
    poll_interval: float = 0.5,
) -> None:
    """Run ``n_workers`` worker processes on ``job``'s storage.

    Each is a fresh interpreter (``python -m tunefleet.worker_process``, safe with JAX)
    that receives the job cloudpickled on its standard input: it never imports the
    user's script, so a script without ``if __name__ == "__main__":`` works, and build
    functions or estimators defined in that script travel by value. A worker that ran
    ``job.max_trials_per_worker`` trials while budget is left exits and a fresh process
    takes its place. Re-raises the first worker's exception; a worker killed from outside
    raises a ``RuntimeError`` (its completed trials stay stored: fit again to resume).
    Workers use this process's JAX compilation cache, also one set with ``jax.config``.
    """
    import pickle

    import cloudpickle

    errors = Path(tempfile.mkdtemp(prefix="tunefleet-workers-"))
    generations = [0] * n_workers
    parent = os.getpid()

    def start(i: int) -> _WorkerProcess:
        error_path = errors / f"worker-{i}.error"
        error_path.unlink(missing_ok=True)
        own = pickle.dumps((list(sys.path), cloudpickle.dumps((job, i, parent, generations[i]))))
        process = subprocess.Popen(
            [sys.executable, "-m", "tunefleet.worker_process", str(error_path)],
            stdin=subprocess.PIPE,
            env={**os.environ, **worker_environment()},  # this process's JAX cache too
        )
        assert process.stdin is not None
        process.stdin.write(own)
        process.stdin.close()
        return _WorkerProcess(process, error_path)

    processes = [start(i) for i in range(n_workers)]
    try:
        while True:
            if poll is not None:
                poll()
            failed = any(worker.error_path.exists() for worker in processes)
            for i, worker in enumerate(processes):
                if worker.process.poll() == RETIRED_EXIT and not failed:
                    logger.debug("worker %d retired after its trials; starting a fresh one", i)
                    generations[i] += 1
                    processes[i] = start(i)
            if not any(worker.alive for worker in processes):
                break
            time.sleep(poll_interval)
    except BaseException:
        for worker in processes:
            worker.process.terminate()
        for worker in processes:
            worker.process.wait()
        raise
    finally:
        failures = [(i, worker.error()) for i, worker in enumerate(processes)]
        shutil.rmtree(errors, ignore_errors=True)
    if poll is not None:
        poll()
    for index, failure in failures:
        if failure is not None:
            exc, text = failure
            if isinstance(exc, StorageUnavailable):  # its message says it all
                raise exc
            logger.error("worker %d failed:\n%s", index, text)
            raise exc
    crashed = [
        (f"tunefleet-worker-{i}", w.process.returncode)
        for i, w in enumerate(processes)
        if w.process.returncode != 0
    ]
    if crashed:
        raise RuntimeError(
            f"worker process(es) exited abnormally: {crashed}. Completed trials are stored; "
            "call fit again with the same storage and study_name to resume."
        )
