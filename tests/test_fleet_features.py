"""Fleet features: export, unsupported models, stopping trials, grouping and compiles."""

import logging
import os
import re

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from jax_compilations import counting_compilations
from tunefleet.fleet import FleetTrainer, fleet_support
from tunefleet.fleet.train import batch_rows, chunk_rows, stack, take
from tunefleet.keras.memory import compiled_program_budget, set_compiled_program_budget


@pytest.fixture(scope="module")
def data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    return x[:256], y[:256], x[256:356], y[256:356]


def build(units=32, lr=1e-3, rate=0.1, depth=1, act="relu", bn=False, functional=False):
    inputs = keras.Input((64,))
    h = inputs
    for _ in range(depth):
        h = keras.layers.Dense(units, activation=act)(h)
        if bn:
            h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Dropout(rate)(h)
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    if functional:
        model = keras.Model(inputs, outputs)
    else:
        model = keras.Sequential([inputs, *[layer for layer in _layers_of(outputs)]])
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _layers_of(tensor):
    """The layers that produced ``tensor``, input first (a chain)."""
    layers = []
    while tensor._keras_history.operation.__class__.__name__ != "InputLayer":
        layer = tensor._keras_history.operation
        layers.append(layer)
        tensor = layer._inbound_nodes[0].input_tensors[0]
    return layers[::-1]


# ----------------------------------------------------------------------- export
def test_export_is_a_true_width_keras_model_that_predicts_the_same(data, tmp_path):
    xt, yt, xv, yv = data
    configs = [{"units": 16, "bn": True}, {"units": 48, "bn": True, "lr": 3e-3}]
    seen = {}

    def on_epoch_end(epoch, logs):
        seen["preds"] = logs.predict_val()
        seen["val_loss"] = np.array(logs["val_loss"])

    result = FleetTrainer(build, seed=1).fit(
        configs, xt, yt, epochs=2, validation_data=(xv, yv), on_epoch_end=on_epoch_end
    )
    assert seen["preds"].shape == (2, len(xv), 10)
    for i, units in enumerate((16, 48)):
        model = result.export(i)
        assert isinstance(model, keras.Model)
        assert model.layers[0].units == units
        assert model.layers[0].kernel.shape == (64, units)
        assert int(model.optimizer.iterations.value) == 2 * 8  # Adam state came along
        # predict_on_batch: one call, no data-adapter machinery; BN in inference mode.
        preds = np.asarray(model.predict_on_batch(xv))
        np.testing.assert_allclose(preds, seen["preds"][i], rtol=1e-5, atol=1e-6)
    path = tmp_path / "trial0.keras"
    model = result.export(0)
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        np.asarray(reloaded.predict_on_batch(xv)), seen["preds"][0], rtol=1e-5, atol=1e-6
    )


# ------------------------------------------------------------------ unsupported
def test_unsupported_layer_is_named():
    def build_lstm(units=8):
        model = keras.Sequential(
            [keras.Input((5, 3)), keras.layers.LSTM(units), keras.layers.Dense(1)]
        )
        model.compile(optimizer="adam", loss="mse")
        return model

    why = fleet_support(build_lstm, [{"units": 8}])
    assert why is not None and "LSTM" in why


def test_supported_models_give_none():
    assert fleet_support(build, [{"units": 8}, {"units": 16, "functional": True}]) is None


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    def build_sub():
        model = Net()
        model.build((None, 4))
        model.compile(optimizer="adam", loss="mse")
        return model

    why = fleet_support(build_sub, [{}])
    assert why is not None and "subclassed" in why


# --------------------------------------------------------------------- stopping
LRS = [1e-3, 3e-3, 1e-2, 2e-3]


@pytest.fixture(scope="module")
def trainer():
    # One trainer: equal groups in later fits reuse its compiled programs.
    return FleetTrainer(build, seed=0)


def _fit(trainer, data, lrs, callback=None, units=24, epochs=3):
    xt, yt, xv, yv = data
    return trainer.fit(
        [{"lr": lr, "units": units} for lr in lrs],
        xt,
        yt,
        epochs=epochs,
        validation_data=(xv, yv),
        on_epoch_end=callback,
    )


@pytest.mark.parametrize("compact", ["never", "always"])
def test_stopped_trials_stop_and_survivors_are_unchanged(trainer, data, compact):
    reference = _fit(trainer, data, [LRS[0], LRS[2]])
    calls = []

    def stop_odd_trials_after_first_epoch(epoch, logs):
        calls.append((epoch, logs.active.copy(), np.array(logs["loss"])))
        if epoch == 0:
            return np.array([True, False, True, False])
        return None

    trainer.compact = compact
    result = _fit(trainer, data, LRS, stop_odd_trials_after_first_epoch)
    trainer.compact = "auto"
    assert result.stopped_at == [None, 0, None, 0]
    assert [len(h["loss"]) for h in result.history] == [3, 1, 3, 1]
    # Later epochs report nan for the stopped trials and mark them inactive.
    assert calls[1][1].tolist() == [True, False, True, False]
    assert np.isnan(calls[1][2][[1, 3]]).all()
    for mine, ref in ((0, 0), (2, 1)):
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(
                result.history[mine][key], reference.history[ref][key], rtol=1e-5
            )
    if compact == "always":
        assert result.stats["compactions"] == 1
    # A stopped trial exports the weights it had when it stopped.
    _, _, xv, yv = data
    stopped = result.export(1).evaluate(xv, yv, verbose=0, return_dict=True)["loss"]
    assert stopped == pytest.approx(result.history[1]["val_loss"][0], rel=1e-4)


def test_a_fleet_is_not_cut_for_the_compile_time_of_its_first_epoch(data):
    # Compiling takes far longer than an epoch of 256 samples. Counted as training, it
    # priced the first epoch so high that cutting the fleet to its one live trial (and
    # compiling for that size) looked worth it.
    trainer = FleetTrainer(build, seed=0)  # compact="auto"

    def keep_only_the_first(epoch, logs):
        return np.arange(len(logs["loss"])) == 0 if epoch == 0 else None

    result = _fit(trainer, data, LRS, keep_only_the_first, units=20, epochs=8)
    assert result.stopped_at == [None, 0, 0, 0]
    assert len(result.history[0]["loss"]) == 8
    assert result.stats["compactions"] == 0
    assert result.stats["traces"] == [{"train": 1, "eval": 1}]


@pytest.fixture
def no_program_release():
    """Within the memory budget (a release past it drops kept programs: test_memory.py)."""
    budget = compiled_program_budget()
    set_compiled_program_budget(2**40)
    yield
    set_compiled_program_budget(budget)


def test_a_later_narrower_trial_trains_in_the_program_of_an_earlier_wider_one(
    data, no_program_release
):
    # A program masks every width that may vary, also when compiled for one trial, so a
    # later fit (a refill that waited, the next rung) of a narrower trial compiles nothing.
    xt, yt, xv, yv = data
    trainer = FleetTrainer(build, seed=0)
    kwargs = dict(epochs=2, validation_data=(xv, yv), shuffle=False)
    first = trainer.fit([{"units": 32, "rate": 0.0}], xt, yt, **kwargs)
    later = trainer.fit([{"units": 20, "rate": 0.0}], xt, yt, **kwargs)
    assert first.stats["traces"] == later.stats["traces"] == [{"train": 1, "eval": 1}]
    assert "in the compiled program of an earlier, wider group" in later.stats["plan"].reasons[0]
    alone = FleetTrainer(build, seed=0).fit([{"units": 20, "rate": 0.0}], xt, yt, **kwargs)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(later.history[0][key], alone.history[0][key], rtol=1e-5)


# --------------------------------------------------------------------- grouping
def test_depth_and_activation_split_groups_widths_and_rates_do_not():
    configs = [
        {"depth": 1, "act": "relu", "units": 16, "lr": 1e-3, "rate": 0.0},
        {"depth": 2, "act": "relu", "units": 16},
        {"depth": 1, "act": "tanh", "units": 16},
        {"depth": 1, "act": "relu", "units": 64, "lr": 1e-2, "rate": 0.4},
        {"depth": 2, "act": "relu", "units": 32, "lr": 3e-3},
        {"depth": 1, "act": "tanh", "units": 8, "rate": 0.2},
    ]
    plan = FleetTrainer(build).plan(configs)
    assert sorted(sorted(g) for g in plan) == [[0, 3], [1, 4], [2, 5]]
    assert "group 0" in plan.report()


def test_each_group_compiles_once(data, caplog):
    xt, yt, xv, yv = data
    configs = [
        {"depth": 1, "units": 16, "lr": 1e-3},
        {"depth": 2, "units": 16, "functional": True},
        {"depth": 1, "units": 40, "lr": 1e-2, "rate": 0.3},
        {"depth": 2, "units": 8, "lr": 3e-3, "functional": True},
    ]
    with jax.log_compiles(True), caplog.at_level(logging.WARNING, logger="jax"):
        result = FleetTrainer(build).fit(configs, xt, yt, epochs=2, validation_data=(xv, yv))
    assert sorted(sorted(g) for g in result.groups) == [[0, 2], [1, 3]]
    assert result.stats["traces"] == [{"train": 1, "eval": 1}] * 2
    assert all(len(h["val_accuracy"]) == 2 for h in result.history)
    # an epoch and its validation are one program
    compiled = re.findall(r"Finished XLA compilation of jit\((\w+)\)", caplog.text)
    assert [name for name in compiled if "train" in name or "eval" in name] == [
        "_train_and_evaluate"
    ] * 2


def test_host_arrays_reach_the_device_without_compiling():
    """Stacked weights, batch indices and validation chunks of new shapes compile nothing."""
    rng = np.random.default_rng(0)
    shapes = [(3, 7), (5, 11), (13,)]  # shapes no other test uses
    rows = [{"w": [rng.normal(size=shape).astype("float32") for shape in shapes]} for _ in range(3)]
    with counting_compilations() as compiled:
        stacked = stack(rows)
        taken = take(stacked, np.array([2, 0]))
        batches, weights = batch_rows(rng.permutation(37).astype(np.int64), 9)
        x_chunks, y_chunks, row_weights = chunk_rows(rng.normal(size=(23, 3)), np.arange(23), 5)
    assert compiled == [0]
    assert isinstance(stacked["w"][0], jax.Array) and stacked["w"][0].shape == (3, 3, 7)
    np.testing.assert_array_equal(np.asarray(taken["w"][1][1]), rows[0]["w"][1])
    assert batches.dtype == np.int32 and batches.shape == (5, 9)
    assert float(weights.sum()) == 37
    assert x_chunks.dtype == np.float32 and x_chunks.shape == (5, 5, 3)  # float64 canonicalised
    assert y_chunks.shape == (5, 5) and float(row_weights.sum()) == 23


def test_plan_cuts_groups_by_width_only_when_compute_outweighs_compiling(data):
    xt, yt, _, _ = data
    configs = [{"units": 8}, {"units": 8, "lr": 3e-3}, {"units": 512}, {"units": 512, "lr": 3e-3}]
    trainer = FleetTrainer(build, split_widths=True)
    short = trainer.plan(configs, x=xt, y=yt, epochs=1)
    assert len(short) == 1  # one compile is cheaper than 1 epoch of padding waste
    long = trainer.plan(configs, x=xt, y=yt, epochs=100_000)
    assert sorted(sorted(g) for g in long) == [[0, 1], [2, 3]]


def test_later_fits_of_fewer_or_narrower_trials_reuse_compiled_programs(data, no_program_release):
    """Hyperband's next round: survivors train in the earlier round's program."""
    xt, yt, xv, yv = data
    trainer = FleetTrainer(build, seed=0)
    first = [{"units": 32, "lr": lr} for lr in (1e-3, 3e-3, 1e-2)] + [{"units": 16}]
    trainer.fit(first, xt, yt, epochs=2, validation_data=(xv, yv))
    compiled = trainer.compile_seconds
    survivors = [{"units": 16}, {"units": 16, "lr": 3e-3}]  # a narrower group of its own
    again = trainer.fit(survivors, xt, yt, epochs=2, validation_data=(xv, yv))
    assert trainer.compile_seconds == compiled  # nothing compiled
    report = again.stats["plan"].report()
    assert "in the compiled program of an earlier, wider group" in report
    assert "reusing the compiled program for fleets of 4" in report
    assert again.stats["plan"].fleet_size == [4]
    alone = FleetTrainer(build, seed=0).fit(survivors, xt, yt, epochs=2, validation_data=(xv, yv))
    for mine, ref in zip(again.history, alone.history, strict=True):
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(mine[key], ref[key], rtol=1e-4)
    # When the padding would cost more than a compile, the narrower group compiles its own.
    long = trainer.plan(survivors, x=xt, y=yt, epochs=1_000_000)
    assert "earlier" not in long.report() and "reusing" not in long.report()
