"""Fleet training used by the search faces: same results as one by one, normal trials."""

import numpy as np
import optuna
import pytest
import sqlalchemy
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sqlalchemy.engine import Engine

import tunefleet
from keras_models import build_classifier
from tunefleet.keras import KerasClassifier


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype("float32"), y


def grid_search(fleet, X, y, **kwargs):
    estimator = KerasClassifier(
        build_classifier, epochs=4, batch_size=16, shuffle=False, random_state=0
    )
    grid = {"learning_rate": [0.003, 0.03], "n_neurons": [4, 16]}
    return tunefleet.GridSearchCV(estimator, grid, cv=2, fleet=fleet, **kwargs).fit(X, y)


def test_fleet_search_matches_one_by_one_training(iris):
    X, y = iris
    fleet = grid_search(True, X, y)
    alone = grid_search(False, X, y)
    assert fleet.cv_results_["params"] == alone.cv_results_["params"]
    np.testing.assert_allclose(
        fleet.cv_results_["mean_test_score"], alone.cv_results_["mean_test_score"], atol=1e-6
    )
    assert fleet.best_params_ == alone.best_params_
    # every trial of the fleet is a normal trial: per-epoch values at the same steps
    for a, b in zip(fleet.study_.trials, alone.study_.trials, strict=True):
        assert sorted(a.intermediate_values) == sorted(b.intermediate_values) == list(range(8))
        np.testing.assert_allclose(
            [a.intermediate_values[s] for s in range(8)],
            [b.intermediate_values[s] for s in range(8)],
            atol=1e-6,
        )
    assert fleet.fleet_stats_["train"] > 0
    assert not hasattr(alone, "fleet_stats_")


def test_fleet_hyperband_prunes_inside_the_fleet_on_sqlite(iris, tmp_path):
    X, y = iris
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    writes = {"values": 0, "transactions_with_values": 0}
    in_transaction = {"values": 0}

    def count_value_writes(conn, cursor, statement, *args):
        if "trial_intermediate_values" in statement and statement.lstrip().startswith(
            ("INSERT", "UPDATE")
        ):
            in_transaction["values"] += 1

    def count_commit(conn):
        if in_transaction["values"]:
            writes["values"] += in_transaction["values"]
            writes["transactions_with_values"] += 1
        in_transaction["values"] = 0

    sqlalchemy.event.listen(Engine, "before_cursor_execute", count_value_writes)
    sqlalchemy.event.listen(Engine, "commit", count_commit)
    try:
        search = tunefleet.HyperbandSearchCV(
            KerasClassifier(build_classifier, epochs=9, batch_size=16, random_state=0),
            {"learning_rate": tunefleet.Float(1e-5, 1e-1, log=True), "n_neurons": [2, 16]},
            n_iter=12,
            cv=2,
            fleet=12,
            storage=url,
            random_state=0,
        ).fit(X, y)
    finally:
        sqlalchemy.event.remove(Engine, "before_cursor_execute", count_value_writes)
        sqlalchemy.event.remove(Engine, "commit", count_commit)
    study = optuna.load_study(study_name=search.study_.study_name, storage=url)
    states = [t.state.name for t in study.trials]
    assert states.count("PRUNED") >= 3 and "COMPLETE" in states
    for t in study.trials:
        last = max(t.intermediate_values)
        if t.state.name == "PRUNED":
            assert last < 17  # stopped inside the fleet
        else:
            assert last == 17 and t.value == pytest.approx(
                np.mean(t.user_attrs["tunefleet:cv"]["test"]["score"])
            )
    # per-epoch values are written a fleet-epoch per transaction, not one per report
    # (the time this saves is measured in benchmarks/throughput.py, not here)
    n_values = sum(len(t.intermediate_values) for t in study.trials)
    assert writes["values"] == n_values
    # 162 values in 18 transactions here (a fold-epoch each); one each would be 162
    assert 4 * writes["transactions_with_values"] <= writes["values"]
    assert search.fleet_stats_["bookkeeping"] > 0
    assert search.best_score_ > 0.6


def test_rows_freed_by_pruned_trials_are_refilled_within_the_budget(iris, tmp_path):
    X, y = iris
    search = tunefleet.HyperbandSearchCV(
        KerasClassifier(build_classifier, epochs=9, batch_size=16, random_state=0),
        {"learning_rate": tunefleet.Float(1e-5, 1e-1, log=True), "n_neurons": [2, 16]},
        n_iter=10,
        cv=2,
        fleet=4,
        storage=f"sqlite:///{tmp_path / 'refill.db'}",
        random_state=0,
    ).fit(X, y)
    trials = search.study_.trials
    assert len(trials) == 10 and len(search.cv_results_["params"]) == 10
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    assert "PRUNED" in [t.state.name for t in trials]
    assert search.fleet_stats_["refilled"] >= 1
    # a refilled trial starts at its own step 0 and completes both folds like any other
    for t in trials:
        assert min(t.intermediate_values) == 0
        if t.state.name == "COMPLETE":
            assert sorted(t.intermediate_values) == list(range(18))


def test_fleet_true_on_an_estimator_that_cannot_refuses_before_any_trial(iris):
    X, y = iris
    search = tunefleet.GridSearchCV(SVC(), {"C": [1.0]}, fleet=True)
    with pytest.raises(
        ValueError,
        match="fleet=True cannot be used: fleet training needs a tunefleet KerasClassifier",
    ):
        search.fit(X, y)
    assert not hasattr(search, "study_")


def test_auto_falls_back_to_one_by_one_and_says_why_once(iris, caplog):
    X, y = iris
    estimator = KerasClassifier(build_classifier, epochs=2)
    with caplog.at_level("INFO", logger="tunefleet"):
        for _ in range(2):
            tunefleet.GridSearchCV(
                estimator, {"n_neurons": [4]}, cv=2, return_train_score=True
            ).fit(X, y)
    messages = [r.getMessage() for r in caplog.records if "one by one" in r.getMessage()]
    assert messages == [
        "GridSearchCV: training trials one by one: return_train_score=True needs each trial's model on the training folds."
    ]


def test_halving_schedule_compares_a_fleets_trials_together_at_each_rung(iris):
    X, y = iris
    search = tunefleet.HyperbandSearchCV(
        KerasClassifier(build_classifier, epochs=9, batch_size=16, random_state=0),
        {"learning_rate": tunefleet.Float(1e-4, 1e-1, log=True), "n_neurons": [2, 16]},
        schedule="halving",
        n_iter=9,
        cv=2,
        random_state=0,
    ).fit(X, y)
    assert search.fleet_stats_["train"] > 0  # fleet="auto" trained fleets (of 3 trials)
    trials = search.study_.trials
    assert len(trials) == 9  # rows freed by pruned trials were refilled within the budget
    # the first fleet's three trials report epoch 1 together, so only the best goes on
    # (asynchronous halving would let the first one on, having no rival yet)
    first = [t.intermediate_values[0] for t in trials[:3]]
    for trial, value in zip(trials[:3], first, strict=True):
        assert (max(trial.intermediate_values) > 0) == (value == max(first)), first
    assert {t.state.name for t in trials} == {"PRUNED", "COMPLETE"}
    assert search.best_score_ > 0.6
