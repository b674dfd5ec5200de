"""Fleets of conv models, per-trial optimizer floats and learning-rate schedules."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tunefleet.fleet import FleetTrainer


@pytest.fixture(scope="module")
def images():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    y = y.astype("int32")
    return x[:200], y[:200], x[200:260], y[200:260]


def build_cnn(filters=8, lr=1e-3, rate=0.2):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(rate),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_conv1d(filters=6, lr=3e-3):
    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Conv1D(filters, 3, activation="tanh"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    return model


def solo(build, config, data, epochs):
    xt, yt, xv, yv = data
    keras.utils.set_random_seed(0)
    model = build(**config)
    return model.fit(
        xt, yt, epochs=epochs, batch_size=32, validation_data=(xv, yv), verbose=0
    ).history


def test_masked_filters_match_the_true_width_model(images):
    # Trial 0 has 4 filters inside a template of 8: its Flatten output, dropout
    # draws and Dense kernel rows are laid out per channel of the 8-filter map.
    configs = [{"filters": 4, "lr": 3e-3, "rate": 0.3}, {"filters": 8, "lr": 1e-3}]
    xt, yt, xv, yv = images
    result = FleetTrainer(build_cnn, seed=0).fit(
        configs, xt, yt, epochs=2, validation_data=(xv, yv)
    )
    assert result.groups == [[0, 1]]
    alone = solo(build_cnn, configs[0], images, epochs=2)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(result.history[0][key], alone[key], rtol=1e-4)
    model = result.export(0)
    assert model.layers[0].kernel.shape == (3, 3, 1, 4)
    assert model.layers[-1].kernel.shape == (4 * 4 * 4, 10)


def test_conv1d_matches(images):
    xt, yt, xv, yv = images
    data = (xt.reshape(-1, 8, 8), yt, xv.reshape(-1, 8, 8), yv)
    result = FleetTrainer(build_conv1d, seed=0).fit(
        [{}], data[0], yt, epochs=2, validation_data=(data[2], yv)
    )
    alone = solo(build_conv1d, {}, data, epochs=2)
    np.testing.assert_allclose(result.history[0]["loss"], alone["loss"], rtol=1e-4)
    np.testing.assert_allclose(result.history[0]["val_loss"], alone["val_loss"], rtol=1e-4)


def build_mlp_opt(lr=1e-3, beta_1=0.9, weight_decay=None, schedule=False, rate=0.0):
    learning_rate = (
        keras.optimizers.schedules.ExponentialDecay(3e-3, decay_steps=5, decay_rate=0.7)
        if schedule
        else lr
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate, beta_1=beta_1, weight_decay=weight_decay or 0.004
    )
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(rate),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def flat(images):
    xt, yt, xv, yv = images
    return xt.reshape(-1, 64), yt, xv.reshape(-1, 64), yv


def test_float_optimizer_hyperparameters_are_per_trial(flat):
    # beta_1 and weight_decay are Python floats in Keras; the fleet traces them per trial.
    configs = [{"beta_1": 0.8, "weight_decay": 0.01}, {"beta_1": 0.95, "lr": 3e-3}]
    xt, yt, xv, yv = flat
    result = FleetTrainer(build_mlp_opt, seed=0).fit(
        configs, xt, yt, epochs=2, validation_data=(xv, yv)
    )
    assert result.groups == [[0, 1]]
    alone = solo(build_mlp_opt, configs[0], flat, epochs=2)  # trial 1 runs beside it
    np.testing.assert_allclose(result.history[0]["loss"], alone["loss"], rtol=1e-4)
    assert not np.allclose(result.history[0]["loss"], result.history[1]["loss"], rtol=1e-3)


def test_learning_rate_schedule_keeps_working(flat):
    configs = [{"schedule": True, "rate": 0.1}, {"schedule": True, "rate": 0.3}]
    xt, yt, xv, yv = flat
    result = FleetTrainer(build_mlp_opt, seed=0).fit(
        configs, xt, yt, epochs=2, validation_data=(xv, yv)
    )
    assert result.groups == [[0, 1]]
    alone = solo(build_mlp_opt, configs[1], flat, epochs=2)
    np.testing.assert_allclose(result.history[1]["loss"], alone["loss"], rtol=1e-4)
    np.testing.assert_allclose(result.history[1]["val_loss"], alone["val_loss"], rtol=1e-4)
