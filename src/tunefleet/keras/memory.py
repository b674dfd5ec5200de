"""Release what finished trials built and compiled, so long searches stay bounded.

Every path that runs trials one after another in one process (the Keras wrappers'
fits, the scikit-learn face, the tuners, Hyperband rounds, fleet batches) calls
:func:`release_memory` between trials. It clears Keras's global state
(:func:`clear_session`, which garbage-collects the finished trial's models) and then
releases what the backend keeps beyond Keras:

* **JAX** keeps every compiled program in process-wide caches (``jax.jit``'s, and
  those of the eager operations Keras runs while building a model), keyed by shape:
  a search over widths adds programs for every new width and never drops them
  (about 8 MiB per distinct width for a small MLP). ``keras.backend.clear_session()``
  does not touch them. Some of them are worth keeping: the draw programs of
  :func:`tunefleet.keras.shared_draw_programs`, Keras's programs for shapes that later
  trials repeat and a fleet's group programs, which later batches of equal groups
  reuse. So the caches are kept while the process's resident memory (RSS) stays within
  :func:`compiled_program_budget` bytes of its level one trial after the last release,
  or after the first trial (that level holds one trial's working memory and programs;
  what the first trial imports is not growth). When RSS grows past that, the C
  allocator's free pages go back to the system first (a compile's scratch memory is
  often all of the growth); only if that is not enough does ``jax.clear_caches()`` run
  (and the level is measured again after the next trial). A
  search that repeats shapes keeps its programs; one over many widths pays one
  recompilation of the kept programs per budget's worth of new ones. Programs compiled
  ahead of time (a fleet trainer's group programs) are not in those caches: their owners
  register with :func:`register_program_keeper` and drop them at the same release, so
  they count against the same budget.
* **PyTorch** on CUDA: the caching allocator's unused blocks are returned
  (``torch.cuda.empty_cache()``).
* **TensorFlow** keeps per-model state that nothing in-process releases (``clear_session``
  helps only partly): searches run their trials in worker processes replaced by fresh ones
  after a bounded number of trials (``tunefleet.execution.TENSORFLOW_TRIALS_PER_WORKER``),
  with ``n_jobs > 1`` and, for searches of more trials than that, with ``n_jobs=1`` too
  (:func:`tunefleet.dispatch.runs_in_worker_process`). A user's own loop of
  ``KerasClassifier.fit`` calls runs in the user's process and grows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sys
import weakref

import keras

logger = logging.getLogger("tunefleet")

#: Default RSS growth (bytes) over the level after the last release that makes the next
#: release also drop JAX's compiled programs.
DEFAULT_COMPILED_PROGRAM_BUDGET = 64 * 2**20

_budget = DEFAULT_COMPILED_PROGRAM_BUDGET
_level: int | None = None  # RSS one trial after the last release of compiled programs
_first_call = True  # it comes before any trial: what that trial imports is not growth
_cleared = 0  # how many times JAX's caches were cleared (for tests and benchmarks)
_keepers: weakref.WeakSet = weakref.WeakSet()  # owners of ahead-of-time compiled programs


def clear_session() -> None:
    """``keras.backend.clear_session()``, keeping the user's global Keras settings.

    ``clear_session`` resets Keras' global state, which also holds the global dtype
    policy (mixed precision), the distribution and a few switches; those are put back.
    It also runs Python's garbage collection, so models no longer referenced are freed.

    Example:

    >>> import keras
    >>> keras.config.set_dtype_policy("mixed_float16")
    >>> clear_session()
    >>> keras.config.dtype_policy().name  # kept, unlike keras.backend.clear_session()
    'mixed_float16'
    >>> keras.config.set_dtype_policy("float32")
    """
    policy = keras.config.dtype_policy()
    distribution = keras.distribution.distribution()
    traceback_filtering = keras.config.is_traceback_filtering_enabled()
    flash_attention = keras.config.is_flash_attention_enabled()
    keras.backend.clear_session(free_memory=True)
    if keras.config.dtype_policy().name != policy.name:
        keras.config.set_dtype_policy(policy)
    if distribution is not None:
        keras.distribution.set_distribution(distribution)
    if not traceback_filtering:
        keras.config.disable_traceback_filtering()
    if flash_attention is False:
        keras.config.disable_flash_attention()


def compiled_program_budget() -> int:
    """The RSS growth, in bytes, after which JAX's compiled programs are released.

    Example:

    >>> compiled_program_budget() == DEFAULT_COMPILED_PROGRAM_BUDGET  # 64 MiB unless set
    True
    """
    return _budget


def set_compiled_program_budget(budget: int) -> None:
    """Set the RSS growth (bytes) after which :func:`release_memory` drops JAX's programs.

    ``0`` releases them between every two trials (smallest memory, every trial
    recompiles everything); a larger budget keeps more programs for later trials.

    Raises:
        TypeError: If ``budget`` is not an integer.
        ValueError: If ``budget`` is negative.

    Example:

    >>> before = compiled_program_budget()
    >>> set_compiled_program_budget(256 * 2**20)
    >>> compiled_program_budget() // 2**20
    256
    >>> set_compiled_program_budget(before)
    """
    global _budget
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise TypeError(
            f"set_compiled_program_budget(budget): expected an integer number of bytes, "
            f"got {type(budget).__name__} {budget!r}."
        )
    if budget < 0:
        raise ValueError(f"set_compiled_program_budget(budget): expected bytes >= 0, got {budget}.")
    _budget = budget


def compiled_program_releases() -> int:
    """How many times this process dropped JAX's compiled programs so far.

    Example:

    >>> before = compiled_program_releases()
    >>> dropped = release_compiled_programs(force=True)  # True on JAX, else False
    >>> compiled_program_releases() - before == int(dropped)
    True
    """
    return _cleared


def resident_bytes() -> int:
    """The process's resident memory (RSS) in bytes.

    Example:

    >>> resident_bytes() > 2**20
    True
    """
    import psutil

    return int(psutil.Process().memory_info().rss)


def _trim_allocator() -> None:
    """Give the C allocator's free pages back to the system (glibc only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return
    trim(0)


def register_program_keeper(keeper: object) -> None:
    """Have ``keeper.drop_kept_programs()`` called whenever JAX's programs are released.

    For owners of programs compiled ahead of time (which ``jax.clear_caches()`` does not
    reach), such as :class:`tunefleet.fleet.FleetTrainer`: their programs then count
    against the same RSS budget as JAX's caches. ``keeper`` is held by a weak reference.

    Raises:
        TypeError: If ``keeper`` has no callable ``drop_kept_programs``.

    Example:

    >>> class Keeper:
    ...     dropped = 0
    ...     def drop_kept_programs(self):
    ...         self.dropped += 1
    >>> keeper = Keeper()
    >>> register_program_keeper(keeper)
    >>> released = release_compiled_programs(force=True)
    >>> keeper.dropped == int(released)
    True
    """
    if not callable(getattr(keeper, "drop_kept_programs", None)):
        raise TypeError(
            f"register_program_keeper(keeper): expected an object with a drop_kept_programs() "
            f"method, got {type(keeper).__name__}."
        )
    _keepers.add(keeper)


def release_compiled_programs(force: bool = False) -> bool:
    """Drop JAX's compiled programs if RSS grew past the budget (or ``force``).

    Returns whether they were dropped. Does nothing on other backends.

    Example:

    >>> import keras
    >>> release_compiled_programs(force=True) == (keras.backend.backend() == "jax")
    True
    """
    global _level, _cleared, _first_call
    if keras.backend.backend() != "jax":
        return False
    rss = resident_bytes()
    if _first_call:
        _first_call = False
    elif _level is None:
        _level = rss
    if not force and (_level is None or rss - _level <= _budget):
        return False
    if not force:  # free pages the allocator kept (a compile's scratch) first: often all of it
        _trim_allocator()
        rss = resident_bytes()
        if rss - _level <= _budget:  # type: ignore[operator]
            return False
    import jax

    for keeper in list(_keepers):
        keeper.drop_kept_programs()
    jax.clear_caches()
    gc.collect()
    _trim_allocator()
    _cleared += 1
    logger.debug(
        "released JAX's compiled programs: RSS %.0f -> %.0f MiB (budget %.0f MiB)",
        rss / 2**20,
        resident_bytes() / 2**20,
        _budget / 2**20,
    )
    _level = None  # measured at the next call, after a trial's working memory came back
    return True


def release_memory(trim: bool = False) -> None:
    """Release what finished trials built and compiled (see the module docstring).

    Call it between trials, when no model of a finished trial is needed any more.
    With ``trim``, the C allocator's free pages also go back to the system when the
    compiled programs are kept (a release of them always does that): for the end of a
    batch of trials, whose freed memory would otherwise stay in the process.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> del model  # the finished trial's model
    >>> release_memory()
    """
    clear_session()
    backend = keras.backend.backend()
    if backend == "jax":
        if not release_compiled_programs() and trim:
            _trim_allocator()
    elif backend == "torch":
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    if trim and backend != "jax":
        _trim_allocator()
