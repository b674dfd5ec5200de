"""Shared draw programs: Keras's exact initial weights, few compiled draw shapes."""

import jax
import keras
import keras.src.backend.jax.random as backend_random
import keras.src.ops as keras_ops
import numpy as np
import pytest

from jax_compilations import counting_compilations
from tunefleet.keras import shared_draw_programs
from tunefleet.keras.initializer_draws import flat_length

INITIALIZERS = [
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "orthogonal",
]


def build(width: int, init: str = "glorot_uniform") -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(width // 4, 3, padding="same", kernel_initializer=init),
            keras.layers.Flatten(),
            keras.layers.Dense(width, activation="relu", kernel_initializer=init),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, kernel_initializer=init, bias_initializer="random_normal"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def weights_of(width: int, init: str, shared: bool) -> list[np.ndarray]:
    keras.utils.set_random_seed(7)
    if shared:
        with shared_draw_programs():
            model = build(width, init)
    else:
        model = build(width, init)
    return [np.asarray(v) for v in model.weights]


@pytest.mark.parametrize("init", INITIALIZERS)
def test_weights_are_bit_identical_to_keras(init):
    for width in (12, 48):
        ours = weights_of(width, init, shared=True)
        keras_own = weights_of(width, init, shared=False)
        assert len(ours) == len(keras_own)
        for a, b in zip(ours, keras_own, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_models_of_many_shapes_draw_at_a_few_flat_lengths(monkeypatch):
    lengths = []
    draw = jax.random.uniform

    def recording(key, shape=(), *args, **kwargs):
        lengths.append(tuple(shape))
        return draw(key, shape, *args, **kwargs)

    monkeypatch.setattr(jax.random, "uniform", recording)
    with shared_draw_programs():
        for width in (8, 12, 16, 20, 24, 28, 32, 36, 40, 72):
            keras.utils.set_random_seed(0)
            build(width)
    # 10 widths x 3 kernels = 30 distinct shapes, up to 1152 x 72, drawn at 2 flat lengths
    assert len(lengths) == 30
    assert set(lengths) == {(65536,), (1048576,)}


def test_models_and_optimizers_of_new_widths_compile_nothing_once_a_length_is_drawn():
    with shared_draw_programs():
        build(16)  # its draws' flat length compiled
        with counting_compilations() as compiled:
            for width in (20, 24, 28):
                model = build(width)  # kernels drawn, biases zeros, optimizer built
                model.optimizer.build(model.trainable_variables)  # Adam's zero slots
    assert compiled == [0]
    keras_own = build(28)
    keras_own.optimizer.build(keras_own.trainable_variables)
    for ours, theirs in zip(model.optimizer.variables, keras_own.optimizer.variables, strict=True):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize(
    ("initializer", "dtype", "value"),
    [
        ("zeros", "float32", 0),
        ("ones", "float32", 1),
        ("ones", "int32", 1),
        ("zeros", "bfloat16", 0),
    ],
)
def test_constant_fills_match_keras(initializer, dtype, value):
    expected = keras.initializers.get(initializer)((3, 5), dtype=dtype)
    with shared_draw_programs():
        got = keras.initializers.get(initializer)((3, 5), dtype=dtype)
    assert isinstance(got, jax.Array)
    assert got.dtype == expected.dtype and got.shape == (3, 5)
    np.testing.assert_array_equal(np.asarray(got), np.full((3, 5), value))


def test_the_backend_is_restored_after_nested_and_failing_uses():
    def patched():
        return (
            backend_random.uniform,
            backend_random.normal,
            backend_random.truncated_normal,
            keras.initializers.Zeros.__call__,
            keras.initializers.Ones.__call__,
        )

    originals = patched()
    with shared_draw_programs():
        with shared_draw_programs():
            assert all(a is not b for a, b in zip(patched(), originals, strict=True))
        assert patched()[0] is not originals[0]  # the outer use still holds
        assert patched()[3] is not originals[3]
    assert patched() == originals
    with pytest.raises(RuntimeError, match="boom"), shared_draw_programs():
        raise RuntimeError("boom")
    assert patched() == originals


def test_huge_fills_keep_keras_own_fill(monkeypatch):
    fills = []
    keras_own = keras_ops.zeros

    def recording(shape, dtype=None):
        fills.append(tuple(shape))
        return keras_own(shape, dtype=dtype)

    monkeypatch.setattr(keras_ops, "zeros", recording)
    with shared_draw_programs():
        keras.initializers.Zeros()((3, 4))  # on the host
        huge = keras.initializers.Zeros()((4 * 2**20 + 1,))  # Keras's own
    assert fills == [(4 * 2**20 + 1,)]
    assert huge.shape == (4 * 2**20 + 1,)


def test_other_dtypes_and_huge_draws_keep_keras_own_draw():
    keras.utils.set_random_seed(1)
    expected = np.asarray(keras.random.uniform((3, 5), dtype="float16"))
    keras.utils.set_random_seed(1)
    with shared_draw_programs():
        got = np.asarray(keras.random.uniform((3, 5), dtype="float16"))
    np.testing.assert_array_equal(got, expected)
    assert flat_length(1) == 2**16
    assert flat_length(2**16 + 1) == 2**20
    assert flat_length(4 * 2**20) == 4 * 2**20
    assert flat_length(4 * 2**20 + 1) is None


def test_draws_inside_a_traced_function_stay_keras_own():
    def draw(seed):
        return keras.random.normal((5, 7), seed=seed)

    seed = keras.random.SeedGenerator(3).state.value
    expected = jax.jit(draw)(seed)
    with shared_draw_programs():
        got = jax.jit(draw)(seed)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
