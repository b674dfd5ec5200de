"""JAX's persistent compilation cache: compiled programs kept on disk for later runs.

On a CPU, compiling is most of a small Keras search's seconds: a fleet's training
program takes about 1 s to compile per group of trials, and Keras compiles its own
steps once per trial. JAX can write each compiled program to a folder and load it,
instead of compiling again, in any later process that compiles the same program: a
resumed or repeated search, the next ``tunefleet tune`` run, or the worker processes of
one search (``n_jobs > 1``), which compile the same programs side by side.

:func:`enable_compilation_cache` turns the cache on for this process, with thresholds
that also keep the programs compiled in a tenth of a second (JAX's default keeps only
those over one second, which leaves out the programs of small fleets and Keras's steps
of small models). The worker processes a search starts take the cache settings of the
process that starts them (:func:`worker_environment`). The ``tunefleet tune`` and
``tunefleet worker`` commands turn the cache on in ``~/.cache/tunefleet/jax`` unless
told otherwise; a library does not change a process-wide JAX setting unasked, so in a
script or notebook it is one call. A cache set by the user (``JAX_COMPILATION_CACHE_DIR``)
is left as it is by the commands.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

#: Programs compiled faster than this are not written.
MIN_COMPILE_SECONDS = 0.1
#: The cache's size limit in bytes; JAX deletes the least recently used programs past it.
MAX_BYTES = 2**30

#: jax.config name -> the environment variable JAX reads it from when imported.
_SETTINGS = {
    "jax_compilation_cache_dir": "JAX_COMPILATION_CACHE_DIR",
    "jax_persistent_cache_min_compile_time_secs": "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "jax_persistent_cache_min_entry_size_bytes": "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
    "jax_compilation_cache_max_size": "JAX_COMPILATION_CACHE_MAX_SIZE",
}


def default_directory() -> Path:
    """``$XDG_CACHE_HOME/tunefleet/jax``, or ``~/.cache/tunefleet/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tunefleet" / "jax"


def enable_compilation_cache(
    directory: str | os.PathLike[str] | None = None,
    *,
    min_compile_seconds: float = MIN_COMPILE_SECONDS,
    max_bytes: int | None = MAX_BYTES,
) -> Path:
    """Keep the programs JAX compiles in ``directory``, for later runs and worker processes.

    Args:
        directory: the cache's folder, made if missing (default: :func:`default_directory`).
            Several processes may share one.
        min_compile_seconds: programs compiled faster than this are not written.
        max_bytes: the folder's size limit (least recently used programs are deleted past
            it), or ``None`` for no limit.

    Returns:
        The folder.

    Example (it changes a process-wide JAX setting, so it is not run as a test here):

    >>> import tunefleet
    >>> tunefleet.enable_compilation_cache()  # doctest: +SKIP
    PosixPath('/home/me/.cache/tunefleet/jax')
    >>> search.fit(X, y)  # doctest: +SKIP
    >>> # a later run of the same search loads its compiled programs instead of compiling
    """
    seconds = min_compile_seconds
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not (math.isfinite(seconds) and seconds >= 0)
    ):
        raise ValueError(f"min_compile_seconds={seconds!r}: expected a number of seconds >= 0.")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0
    ):
        raise ValueError(f"max_bytes={max_bytes!r}: expected a positive integer, or None.")
    path = Path(directory).expanduser() if directory is not None else default_directory()
    if path.exists() and not path.is_dir():
        raise ValueError(f"directory={str(path)!r} is a file; expected a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"directory={str(path)!r} cannot be made: {exc.strerror}.") from None
    if not os.access(path, os.W_OK):
        raise ValueError(f"directory={str(path)!r} cannot be written: no permission.")
    jax = sys.modules.get("jax")
    if jax is None:  # JAX reads them when imported (here, or in a child process)
        os.environ.update(environment(path, seconds, max_bytes))
        return path
    from jax.experimental.compilation_cache import compilation_cache

    if cache_directory() not in (None, str(path)):
        compilation_cache.reset_cache()  # JAX may have opened the former folder already
    for name, value in _settings(path, seconds, max_bytes).items():
        jax.config.update(name, value)
    return path


def cache_directory() -> str | None:
    """The folder of this process's JAX compilation cache, or ``None`` (also without JAX)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return os.environ.get(_SETTINGS["jax_compilation_cache_dir"]) or None
    return jax.config.jax_compilation_cache_dir or None


def environment(
    directory: str | os.PathLike[str],
    min_compile_seconds: float = MIN_COMPILE_SECONDS,
    max_bytes: int | None = MAX_BYTES,
) -> dict[str, str]:
    """The environment variables that give a new process this cache (JAX reads them).

    Example:

    >>> environment("/tmp/cache")["JAX_COMPILATION_CACHE_DIR"]
    '/tmp/cache'
    """
    values = _settings(directory, min_compile_seconds, max_bytes)
    return {_SETTINGS[name]: str(value) for name, value in values.items()}


def _settings(
    directory: str | os.PathLike[str], min_compile_seconds: float, max_bytes: int | None
) -> dict[str, str | float | int]:
    """jax.config name -> value."""
    return {
        "jax_compilation_cache_dir": str(directory),
        "jax_persistent_cache_min_compile_time_secs": float(min_compile_seconds),
        "jax_persistent_cache_min_entry_size_bytes": -1,  # any size
        "jax_compilation_cache_max_size": -1 if max_bytes is None else max_bytes,
    }


def worker_environment() -> dict[str, str]:
    """This process's JAX cache settings as the environment variables a child process reads.

    Empty when no cache is set. A setting made with ``jax.config.update`` is not seen by a
    child process otherwise; one made through the environment is inherited anyway.
    """
    jax = sys.modules.get("jax")
    if jax is None or not cache_directory():
        return {}
    return {variable: str(getattr(jax.config, name)) for name, variable in _SETTINGS.items()}
