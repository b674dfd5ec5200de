"""Opening storages, and the RDB storage that writes a trial's record with its end.

A search's study lives in an Optuna storage, opened from a URL by :func:`open_storage`:

* ``sqlite:///tune.db``: a SQLite file, the default, for one machine;
* ``journal:///tune.log``: Optuna's journal file, no server, for the processes of one
  machine or of machines sharing a disk (``journal:////abs/path.log`` is absolute, as with
  SQLite's four slashes);
* ``postgresql://user:password@host:5432/db``: a PostgreSQL server, for many machines
  (``pip install "tunefleet[postgres]"`` brings psycopg 3, which is then used);
* ``None``: in memory.

On an RDB storage every write is a transaction, and on SQLite every transaction that
writes is a commit to disk: the largest part of a short trial's bookkeeping. A trial
ends by writing what it measured (its per-fold record, its error) and then its state.
:class:`RecordingStorage` writes both in the transaction that ends the trial:
:func:`record_at_end` hands it the trial's last attributes, and Optuna's own ``tell``
writes them with the state (``set_trial_state_values``). If the trial was finished by
another worker meanwhile, nothing of it is written, as for any write to a finished trial.

A worker that loses its database (a server restart, a failover, a network cut) does not
fail at once: :class:`RecordingStorage` retries every read and write whose connection was
lost (:func:`is_connection_lost`) with exponential backoff for :func:`retry_seconds`
(60 s; ``TUNEFLEET_STORAGE_RETRY``), then raises :class:`StorageUnavailable`, which stops
the worker. A write whose commit reached the server but whose answer was lost is never
applied twice: a new trial carries a token (``tunefleet:claim``) by which the retry finds
it, and a trial's end retried after it was stored is recognised as done.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import optuna
import sqlalchemy as sa
import sqlalchemy.exc
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tunefleet.attrs import CLAIM_ATTR
from tunefleet.urls import mask_secrets, mask_url

logger = logging.getLogger("tunefleet")

_OPEN_ATTEMPTS = 8  # with 0.2 s, 0.4 s... between them: 5.6 s in all

#: The scheme of an Optuna journal file: ``journal:///relative.log``, ``journal:////abs.log``.
JOURNAL_PREFIX = "journal:///"

# A database that is busy, restarting or out of reach; retrying the operation may succeed.
_LOST = (
    r"database is locked|database table is locked|connection refused|could not connect|"
    r"can't connect|server closed the connection|terminating connection|"
    r"connection (?:is|was|already) (?:closed|lost)|no connection to the server|"
    r"database system is (?:shutting down|starting up|in recovery mode)|starting up|"
    r"connection reset|broken pipe|ssl syscall|timed out|timeout expired|too many connections|"
    r"try again|deadlock detected|could not serialize access"
)
_LOST_CONNECTION = re.compile(_LOST, re.IGNORECASE)
_TRANSIENT = re.compile(_LOST + r"|already exists|unique constraint|duplicate", re.IGNORECASE)


_ALREADY_EXISTS = re.compile(r"already exists", re.IGNORECASE)


def is_transient(exc: BaseException) -> bool:
    """Whether opening a storage failed for a reason that a retry may clear.

    Transient: SQLite's "database is locked", two processes creating the same schema at
    once (an ``IntegrityError``, or "already exists", which PostgreSQL raises as a
    ``ProgrammingError`` for the schema's enum types), a database server that refuses or
    drops connections. Anything else (an unknown dialect, a missing driver, a path that
    cannot be opened, a failed login) fails the same way on every try.
    """
    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return True
    message = str(getattr(exc, "orig", None) or exc)
    if isinstance(exc, sqlalchemy.exc.ProgrammingError):
        # PostgreSQL: the other process created one of the schema's enum types or tables
        # first ("type studydirection already exists", DuplicateObject/DuplicateTable)
        return bool(_ALREADY_EXISTS.search(message))
    if not isinstance(exc, sqlalchemy.exc.OperationalError):
        return is_connection_lost(exc)
    return bool(_TRANSIENT.search(message))


def is_connection_lost(exc: BaseException) -> bool:
    """Whether a storage operation failed because the database could not be reached.

    True for the errors a retry may clear, and that leave nothing half done (a failed
    transaction is rolled back): a connection the server dropped or refused (a restart,
    a failover, a network cut), a server starting up or shutting down, SQLite's "database
    is locked", a deadlock. Optuna wraps such errors in a ``StorageInternalError``; its
    cause is looked at. Anything else (a constraint, a finished trial, bad data) is not.

    Example:

    >>> import sqlalchemy.exc
    >>> refused = sqlalchemy.exc.OperationalError(
    ...     "SELECT 1", {}, Exception("connection failed: Connection refused"))
    >>> is_connection_lost(refused), is_connection_lost(ValueError("bad value"))
    (True, False)
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.PendingRollbackError):
            return True  # a session that still holds the dropped connection's transaction
        if isinstance(current, sqlalchemy.exc.DBAPIError):
            if current.connection_invalidated:
                return True
            if not isinstance(
                current, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
            ):
                return False
            return bool(_LOST_CONNECTION.search(str(current.orig or current)))
        current = current.__cause__
    return False


#: The environment variable setting how long a storage operation that lost its database
#: is retried (seconds; see :func:`retry_seconds`).
RETRY_ENV = "TUNEFLEET_STORAGE_RETRY"
#: How long (seconds) a storage operation that lost its database is retried by default.
DEFAULT_RETRY_SECONDS = 60.0
#: Exit status of the ``tunefleet`` command whose storage stayed unreachable (EX_UNAVAILABLE).
UNAVAILABLE_EXIT = 69
_FIRST_WAIT, _LONGEST_WAIT = 0.25, 8.0  # seconds between tries: 0.25, 0.5, 1... then 8


def retry_seconds() -> float:
    """How long (seconds) a storage operation that lost its database is retried.

    ``TUNEFLEET_STORAGE_RETRY`` (read at each outage, in every process: worker processes
    inherit it), else :data:`DEFAULT_RETRY_SECONDS`; ``0`` gives up at the first failure.
    The tries are spaced 0.25 s, 0.5 s, 1 s... apart, at most 8 s.

    Example:

    >>> import os
    >>> retry_seconds() == float(os.environ.get("TUNEFLEET_STORAGE_RETRY", 60))
    True
    """
    value = os.environ.get(RETRY_ENV)
    if value is None:
        return DEFAULT_RETRY_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"{RETRY_ENV} must be a number of seconds (0 or more), got {value!r}.")
    return seconds


class StorageUnavailable(BaseException):
    """The storage's database could not be reached for :func:`retry_seconds`: the worker stops.

    Its message names the storage (password masked) and how to resume. Like
    ``KeyboardInterrupt``, and unlike an ``Exception``, it is no error of the trial that
    was running: no error policy (``error_score``, ``max_retries``) takes it for one. The
    trial is left ``RUNNING`` (the database cannot be written) and the next search that
    starts on the storage marks it interrupted and runs its configuration again.
    The ``tunefleet`` command prints the message and exits with :data:`UNAVAILABLE_EXIT`.

    Example:

    >>> try:
    ...     raise StorageUnavailable("storage 'postgresql://bob:***@db/tune' cannot be reached")
    ... except Exception:
    ...     print("an error policy took it")
    ... except StorageUnavailable as stop:
    ...     print(stop)
    storage 'postgresql://bob:***@db/tune' cannot be reached
    """


_T = TypeVar("_T")


def open_storage(storage: str | optuna.storages.BaseStorage | None) -> optuna.storages.BaseStorage:
    """Open ``storage`` (``None`` = in memory, a URL, or an Optuna storage).

    Transient failures (see :func:`is_transient`) are retried a few times; any other
    failure raises at once. Raises ``ValueError`` naming the parameter and the masked URL;
    neither the message nor the exception chain shows the password.
    """
    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str):
        raise TypeError(
            f"storage must be None, a database URL such as 'sqlite:///tune.db', or an "
            f"optuna.storages.BaseStorage; got {type(storage).__name__}."
        )
    if storage.startswith(JOURNAL_PREFIX):
        return open_journal(storage[len(JOURNAL_PREFIX) :], storage)
    url = with_driver(storage)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif url.startswith("postgresql"):
        # a pooled connection that the server dropped (a restart, a failover) is
        # replaced before use instead of failing the next write; a server out of reach
        # fails a connection attempt in 10 s (then retried, see retry_seconds)
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            return RecordingStorage(url, engine_kwargs=engine_kwargs)
        except Exception as exc:  # every failure becomes a clear ValueError
            if is_transient(exc) and attempt < _OPEN_ATTEMPTS - 1:
                # e.g. processes creating the same new database at once race on its
                # schema; the loser finds the tables there on a retry.
                logger.debug(
                    "storage=%r busy (%s); retrying.", mask_url(storage), type(exc).__name__
                )
                time.sleep(0.2 * (attempt + 1))
                continue
            reason = mask_secrets(f"{type(exc).__name__}: {exc}", storage)
            tries = f" after {attempt + 1} tries" if attempt else ""
            # ``from None``: the original exception's text may echo the password.
            raise ValueError(
                f"storage={mask_url(storage)!r} could not be opened{tries}: {reason}"
            ) from None
    raise AssertionError("unreachable")


def with_driver(url: str) -> str:
    """``url`` with the PostgreSQL driver that is installed named in it.

    SQLAlchemy reads ``postgresql://`` as psycopg2; tunefleet's ``postgres`` extra installs
    psycopg 3, so a bare ``postgresql://`` (or ``postgres://``) URL names it when psycopg2
    is absent. URLs naming a driver (``postgresql+psycopg2://``) and other databases are
    returned as they are.

    Raises:
        ValueError: for a PostgreSQL URL when neither driver is installed.

    Example:

    >>> with_driver("sqlite:///tune.db")
    'sqlite:///tune.db'
    >>> with_driver("postgresql+psycopg2://bob@db/tune")
    'postgresql+psycopg2://bob@db/tune'
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url
    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    if importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql://{rest}"
    raise ValueError(
        f"storage={mask_url(url)!r} needs a PostgreSQL driver, and none is installed: "
        'pip install "tunefleet[postgres]" (psycopg 3).'
    )


def open_journal(path: str, url: str | None = None) -> optuna.storages.JournalStorage:
    """Open (or create) the Optuna journal file at ``path``, as ``journal:///`` URLs do.

    Its URL (``storage_url``) is kept, so worker processes open the same file.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tune.log")
    >>> storage = open_journal(path)
    >>> storage_url(storage) == "journal:///" + os.path.abspath(path)
    True
    """
    from optuna.storages.journal import JournalFileBackend

    if not path:
        raise ValueError(
            f"storage={url!r} names no file: write journal:///tune.log (relative) or "
            "journal:////abs/path/tune.log."
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"storage={url or path!r}: no such directory {folder!r}.")
    storage = optuna.storages.JournalStorage(JournalFileBackend(path))
    storage.tunefleet_url = JOURNAL_PREFIX + os.path.abspath(path)  # type: ignore[attr-defined]
    return storage


def storage_url(storage: optuna.storages.BaseStorage) -> str | None:
    """The URL worker processes reopen ``storage`` from, or ``None`` (in memory).

    An RDB storage's URL, or the ``journal:///`` URL of a journal file opened by
    :func:`open_journal` or :func:`open_storage`. Optuna wraps an RDB storage in a cache
    once a study uses it; look through it.
    """
    for layer in (storage, getattr(storage, "_backend", None)):
        url = getattr(layer, "url", None) or getattr(layer, "tunefleet_url", None)
        if url:
            return str(url)
    return None


def reopenable(storage: optuna.storages.BaseStorage) -> bool:
    """Whether worker processes can reopen ``storage``: it has a URL, or is in memory
    (a temporary SQLite file then stands in for it, see :func:`reopenable_by_workers`)."""
    return storage_url(storage) is not None or isinstance(storage, optuna.storages.InMemoryStorage)


@contextlib.contextmanager
def reopenable_by_workers(
    storage: optuna.storages.BaseStorage, workers: str | None
) -> Iterator[optuna.storages.BaseStorage]:
    """A storage that worker processes can reopen from its URL, for the block's length.

    ``workers`` says what runs workers (for the error message), or is ``None`` when
    nothing does; then, as for a storage with a URL, ``storage`` itself is given. An
    in-memory storage is stood in for by a temporary SQLite file, removed on exit (copy
    the study out first, with :func:`copy_to_memory`). A storage object without a URL
    that is not in memory cannot be reopened: ``ValueError``.
    """
    if workers is None or storage_url(storage) is not None:
        yield storage
        return
    if not reopenable(storage):
        raise ValueError(
            f"{workers}, which need a database storage URL (e.g. 'sqlite:///tune.db'); "
            "got a storage object without one."
        )
    handle, path = tempfile.mkstemp(prefix="tunefleet-", suffix=".db")
    os.close(handle)
    temporary = open_storage(f"sqlite:///{path}")
    try:
        yield temporary
    finally:
        temporary.engine.dispose()  # an RDBStorage: close its SQLite connections
        os.unlink(path)


def copy_to_memory(
    study_name: str, storage: optuna.storages.BaseStorage, sampler: optuna.samplers.BaseSampler
) -> optuna.Study:
    """The study ``study_name`` of ``storage``, copied into a new in-memory storage."""
    in_memory = optuna.storages.InMemoryStorage()
    optuna.copy_study(from_study_name=study_name, from_storage=storage, to_storage=in_memory)
    return optuna.load_study(study_name=study_name, storage=in_memory, sampler=sampler)


def open_storage_for_reading(
    storage: str | os.PathLike[str] | optuna.storages.BaseStorage,
) -> optuna.storages.BaseStorage:
    """Open an existing storage to read it, creating nothing (what the report reads through).

    A URL is opened by :func:`open_storage`; a SQLite URL or file path must name an
    existing file, and a file path that is not SQLite is opened as an Optuna journal.

    Args:
        storage: a storage URL (``"sqlite:///tune.db"``, ``"journal:///tune.log"``,
            ``"postgresql://..."``), the path of a SQLite file or of an Optuna journal
            file, or an Optuna storage object.

    Returns:
        The Optuna storage.

    Raises:
        ValueError: naming the (masked) URL when a SQLite or journal file does not exist
            or the storage cannot be opened.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tune.db")
    >>> open_storage_for_reading(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: storage=... is neither a database URL (such as 'sqlite:///tune.db') nor an existing SQLite or Optuna journal file.
    >>> os.path.exists(path)  # nothing created
    False
    >>> _ = optuna.create_study(storage=f"sqlite:///{path}", study_name="demo")
    >>> optuna.get_all_study_names(open_storage_for_reading(path))
    ['demo']
    """
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if isinstance(storage, str):
        prefix = "sqlite:///"
        if storage.startswith(prefix):
            path = storage[len(prefix) :].split("?", 1)[0]
            if path and path != ":memory:" and not os.path.exists(path):
                raise ValueError(
                    f"storage={mask_url(storage)!r}: no such SQLite file {path!r} (reading a "
                    "study creates nothing)."
                )
        elif storage.startswith(JOURNAL_PREFIX):
            path = storage[len(JOURNAL_PREFIX) :]
            if not os.path.isfile(path):
                raise ValueError(
                    f"storage={storage!r}: no such journal file {path!r} (reading a study "
                    "creates nothing)."
                )
        elif "://" not in storage:
            if not os.path.isfile(storage):
                raise ValueError(
                    f"storage={storage!r} is neither a database URL (such as "
                    "'sqlite:///tune.db') nor an existing SQLite or Optuna journal file."
                )
            with open(storage, "rb") as handle:
                is_sqlite = handle.read(16) == b"SQLite format 3\x00"
            if is_sqlite:
                return open_storage(f"sqlite:///{os.path.abspath(storage)}")
            return open_journal(storage)
    return open_storage(storage)


class RecordingStorage(optuna.storages.RDBStorage):
    """An RDB storage that ends a trial in one commit, and rides out a lost database.

    What :func:`open_storage` opens for a URL. It is Optuna's ``RDBStorage`` with two
    additions:

    * attributes handed to :meth:`set_at_end` are held in memory and written by
      ``set_trial_state_values`` (Optuna's ``tell``) in the same transaction as the state,
      so a trial's end is one commit. Held attributes are never lost to a later trial: the
      next state write of that trial takes them, or drops them if it is refused;
    * every read and write whose connection was lost (:func:`is_connection_lost`) is
      retried (:meth:`retrying`) for :func:`retry_seconds`, then
      :class:`StorageUnavailable` is raised. A retried write is applied once: a new trial
      is written with a token (``tunefleet:claim``) that the retry looks for before
      creating another, and a trial's end whose commit landed before the connection was
      lost is taken as done (Optuna would refuse it as a write to a finished trial).
      Attribute, parameter and intermediate-value writes are upserts: writing them twice
      changes nothing. Once a storage gave up, its next operations each try once, until
      one succeeds.

    Example:

    >>> import optuna
    >>> from tunefleet.storage import open_storage, record_at_end
    >>> storage = open_storage("sqlite:///:memory:")
    >>> study = optuna.create_study(storage=storage)
    >>> trial = study.ask()
    >>> record_at_end(trial, {"tunefleet:cv": {"test": {"score": [0.5, 0.7]}}})
    >>> study.tell(trial, 0.6).user_attrs["tunefleet:cv"]
    {'test': {'score': [0.5, 0.7]}}
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._at_end: dict[int, dict[str, Any]] = {}
        self._at_end_lock = threading.Lock()
        self._retry_local = threading.local()
        self._gave_up = False
        super().__init__(url, **kwargs)

    def set_at_end(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        """Hold ``attrs`` for the transaction that ends trial ``trial_id``."""
        with self._at_end_lock:
            self._at_end.setdefault(trial_id, {}).update(attrs)

    def retrying(self, what: str, attempt: Callable[[bool], _T]) -> _T:
        """``attempt(again)``, tried again while it fails for a lost connection.

        ``again`` is ``False`` on the first try and ``True`` on the next ones: a write
        that is not an upsert then checks whether the try before it was committed
        though its answer was lost. Waits 0.25 s, 0.5 s, 1 s... (at most 8 s) between
        tries, for :func:`retry_seconds` in all, then raises :class:`StorageUnavailable`.
        An operation inside another one is not retried by itself: the outer one is.
        Every storage method of this class that reads or writes goes through here;
        tunefleet's own transactions on this storage use it too (see :func:`retrying`).

        Example:

        >>> storage = open_storage("sqlite:///:memory:")
        >>> storage.retrying("a read", lambda again: "answered" if not again else "retried")
        'answered'
        """
        local = self._retry_local
        if getattr(local, "busy", False):
            return attempt(local.again)
        local.busy, local.again = True, False
        try:
            return self._retry(what, attempt)
        finally:
            local.busy = local.again = False

    def _retry(self, what: str, attempt: Callable[[bool], _T]) -> _T:
        budget = 0.0 if self._gave_up else retry_seconds()
        first_failure: float | None = None
        wait = _FIRST_WAIT
        while True:
            try:
                result = attempt(self._retry_local.again)
            except BaseException as exc:
                if not is_connection_lost(exc):
                    raise
                now = time.monotonic()
                if first_failure is None:
                    first_failure = now
                    if budget > 0:
                        logger.warning(
                            "storage %r: %s lost its database connection (%s); retrying for "
                            "up to %g s (%s).",
                            mask_url(self.url),
                            what,
                            self._reason(exc),
                            budget,
                            RETRY_ENV,
                        )
                self._drop_session()
                waited = now - first_failure
                if waited >= budget:
                    self._gave_up = True
                    # ``from None``: the driver's message may echo connection details
                    raise StorageUnavailable(self._unavailable(waited, exc)) from None
                time.sleep(min(wait * random.uniform(0.75, 1.0), budget - waited))
                wait = min(2 * wait, _LONGEST_WAIT)
                self._retry_local.again = True
                continue
            if first_failure is not None:
                logger.warning(
                    "storage %r: reconnected after %.1f s; %s went through.",
                    mask_url(self.url),
                    time.monotonic() - first_failure,
                    what,
                )
            self._gave_up = False
            return result

    def _drop_session(self) -> None:
        """Forget this thread's session (its connection is gone); the next try opens one."""
        try:
            self.scoped_session.remove()
        except Exception:  # closing over a dead connection: it is discarded anyway
            logger.debug("closing a session of a lost connection failed", exc_info=True)

    def _reason(self, exc: BaseException) -> str:
        current: BaseException | None = exc
        while current is not None and not isinstance(current, sqlalchemy.exc.DBAPIError):
            current = current.__cause__
        cause = (current.orig or current) if current is not None else exc
        text = str(cause).strip().splitlines()
        return mask_secrets(f"{type(cause).__name__}: {text[0] if text else ''}", self.url)

    def _unavailable(self, waited: float, exc: BaseException) -> str:
        return (
            f"storage {mask_url(self.url)!r} cannot be reached: no answer for {waited:.0f} s "
            f"({self._reason(exc)}). This worker stops; its completed trials are stored, and "
            "its running trial is run again by the next search or worker on this study. "
            "When the database is back, run the same command again (or fit again with the "
            f"same storage and study_name) to resume. {RETRY_ENV} (seconds) sets how long "
            "a lost database is waited for."
        )

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # Optuna's, with a claim token: a retry after a commit whose answer was lost
        # finds the trial created then instead of creating a second one (Optuna's own
        # loop would). Study row locked first, as Optuna does: trial numbers are counted.
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        token = uuid.uuid4().hex

        def create(again: bool) -> FrozenTrial:
            with _create_scoped_session(self.scoped_session) as session:
                models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
                trial_id = find_claim(session, token) if again else None
                if trial_id is None:
                    trial_id = self._get_prepared_new_trial(
                        study_id, template_trial, session
                    ).trial_id
                    write_claim(session, trial_id, token)
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
                return self._build_frozen_trial_from_trial_model(trial)

        return self.retrying("create_new_trial", create)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        with self._at_end_lock:
            attrs = self._at_end.pop(trial_id, None) if state.is_finished() else None

        def end(again: bool) -> bool:
            try:
                return self._set_state_with(trial_id, state, values, attrs)
            except UpdateFinishedTrialError:
                if again and self._ended_as(trial_id, state, values):
                    return True  # the try whose answer was lost stored it
                raise

        return self.retrying("set_trial_state_values", end)

    def _set_state_with(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None,
        attrs: Mapping[str, Any] | None,
    ) -> bool:
        if not attrs:
            return super().set_trial_state_values(trial_id, state, values)
        from optuna.storages._rdb import models

        # Optuna's RDB storage works in a thread-local scoped session and commits it
        # once, at the end of ``set_trial_state_values``: the attributes added to that
        # session here are committed with the state, or rolled back with it (a trial
        # finished elsewhere).
        session = self.scoped_session()
        try:
            for key, value in attrs.items():
                self._set_trial_attr_without_commit(
                    session, models.TrialUserAttributeModel, trial_id, key, value
                )
        except BaseException:
            session.rollback()
            raise
        return super().set_trial_state_values(trial_id, state, values)

    def _ended_as(self, trial_id: int, state: TrialState, values: Sequence[float] | None) -> bool:
        """Whether trial ``trial_id`` is stored finished with ``state`` and ``values``."""
        stored = self.get_trial(trial_id)
        if stored.state != state:
            return False
        return values is None or list(stored.values or []) == [float(v) for v in values]


# Reads, and writes that are upserts (writing them twice changes nothing), are retried as
# they are; ``create_new_trial`` and ``set_trial_param`` go through the private methods
# below (``_create_new_trial``, ``_set_trial_param``), as Optuna's trial cache calls them.
_RETRIED = (
    "create_new_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "_set_trial_param",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "record_heartbeat",
)


def _retried(name: str) -> Callable[..., Any]:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def retried(self: RecordingStorage, *args: Any, **kwargs: Any) -> Any:
        return self.retrying(name, lambda again: method(self, *args, **kwargs))

    return retried


for _name in _RETRIED:
    setattr(RecordingStorage, _name, _retried(_name))


def retrying(storage: optuna.storages.BaseStorage, what: str, attempt: Callable[[bool], _T]) -> _T:
    """``attempt(again)`` retried as :meth:`RecordingStorage.retrying` when ``storage`` is one.

    For transactions written outside the storage's methods (tunefleet's claim of a trial,
    its batched writes). Any other storage runs ``attempt(False)`` once.

    Example:

    >>> import optuna
    >>> retrying(optuna.storages.InMemoryStorage(), "a read", lambda again: again)
    False
    """
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, RecordingStorage):
        return backend.retrying(what, attempt)
    return attempt(False)


def write_claim(session: Any, trial_id: int, token: str) -> None:
    """Write the claim token of trial ``trial_id`` in ``session`` (see ``CLAIM_ATTR``).

    It replaces the token of an earlier claim (a queued trial's creation, a trial copied
    with its system attributes).
    """
    from optuna.storages._rdb import models

    model = models.TrialSystemAttributeModel
    session.execute(
        sa.delete(model)
        .where(model.trial_id == trial_id, model.key == CLAIM_ATTR)
        .execution_options(synchronize_session=False)
    )
    session.add(
        models.TrialSystemAttributeModel(
            trial_id=trial_id, key=CLAIM_ATTR, value_json=json.dumps(token)
        )
    )


def find_claim(session: Any, token: str) -> int | None:
    """The id of the trial that claim ``token`` was written with, if it was committed."""
    from optuna.storages._rdb import models

    model = models.TrialSystemAttributeModel
    return session.scalar(
        sa.select(model.trial_id).where(
            model.key == CLAIM_ATTR, model.value_json == json.dumps(token)
        )
    )


def record_at_end(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Set user attributes of ``trial`` that are written when the trial is told.

    On a :class:`RecordingStorage` they travel with the state, in one transaction;
    elsewhere they are set now. Either way ``trial.user_attrs`` shows them at once.
    """
    backend = getattr(trial.storage, "_backend", trial.storage)
    if not isinstance(backend, RecordingStorage):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    backend.set_at_end(trial._trial_id, attrs)
    trial._cached_frozen_trial.user_attrs.update(attrs)
