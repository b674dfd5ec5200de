"""The tuners on the engine: the dispatcher reads ``n_jobs`` for them as for the sklearn
face, and Hyperband's brackets ask and tell through the engine's steps."""

import keras
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import tunefleet
import tunefleet as kt
import tunefleet.dispatch as dispatch
import tunefleet.tuners.brackets as brackets_module
from tunefleet.attrs import CV_ATTR, PROGRESS_ATTR
from tunefleet.study import counts

N_TRAIN, N_VAL, BATCH = 128, 64, 64


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
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


@pytest.fixture
def pools(monkeypatch):
    """Record the worker processes a ProcessPool would start; run its trials here instead."""
    started = []

    def run(self, study, budget, *, grid_points=None, on_trial_end=None, poll=None):
        started.append(self.n_workers)
        dispatch.InProcess(self.objective).run(
            study, budget, grid_points=grid_points, on_trial_end=on_trial_end
        )

    monkeypatch.setattr(dispatch.ProcessPool, "run", run)
    return started


def search_with(face, n_jobs, tmp_path, digits):
    x, y, xv, yv = digits
    if face == "tuner":
        tuner = kt.RandomSearch(
            build_model,
            "val_accuracy",
            max_trials=2,
            seed=0,
            n_jobs=n_jobs,
            fleet=False,
            directory=tmp_path,
            project_name="p",
        )
        tuner.search(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv))
        return [t.state.name for t in stored(tmp_path, "p").trials]
    tmp_path.mkdir()
    search = tunefleet.RandomizedSearchCV(
        LogisticRegression(max_iter=200),
        {"C": tunefleet.Float(1e-2, 1e2, log=True)},
        n_iter=2,
        cv=2,
        n_jobs=n_jobs,
        random_state=0,
        storage=f"sqlite:///{tmp_path / 'sk.db'}",
    ).fit(x, y)
    return [t.state.name for t in search.study_.trials]


@pytest.mark.parametrize("face", ["tuner", "sklearn"])
def test_n_jobs_minus_two_means_all_cores_but_one_on_every_face(
    face, tmp_path, digits, pools, monkeypatch
):
    monkeypatch.setattr(dispatch.os, "cpu_count", lambda: 3)
    assert search_with(face, -2, tmp_path / "three", digits) == ["COMPLETE"] * 2
    assert pools == [2]  # 3 cores, all but one: two worker processes
    monkeypatch.setattr(dispatch.os, "cpu_count", lambda: 2)
    assert search_with(face, -2, tmp_path / "two", digits) == ["COMPLETE"] * 2
    assert pools == [2]  # 2 cores, all but one: in this process, no pool


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_a_bad_n_jobs_is_refused_with_the_same_message_on_every_face(bad, tmp_path, digits):
    message = rf"n_jobs must be a non-zero integer or None \(-1: all CPU cores\), got {bad!r}\."
    with pytest.raises(ValueError, match=message):
        kt.RandomSearch(build_model, n_jobs=bad, directory=tmp_path)
    with pytest.raises(ValueError, match=message):
        kt.Hyperband(build_model, max_epochs=3, n_jobs=bad, directory=tmp_path)
    tuner = kt.RandomSearch(build_model, directory=tmp_path)
    tuner.n_jobs = bad  # set after construction: refused by search, before any trial
    x, y, xv, yv = digits
    with pytest.raises(ValueError, match=message):
        tuner.search(x, y, epochs=1, validation_data=(xv, yv))
    assert not (tmp_path / "untitled_project" / "study.db").exists()
    with pytest.raises(ValueError, match=message):
        tunefleet.RandomizedSearchCV(LogisticRegression(), {"C": [1.0]}, n_iter=1, n_jobs=bad).fit(
            x, y
        )


def test_hyperband_n_jobs_is_read_as_joblib_does(monkeypatch):
    monkeypatch.setattr(dispatch.os, "cpu_count", lambda: 2)
    kt.Hyperband(build_model, max_epochs=3, n_jobs=-2)  # all cores but one: one process
    with pytest.raises(ValueError, match="n_jobs=-1: Hyperband runs its rounds in one process"):
        kt.Hyperband(build_model, max_epochs=3, n_jobs=-1)


class FinishedElsewhere(kt.HyperModel):
    """Another process finishes bracket 0's survivor before its last round trains."""

    def __init__(self, url):
        super().__init__()
        self.url = url
        self.finished = []

    def build(self, hp):
        return build_model(hp)

    def fit(self, hp, model, *args, **kwargs):
        if kwargs.get("initial_epoch", 0) > 0 and not self.finished:
            other = optuna.storages.RDBStorage(self.url)  # another handle on the storage
            study_id = other.get_study_id_from_name("hb")
            (running,) = other.get_all_trials(study_id, states=(TrialState.RUNNING,))
            other.set_trial_state_values(running._trial_id, TrialState.COMPLETE, [0.25])
            self.finished.append(running.number)
        return model.fit(*args, **kwargs)


def assert_plan_held(study, finished_number):
    trials = study.trials
    assert len(trials) == 5  # the plan's trials, none asked twice
    assert all(counts(t) for t in trials)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    other = trials[finished_number]
    assert (other.state, other.value) == (TrialState.COMPLETE, 0.25)  # as stored elsewhere
    assert CV_ATTR not in other.user_attrs  # nothing of ours written over it


def test_hyperband_trial_finished_elsewhere_while_it_trains(tmp_path, digits, capsys):
    x, y, xv, yv = digits
    url = f"sqlite:///{tmp_path / 'hb' / 'study.db'}"
    hypermodel = FinishedElsewhere(url)
    tuner = kt.Hyperband(
        hypermodel,
        "val_accuracy",
        max_epochs=3,
        factor=3,
        seed=0,
        directory=tmp_path,
        project_name="hb",
    )
    tuner.search(x, y, batch_size=BATCH, validation_data=(xv, yv))
    (number,) = hypermodel.finished
    study = stored(tmp_path, "hb")
    assert_plan_held(study, number)
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 3 + ["PRUNED"] * 2
    out = capsys.readouterr().out
    assert out.count(f"Trial {number} COMPLETE") == 1  # shown once, as stored
    assert not list((tmp_path / "hb" / "hyperband").iterdir())  # its checkpoints removed


def test_hyperband_trial_finished_elsewhere_before_it_is_told(tmp_path, digits, monkeypatch):
    x, y, xv, yv = digits
    url = f"sqlite:///{tmp_path / 'hb' / 'study.db'}"
    finished = []
    write_results = brackets_module.Bracket._write_results

    def finish_first(self, member, extra=None):
        if not finished:  # the first loser of a round: finished by another process now
            other = optuna.storages.RDBStorage(url)
            other.set_trial_state_values(member.trial._trial_id, TrialState.COMPLETE, [0.25])
            finished.append(member.trial.number)
        write_results(self, member, extra)

    monkeypatch.setattr(brackets_module.Bracket, "_write_results", finish_first)
    tuner = kt.Hyperband(
        build_model,
        "val_accuracy",
        max_epochs=3,
        factor=3,
        seed=0,
        fleet=False,
        directory=tmp_path,
        project_name="hb",
    )
    tuner.search(x, y, batch_size=BATCH, validation_data=(xv, yv))
    study = stored(tmp_path, "hb")
    assert_plan_held(study, finished[0])
    assert PROGRESS_ATTR in study.trials[finished[0]].user_attrs  # written before, kept
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 4 + ["PRUNED"]
    assert len(tuner.oracle.trials) == 5


def test_hyperband_member_finished_elsewhere_between_rounds_gives_its_place(
    tmp_path, digits, monkeypatch
):
    # Finished elsewhere after its round trained (as a fleet member is: a fleet skips the
    # reports another process refuses): the bracket finds it when it promotes, and keeps
    # the best of the others.
    x, y, xv, yv = digits
    url = f"sqlite:///{tmp_path / 'hb' / 'study.db'}"
    promote = brackets_module.Bracket._promote
    finished = []

    def finish_best_then_promote(self, r, keep):
        if not finished:
            best = max(self._alive(), key=lambda m: m.score())
            other = optuna.storages.RDBStorage(url)
            other.set_trial_state_values(best.trial._trial_id, TrialState.COMPLETE, [0.25])
            finished.append(best.trial.number)
        promote(self, r, keep)

    monkeypatch.setattr(brackets_module.Bracket, "_promote", finish_best_then_promote)
    tuner = kt.Hyperband(
        build_model,
        "val_accuracy",
        max_epochs=3,
        factor=3,
        seed=0,
        fleet=False,
        directory=tmp_path,
        project_name="hb",
    )
    tuner.search(x, y, batch_size=BATCH, validation_data=(xv, yv))
    study = stored(tmp_path, "hb")
    assert_plan_held(study, finished[0])
    bracket0 = [t for t in study.trials if t.user_attrs.get("tunefleet:bracket") == 0]
    survivors = [t for t in bracket0 if t.number != finished[0] and t.state.name == "COMPLETE"]
    assert len(survivors) == 1  # the place went to the next best, trained to the end
    assert max(survivors[0].intermediate_values) == 2
    assert np.isfinite(survivors[0].value)
