"""Refilling fleet rows freed by stopped trials with new configurations."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits

import tunefleet as kt
from tunefleet.fleet import FleetTrainer, NewTrial
from tunefleet.study import counts

N_TRAIN, N_VAL = 256, 100


@pytest.fixture(scope="module")
def data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN : N_TRAIN + N_VAL], y[N_TRAIN : N_TRAIN + N_VAL]


def build(units=24, lr=1e-3, rate=0.1):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(units, activation="relu"),
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


CONFIGS = [
    {"units": 24, "lr": 1e-3},
    {"units": 16, "lr": 3e-3},
    {"units": 24, "lr": 1e-2, "rate": 0.3},
    {"units": 16, "lr": 2e-3},
]
NEW_A = {"units": 16, "lr": 5e-3, "rate": 0.2}
NEW_B = {"units": 24, "lr": 2e-3}
TOO_WIDE = {"units": 64}  # wider than the group's template: no free row can take it


def _fit(trainer, data, configs, **kwargs):
    xt, yt, xv, yv = data
    return trainer.fit(configs, xt, yt, epochs=3, validation_data=(xv, yv), shuffle=False, **kwargs)


@pytest.fixture(scope="module")
def reference(data):
    """The new configs trained from the start in a fit of their own."""
    return _fit(FleetTrainer(build), data, [NEW_A, NEW_B], seeds=[0, 7])


@pytest.mark.parametrize("compact", ["never", "always"])
def test_refilled_trials_train_as_if_from_the_start(data, reference, compact):
    seen, asked = [], []

    def stop_two_after_first_epoch(epoch, logs):
        seen.append((epoch, logs.active.copy(), logs.trial_epoch.copy(), len(logs["loss"])))
        if epoch == 0:
            return np.array([True, False, True, False])
        return None

    def refill(epoch, free):
        asked.append((epoch, free))
        return [NEW_A, NewTrial(NEW_B, seed=7, epochs=2), TOO_WIDE]

    trainer = FleetTrainer(build, compact=compact)
    result = _fit(trainer, data, CONFIGS, on_epoch_end=stop_two_after_first_epoch, refill=refill)

    assert asked == [(0, 2)]  # later epochs free no row
    assert result.not_started == [6]
    assert result.stopped_at == [None, 0, None, 0, None, None, None]
    assert [len(h.get("loss", [])) for h in result.history] == [3, 1, 3, 1, 3, 2, 0]
    assert result.configs[4:] == [NEW_A, NEW_B, TOO_WIDE]
    assert result.seeds[4:] == [0, 7, 0]
    assert sorted(result.groups[0]) == [0, 1, 2, 3, 4, 5]
    # The fit runs until the refilled trials are done; logs cover all trials so far.
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    assert [s[3] for s in seen] == [4, 7, 7, 7]
    np.testing.assert_array_equal(seen[1][2], [1, -1, 1, -1, 0, 0, -1])
    np.testing.assert_array_equal(seen[3][2], [-1, -1, -1, -1, 2, -1, -1])
    # shuffle=False: the same losses as the same configs trained from the start.
    for mine, ref in ((4, 0), (5, 1)):
        for key in ("loss", "val_loss"):
            n = len(result.history[mine][key])
            np.testing.assert_allclose(
                result.history[mine][key], reference.history[ref][key][:n], rtol=1e-4
            )
    if compact == "never":
        assert result.stats["traces"] == [{"train": 1, "eval": 1}]  # no compile for refills
        assert result.stats["compactions"] == 0
    else:  # refilled rows are live: the fleet is cut only once the originals finish
        assert result.stats["compactions"] >= 1
    assert result.stats["refills"] == 2


def test_a_refill_no_row_can_take_is_not_followed_by_more_asks(data):
    # The rows stay free for the fit's last two epochs; asking again at each would
    # queue one configuration after another for fits of their own.
    asked = []

    def stop_two_after_first_epoch(epoch, logs):
        return np.array([True, False, True, False]) if epoch == 0 else None

    def refill(epoch, free):
        asked.append((epoch, free))
        return [TOO_WIDE]

    xt, yt, xv, yv = data
    result = FleetTrainer(build).fit(
        CONFIGS, xt, yt, epochs=4, validation_data=(xv, yv),
        on_epoch_end=stop_two_after_first_epoch, refill=refill,
    )  # fmt: skip
    assert asked == [(0, 2)]
    assert result.not_started == [4]
    assert result.stats["refills"] == 0


def test_refilled_trial_exports(data):
    xt, yt, xv, yv = data

    def stop_first(epoch, logs):
        return np.array([i != 0 for i in range(len(logs["loss"]))]) if epoch == 0 else None

    result = FleetTrainer(build).fit(
        CONFIGS[:2],
        xt,
        yt,
        epochs=2,
        validation_data=(xv, yv),
        on_epoch_end=stop_first,
        refill=lambda epoch, free: [NewTrial(NEW_A, seed=5)],
    )
    model = result.export(2)
    assert model.layers[0].units == 16
    assert int(model.optimizer.iterations.value) == 2 * 8  # its own counter, from 0
    loss = model.evaluate(xv, yv, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(result.history[2]["val_loss"][-1], rel=1e-4)


# ------------------------------------------------------------------------ tuner face
def build_hp(hp):
    """An MLP whose tiny learning rate makes a poor first epoch (pruned)."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Choice("lr", [1e-5, 3e-2])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# (units, lr) of trials 0-5 that each seed samples:
# 0: (16, 1e-5) (16, 3e-2) (8, 1e-5) (16, 3e-2) | (16, 3e-2) (8, 3e-2)
# 18: (8, 1e-5) (8, 3e-2) (8, 3e-2) (8, 3e-2) | (16, 3e-2) (8, 3e-2): trial 4 is wider than
# the fleet's template, so it is not started there and trains in a fit of its own; the
# fit asks for no more, and trial 5 comes with the next batch.
PRUNED = {0: [0, 2], 18: [0]}  # lr 1e-5: val_loss stays near ln(10) > 2
REFILLED = {0: [4, 5], 18: [4]}  # asked for freed rows while the first batch ran


@pytest.mark.parametrize("seed", [0, 18])
def test_tuner_refills_rows_of_pruned_trials_within_the_budget(tmp_path, data, seed):
    xt, yt, xv, yv = data
    tuner = kt.RandomSearch(
        build_hp,
        objective="val_loss",
        max_trials=6,
        seed=seed,
        directory=tmp_path,
        project_name="refill",
        fleet=4,
        pruner=optuna.pruners.ThresholdPruner(upper=2.0),
        # 6 trials from a 4-point space: drawn with replacement, as the sequences above
        # (the "random" strategy would run each point once)
        strategy=optuna.samplers.RandomSampler(seed=seed),
    )
    tuner.search(xt, yt, epochs=3, batch_size=8, validation_data=(xv, yv), shuffle=False, verbose=0)
    url = f"sqlite:///{tmp_path / 'refill' / 'study.db'}"
    trials = optuna.load_study(study_name="refill", storage=url).trials
    assert len(trials) == 6 and all(counts(t) for t in trials)  # exactly max_trials
    pruned = [t.number for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned == [t.number for t in trials if t.params["lr"] < 1e-3] == PRUNED[seed]
    assert all(
        t.state == optuna.trial.TrialState.COMPLETE for t in trials if t.number not in pruned
    )
    first_batch_done = min(t.datetime_complete for t in trials[:4])
    assert tuner.fleet_stats_["refilled"] == len(REFILLED[seed])
    for t in trials[4:]:
        assert (t.datetime_start < first_batch_done) == (t.number in REFILLED[seed])
    for t in trials[4:]:  # reported from their own step 0
        assert sorted(t.intermediate_values) == [0, 1, 2]
    for t in trials[:4]:
        assert sorted(t.intermediate_values) == ([0] if t.number in pruned else [0, 1, 2])
