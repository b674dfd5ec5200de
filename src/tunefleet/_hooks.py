"""Per-epoch observation of Keras fits run inside a trial.

The trial runner installs an observer for the duration of one fold's ``fit``; any
tunefleet Keras wrapper fitted inside that context (also deep inside a ``Pipeline``)
calls it after every epoch. The observer may raise ``optuna.TrialPruned`` to stop
training at once. Outside a trial no observer is set and wrappers behave like
plain Keras.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

#: ``observer(epoch, epochs)``: ``epoch`` counts from 0, ``epochs`` is the fit's total.
EpochObserver = Callable[[int, int], None]

_epoch_observer: ContextVar[EpochObserver | None] = ContextVar(
    "tunefleet_epoch_observer", default=None
)


def current_epoch_observer() -> EpochObserver | None:
    """The observer of the trial being run in this context, if any."""
    return _epoch_observer.get()


@contextlib.contextmanager
def observe_epochs(observer: EpochObserver | None) -> Iterator[None]:
    """Install ``observer`` for the fits run inside the ``with`` block."""
    token = _epoch_observer.set(observer)
    try:
        yield
    finally:
        _epoch_observer.reset(token)
