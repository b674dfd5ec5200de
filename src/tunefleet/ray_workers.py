"""Trials on a Ray cluster: the executor behind ``backend="ray"``.

The process that calls ``fit``/``search`` (the driver) starts Ray actors, each holding
the resources of one trial (``resources_per_trial``, e.g. ``{"cpu": 1, "gpu": 0.5}``), on
whichever nodes of the cluster have them. Each actor runs the same worker loop as the
``n_jobs`` worker processes (:func:`tunefleet.execution.run_worker`): it opens the study
from its storage URL, asks a trial within the shared budget, runs it and tells it,
until the budget is spent. The study stays in the storage, so the driver can die and
the search be resumed from any machine, and workers started by hand
(``tunefleet worker``, another script) can join the same study.

A dead actor (killed, out of memory, its node lost) is seen by the driver at once: the
trial it was running is marked interrupted and its configuration queued again (at most
``max_retries`` times, see :func:`tunefleet.study.recover_interrupted`), and a fresh
actor takes its place while budget is left. An error of the user's code that stops
the search (``error_score="raise"``) stops every actor and is raised in the driver.

The driver connects to the cluster at ``address`` (or ``RAY_ADDRESS``), or starts a
local one; an already initialized Ray is used as it is.

Example:

>>> from tunefleet.ray_workers import actor_options
>>> actor_options({"cpu": 2, "gpu": 0.5, "accelerator_memory": 1})
{'num_cpus': 2.0, 'num_gpus': 0.5, 'resources': {'accelerator_memory': 1.0}}
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from tunefleet import liveness
from tunefleet.execution import WorkerJob, run_worker
from tunefleet.executor import Poll, TrialEnd, WorkerPool
from tunefleet.storage import StorageUnavailable
from tunefleet.study import Budget, recover_interrupted

logger = logging.getLogger("tunefleet")

#: A dead actor is replaced; past this many deaths per worker the search stops.
MAX_DEATHS_PER_WORKER = 10


def actor_options(resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ray actor options for ``resources_per_trial`` (``cpu``, ``gpu``, ``memory``, custom).

    Raises:
        ValueError: naming ``resources_per_trial`` for a value that is not a
            non-negative number.
    """
    resources = {"cpu": 1} if resources is None else resources
    if not isinstance(resources, Mapping):
        raise ValueError(
            "resources_per_trial must be a dict such as {'cpu': 1, 'gpu': 0.5}, got "
            f"{type(resources).__name__}: {resources!r}."
        )
    options: dict[str, Any] = {}
    custom: dict[str, float] = {}
    for name, value in resources.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"resources_per_trial[{name!r}] must be a non-negative number, got {value!r}."
            )
        key = {"cpu": "num_cpus", "gpu": "num_gpus", "memory": "memory"}.get(name)
        if key is None:
            custom[name] = float(value)
        else:
            options[key] = float(value)
    if custom:
        options["resources"] = custom
    return options


class TrialWorker:
    """A Ray actor's body: runs its share of a job's trials (see :func:`run_worker`)."""

    def identity(self) -> str:
        """The start of the owner string of every trial this actor runs."""
        return f"{liveness.HOST}:{os.getpid()}:"

    def run(self, job: WorkerJob, index: int, generation: int) -> bool:
        try:
            return run_worker(job, index, generation)
        except StorageUnavailable as stop:  # an Exception for Ray; raised again in the driver
            raise _StorageUnavailableInActor(str(stop)) from None


class _StorageUnavailableInActor(RuntimeError):
    """:class:`~tunefleet.storage.StorageUnavailable` of an actor, as it crosses Ray."""


def import_ray() -> Any:
    """``ray``, or an ``ImportError`` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError('backend="ray" needs Ray: pip install "tunefleet[ray]".') from exc
    return ray


def connect(address: str | None = None) -> Any:
    """Connect to the Ray cluster at ``address`` (or ``RAY_ADDRESS``), or start a local one."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(
            address=address or os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    return ray


def cluster_slots(ray: Any, options: Mapping[str, Any]) -> int:
    """How many actors with ``options`` the cluster's resources hold at once (at least 1)."""
    total = ray.cluster_resources()
    fits = []
    for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        need = options.get(key, 0)
        if need:
            fits.append(int(total.get(name, 0) // need))
    for name, need in options.get("resources", {}).items():
        if need:
            fits.append(int(total.get(name, 0) // need))
    return max(1, min(fits)) if fits else max(1, int(total.get("CPU", 1)))


@dataclass
class RayWorkers(WorkerPool):
    """``n_workers`` Ray actors (``None`` or -1: as many as the cluster's resources hold).

    Each opens the study from its storage URL (which every node must reach: PostgreSQL
    on a cluster; SQLite or a journal file on one machine) and runs trials until the
    shared budget is spent.
    """

    resources_per_trial: Mapping[str, Any] | None = None
    address: str | None = None
    options: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.options = actor_options(self.resources_per_trial)

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
            study,
            budget,
            grid_points,
            'backend="ray" runs trials in Ray actors',
            max_trials_per_worker=None,
        )
        ray = connect(self.address)
        slots = cluster_slots(ray, self.options)
        if self.n_workers is None:
            n = slots
        else:  # -1: as many as the cluster holds, -2: one fewer... (joblib's rule)
            n = self.n_workers if self.n_workers > 0 else max(1, slots + 1 + self.n_workers)
        Actor = ray.remote(max_restarts=0, **self.options)(TrialWorker)
        running: dict[Any, tuple[int, Any, str, int]] = {}  # ref -> (index, actor, id, gen)

        def start(index: int, generation: int, actor: Any = None) -> None:
            actor = Actor.remote() if actor is None else actor
            identity = ray.get(actor.identity.remote())
            running[actor.run.remote(job, index, generation)] = (
                index,
                actor,
                identity,
                generation,
            )

        deaths = 0
        try:
            # All actors are created before the first is waited for: they start together.
            for index, actor in enumerate([Actor.remote() for _ in range(n)]):
                start(index, 0, actor)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                if poll is not None:
                    poll()
                for ref in ready:
                    index, actor, identity, generation = running.pop(ref)
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayActorError:
                        deaths += 1
                        logger.warning(
                            "Ray worker %d (%s) died; its trial runs again in a fresh worker",
                            index,
                            identity.rstrip(":"),
                        )
                        recover_interrupted(
                            study,
                            grid_points,
                            retry_configurations=True,
                            known_dead=lambda owner, identity=identity: owner.startswith(identity),
                        )
                        if deaths > MAX_DEATHS_PER_WORKER * n:
                            raise RuntimeError(
                                f"{deaths} Ray workers died; stopping. Completed trials are "
                                "stored: fit again with the same storage and study_name to "
                                "resume."
                            ) from None
                        start(index, generation + 1)
                    except ray.exceptions.RayTaskError as error:
                        cause = error.as_instanceof_cause()
                        if isinstance(cause, _StorageUnavailableInActor):
                            raise StorageUnavailable(str(error.cause)) from None
                        raise cause from None
                    else:
                        ray.kill(actor)
        finally:
            for _, actor, _, _ in running.values():
                ray.kill(actor)
            if poll is not None:
                poll()
