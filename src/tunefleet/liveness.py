"""Is the worker of a running trial alive? Worker identities and heartbeats.

A trial that a process started and never finished stays ``RUNNING`` in the storage:
the process may still be training it, or it may have died (a crash, ``SIGKILL``, a lost
machine). :func:`tunefleet.study.recover_interrupted` finishes the trials of dead
workers so that their configurations run again; this module tells the two apart.

* Every trial records its :class:`Worker` (host, pid, process start time, run id). On
  the same host, a worker whose process is gone (or is another process with a reused
  pid) is dead at once.
* A worker also writes a **heartbeat** on each trial it runs: every
  :data:`HEARTBEAT_INTERVAL` seconds, a background thread stores the time in the trial's
  system attribute :data:`~tunefleet.attrs.HEARTBEAT_ATTR`. A trial whose last sign of life (its
  heartbeat, or its start before the first one) is older than :data:`GRACE_PERIOD` is
  stale: its worker is judged dead from any host. Clocks of the machines must agree to
  well within the grace period (NTP does).

``TUNEFLEET_HEARTBEAT_INTERVAL`` and ``TUNEFLEET_GRACE_PERIOD`` (seconds) override the
defaults, in every process that reads them.

Example:

>>> import optuna
>>> from tunefleet.liveness import Worker, is_stale, watch
>>> study = optuna.create_study()
>>> with Worker() as worker:
...     trial = study.ask()
...     watch(worker.owner, study._storage, trial._trial_id)
...     is_stale(study.trials[0], grace=60.0)
False
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC

import optuna
import psutil
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial

from tunefleet.attrs import HEARTBEAT_ATTR
from tunefleet.storage import StorageUnavailable

logger = logging.getLogger("tunefleet")


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}.")
    return seconds


#: Seconds between two heartbeats of a running trial.
HEARTBEAT_INTERVAL = _seconds("TUNEFLEET_HEARTBEAT_INTERVAL", 30.0)
#: Seconds without a heartbeat after which a running trial's worker is judged dead.
GRACE_PERIOD = _seconds("TUNEFLEET_GRACE_PERIOD", 4 * HEARTBEAT_INTERVAL)

HOST = socket.gethostname()
_ACTIVE: dict[str, Worker] = {}


class Worker:
    """Identity of a process running trials, and the heartbeat of the trials it runs.

    Use as a context manager around the trial loop: trials started for its ``owner``
    (:func:`tunefleet.study.ask_owned` calls :func:`watch`) get a heartbeat from a
    daemon thread until they end or the context exits.
    """

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        pid = os.getpid()
        self.owner = f"{HOST}:{pid}:{_process_start(pid)}:{self.run_id}"
        self._watched: dict[int, optuna.storages.BaseStorage] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Worker:
        _ACTIVE[self.run_id] = self
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.pop(self.run_id, None)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
        with self._lock:
            self._watched[trial_id] = storage
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._beat, name=f"tunefleet-heartbeat-{self.run_id}", daemon=True
                )
                self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            with self._lock:
                watched = list(self._watched.items())
            for trial_id, storage in watched:
                try:
                    storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
                except UpdateFinishedTrialError:
                    with self._lock:
                        self._watched.pop(trial_id, None)
                except (Exception, StorageUnavailable) as exc:  # the next beat tries again
                    logger.warning(
                        "heartbeat of trial id %d not written (%s); retrying in %.0f s",
                        trial_id,
                        type(exc).__name__,
                        HEARTBEAT_INTERVAL,
                    )


def watch(owner: str, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    """Give trial ``trial_id``, just started for ``owner``, a heartbeat while it runs.

    Only the trials of a :class:`Worker` active in this process get one.
    """
    worker = _ACTIVE.get(owner.rsplit(":", 1)[-1])
    if worker is not None and worker.owner == owner:
        worker._watch(storage, trial_id)


def _process_start(pid: int) -> str:
    try:
        return _start_label(psutil.Process(pid))
    except psutil.Error:
        return "?"


def _start_label(process: psutil.Process) -> str:
    """A process's start time as recorded in a worker's owner string."""
    return f"{process.create_time():.2f}"


def owner_alive(owner: str) -> bool | None:
    """Whether the worker ``owner`` still runs: ``None`` when this host cannot tell.

    A worker on another host, or an owner string of unknown shape, cannot be judged
    here (see :func:`is_stale`).
    """
    try:
        host, pid_text, started, run_id = owner.split(":")
        pid = int(pid_text)
    except ValueError:
        return None
    if host != HOST:
        return None
    if pid == os.getpid():
        return run_id in _ACTIVE
    try:
        process = psutil.Process(pid)
        # A zombie has exited; no one reaped it yet (an orphaned worker in a container
        # whose first process does not reap).
        alive = process.status() != psutil.STATUS_ZOMBIE
        return alive and _start_label(process) == started
    except psutil.Error:
        return False


def last_sign_of_life(trial: FrozenTrial) -> float | None:
    """When ``trial``'s worker last showed it was alive (its heartbeat, else its start)."""
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    if isinstance(beat, (int, float)):
        return float(beat)
    start = trial.datetime_start
    if start is None:
        return None
    if start.tzinfo is None:  # Optuna stores local naive times
        return start.timestamp()
    return start.astimezone(UTC).timestamp()


def is_stale(trial: FrozenTrial, grace: float | None = None, now: float | None = None) -> bool:
    """Whether running ``trial`` showed no sign of life for ``grace`` seconds."""
    seen = last_sign_of_life(trial)
    if seen is None:
        return False
    grace = GRACE_PERIOD if grace is None else grace
    return (time.time() if now is None else now) - seen > grace


def worker_dead(trial: FrozenTrial, owner: str) -> bool:
    """Whether the worker ``owner`` of running ``trial`` is dead.

    On its own host by its process; from any other host by its heartbeat.
    """
    alive = owner_alive(owner)
    if alive is not None:
        return not alive
    return is_stale(trial)
