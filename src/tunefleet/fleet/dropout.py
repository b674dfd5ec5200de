"""Dropout masks for all Dropout layers of a trial, bit-identical to Keras on JAX.

Keras's JAX dropout draws ``jax.random.bernoulli(seed_state, keep, shape)`` with a
raw ``uint32[2]`` threefry key and then advances the seed state by ``[0, 1]``.
With JAX's partitionable threefry (the default), the uniform draw for element
``c`` (row-major position) of any shape is ``threefry2x32(key, (0, c))``, so we can
compute exactly the draws a trial's own model would make, even when its layer is
zero-padded to a wider template: real unit ``j`` of row ``r`` of a layer of true
width ``w`` uses counter ``r * w + j``.

Dropout layers of equal input shape share one ``threefry2x32`` call: one call per
layer would add about 0.15 s of XLA compile time each on CPU.

The hash itself is written out here (:func:`threefry2x32`, the same 20 rounds as
JAX's own): on CPU JAX lowers its ``threefry2x32`` primitive to a rolled 5-iteration
loop, which inside a fleet's step program is about 5x slower to run and slower to
compile than the unrolled rounds, which XLA fuses into one elementwise loop.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = Any


def counters(shape: tuple[int, ...], units: Array | None) -> Array:
    """Threefry counters of a dropout draw of ``shape`` (batch axis first).

    Args:
        shape: The padded shape of the layer input.
        units: 0/1 mask of the trial's real units on the last axis, or ``None``
            when the last axis is not padded.
    """
    rows = int(np.prod(shape[:-1]))
    width = shape[-1]
    if units is None:
        return jnp.arange(rows * width, dtype=jnp.uint32).reshape(shape)
    real = units.astype(jnp.uint32)
    position = jnp.cumsum(real) - real  # index of each real unit among the real ones
    row = jnp.arange(rows, dtype=jnp.uint32)[:, None]
    return (row * jnp.sum(real) + position[None, :]).reshape(shape)


def uniforms(requests: list[tuple[Array, Array]]) -> list[Array]:
    """``jax.random.uniform(seed, shape)`` at the given counters, for several seeds at once.

    Requests of equal shape share one ``threefry2x32`` call whose key words are
    broadcast along the draw (cheaper to compile than one call each, and as fast).

    Args:
        requests: ``(seed, counters)`` pairs; ``seed`` is a Keras ``uint32[2]`` seed
            state, ``counters`` an array of row-major draw positions.

    Returns:
        float32 uniforms in ``[0, 1)`` shaped like each ``counters``.
    """
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, (_, count) in enumerate(requests):
        by_shape.setdefault(tuple(count.shape), []).append(i)
    out: list[Array] = [None] * len(requests)
    for shape, members in by_shape.items():
        expand = (slice(None),) + (None,) * len(shape)
        seeds = jnp.stack([requests[i][0].astype(jnp.uint32) for i in members])
        count = jnp.stack([requests[i][1].astype(jnp.uint32) for i in members])
        bits1, bits2 = threefry2x32(
            seeds[:, 0][expand], seeds[:, 1][expand], jnp.zeros_like(count), count
        )
        floats = _to_unit_float(bits1 ^ bits2)
        for row, i in enumerate(members):
            out[i] = floats[row]
    return out


#: Threefry-2x32 rotation distances, alternating per group of four rounds.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k1: Array, k2: Array, x1: Array, x2: Array) -> tuple[Array, Array]:
    """The Threefry-2x32 hash (20 rounds) of JAX's PRNG, unrolled; bit-identical to it.

    Args:
        k1: First key word (uint32), broadcastable against ``x1``.
        k2: Second key word.
        x1: First counter word (uint32 array).
        x2: Second counter word, shaped like ``x1``.

    Returns:
        The two hashed words, shaped like ``x1``.
    """
    keys = (k1, k2, k1 ^ k2 ^ jnp.uint32(0x1BD11BDA))
    a, b = x1 + keys[0], x2 + keys[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            a = a + b
            b = ((b << jnp.uint32(r)) | (b >> jnp.uint32(32 - r))) ^ a
        a = a + keys[(i + 1) % 3]
        b = b + keys[(i + 2) % 3] + jnp.uint32(i + 1)
    return a, b


def _to_unit_float(bits: Array) -> Array:
    """JAX's bits -> float32 uniform in [0, 1) (mantissa trick of ``jax.random.uniform``)."""
    one = jnp.asarray(np.array(1.0, np.float32).view(np.uint32), jnp.uint32)
    mantissa = jax.lax.shift_right_logical(bits, jnp.asarray(9, jnp.uint32)) | one
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)


def apply(x: Array, uniform: Array, keep: Array) -> Array:
    """Keras's dropout given the draws: keep where ``uniform < keep``, scale by ``1/keep``."""
    mask = jnp.broadcast_to(uniform < keep, x.shape)
    return jax.lax.select(mask, x / keep.astype(x.dtype), jnp.zeros_like(x))


def advance(seed: Array) -> Array:
    """The seed state after one draw (``SeedGenerator.next``)."""
    return seed + jnp.array([0, 1], dtype=seed.dtype)
