"""Keras Tuner-style tuners on real Keras training (tiny MLPs on a slice of digits)."""

import gc
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import weakref

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits

import tunefleet as kt
from tunefleet.records import study_data
from tunefleet.storage import open_storage
from tunefleet.study import counts
from tunefleet.tuners import Choice, HyperModel, ObjectiveNotReported
from tunefleet.tuners.hyperparameter_types import HyperParameterError

N_TRAIN, N_VAL, BATCH = 256, 128, 64
MODELS = []  # weak references to every model built (memory test)
NAMES = []  # the names Keras gave them


def build_model(hp):
    """A small compiled MLP for digits; units and learning rate are tuned."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    MODELS.append(weakref.ref(model))
    NAMES.append(model.name)
    return model


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN : N_TRAIN + N_VAL], y[N_TRAIN : N_TRAIN + N_VAL]


def stored(tmp_path, project="p", study=None):
    url = f"sqlite:///{tmp_path / project / 'study.db'}"
    return optuna.load_study(study_name=study or project, storage=url)


def test_keras_tuner_positional_arguments_and_bad_settings(tmp_path):
    tuner = kt.RandomSearch(build_model, "val_accuracy", 5, 42, None, True, True, 1, 2)
    assert (tuner.max_trials, tuner.seed, tuner.max_retries_per_trial) == (5, 42, 1)
    assert tuner.max_consecutive_failed_trials == 2
    bayes = kt.BayesianOptimization(build_model, "val_loss", 4, 2, 1e-4, 2.6, 7)
    assert (bayes.num_initial_points, bayes.seed) == (2, 7)
    hyperband = kt.Hyperband(build_model, "val_loss", 9, 3, 2, 11)
    assert (hyperband.max_epochs, hyperband.hyperband_iterations, hyperband.seed) == (9, 2, 11)
    assert kt.GridSearch(build_model).max_trials is None
    with pytest.raises(ValueError, match="strategy='annealing' is not a known strategy"):
        kt.RandomSearch(build_model, strategy="annealing")
    with pytest.raises(ValueError, match="pruner='sometimes' is not a known pruner"):
        kt.RandomSearch(build_model, pruner="sometimes")
    with pytest.raises(ValueError, match="max_trials must be an integer >= 1"):
        kt.RandomSearch(build_model, max_trials=0)
    with pytest.raises(ValueError, match="cv must be an integer >= 2"):
        kt.RandomSearch(build_model, cv=1)
    with pytest.raises(TypeError, match="got a model instance"):
        kt.RandomSearch(build_model(kt.HyperParameters()))
    with pytest.raises(ValueError, match="pruner cannot be set on Hyperband"):
        kt.Hyperband(build_model, pruner="median")
    with pytest.raises(ValueError, match="Hyperband runs its rounds in one process"):
        kt.Hyperband(build_model, n_jobs=2)


def test_random_search_end_to_end(digits, tmp_path, capsys):
    x, y, xv, yv = digits
    tuner = kt.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_trials=3,
        seed=0,
        directory=tmp_path,
        project_name="p",
    )
    tuner.search_space_summary()
    out = capsys.readouterr().out
    assert "Default search space size: 2" in out and "units (Choice)" in out
    tuner.search(x, y, epochs=2, batch_size=BATCH, validation_data=(xv, yv))
    study = stored(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    for t in study.trials:  # each epoch reported; the value is the best epoch's
        assert sorted(t.intermediate_values) == [0, 1]
        assert t.value == max(t.intermediate_values.values())
    best = tuner.oracle.get_best_trials(3)
    assert [b.score for b in best] == sorted((t.value for t in study.trials), reverse=True)
    hps = tuner.get_best_hyperparameters(1)[0]
    assert hps.values == best[0].hyperparameters.values
    assert set(hps.values) == {"units", "lr"}
    model = tuner.get_best_models(1)[0]  # the best epoch's model, loaded in safe mode
    assert model.layers[0].units == hps.values["units"]
    _, accuracy = model.evaluate(xv, yv, batch_size=BATCH, verbose=0)
    assert accuracy == pytest.approx(best[0].score, abs=1e-6)
    rebuilt = tuner.hypermodel.build(hps)
    assert rebuilt.layers[0].units == hps.values["units"]
    tuner.results_summary(2)
    out = capsys.readouterr().out
    assert "Showing 2 best trials" in out and f"Score: {best[0].score}" in out
    frame = tuner.trials_dataframe()
    assert len(frame) == 3 and {"param_units", "param_lr", "value", "std"} <= set(frame.columns)


def test_rerun_resumes_with_a_message_and_overwrite_starts_over(digits, tmp_path, capsys):
    x, y, xv, yv = digits

    def tuner(max_trials, **kwargs):
        return kt.RandomSearch(
            build_model,
            "val_accuracy",
            max_trials,
            directory=tmp_path,
            project_name="p",
            **kwargs,
        )

    fit = {"epochs": 1, "batch_size": BATCH, "validation_data": (xv, yv)}
    tuner(2).search(x, y, **fit)
    assert study_data(stored(tmp_path)).strategy == "random"  # was "not recorded"
    first = {t.number: t.value for t in stored(tmp_path).trials}
    capsys.readouterr()
    tuner(3).search(x, y, **fit)
    out = capsys.readouterr().out
    assert "found 2 trials (2 completed, 0 pruned, 0 failed)" in out
    trials = stored(tmp_path).trials
    assert len(trials) == 3 and {t.number: t.value for t in trials[:2]} == first
    tuner(3).search(x, y, **fit)
    out = capsys.readouterr().out
    assert "found 3 trials" in out and "Nothing to run" in out
    assert len(stored(tmp_path).trials) == 3
    tuner(2).search(x, y, **fit)  # asks for fewer trials than stored
    out = capsys.readouterr().out
    assert "already holds 3 trials, at least the 2 asked for" in out
    assert (tmp_path / "p" / "trial_0002" / "model.keras").exists()
    tuner(1, overwrite=True).search(x, y, **fit)
    assert len(stored(tmp_path).trials) == 1
    assert not (tmp_path / "p" / "trial_0002").exists()


def build_uncompiled(hp):
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(hp.Int("units", 4, 8))])


def build_nothing(hp):
    hp.Int("units", 4, 8)


def build_twice(hp):
    hp.Int("units", 8, 16)
    return build_model(hp) if hp.Int("units", 8, 32) else None


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (build_uncompiled, TypeError, r"build_uncompiled\(\) must return a compiled.*not compiled"),
        (build_nothing, TypeError, r"build_nothing\(\) must return a compiled keras.Model.*None"),
        (build_twice, HyperParameterError, "'units' is declared twice with different settings"),
    ],
)
def test_bad_hypermodels_are_refused_before_any_trial(digits, tmp_path, build, error, match):
    x, y, xv, yv = digits
    tuner = kt.RandomSearch(build, "val_accuracy", 2, directory=tmp_path, project_name="p")
    with pytest.raises(error, match=match):
        tuner.search(x, y, epochs=1, validation_data=(xv, yv))
    assert not (tmp_path / "p" / "study.db").exists()  # nothing ran, nothing stored


def test_objective_the_model_does_not_report_fails_at_the_first_epoch(digits, tmp_path):
    x, y, _, _ = digits
    tuner = kt.RandomSearch(build_model, "val_accuracy", 3, directory=tmp_path, project_name="p")
    with pytest.raises(ObjectiveNotReported, match=r"reports: \['accuracy', 'loss'\].*validation"):
        tuner.search(x, y, epochs=3, batch_size=BATCH)  # no validation data
    # the first trial failed; no other ran (a fleet's other trials are left uncounted)
    (trial,) = [t for t in stored(tmp_path).trials if counts(t)]
    assert trial.state.name == "FAIL" and not trial.intermediate_values
    assert "val_accuracy" in trial.user_attrs["tunefleet:error"]


def build_wide(hp):
    """Declares a conditional hyperparameter the Keras Tuner way (scope outside the if)."""
    hp.Boolean("wide")
    with hp.conditional_scope("wide", [True]):
        hp.Float("momentum", 0.1, 0.2, step=0.1)
    return build_model(hp)


def test_grid_search_runs_every_point_once(digits, tmp_path, capsys):
    x, y, xv, yv = digits
    with pytest.raises(ValueError, match=r"hp.Float\('lr'\) has no step"):
        kt.GridSearch(build_wide, "val_accuracy", directory=tmp_path, project_name="g").search(
            x, y, epochs=1, validation_data=(xv, yv)
        )
    assert not (tmp_path / "g" / "study.db").exists()
    pinned = kt.HyperParameters()
    pinned.Fixed("lr", 0.01)  # overrides build_model's Float: the grid covers the rest

    def search():
        tuner = kt.GridSearch(
            build_wide,
            "val_accuracy",
            hyperparameters=pinned,
            directory=tmp_path,
            project_name="g",
        )
        tuner.search(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv))

    search()
    trials = stored(tmp_path, "g").trials
    points = sorted((t.params["units"], t.params["wide"], t.params.get("momentum")) for t in trials)
    expected = [(u, False, None) for u in (8, 16)] + [
        (u, True, m) for u in (8, 16) for m in (0.1, 0.2)
    ]
    assert points == sorted(expected)
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert all(t.user_attrs["tunefleet:hp"]["lr"] == 0.01 for t in trials)
    capsys.readouterr()
    search()  # resumed: every point is done
    assert "Nothing to run" in capsys.readouterr().out
    assert len(stored(tmp_path, "g").trials) == 6


def test_random_search_of_a_finite_space_runs_each_point_once(digits, tmp_path):
    # As scikit-learn's ParameterSampler and Keras Tuner: no point is drawn twice, and a
    # budget larger than the space runs each point once, with a warning (issue 13 item 6).
    x, y, xv, yv = digits
    pinned = kt.HyperParameters()
    pinned.Fixed("lr", 0.01)  # leaves 6 points: units x (not wide, wide x 2 momenta)

    def search(max_trials):
        tuner = kt.RandomSearch(
            build_wide,
            "val_accuracy",
            max_trials,
            seed=0,
            hyperparameters=pinned,
            directory=tmp_path,
            project_name="r",
        )
        tuner.search(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv))

    def points():
        trials = stored(tmp_path, "r").trials
        assert all(t.state.name == "COMPLETE" for t in trials)
        return [(t.params["units"], t.params["wide"], t.params.get("momentum")) for t in trials]

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # 4 of 6 points: no warning
        search(4)
    assert len(points()) == 4 == len(set(points()))
    with pytest.warns(UserWarning, match=r"6 distinct points, fewer than max_trials=9"):
        search(9)  # resumed: the 2 points not run yet
    expected = [(u, False, None) for u in (8, 16)] + [
        (u, True, m) for u in (8, 16) for m in (0.1, 0.2)
    ]
    assert sorted(points()) == sorted(expected)


def test_bayesian_optimization_uses_tpe_after_its_initial_points(digits, tmp_path):
    x, y, xv, yv = digits
    tuner = kt.BayesianOptimization(
        build_model,
        objective=kt.Objective("val_loss", "min"),
        max_trials=3,
        num_initial_points=2,
        seed=1,
        directory=tmp_path,
        project_name="b",
    )
    tuner.search(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv))
    study = stored(tmp_path, "b")
    assert study.direction.name == "MINIMIZE"
    assert isinstance(tuner.oracle.study.sampler, optuna.samplers.TPESampler)
    assert tuner.oracle.study.sampler._n_startup_trials == 2
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.score == min(t.value for t in study.trials)  # minimized


def test_cv_and_executions_train_each_fold_and_keep_per_fold_scores(digits, tmp_path):
    x, y, xv, _ = digits
    tuner = kt.RandomSearch(
        build_model,
        "val_accuracy",
        max_trials=1,
        cv=2,
        executions_per_trial=2,
        directory=tmp_path,
        project_name="cv",
    )
    with pytest.raises(ValueError, match="remove validation_data="):
        tuner.search(x, y, epochs=1, validation_data=(xv, y[:N_VAL]))
    tuner.search(x, y, epochs=1, batch_size=BATCH)
    (trial,) = stored(tmp_path, "cv").trials
    folds = trial.user_attrs["tunefleet:cv"]["test"]["val_accuracy"]
    assert len(folds) == 2 and trial.value == pytest.approx(np.mean(folds))
    # 2 folds x 2 executions, one epoch each: steps run * epochs + epoch
    assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
    assert folds[0] == pytest.approx(np.mean([trial.intermediate_values[s] for s in (0, 1)]))
    view = tuner.oracle.get_best_trials(1)[0]
    assert view.cv_scores == pytest.approx(folds)


def test_batch_size_and_epochs_are_tuned_from_search_arguments(digits, tmp_path):
    x, y, xv, yv = digits
    tuner = kt.RandomSearch(
        build_model, "val_accuracy", max_trials=3, seed=3, directory=tmp_path, project_name="fit"
    )
    tuner.search(
        x,
        y,
        validation_data=(xv, yv),
        batch_size=Choice("batch_size", [64, 128]),
        epochs=kt.Int(1, 2),
    )
    study = stored(tmp_path, "fit")
    seen = set()
    for t in study.trials:
        values = t.user_attrs["tunefleet:hp"]
        seen.add((values["batch_size"], values["epochs"]))
        assert len(t.intermediate_values) == values["epochs"]  # one report per epoch run
    assert len(seen) > 1
    for trial in tuner.oracle.get_best_trials(3):
        (model,) = [keras.saving.load_model(trial.model_path)]
        values = trial.hyperparameters.values
        steps = values["epochs"] * math.ceil(N_TRAIN / values["batch_size"])
        assert int(model.optimizer.iterations.numpy()) == steps  # that batch size, those epochs


class BatchSizeHyperModel(HyperModel):
    """Keras Tuner's documented way: tune the batch size in ``fit``."""

    def build(self, hp):
        return build_model(hp)

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", [32, 128]), **kwargs)


def test_hypermodel_subclass_tunes_fit_arguments(digits, tmp_path):
    x, y, xv, yv = digits
    tuner = kt.RandomSearch(
        BatchSizeHyperModel(), "val_accuracy", 2, seed=5, directory=tmp_path, project_name="hm"
    )
    tuner.search(x, y, epochs=1, validation_data=(xv, yv))
    for trial in tuner.oracle.get_best_trials(2):
        assert trial.hyperparameters.values["batch_size"] in (32, 128)
        model = keras.saving.load_model(trial.model_path)
        expected = math.ceil(N_TRAIN / trial.hyperparameters.values["batch_size"])
        assert int(model.optimizer.iterations.numpy()) == expected


def test_study_pruner_stops_trials_at_once(digits, tmp_path):
    x, y, xv, yv = digits
    tuner = kt.RandomSearch(
        build_model,
        "val_loss",
        2,
        directory=tmp_path,
        project_name="pr",
        pruner=optuna.pruners.ThresholdPruner(upper=0.01),  # any real loss is above it
    )
    tuner.search(x, y, epochs=4, batch_size=BATCH, validation_data=(xv, yv))
    trials = stored(tmp_path, "pr").trials
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert all(list(t.intermediate_values) == [0] for t in trials)  # stopped after epoch 1
    assert tuner.oracle.get_best_trials(1) == []


@pytest.mark.parametrize("fleet", [False, True])
def test_memory_is_released_between_trials(digits, tmp_path, fleet):
    x, y, xv, yv = digits
    MODELS.clear()
    NAMES.clear()
    tuner = kt.RandomSearch(
        build_model, "val_accuracy", 4, directory=tmp_path, project_name="m", fleet=fleet
    )
    tuner.search(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv))
    gc.collect()
    # the check build, then one per trial (fleets load the best epoch into that build)
    assert len(MODELS) == 5
    assert [ref() for ref in MODELS] == [None] * 5  # no trial's model survives
    if not fleet:  # Keras' global state is reset before every trial: names do not grow
        assert NAMES == ["sequential"] * 5


class CountingHyperModel(HyperModel):
    """Records every fit: (initial_epoch, epochs, optimizer steps already taken)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def build(self, hp):
        return build_model(hp)

    def fit(self, hp, model, *args, **kwargs):
        steps = int(model.optimizer.iterations.numpy())
        self.calls.append((kwargs.get("initial_epoch", 0), kwargs["epochs"], steps))
        return model.fit(*args, **kwargs)


def test_hyperband_announces_its_budget_and_continues_survivors(digits, tmp_path, capsys):
    x, y, xv, yv = digits
    hypermodel = CountingHyperModel()
    tuner = kt.Hyperband(
        hypermodel,
        "val_accuracy",
        max_epochs=3,
        factor=3,
        seed=0,
        directory=tmp_path,
        project_name="hb",
    )
    tuner.search(x, y, epochs=50, batch_size=BATCH, validation_data=(xv, yv))
    out = capsys.readouterr().out
    assert "search(epochs=50) is not used" in out
    assert "2 brackets, 5 trials, 11 epochs in total" in out
    assert sum(epochs - initial for initial, epochs, _ in hypermodel.calls) == 11
    continued = [c for c in hypermodel.calls if c[0] > 0]
    assert continued == [(1, 3, math.ceil(N_TRAIN / BATCH))]  # from round 1's saved state
    study = stored(tmp_path, "hb")
    assert study_data(study).strategy == "random + hyperband"  # what the report shows
    trials = study.trials
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 3 + ["PRUNED"] * 2
    survivor = next(
        t for t in trials if t.user_attrs["tunefleet:bracket"] == 0 and t.state.name == "COMPLETE"
    )
    assert sorted(survivor.intermediate_values) == [0, 1, 2]
    assert survivor.value == max(survivor.intermediate_values.values())
    assert not os.listdir(tmp_path / "hb" / "hyperband")  # round checkpoints cleaned up
    assert tuner.get_best_models(1)[0].layers[0].units in (8, 16)
    with pytest.raises(TypeError, match="takes no max_trials"):
        kt.Hyperband(build_model, "val_accuracy", max_trials=5)
    with pytest.raises(ValueError, match="epochs cannot be tuned with Hyperband"):
        tuner.search(x, y, epochs=kt.Int(1, 3), validation_data=(xv, yv))


def test_hyperband_cross_validates_each_configuration(digits, tmp_path):
    x, y, _, _ = digits
    tuner = kt.Hyperband(
        build_model,
        "val_accuracy",
        max_epochs=2,
        factor=2,
        cv=2,
        directory=tmp_path,
        project_name="hbcv",
    )
    assert tuner.plan().n_trials == 4
    tuner.hyperband_iterations, tuner.max_epochs = 1, 1  # one configuration, one epoch
    tuner.search(x, y, batch_size=BATCH)
    (trial,) = stored(tmp_path, "hbcv").trials
    folds = trial.user_attrs["tunefleet:cv"]["test"]["val_accuracy"]
    assert len(folds) == 2 and trial.value == pytest.approx(np.mean(folds))
    assert sorted(trial.intermediate_values) == [0, 1]  # run * max_epochs + epoch


KILLED_HYPERBAND = textwrap.dedent(
    """
    import json, os, sys, time
    import tunefleet as kt
    import keras
    from sklearn.datasets import load_digits

    project, log = sys.argv[1], sys.argv[2]

    class Logged(kt.HyperModel):
        def build(self, hp):
            model = keras.Sequential([keras.Input((64,)),
                keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
                keras.layers.Dense(10, activation="softmax")])
            model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
                          "sparse_categorical_crossentropy", metrics=["accuracy"])
            return model

        def fit(self, hp, model, *args, **kwargs):
            hold = os.path.join(project, "hold")
            if kwargs.get("initial_epoch", 0) > 0 and os.path.exists(hold):
                open(hold + ".held", "w").close()  # a survivor's round: wait to be killed
                time.sleep(300)
            with open(log, "a") as f:
                f.write(json.dumps([kwargs.get("initial_epoch", 0), kwargs["epochs"],
                                    int(model.optimizer.iterations.numpy())]) + "\\n")
            return model.fit(*args, **kwargs)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    tuner = kt.Hyperband(Logged(), "val_accuracy", max_epochs=3, factor=3, seed=0,
                         directory=project, project_name="hb")
    tuner.search(X[:256], y[:256], batch_size=64, validation_data=(X[256:384], y[256:384]))
    """
)


def _log(path):
    return [tuple(c) for c in map(eval, path.read_text().splitlines())] if path.exists() else []


@pytest.mark.slow
def test_hyperband_killed_mid_bracket_resumes_to_the_planned_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'hb' / 'study.db'}"
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    (tmp_path / "hold").touch()  # bracket 0's survivor waits at its last round, to be killed
    process = subprocess.Popen([sys.executable, "-c", KILLED_HYPERBAND, str(tmp_path), str(first)])
    deadline = time.monotonic() + 300
    while not (tmp_path / "hold.held").exists():
        assert process.poll() is None, "the search ended before it could be killed"
        assert time.monotonic() < deadline, "bracket 0 never reached its last round"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (tmp_path / "hold").unlink()
    killed_at = optuna.load_study(study_name="hb", storage=open_storage(url)).trials
    survivor = [t for t in killed_at if t.state.name == "RUNNING"]
    assert [t.user_attrs["tunefleet:hyperband"]["epochs"] for t in survivor] == [1]
    before = {t.number: (t.state.name, t.value) for t in killed_at if t.state.name != "RUNNING"}
    assert sorted(s for s, _ in before.values()) == ["PRUNED", "PRUNED"]
    saved = [
        t.number
        for t in optuna.load_study(study_name="hb", storage=url).trials
        if t.state.name == "RUNNING" and "tunefleet:hyperband" in t.user_attrs
    ]
    assert len(saved) == 1

    resumed = subprocess.run(
        [sys.executable, "-c", KILLED_HYPERBAND, str(tmp_path), str(second)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "found 2 trials (0 completed, 2 pruned, 0 failed; 1 interrupted" in resumed.stdout
    assert "5 trials, 11 epochs in total" in resumed.stdout
    trials = optuna.load_study(study_name="hb", storage=url).trials
    counted = [t for t in trials if "tunefleet:status" not in t.user_attrs]
    assert len(counted) == 5  # exactly the plan
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in counted)
    assert {
        n: (t.state.name, t.value) for n, t in ((t.number, t) for t in trials) if n in before
    } == before
    interrupted = [t for t in trials if t.user_attrs.get("tunefleet:status") == "interrupted"]
    assert [t.number for t in interrupted] == saved
    (continuation,) = [t for t in trials if t.user_attrs.get("tunefleet:continues") == saved[0]]
    assert continuation.state.name == "COMPLETE"
    assert continuation.params == interrupted[0].params
    assert sorted(continuation.intermediate_values) == [0, 1, 2]  # round 1's epoch kept
    calls = _log(second)
    # nothing finished is trained again; the survivor goes on from its saved round
    # (weights and optimizer state: 4 steps done), then bracket 1 runs
    assert calls[0] == (1, 3, 4)
    assert sorted(calls[1:]) == [(0, 3, 0), (0, 3, 0)]


KERAS_TUNER_SCRIPT = textwrap.dedent(
    """
    import sys

    import keras
    import keras_tuner as kt
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, y_train, x_val, y_val = x[:256], y[:256], x[256:384], y[256:384]


    def build_model(hp):
        model = keras.Sequential()
        model.add(keras.Input(shape=(64,)))
        model.add(
            keras.layers.Dense(
                units=hp.Int("units", min_value=8, max_value=16, step=8),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
        if hp.Boolean("dropout"):
            model.add(keras.layers.Dropout(rate=0.25))
        model.add(keras.layers.Dense(10, activation="softmax"))
        learning_rate = hp.Float("lr", min_value=1e-3, max_value=3e-2, sampling="log")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model


    build_model(kt.HyperParameters())

    tuner = kt.RandomSearch(
        hypermodel=build_model,
        objective="val_accuracy",
        max_trials=2,
        executions_per_trial=1,
        overwrite=True,
        directory=sys.argv[1],
        project_name="helloworld",
    )
    tuner.search_space_summary()
    tuner.search(x_train, y_train, epochs=2, validation_data=(x_val, y_val))
    models = tuner.get_best_models(num_models=1)
    best_model = models[0]
    best_model.summary()
    tuner.results_summary()
    best_hps = tuner.get_best_hyperparameters(5)
    model = build_model(best_hps[0])
    model.fit(x=x_train, y=y_train, epochs=1, verbose=0)


    class MyHyperModel(kt.HyperModel):
        def build(self, hp):
            return build_model(hp)

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(*args, batch_size=hp.Choice("batch_size", [32, 64]), **kwargs)


    tuner = kt.Hyperband(
        MyHyperModel(),
        objective=kt.Objective("val_accuracy", direction="max"),
        max_epochs=2,
        factor=2,
        overwrite=True,
        directory=sys.argv[1],
        project_name="tune_hypermodel",
    )
    tuner.search(x_train, y_train, validation_data=(x_val, y_val),
                 callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=3)])
    best = tuner.oracle.get_best_trials(1)[0]
    print("BEST", best.trial_id, best.score, sorted(best.hyperparameters.values))
    """
)


@pytest.mark.slow
def test_a_keras_tuner_script_runs_with_only_its_import_changed(tmp_path):
    script = KERAS_TUNER_SCRIPT.replace("import keras_tuner as kt", "import tunefleet as kt")
    changed = [
        (a, b)
        for a, b in zip(KERAS_TUNER_SCRIPT.splitlines(), script.splitlines(), strict=True)
        if a != b
    ]
    assert changed == [("import keras_tuner as kt", "import tunefleet as kt")]
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Search space summary" in out and "units (Int)" in out
    assert "Results summary" in out and "Showing 2 best trials" in out
    assert "2 brackets, 4 trials, 7 epochs in total" in out
    best = [line for line in out.splitlines() if line.startswith("BEST")]
    assert best and "'batch_size'" in best[0]
    assert len(stored(tmp_path, "helloworld").trials) == 2
    assert len(stored(tmp_path, "tune_hypermodel").trials) == 4


@pytest.mark.slow
def test_the_migration_script_is_keras_tuner_code(tmp_path):
    """The script of the migration test runs under Keras Tuner itself (when installed)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import keras_tuner"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip("keras_tuner is not importable here (pip install tunefleet[bench])")
    done = subprocess.run(
        [sys.executable, "-c", KERAS_TUNER_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "BEST" in done.stdout


class ReturnsValues(HyperModel):
    """A custom ``fit`` returning a number, or a dict, instead of the History."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def build(self, hp):
        return build_model(hp)

    def fit(self, hp, model, x, y, validation_data=None, **kwargs):
        model.fit(x, y, **kwargs)
        loss, accuracy = model.evaluate(*validation_data, verbose=0)
        if self.kind == "number":
            return accuracy
        return {"accuracy_on_val": accuracy, "loss_on_val": loss}


def test_custom_fit_may_return_a_number_or_a_dict(digits, tmp_path):
    x, y, xv, yv = digits
    tuner = kt.RandomSearch(
        ReturnsValues("number"),
        kt.Objective("score", "max"),
        1,
        directory=tmp_path,
        project_name="n",
    )
    tuner.search(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv))
    (trial,) = stored(tmp_path, "n").trials
    model = tuner.get_best_models(1)[0]
    assert trial.value == pytest.approx(model.evaluate(xv, yv, verbose=0)[1], abs=1e-6)
    tuner = kt.RandomSearch(
        ReturnsValues("dict"), "val_accuracy", 1, directory=tmp_path, project_name="d"
    )
    with pytest.raises(ObjectiveNotReported, match=r"\['accuracy_on_val', 'loss_on_val'\]"):
        tuner.search(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv))


class FailsOnBigBatches(HyperModel):
    """Training raises for batch size 128 and for 16 units (e.g. out of memory)."""

    def build(self, hp):
        return build_model(hp)

    def fit(self, hp, model, *args, batch_size=None, **kwargs):
        if batch_size == 128 or hp.get("units") == 16:
            raise RuntimeError(f"boom with batch_size={batch_size}, units={hp.get('units')}")
        return model.fit(*args, batch_size=batch_size, **kwargs)


def test_failed_trials_are_stored_and_too_many_in_a_row_stop_the_search(digits, tmp_path):
    x, y, xv, yv = digits
    pinned = kt.HyperParameters()
    pinned.Fixed("lr", 0.01)
    grid = kt.GridSearch(
        FailsOnBigBatches(),
        "val_accuracy",
        hyperparameters=pinned,
        directory=tmp_path,
        project_name="f",
    )
    grid.search(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv))
    states = {t.params["units"]: t for t in stored(tmp_path, "f").trials}
    assert states[8].state.name == "COMPLETE"  # the search went on past the failure
    assert states[16].state.name == "FAIL"
    assert "RuntimeError: boom" in states[16].user_attrs["tunefleet:error"]
    assert grid.oracle.get_trial(states[16].number).status == "FAILED"
    tuner = kt.RandomSearch(
        FailsOnBigBatches(),
        "val_accuracy",
        6,
        max_consecutive_failed_trials=2,
        directory=tmp_path,
        project_name="f2",
    )
    with pytest.raises(
        RuntimeError, match=r"(?s)2 consecutive trials failed.*boom with batch_size=128"
    ):
        tuner.search(
            x, y, epochs=1, batch_size=Choice("batch_size", [128]), validation_data=(xv, yv)
        )
    assert [t.state.name for t in stored(tmp_path, "f2").trials] == ["FAIL", "FAIL"]


def test_studies_sharing_a_project_folder_keep_their_models_apart(digits, tmp_path):
    # The script as it is (its project's study.db) and the same script on another storage
    # (as `tunefleet tune --storage other.db` runs it): trial numbers overlap.
    x, y, xv, yv = digits
    fit = {"epochs": 1, "batch_size": BATCH, "validation_data": (xv, yv)}

    def tuner(**kwargs):
        return kt.RandomSearch(
            build_model, "val_accuracy", 2, directory=tmp_path, project_name="p", **kwargs
        )

    first = tuner()
    first.search(x, y, **fit)
    own = tmp_path / "p" / "trial_0000" / "model.keras"
    before = own.read_bytes()
    other = tuner(storage=f"sqlite:///{tmp_path / 'other.db'}")
    other.search(x, y, **fit)
    assert own.read_bytes() == before  # not overwritten by the other study's trial 0
    (folder,) = (tmp_path / "p" / "studies").iterdir()
    assert folder.name.startswith("p-") and (folder / "trial_0000" / "model.keras").exists()
    assert other.models_dir() == str(folder) and first.models_dir() == str(tmp_path / "p")
    assert other.oracle.get_best_trials(1)[0].model_path.startswith(str(folder))
    assert other.get_best_models(1)[0] is not None
    other_again = tuner(storage=f"sqlite:///{tmp_path / 'other.db'}", overwrite=True)
    other_again.search(x, y, **fit)  # starts over in its own folder only
    assert own.read_bytes() == before and other_again.models_dir() == str(folder)
