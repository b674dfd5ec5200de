"""Weight initialisation without one XLA compilation per weight shape (JAX backend).

Keras's JAX initializers draw with ``jax.random.uniform / normal /
truncated_normal(seed, shape)``, which JAX compiles once per shape: 0.1 to 0.4 s
each on a CPU. Building the 64 digits CNNs of ``benchmarks/throughput.py`` (about
20 distinct weight shapes) spent 8.8 s of its 9.5 s in those compilations.

With JAX's partitionable threefry (the default), element ``c`` of a draw depends
only on the key and ``c``, whatever the shape. So a draw of shape ``S`` equals the
first ``prod(S)`` elements of a longer flat draw, reshaped. Inside
:func:`shared_draw_programs` float32 draws are taken at three flat lengths
(:data:`FLAT_LENGTHS`: 64K, 1M and 4M elements) and cut to shape on the host. A
draw longer than it needs costs little next to a compilation (on a 2-core CPU,
about 1 ms for 64K elements and 0.16 s to compile a length).

The ``zeros`` and ``ones`` initializers (biases, optimizer slots) would compile a
fill program per shape too (``jnp.zeros``, about 20 ms each); inside the context
they are filled on the host, up to the longest flat length. Host arrays are moved
with ``jax.device_put``, which compiles nothing (``jnp.asarray`` compiles a small
program per shape).

The weights are bit-identical to Keras's own, and a search needs a few compilations
instead of several per shape. The context is entered around every model build of
the tuning faces and fleets. It patches nothing outside it, and it does nothing on
other backends, with another PRNG implementation, or for other dtypes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Flat draw lengths, in elements; a longer draw keeps its shape.
FLAT_LENGTHS = (2**16, 2**20, 4 * 2**20)

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Any, str, Any]] = []  # (owner, attribute, Keras's own value)


def flat_length(n: int) -> int | None:
    """The flat draw length serving ``n`` elements, or ``None`` for a draw of its own.

    Example:

    >>> flat_length(100), flat_length(70_000), flat_length(2**30)
    (65536, 1048576, None)
    """
    return next((length for length in FLAT_LENGTHS if n <= length), None)


_DRAWS = ("uniform", "normal", "truncated_normal")


def _applies() -> bool:
    import keras

    if keras.backend.backend() != "jax":
        return False
    import jax
    import keras.src.backend.jax.random as module

    if not all(hasattr(module, name) for name in (*_DRAWS, "jax_draw_seed")):
        return False  # another Keras layout: leave its draws alone
    return bool(jax.config.jax_threefry_partitionable) and (
        jax.config.jax_default_prng_impl == "threefry2x32"
    )


def _replacements(module: Any) -> dict[str, Any]:
    """Versions of the Keras JAX backend's draws that reuse flat-length programs."""
    import jax
    from keras.backend import standardize_dtype
    from keras.src.backend.config import floatx

    originals = {name: getattr(module, name) for name in _DRAWS}

    def shared(name: str, draw: Any, finish: Any) -> Any:
        def replacement(shape: Any, *args: Any, dtype: Any = None, seed: Any = None, **kw: Any):
            if args:  # not how Keras calls it: its own code
                return originals[name](shape, *args, dtype=dtype, seed=seed, **kw)
            dtype = dtype or floatx()
            key = module.jax_draw_seed(seed)
            n = int(np.prod(shape))
            length = flat_length(n)
            if (
                length is None
                or standardize_dtype(dtype) != "float32"
                or isinstance(key, jax.core.Tracer)  # inside a traced function
            ):
                return finish(draw(key, tuple(shape), dtype, **kw), **kw)  # Keras's own draw
            flat = finish(draw(key, (length,), dtype, **kw), **kw)
            return jax.device_put(np.asarray(flat)[:n].reshape(shape))

        replacement.__name__ = name
        return replacement

    def uniform(key: Any, shape: tuple, dtype: Any, minval: Any = 0.0, maxval: Any = 1.0):
        return jax.random.uniform(key, shape=shape, dtype=dtype, minval=minval, maxval=maxval)

    def normal(key: Any, shape: tuple, dtype: Any, mean: Any = 0.0, stddev: Any = 1.0):
        return jax.random.normal(key, shape=shape, dtype=dtype)

    def truncated(key: Any, shape: tuple, dtype: Any, mean: Any = 0.0, stddev: Any = 1.0):
        return jax.random.truncated_normal(key, shape=shape, lower=-2.0, upper=2.0, dtype=dtype)

    def as_drawn(sample: Any, **_: Any) -> Any:
        return sample

    def scaled(sample: Any, mean: Any = 0.0, stddev: Any = 1.0, **_: Any) -> Any:
        # The same two elementwise operations, in the same order, as Keras's own.
        return sample * stddev + mean

    return {
        "uniform": shared("uniform", uniform, as_drawn),
        "normal": shared("normal", normal, scaled),
        "truncated_normal": shared("truncated_normal", truncated, scaled),
    }


def _host_fill(value: int, original: Any) -> Any:
    """An initializer ``__call__`` filling on the host what ``Zeros`` or ``Ones`` fills.

    Fills of more than the longest flat draw keep Keras's own ``original`` (on the
    device, where copying them from the host would cost more than a compilation).
    """
    import jax
    from keras.backend import standardize_dtype

    def __call__(self: Any, shape: Any, dtype: Any = None) -> Any:
        if flat_length(int(np.prod(shape))) is None:
            return original(self, shape, dtype=dtype)
        return jax.device_put(np.full(shape, value, dtype=standardize_dtype(dtype)))

    return __call__


def _patches() -> list[tuple[Any, str, Any]]:
    """``(owner, attribute, replacement)``: the backend's draws and the constant fills."""
    import keras.src.backend.jax.random as module
    from keras.src.initializers import constant_initializers as constants

    draws = [(module, name, draw) for name, draw in _replacements(module).items()]
    return [
        *draws,
        (constants.Zeros, "__call__", _host_fill(0, constants.Zeros.__call__)),
        (constants.Ones, "__call__", _host_fill(1, constants.Ones.__call__)),
    ]


@contextlib.contextmanager
def shared_draw_programs() -> Iterator[None]:
    """Initialise Keras weights with a few compiled draw programs instead of one per shape.

    Re-entrant and safe to enter from several threads: the Keras backend's draws and
    the ``zeros``/``ones`` initializers are replaced while at least one caller is inside.

    Example:

    >>> import keras, numpy as np
    >>> def build_model(units):
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])
    >>> keras.utils.set_random_seed(0)
    >>> plain = build_model(units=48).get_weights()
    >>> with shared_draw_programs():
    ...     keras.utils.set_random_seed(0)
    ...     shared = build_model(units=48).get_weights()
    >>> all(np.array_equal(a, b) for a, b in zip(plain, shared))  # the same weights
    True
    """
    global _depth
    if not _applies():
        yield
        return
    with _lock:
        if _depth == 0:
            for owner, name, replacement in _patches():
                _saved.append((owner, name, getattr(owner, name)))
                setattr(owner, name, replacement)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for owner, name, original in _saved:
                    setattr(owner, name, original)
                _saved.clear()
