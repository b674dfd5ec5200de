"""Shared draw programs: Keras's exact initial weights, few compiled draw shapes."""

import jax
import keras
import keras.src.backend.jax.random as backend_random
import numpy as np
import pytest

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
        for width in (8, 12, 16, 20, 24, 28, 32, 36, 40):
            keras.utils.set_random_seed(0)
            build(width)
    # 9 widths x 3 kernels = 27 distinct shapes (up to 640 x 40), drawn at 3 flat lengths
    assert len(lengths) == 27
    assert set(lengths) == {(4096,), (16384,), (65536,)}


def test_the_backend_is_restored_after_nested_and_failing_uses():
    originals = (backend_random.uniform, backend_random.normal, backend_random.truncated_normal)
    with shared_draw_programs():
        with shared_draw_programs():
            assert backend_random.uniform is not originals[0]
        assert backend_random.uniform is not originals[0]  # the outer use still holds
    assert (
        backend_random.uniform,
        backend_random.normal,
        backend_random.truncated_normal,
    ) == originals
    with pytest.raises(RuntimeError, match="boom"), shared_draw_programs():
        raise RuntimeError("boom")
    assert backend_random.uniform is originals[0]


def test_other_dtypes_and_huge_draws_keep_keras_own_draw():
    keras.utils.set_random_seed(1)
    expected = np.asarray(keras.random.uniform((3, 5), dtype="float16"))
    keras.utils.set_random_seed(1)
    with shared_draw_programs():
        got = np.asarray(keras.random.uniform((3, 5), dtype="float16"))
    np.testing.assert_array_equal(got, expected)
    assert flat_length(1) == 4096
    assert flat_length(4097) == 16384
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
