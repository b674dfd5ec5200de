"""The user's Keras callbacks, copied fresh for each fit.

A callback keeps state between fits (``EarlyStopping``'s best value and wait count, a
``CSVLogger``'s file): reusing one object across the folds and trials of a search would
leak that state from one model into the next. Each fit gets its own copies instead.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import keras


def fresh_callbacks(callbacks: Any) -> list[Any]:
    """Fresh copies of ``callbacks`` (``None``, one callback, or a list of them).

    Each copy shares no state with the original and is detached from any model the
    original was attached to. A callback that cannot be copied (one holding an open file
    or a lock) is used as is, with a ``RuntimeWarning``.

    Example:

    >>> import keras
    >>> from tunefleet.keras.user_callbacks import fresh_callbacks
    >>> stop = keras.callbacks.EarlyStopping(patience=2)
    >>> (copied,) = fresh_callbacks(stop)
    >>> copied is not stop, copied.patience
    (True, 2)
    >>> fresh_callbacks(None)
    []
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.Callback):
        callbacks = [callbacks]
    return [_copy(callback) for callback in callbacks]


def _copy(callback: Any) -> Any:
    memo: dict[int, Any] = {}
    attached = getattr(callback, "_model", None)
    if attached is not None:
        memo[id(attached)] = None  # the copy is detached: deepcopy returns None for it
    try:
        return copy.deepcopy(callback, memo)
    except Exception as exc:  # e.g. callbacks holding open files or locks
        warnings.warn(
            f"Could not copy callback {callback!r} ({exc}); it is used as is, so its "
            "state is shared between fits.",
            RuntimeWarning,
            stacklevel=5,
        )
        return callback
