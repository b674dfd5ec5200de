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
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from tunefleet.urls import mask_secrets, mask_url

logger = logging.getLogger("tunefleet")

_OPEN_ATTEMPTS = 8  # with 0.2 s, 0.4 s... between them: 5.6 s in all

#: The scheme of an Optuna journal file: ``journal:///relative.log``, ``journal:////abs.log``.
JOURNAL_PREFIX = "journal:///"

_TRANSIENT = re.compile(
    r"database is locked|database table is locked|already exists|unique constraint|"
    r"duplicate|connection refused|could not connect|can't connect|timed out|timeout expired|"
    r"server closed the connection|too many connections|starting up|try again",
    re.IGNORECASE,
)


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
        return False
    return bool(_TRANSIENT.search(message))


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
        # replaced before use instead of failing the next write
        engine_kwargs = {"pool_pre_ping": True}
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
    """An RDB storage that writes a trial's last attributes in the transaction ending it.

    What :func:`open_storage` opens for a URL. It is Optuna's ``RDBStorage`` with one
    addition: attributes handed to :meth:`set_at_end` are held in memory and written by
    ``set_trial_state_values`` (Optuna's ``tell``) in the same transaction as the state,
    so a trial's end is one commit. Held attributes are never lost to a later trial: the
    next state write of that trial takes them, or drops them if it is refused.

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
        super().__init__(url, **kwargs)
        self._at_end: dict[int, dict[str, Any]] = {}
        self._at_end_lock = threading.Lock()

    def set_at_end(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        """Hold ``attrs`` for the transaction that ends trial ``trial_id``."""
        with self._at_end_lock:
            self._at_end.setdefault(trial_id, {}).update(attrs)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        with self._at_end_lock:
            attrs = self._at_end.pop(trial_id, None) if state.is_finished() else None
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
