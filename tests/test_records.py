"""One reader of stored trials: both faces' ``trials_dataframe``, the CLI and the records agree."""

import json
import math

import keras
import numpy as np
import optuna
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import tunefleet
from tunefleet.attrs import CV_ATTR, ERROR_ATTR, STATUS_ATTR, SURPLUS
from tunefleet.cli import app, trial_rows
from tunefleet.records import study_data, trials_dataframe

COLUMNS = ["number", "state", "value", "std", "duration", "param_units", "error", "status"]


class Units(ClassifierMixin, BaseEstimator):
    """A classifier with a ``units`` parameter, as the tuner's model below has."""

    def __init__(self, units=4):
        self.units = units

    def fit(self, X, y):
        self.model_ = LogisticRegression(C=self.units / 100, max_iter=200).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [4, 8]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:256] / 16.0).astype("float32"), y[:256]


@pytest.fixture(scope="module")
def searches(digits, tmp_path_factory):
    """A tiny grid search and a tiny tuner over the same parameter, 2 folds each."""
    folder = tmp_path_factory.mktemp("records")
    search = tunefleet.GridSearchCV(
        Units(), {"units": [4, 8]}, cv=2, storage=f"sqlite:///{folder / 'sk.db'}", study_name="sk"
    ).fit(*digits)
    tuner = tunefleet.RandomSearch(
        build_model, "val_accuracy", max_trials=2, cv=2, directory=folder, project_name="kt"
    )
    tuner.search(*digits, epochs=1, batch_size=64, verbose=0)
    return search, tuner, folder


def test_both_faces_give_the_same_columns(searches):
    search, tuner, _ = searches
    sk, kt = search.trials_dataframe(), tuner.trials_dataframe()
    assert list(sk.columns) == list(kt.columns) == COLUMNS
    for frame in (sk, kt):
        assert len(frame) == 2 and set(frame["state"]) == {"COMPLETE"}
        assert sorted(frame["param_units"]) == [4, 8]
        assert frame["duration"].dtype == np.float64 and (frame["duration"] > 0).all()
        assert frame["std"].notna().all() and frame["status"].isna().all()
    # the sklearn face: value and std are cv_results_'s mean and std of the test score
    results = search.cv_results_
    order = np.argsort(results["trial_number"])
    np.testing.assert_allclose(sk["value"], results["mean_test_score"][order])
    np.testing.assert_allclose(sk["std"], results["std_test_score"][order])
    # the tuner: std over its stored per-fold scores (ddof=0)
    for row, trial in zip(kt.itertuples(), tuner.oracle.study.trials, strict=True):
        folds = trial.user_attrs["tunefleet:cv"]["test"]["val_accuracy"]
        assert row.value == pytest.approx(np.mean(folds))
        assert row.std == pytest.approx(np.std(folds))


def _agree(rows, frame):
    """The CLI's rows and the dataframe hold the same values, trial by trial."""
    assert [r["number"] for r in rows] == frame["number"].tolist()
    for row, (_, expected) in zip(rows, frame.iterrows(), strict=True):
        assert row["state"] == expected["state"]
        assert row["value"] == pytest.approx(expected["value"])
        assert row["std"] == pytest.approx(expected["std"])
        assert row["duration"] == pytest.approx(expected["duration"])
        assert row["params"] == {"units": expected["param_units"]}
        assert row["error"] is None and row["status"] is None


def test_cli_rows_and_dataframes_agree(searches):
    search, tuner, folder = searches
    runner = CliRunner()
    for db, frame in [
        (folder / "sk.db", search.trials_dataframe()),
        (folder / "kt" / "study.db", tuner.trials_dataframe()),
    ]:
        result = runner.invoke(app, ["trials", str(db), "--format", "json"])
        assert result.exit_code == 0, result.output
        _agree(json.loads(result.output), frame)
    _agree(trial_rows(search.study_), search.trials_dataframe())
    best = json.loads(runner.invoke(app, ["best", str(folder / "sk.db"), "-f", "json"]).output)
    assert best["params"] == search.best_params_ and best["value"] == search.best_score_


def test_std_is_of_the_optimized_metric(digits):
    search = tunefleet.GridSearchCV(
        Units(), {"units": [4, 8]}, cv=3, scoring=["accuracy", "f1_macro"], refit="f1_macro"
    ).fit(*digits)
    frame = search.trials_dataframe()
    order = np.argsort(search.cv_results_["trial_number"])
    np.testing.assert_allclose(frame["value"], search.cv_results_["mean_test_f1_macro"][order])
    np.testing.assert_allclose(frame["std"], search.cv_results_["std_test_f1_macro"][order])


def test_excluded_and_failed_trials_are_flagged():
    study = optuna.create_study(direction="maximize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5},
            distributions=dist,
            value=0.5,
            user_attrs={CV_ATTR: {"test": {"score": [0.4, 0.6]}, "fit_time": [0.1, 0.1]}},
        )
    )
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL,
            params={"x": 0.2},
            distributions=dist,
            user_attrs={
                ERROR_ATTR: "ValueError: boom\n  at fold 1",
                CV_ATTR: {"test": {"score": [math.nan, math.nan]}},
            },
        )
    )
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL, user_attrs={STATUS_ATTR: SURPLUS}
        )
    )
    frame = trials_dataframe(study)
    assert frame["status"].isna().tolist() == [True, True, False] and frame["status"][2] == SURPLUS
    assert frame["error"].tolist()[1].startswith("ValueError: boom")
    assert frame["std"][0] == pytest.approx(0.1)  # over the stored folds, ddof=0
    assert math.isnan(frame["value"][1]) and math.isnan(frame["std"][1])  # NaN folds
    assert math.isnan(frame["std"][2])  # no folds stored
    rows = trial_rows(study)
    assert [r["note"] for r in rows] == ["", "ValueError: boom at fold 1", SURPLUS]
    assert [r["number"] for r in trial_rows(study, counted_only=True)] == [0, 1]
    assert rows[0]["cv"] == {"score": [0.4, 0.6]} and rows[1]["std"] is None  # JSON: no NaN
    assert trials_dataframe(study_data(study)).equals(frame)


def test_a_tuner_before_any_search_has_an_empty_table(tmp_path):
    tuner = tunefleet.RandomSearch(build_model, "val_accuracy", max_trials=1, directory=tmp_path)
    frame = tuner.trials_dataframe()
    assert frame.empty and list(frame.columns) == [c for c in COLUMNS if c != "param_units"]
