"""Keras Tuner-style tuners training their trials as fleets (JAX backend)."""

import logging

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits

import tunefleet as kt
import tunefleet.dispatch as dispatch
from tunefleet.attrs import BEST_STEP_ATTR, HP_ATTR
from tunefleet.study import counts, report_many
from tunefleet.tuners import Choice, ObjectiveNotReported

N_TRAIN, N_VAL = 256, 128


def build_model(hp):
    """A small MLP with dropout whose width, dropout and learning rate are tuned."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
            keras.layers.Dropout(hp.Float("dropout", 0.0, 0.3)),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_sometimes_unsupported(hp):
    """A small MLP with, when ``noise`` is drawn, a layer fleets do not support."""
    layers = [keras.Input((64,)), keras.layers.Dense(8, activation="relu")]
    if hp.Boolean("noise"):
        layers.append(keras.layers.UnitNormalization())  # not a fleet layer
    model = keras.Sequential([*layers, keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN : N_TRAIN + N_VAL], y[N_TRAIN : N_TRAIN + N_VAL]


def stored(tmp_path, project):
    url = f"sqlite:///{tmp_path / project / 'study.db'}"
    return optuna.load_study(study_name=project, storage=url)


def search(tmp_path, digits, project, fleet, tuner=kt.RandomSearch, **kwargs):
    xt, yt, xv, yv = digits
    options = {"max_trials": 4, "seed": 3, **kwargs}
    t = tuner(
        build_model,
        objective="val_accuracy",
        directory=tmp_path,
        project_name=project,
        fleet=fleet,
        **options,
    )
    t.search(xt, yt, epochs=3, validation_data=(xv, yv), shuffle=False, verbose=0)
    return t


def test_fleet_trials_equal_one_by_one_trials(tmp_path, digits):
    solo = search(tmp_path, digits, "solo", fleet=False)
    fleet = search(tmp_path, digits, "fleet", fleet=True)
    assert fleet.fleet_stats_["train"] > 0
    assert not hasattr(solo, "fleet_stats_")
    a, b = stored(tmp_path, "solo").trials, stored(tmp_path, "fleet").trials
    assert [t.params for t in a] == [t.params for t in b]
    for one, many in zip(a, b, strict=True):
        assert many.state == optuna.trial.TrialState.COMPLETE
        assert many.value == pytest.approx(one.value, abs=1e-6)
        assert sorted(many.intermediate_values) == [0, 1, 2]
        for step, value in one.intermediate_values.items():
            assert many.intermediate_values[step] == pytest.approx(value, abs=2e-3)
        assert many.user_attrs[HP_ATTR] == one.user_attrs[HP_ATTR]
        assert many.user_attrs[BEST_STEP_ATTR] == one.user_attrs[BEST_STEP_ATTR]


def test_saved_best_model_holds_the_best_epoch_weights(tmp_path, digits):
    _, _, xv, yv = digits
    tuner = search(tmp_path, digits, "best", fleet=True, max_trials=3)
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    _, accuracy = model.evaluate(xv, yv, verbose=0)
    assert accuracy == pytest.approx(best.score, abs=1e-6)


def test_cv_and_executions_in_fleets(tmp_path, digits):
    xt, yt, xv, yv = digits
    x, y = np.concatenate([xt, xv]), np.concatenate([yt, yv])
    tuner = kt.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_trials=3,
        seed=0,
        cv=2,
        executions_per_trial=2,
        directory=tmp_path,
        project_name="cv",
        fleet=True,
    )
    tuner.search(x, y, epochs=2, batch_size=Choice("batch_size", [32, 64]), verbose=0)
    trials = stored(tmp_path, "cv").trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        # runs (fold x execution) 0..3, two epochs each: unique steps 0..7
        assert sorted(t.intermediate_values) == list(range(8))
        folds = t.user_attrs["tunefleet:cv"]["test"]["val_accuracy"]
        assert len(folds) == 2
        assert t.value == pytest.approx(np.mean(folds))
        assert t.params["batch_size"] in (32, 64)


def test_pruned_inside_the_fleet(tmp_path, digits):
    reference = search(tmp_path, digits, "reference", fleet=True, max_trials=4)
    first = sorted({t.intermediate_values[0] for t in stored(tmp_path, "reference").trials})
    assert len(first) > 1
    threshold = (first[0] + first[1]) / 2  # the worst start(s) below it, the others above
    n_below = sum(
        t.intermediate_values[0] < threshold for t in stored(tmp_path, "reference").trials
    )
    tuner = search(
        tmp_path,
        digits,
        "pruned",
        fleet=True,
        max_trials=4,
        pruner=optuna.pruners.ThresholdPruner(lower=threshold),
    )
    trials = stored(tmp_path, "pruned").trials
    states = [t.state for t in trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == n_below
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4 - n_below
    for t in trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            assert list(t.intermediate_values) == [0]  # stopped after its first epoch
            assert t.intermediate_values[0] < threshold
        else:
            assert len(t.intermediate_values) == 3
    assert tuner.oracle.get_best_trials(1)[0].score == max(
        t.value for t in trials if t.value is not None
    )
    assert reference.oracle.get_best_trials(1)


def test_unsupported_layer_in_one_branch_trains_that_trial_alone(tmp_path, digits, caplog):
    xt, yt, xv, yv = digits

    tuner = kt.GridSearch(
        build_sometimes_unsupported,
        objective="val_accuracy",
        directory=tmp_path,
        project_name="mixed",
        fleet=True,
    )
    with caplog.at_level(logging.INFO, logger="tunefleet"):
        tuner.search(xt, yt, epochs=1, validation_data=(xv, yv), verbose=0)
    trials = stored(tmp_path, "mixed").trials
    assert sorted(t.params["noise"] for t in trials) == [False, True]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert "UnitNormalization" in caplog.text and "one by one" in caplog.text


def test_fleet_settings_errors_and_fallbacks(tmp_path, digits, caplog, monkeypatch):
    xt, yt, xv, yv = digits
    monkeypatch.setattr(dispatch, "_LOGGED", set())  # "logs why once" per process
    with pytest.raises(ValueError, match="fleet must be 'auto', True, False or a positive"):
        kt.RandomSearch(build_model, fleet="always")
    with pytest.raises(ValueError, match="fleet must be"):
        kt.RandomSearch(build_model, fleet=0)
    tuner = kt.RandomSearch(
        build_model, max_trials=1, directory=tmp_path, project_name="cb", fleet=True
    )
    stop = keras.callbacks.EarlyStopping(patience=1)
    with pytest.raises(ValueError, match=r"fleet=True cannot be used: search\(callbacks=\)"):
        tuner.search(xt, yt, epochs=1, validation_data=(xv, yv), callbacks=[stop])
    hyperband = kt.Hyperband(
        build_model,
        objective="val_accuracy",
        max_epochs=2,
        directory=tmp_path,
        project_name="hb",
    )
    with caplog.at_level(logging.INFO, logger="tunefleet"):
        hyperband.search(xt, yt, validation_data=(xv, yv), callbacks=[stop], verbose=0)
    assert "Hyperband: training trials one by one: search(callbacks=)" in caplog.text
    assert stored(tmp_path, "hb").trials


def test_objective_the_fleet_does_not_compute_stops_the_search(tmp_path, digits):
    xt, yt, xv, yv = digits
    tuner = kt.RandomSearch(
        build_model,
        objective=kt.Objective("val_auc", "max"),
        max_trials=2,
        directory=tmp_path,
        project_name="auc",
        fleet=True,
    )
    with pytest.raises(ObjectiveNotReported, match="val_auc"):
        tuner.search(xt, yt, epochs=1, validation_data=(xv, yv), verbose=0)
    trials = stored(tmp_path, "auc").trials
    assert all(t.state == optuna.trial.TrialState.FAIL for t in trials)
    (failed,) = [t for t in trials if counts(t)]  # the others are left uncounted
    assert "val_auc" in failed.user_attrs["tunefleet:error"]


def hyperband(tmp_path, digits, project, fleet, **kwargs):
    xt, yt, xv, yv = digits
    tuner = kt.Hyperband(
        build_model,
        objective="val_accuracy",
        max_epochs=3,  # 2 brackets: 3 x 1 epoch -> 1 x 3 epochs, then 2 x 3 epochs
        factor=3,
        seed=5,
        directory=tmp_path,
        project_name=project,
        fleet=fleet,
        **kwargs,
    )
    tuner.search(xt, yt, validation_data=(xv, yv), shuffle=False, verbose=0)
    return tuner


def test_hyperband_rounds_in_fleets_equal_one_by_one_rounds(tmp_path, digits):
    _, _, xv, yv = digits
    solo = hyperband(tmp_path, digits, "hb_solo", fleet=False)
    fleet = hyperband(tmp_path, digits, "hb_fleet", fleet=True)
    assert 0 < fleet.fleet_stats_["compile"] < fleet.fleet_stats_["train"]
    assert not hasattr(solo, "fleet_stats_")
    a, b = stored(tmp_path, "hb_solo").trials, stored(tmp_path, "hb_fleet").trials
    assert [t.params for t in a] == [t.params for t in b]
    assert sorted(t.state.name for t in b) == ["COMPLETE"] * 3 + ["PRUNED"] * 2
    continued = 0
    for one, many in zip(a, b, strict=True):
        assert many.state == one.state
        assert many.value == pytest.approx(one.value, abs=2e-3)
        assert sorted(many.intermediate_values) == sorted(one.intermediate_values)
        # the survivor of bracket 0 continues from its round-1 weights and optimizer state
        continued += sorted(many.intermediate_values) == [0, 1, 2] and many.number < 3
        for step, value in one.intermediate_values.items():
            assert many.intermediate_values[step] == pytest.approx(value, abs=2e-3)
        assert many.user_attrs[BEST_STEP_ATTR] == one.user_attrs[BEST_STEP_ATTR]
    assert continued == 1
    best = fleet.oracle.get_best_trials(1)[0]
    _, accuracy = fleet.get_best_models(1)[0].evaluate(xv, yv, verbose=0)
    assert accuracy == pytest.approx(best.score, abs=1e-6)
    assert not list((tmp_path / "hb_fleet" / "hyperband").iterdir())  # checkpoints removed


def test_hyperband_fleet_killed_mid_bracket_resumes(tmp_path, digits, monkeypatch):
    import tunefleet.fleet_batch as fleet_batch  # the one per-epoch callback reports

    calls = []

    def crash_in_the_second_round(study, reports):
        calls.append(len(reports))
        if len(calls) == 2:  # bracket 0's survivor, first epoch of its second round
            raise KeyboardInterrupt
        report_many(study, reports)

    monkeypatch.setattr(fleet_batch, "report_many", crash_in_the_second_round)
    with pytest.raises(KeyboardInterrupt):
        hyperband(tmp_path, digits, "hb_killed", fleet=True)
    monkeypatch.undo()
    trials = stored(tmp_path, "hb_killed").trials
    (interrupted,) = [t for t in trials if t.user_attrs.get("tunefleet:status") == "interrupted"]
    assert sorted(interrupted.intermediate_values) == [0]  # it had finished round 1
    hyperband(tmp_path, digits, "hb_killed", fleet=True)
    trials = stored(tmp_path, "hb_killed").trials
    counted = [t for t in trials if counts(t)]
    assert len(counted) == 5  # the plan's trials, the interrupted one continued
    (continuation,) = [
        t for t in counted if t.user_attrs.get("tunefleet:continues") == interrupted.number
    ]
    assert continuation.params == interrupted.params
    assert sorted(continuation.intermediate_values) == [0, 1, 2]
    assert continuation.intermediate_values[0] == interrupted.intermediate_values[0]


def test_hyperband_trains_an_unsupported_configuration_alone(tmp_path, digits, caplog):
    xt, yt, xv, yv = digits

    tuner = kt.Hyperband(
        build_sometimes_unsupported,
        objective="val_accuracy",
        max_epochs=3,
        seed=1,
        directory=tmp_path,
        project_name="hb_mixed",
        fleet=True,
    )
    with caplog.at_level(logging.INFO, logger="tunefleet"):
        tuner.search(xt, yt, validation_data=(xv, yv), verbose=0)
    trials = stored(tmp_path, "hb_mixed").trials
    assert {t.params["noise"] for t in trials} == {False, True}
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 3 + ["PRUNED"] * 2
    assert "UnitNormalization" in caplog.text and "one by one" in caplog.text
    assert tuner.fleet_stats_["train"] > 0
