"""A fleet trial trains exactly like the same config trained alone with ``model.fit``."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tunefleet.fleet import FleetTrainer

EPOCHS = 3
BATCH = 32  # 300 samples: 9 full batches and a partial one of 12


@pytest.fixture(scope="module")
def data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    return x[:300], y[:300], x[300:400], y[300:400]


def build(units=32, lr=1e-3, rate=0.0, l2=0.0, bn=False, dropout_layer=True):
    layers = [
        keras.Input((64,)),
        keras.layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
        ),
    ]
    if bn:
        layers.append(keras.layers.BatchNormalization())
    if dropout_layer:
        layers.append(keras.layers.Dropout(rate))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def solo_history(config, data, shuffle=True, seed=0):
    xt, yt, xv, yv = data
    keras.utils.set_random_seed(seed)
    model = build(**config)
    fit = model.fit(
        xt,
        yt,
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_data=(xv, yv),
        shuffle=shuffle,
        verbose=0,
    )
    return fit.history


def assert_same_history(fleet, solo, rtol=1e-4):
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(fleet[key], solo[key], rtol=rtol, err_msg=key)
    # Accuracy is a count: float noise (~1e-6) may flip one near-tie prediction.
    for key, n in (("accuracy", 300), ("val_accuracy", 100)):
        np.testing.assert_allclose(fleet[key], solo[key], atol=1.01 / n, err_msg=key)


# One group: learning rates, widths (16 and 32 masked inside 64), dropout rates and
# L2 strengths differ per trial; a single compiled program trains them all.
MIXED = [
    {"units": 64, "lr": 1e-3},
    {"units": 16, "lr": 3e-3},
    {"units": 32, "lr": 1e-2, "rate": 0.3, "l2": 1e-3},
    {"units": 64, "lr": 1e-3, "rate": 0.5},
]
SOLO_CHECKED = 3  # trials compared with their own model.fit (the 4th only with trial 0)


@pytest.fixture(scope="module")
def mixed_fleet(data):
    xt, yt, xv, yv = data
    trainer = FleetTrainer(build, seed=0)
    result = trainer.fit(
        MIXED, xt, yt, epochs=EPOCHS, batch_size=BATCH, validation_data=(xv, yv), shuffle=True
    )
    return result


def test_mixed_fleet_is_one_group_compiled_once(mixed_fleet):
    assert mixed_fleet.groups == [[0, 1, 2, 3]]
    assert mixed_fleet.stats["traces"] == [{"train": 1, "eval": 1}]


@pytest.mark.parametrize("i", range(SOLO_CHECKED))
def test_each_trial_matches_its_solo_fit(mixed_fleet, data, i):
    # Same seed, same shuffled batch order, same dropout masks: equal per-epoch logs.
    assert_same_history(mixed_fleet.history[i], solo_history(MIXED[i], data))


def test_single_trial_without_shuffle_matches(data):
    xt, yt, xv, yv = data
    config = {"units": 32, "lr": 2e-3}
    result = FleetTrainer(build, seed=3).fit(
        [config], xt, yt, epochs=EPOCHS, batch_size=BATCH, validation_data=(xv, yv), shuffle=False
    )
    assert_same_history(result.history[0], solo_history(config, data, shuffle=False, seed=3))


def test_batch_norm_and_dropout_match(data):
    xt, yt, xv, yv = data
    config = {"units": 24, "lr": 3e-3, "rate": 0.2, "bn": True}
    result = FleetTrainer(build, seed=0).fit(
        [config], xt, yt, epochs=EPOCHS, batch_size=BATCH, validation_data=(xv, yv)
    )
    # The padded last batch leaves its padding rows out of the batch statistics
    # through BatchNormalization's mask, a slightly different formula; its rounding
    # reaches val_loss through the moving statistics (up to 1.3e-4 by epoch 3 over
    # 8 seeds x configs; training losses agree to 4e-6): rtol 3e-4.
    assert_same_history(result.history[0], solo_history(config, data), rtol=3e-4)


def test_dropout_zero_is_no_dropout_and_positive_rate_changes_training(mixed_fleet, data):
    without_layer = solo_history({"units": 64, "lr": 1e-3, "dropout_layer": False}, data)
    assert_same_history(mixed_fleet.history[0], without_layer)
    # Trial 3 is trial 0 with dropout 0.5: same start, different training.
    rate_zero, rate_half = mixed_fleet.history[0]["loss"], mixed_fleet.history[3]["loss"]
    assert not np.allclose(rate_zero, rate_half, rtol=1e-3)


def test_dropout_hash_is_jax_threefry_bit_for_bit():
    """The fleet's unrolled Threefry-2x32 gives JAX's own bits (all key/counter words)."""
    import jax
    import jax.numpy as jnp
    from jax.extend.random import threefry2x32_p

    from tunefleet.fleet.dropout import threefry2x32

    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**32, size=(4, 4096), dtype=np.uint64).astype(np.uint32)
    words[:, :4] = [[0, 2**32 - 1, 1, 0x1BD11BDA]] * 4  # edge values
    k1, k2, x1, x2 = (jnp.asarray(w) for w in words)
    ours = jax.jit(threefry2x32)(k1, k2, x1, x2)
    theirs = threefry2x32_p.bind(k1, k2, x1, x2)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    # and jax.random's own draw (partitionable threefry): element c hashes (0, c)
    key = jax.random.key_data(jax.random.key(7))
    count = jnp.arange(1000, dtype=jnp.uint32)
    a, b = threefry2x32(key[0], key[1], jnp.zeros_like(count), count)
    assert np.array_equal(a ^ b, jax.random.bits(jax.random.key(7), (1000,), jnp.uint32))
