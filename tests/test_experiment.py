"""A stored study is continued only by the same experiment; its labels and results hold up."""

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap

import keras
import numpy as np
import optuna
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import tunefleet
from estimators import SlowClassifier, iris
from tunefleet.attrs import CV_ATTR, EXPERIMENT_ATTR, FORCED_ATTR
from tunefleet.results import cv_results, finished_trials
from tunefleet.space import choice_label, parse_grid
from tunefleet.study import open_study


def snapshot(url, name):
    """Everything stored about a study that a refused resume must leave as it was."""
    study = optuna.load_study(study_name=name, storage=url)
    return study.user_attrs, [(t.number, t.state, t.values, t.user_attrs) for t in study.trials]


def search(url, estimator=None, **kwargs):
    params = {"cv": 3, "storage": url, "study_name": "s", "n_iter": 2, "random_state": 0}
    return tunefleet.RandomizedSearchCV(
        SlowClassifier() if estimator is None else estimator,
        {"C": tunefleet.Float(1e-2, 1e2, log=True)},
        **{**params, **kwargs},
    )


@pytest.mark.parametrize(
    "change, data, where",
    [
        ({"scoring": "neg_log_loss"}, None, "scoring: stored None, given 'neg_log_loss'"),
        ({"estimator": SlowClassifier(delay=0.01)}, None, "estimator.delay: stored 0.0"),
        ({"estimator": LogisticRegression()}, None, "estimator: stored estimators:Slow"),
        ({"cv": 4}, None, "cv.settings.n_splits: stored 3, given 4"),
        ({"cv": KFold(3, shuffle=True, random_state=0)}, None, "cv: stored sklearn"),
        ({}, slice(0, 120), "data.X.shape[0]: stored 150, given 120"),
        ({}, "shuffled", "data.X.content: stored"),
    ],
)
def test_a_resume_by_another_experiment_is_refused_naming_it_and_loses_nothing(
    tmp_path, change, data, where
):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    search(url).fit(X, y)
    before = snapshot(url, "s")
    if data == "shuffled":
        X = X.copy()
        X[[0, 1]] = X[[1, 0]]
    elif data is not None:
        X, y = X[data], y[data]
    with pytest.raises(ValueError, match=r"(?s)holds the trials of another experiment") as err:
        search(url, n_iter=4, **change).fit(X, y)
    assert where in str(err.value)
    assert "resume='force'" in str(err.value) and "nothing stored was changed" in str(err.value)
    assert snapshot(url, "s") == before


def test_the_same_experiment_resumes(tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    search(url).fit(X, y)
    resumed = search(url, n_iter=3).fit(X.copy(), list(y))  # equal data, other containers
    assert len(resumed.cv_results_["params"]) == 3


def test_a_forced_resume_runs_warns_and_records_what_differed(tmp_path, caplog):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    search(url).fit(X, y)
    forced = search(url, n_iter=3, cv=4, resume="force")
    with caplog.at_level(logging.WARNING, logger="tunefleet"):
        forced.fit(X, y)
    assert "resume='force'" in caplog.text and "cv.settings.n_splits" in caplog.text
    study = optuna.load_study(study_name="s", storage=url)
    assert len(study.trials) == 3
    (record,) = study.user_attrs[FORCED_ATTR]
    assert record["differences"] == [["cv.settings.n_splits", "3", "4"]]
    assert study.user_attrs[EXPERIMENT_ATTR]["cv"]["settings"]["n_splits"] == 4
    # the study now holds 3- and 4-fold trials: results are built, each over its own folds
    results = forced.cv_results_
    assert np.isnan(results["split3_test_score"][:2]).all()
    assert not np.isnan(results["split3_test_score"][2])
    search(url, n_iter=3, cv=4).fit(X, y)  # the new experiment is now the stored one


def test_resume_is_validated_and_kept_as_given(tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    with pytest.raises(ValueError, match=r"resume must be 'auto' .* or 'force' .*got 'yes'"):
        search(url, resume="yes").fit(X, y)
    with pytest.raises(KeyError):
        optuna.load_study(study_name="s", storage=url)  # nothing was created
    assert clone(search(url, resume="force")).get_params()["resume"] == "force"
    with pytest.raises(ValueError, match="resume must be"):
        tunefleet.Hyperband(build, objective="val_accuracy", directory=tmp_path, resume=True)


def test_a_study_stored_before_experiments_were_recorded_resumes_and_records_one(tmp_path):
    X, y = iris()
    path = tmp_path / "tune.db"
    url = f"sqlite:///{path}"
    search(url).fit(X, y)
    with sqlite3.connect(path) as db:  # as an earlier tunefleet left it
        db.execute("DELETE FROM study_user_attributes WHERE key = ?", (EXPERIMENT_ATTR,))
    assert EXPERIMENT_ATTR not in optuna.load_study(study_name="s", storage=url).user_attrs
    assert len(search(url, n_iter=3).fit(X, y).cv_results_["params"]) == 3
    assert EXPERIMENT_ATTR in optuna.load_study(study_name="s", storage=url).user_attrs
    with pytest.raises(ValueError, match="another experiment"):
        search(url, n_iter=4, scoring="f1_macro").fit(X, y)


def test_results_of_trials_with_unequal_fold_counts(tmp_path):
    space = parse_grid({"C": [0.1, 1.0, 10.0]})
    study = optuna.create_study(direction="maximize")
    for C, folds in ((0.1, [0.5, 0.7, 0.9]), (1.0, [0.8] * 5), (10.0, [0.6, 0.6])):
        study.add_trial(
            optuna.trial.create_trial(
                params={"C": C},
                distributions={"C": space.subspaces[0][0].distribution},
                value=float(np.mean(folds)),
                user_attrs={
                    CV_ATTR: {
                        "test": {"score": folds},
                        "train": {"score": folds},
                        "fit_time": [0.1] * len(folds),
                        "score_time": [0.1] * len(folds),
                    }
                },
            )
        )
    results = cv_results(
        finished_trials(study.trials),
        space,
        metrics=["score"],
        n_splits=3,
        return_train_score=True,
        error_score=np.nan,
    )
    np.testing.assert_allclose(results["mean_test_score"], [0.7, 0.8, 0.6])
    assert list(results["rank_test_score"]) == [2, 1, 3]
    np.testing.assert_allclose(results["split4_test_score"], [np.nan, 0.8, np.nan])
    np.testing.assert_allclose(results["split2_train_score"], [0.9, 0.8, np.nan])
    np.testing.assert_allclose(results["std_test_score"][2], 0.0)


def close_but_different():
    """Two models whose reprs agree on their first 80 characters (CV 0.96 against 0.667)."""
    settings = dict(C=0.5, class_weight="balanced", intercept_scaling=2, solver="newton-cg")
    good = LogisticRegression(**settings, max_iter=300, tol=1e-3, warm_start=True)
    poor = LogisticRegression(**settings, max_iter=1, tol=1e-3, warm_start=True)
    return good, poor


def test_choices_that_differ_after_80_characters_get_different_labels():
    good, poor = close_but_different()
    assert repr(good)[:80] == repr(poor)[:80]
    assert choice_label(good) != choice_label(poor)
    assert choice_label(good) == choice_label(clone(good))  # equal objects, equal labels
    assert choice_label(LogisticRegression(C=2.0)) == "LogisticRegression(C=2.0)"  # as stored


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_resume_never_reuses_the_scores_of_a_model_that_differs_past_80_characters(tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    good, poor = close_but_different()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    tunefleet.GridSearchCV(pipe, {"clf": [good]}, cv=3, storage=url, study_name="g").fit(X, y)
    before = snapshot(url, "g")
    with pytest.raises(ValueError, match="different search space"):
        tunefleet.GridSearchCV(pipe, {"clf": [poor]}, cv=3, storage=url, study_name="g").fit(X, y)
    assert snapshot(url, "g") == before


FINGERPRINT = textwrap.dedent(
    """
    import json, os
    from tunefleet.space import parse_grid
    print(parse_grid({"f": [json.dumps, os.path.join, None]}).fingerprint())
    """
)


def test_a_space_of_functions_has_the_same_fingerprint_in_another_process():
    import json

    here = parse_grid({"f": [json.dumps, os.path.join, None]}).fingerprint()
    there = subprocess.run(
        [sys.executable, "-c", FINGERPRINT], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert there == here
    assert "json:dumps" in here


def build(hp):
    """A tiny compiled MLP for digits."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [4, 8]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_tuner_resume_with_other_data_is_refused_unless_forced(tmp_path, caplog):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    x, yy, val = X[:128], y[:128], (X[128:192], y[128:192])

    def tuner(max_trials, **kwargs):
        return tunefleet.RandomSearch(
            build,
            objective="val_accuracy",
            max_trials=max_trials,
            directory=tmp_path,
            project_name="p",
            seed=0,
            fleet=False,
            **kwargs,
        )

    tuner(1).search(x, yy, epochs=1, batch_size=64, validation_data=val)
    url = f"sqlite:///{tmp_path / 'p' / 'study.db'}"
    before = snapshot(url, "p")
    with pytest.raises(
        ValueError, match=r"(?s)another experiment.*data\.x\.shape\[0\]: stored 128"
    ):
        tuner(2).search(x[:96], yy[:96], epochs=1, batch_size=64, validation_data=val)
    assert snapshot(url, "p") == before
    with caplog.at_level(logging.WARNING, logger="tunefleet"):
        tuner(2, resume="force").search(
            x[:96], yy[:96], epochs=1, batch_size=64, validation_data=val
        )
    assert "data.x" in caplog.text
    assert len(optuna.load_study(study_name="p", storage=url).trials) == 2


def test_a_space_stored_with_cut_labels_is_refused_with_guidance():
    good, _ = close_but_different()
    space = parse_grid({"clf": [good]})
    cut = " ".join(repr(good).split())[:77] + "..."  # how earlier versions labelled it
    legacy = space.fingerprint().replace(choice_label(good), cut)
    storage = optuna.storages.InMemoryStorage()
    sampler, pruner = optuna.samplers.RandomSampler(), optuna.pruners.NopPruner()
    open_study(storage, "old", sampler=sampler, pruner=pruner, fingerprint=legacy)
    with pytest.raises(ValueError, match=r"(?s)different search space.*cut at 80 characters"):
        open_study(storage, "old", sampler=sampler, pruner=pruner, fingerprint=space.fingerprint())
