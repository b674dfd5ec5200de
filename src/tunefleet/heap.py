"""Garbage collection in a trial loop: scan what the trials made, not the whole heap.

Between two trials, tunefleet collects garbage (``keras.backend.clear_session`` does it)
so that the finished trial's models, whose layers refer to each other, free their memory.
A full collection walks every object Python tracks. Once TensorFlow, JAX and Keras are
imported that is about half a million objects, and one collection takes 0.23 s on a 2-core
x86_64: paid at every trial, it is 9 s of a 40-trial search, and more than a small model's
training.

:func:`frozen_heap` is entered around every search (a ``*SearchCV``'s ``fit``, a tuner's
``search``: their checks before the trials collect too) and every trial loop (so also in
each worker process and Ray actor). On entry it collects once, then moves the objects
alive (the imported libraries, the data, the study) into Python's permanent generation
(``gc.freeze``), which collections skip. Collections during the loop then take
milliseconds, and still free every cycle the trials made. On exit it puts them back
(``gc.unfreeze``), so a cycle among them that became garbage meanwhile is freed by the
next collection: the freeze delays, never leaks.

A process that froze objects itself (a pre-fork server, say) keeps its freeze: the loop
then leaves the collector as it found it.

Example:

>>> import gc, weakref
>>> class Node:
...     pass
>>> old = Node(); old.me = old; ref = weakref.ref(old)   # alive when the loop starts
>>> with frozen_heap():
...     del old                           # garbage now, but frozen
...     new = Node(); new.me = new        # a cycle a trial makes
...     new_ref = weakref.ref(new); del new
...     _ = gc.collect()
...     new_ref() is None, ref() is None  # the trial's cycle is freed, the old one waits
(True, False)
>>> _ = gc.collect()
>>> ref() is None                         # and is freed once the loop ended
True
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0  # loops inside frozen_heap() now, over all threads
_froze = False  # whether the outermost loop froze the heap (and so must unfreeze it)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze the objects alive now for the collector until the outermost loop ends.

    Re-entrant and thread-safe: nested or concurrent loops share one freeze, undone by the
    last to leave. A nested loop also freezes what was made since the enclosing one began
    (the modules a search imported while it checked its estimator, say), so its
    collections do not scan that either.
    """
    global _depth, _froze
    with _lock:
        if _depth == 0:
            _froze = gc.get_freeze_count() == 0
        if _froze:
            gc.collect()  # garbage frozen now would stay until the outermost loop ends
            gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _froze:
                gc.unfreeze()
                _froze = False
