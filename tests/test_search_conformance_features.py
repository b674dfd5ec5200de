"""What scikit-learn's own search tests asked of the searches (issue 16), checked directly.

Estimator objects as parameter values (cloned, never fitted; the originals in results, also
after a resume from SQLite), scorers called as scikit-learn calls them (no ``y`` for an
unsupervised fit; a callable returning a dict of scores), non-finite scores kept and
warned about (told to Optuna as failed trials), and failed fits counted as fits.
"""

import math
import re
import warnings

import numpy as np
import optuna
import pytest
from sklearn import model_selection as skms
from sklearn.datasets import make_blobs, make_classification
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, recall_score
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

import tunefleet
from estimators import FlakyClassifier


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=60, n_features=5, random_state=0)


def test_estimator_values_are_cloned_and_results_hold_the_originals(data):
    X, y = data
    choices = [LogisticRegression(), LinearSVC(C=0.5)]
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    search = tunefleet.GridSearchCV(pipe, {"clf": choices}, cv=2).fit(X, y)
    # the user's objects were never fitted (each fold and the refit fit clones)
    assert not any(hasattr(c, "coef_") for c in choices)
    params = search.cv_results_["params"]
    assert [p["clf"] for p in params] == choices
    assert all(p["clf"] is c for p, c in zip(params, choices, strict=True))
    assert search.cv_results_["param_clf"][1] is choices[1]
    assert search.best_params_["clf"] is choices[search.best_index_]
    assert search.best_estimator_.named_steps["clf"] is not search.best_params_["clf"]
    assert hasattr(search.best_estimator_.named_steps["clf"], "coef_")


def test_nested_params_of_an_estimator_value_do_not_change_the_original(data):
    X, y = data
    params = {"clf": [LinearSVC()], "clf__C": [0.01]}
    pipe = Pipeline([("scale", StandardScaler()), ("clf", None)])
    for search in (
        tunefleet.GridSearchCV(pipe, params, cv=2, scoring="accuracy"),
        tunefleet.RandomizedSearchCV(pipe, params, n_iter=1, cv=2, scoring="accuracy"),
    ):
        search.fit(X, y)
        assert params["clf"][0].C == 1.0
        assert search.best_estimator_.named_steps["clf"].C == 0.01


def test_resumed_search_maps_stored_trials_back_to_the_estimator_objects(data, tmp_path):
    X, y = data
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    pipe = Pipeline([("reg", LinearRegression())])

    def search(n_iter):
        grid = {"reg": [LinearRegression(), Ridge(alpha=2.0), Ridge(alpha=30.0)]}
        return tunefleet.RandomizedSearchCV(
            pipe, grid, n_iter=n_iter, cv=2, storage=storage, study_name="regs", random_state=0
        ), grid

    first, _ = search(2)
    first.fit(X, y)
    stored = {
        n: repr(p["reg"])
        for n, p in zip(first.cv_results_["trial_number"], first.cv_results_["params"], strict=True)
    }
    resumed, grid = search(3)  # new objects, equal to the first ones: the same space
    resumed.fit(X, y)
    assert len(resumed.study_.trials) == 3
    rows = dict(
        zip(resumed.cv_results_["trial_number"], resumed.cv_results_["params"], strict=True)
    )
    for number, text in stored.items():  # the stored trials decode to the same choices
        assert repr(rows[number]["reg"]) == text
    # ... and to this search's own objects, unfitted
    assert all(any(p["reg"] is g for g in grid["reg"]) for p in rows.values())
    assert not any(hasattr(g, "coef_") for g in grid["reg"])
    assert sorted(repr(p["reg"]) for p in rows.values()) == sorted(map(repr, grid["reg"]))


def test_pandas_y_works(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame, target = pd.DataFrame(X), pd.Series(y, name="target")
    search = tunefleet.GridSearchCV(
        LogisticRegression(), {"C": [0.1, 1.0]}, cv=2, scoring=lambda e, X, y: e.score(X, y)
    ).fit(frame, target)
    assert search.best_score_ > 0.5


def test_an_unsupervised_scorer_is_called_without_y():
    X, _ = make_blobs(n_samples=40, random_state=0)
    calls = []

    def scoring(estimator, X):
        calls.append(len(X))
        return float(estimator.score(X))

    search = tunefleet.GridSearchCV(
        KernelDensity(), {"bandwidth": [0.1, 1.0]}, cv=2, scoring=scoring
    ).fit(X)
    assert search.best_params_ == {"bandwidth": 1.0}
    assert calls and np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_a_callable_returning_a_dict_is_multi_metric_like_a_list_of_names(data):
    X, y = data

    def scoring(estimator, X, y):
        predicted = estimator.predict(X)
        return {"recall": recall_score(y, predicted), "accuracy": accuracy_score(y, predicted)}

    grid = {"C": [0.001, 1.0]}
    ours = tunefleet.GridSearchCV(LinearSVC(), grid, scoring=scoring, refit="accuracy").fit(X, y)
    theirs = skms.GridSearchCV(LinearSVC(), grid, scoring=scoring, refit="accuracy").fit(X, y)
    assert ours.multimetric_ and theirs.multimetric_
    for key in ("mean_test_recall", "mean_test_accuracy", "rank_test_accuracy"):
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], err_msg=key)
    assert ours.best_index_ == theirs.best_index_
    assert ours.best_score_ == pytest.approx(theirs.best_score_)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y))
    # the Optuna value of each trial is its mean of the refit metric
    values = [t.value for t in sorted(ours.study_.trials, key=lambda t: t.number)]
    np.testing.assert_allclose(values, ours.cv_results_["mean_test_accuracy"])


def test_a_dict_without_the_refit_key_stops_the_search_at_once(data):
    X, y = data
    search = tunefleet.GridSearchCV(
        LinearSVC(), {"C": [0.1, 1.0, 10.0]}, scoring=lambda e, X, y: {"a": 1}, refit="b"
    )
    with pytest.raises(ValueError, match="refit must be set to a scorer key"):
        search.fit(X, y)


def test_failed_fits_of_a_dict_scorer_get_error_score_for_every_key(data):
    X, y = data
    search = tunefleet.GridSearchCV(
        FlakyClassifier(),
        {"fail": [False, True]},
        cv=3,
        scoring=lambda e, X, y: {"acc": e.score(X, y), "one": 1.0},
        refit=False,
        error_score=-1.0,
    )
    with pytest.warns(FitFailedWarning, match=r"3 fits failed out of a total of 6"):
        search.fit(X, y)
    failed = search.cv_results_["params"].index({"fail": True})
    assert search.cv_results_["mean_test_acc"][failed] == -1.0
    assert search.cv_results_["mean_test_one"][failed] == -1.0
    assert search.cv_results_["mean_test_one"][1 - failed] == 1.0


class NaNOnSecondCandidate:
    """A scorer: NaN for every fold of estimators with ``max_depth == 3``."""

    def __call__(self, estimator, X, y):
        return math.nan if estimator.max_depth == 3 else 1.0


def test_non_finite_scores_are_kept_warned_about_and_told_to_optuna_as_failed(data, tmp_path):
    X, y = data
    storage = f"sqlite:///{tmp_path / 'nan.db'}"

    def make():
        return tunefleet.GridSearchCV(
            DecisionTreeClassifier(random_state=0),
            {"max_depth": [2, 3, 4]},
            cv=2,
            scoring=NaNOnSecondCandidate(),
            storage=storage,
            study_name="nan",
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = make().fit(X, y)
    messages = [str(w.message) for w in caught]
    assert sum("test scores are non-finite" in m for m in messages) == 1
    assert not any(issubclass(w.category, FitFailedWarning) for w in caught)
    results = search.cv_results_
    assert list(results["param_max_depth"]) == [2, 3, 4]
    assert np.isnan(results["mean_test_score"][1]) and np.isnan(results["split0_test_score"][1])
    assert list(results["rank_test_score"]) == [1, 3, 1]
    assert list(results["state"]) == ["COMPLETE", "FAIL", "COMPLETE"]
    # Optuna holds no NaN value: the trial is failed, with its scores kept, and the
    # sampler and the stored study work on (a resume runs nothing again)
    study = optuna.load_study(study_name="nan", storage=storage)
    assert study.trials[1].state == optuna.trial.TrialState.FAIL and study.trials[1].value is None
    assert study.best_trial.number in (0, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = make().fit(X, y)
    assert len(resumed.study_.trials) == 3
    assert np.isnan(resumed.cv_results_["mean_test_score"][1])


def test_all_scores_non_finite_is_no_fit_failure():
    X, y = [[1], [2], [3], [4], [5]], [0, 0, 0, 0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # r2 of one sample, and the non-finite warning
        search = tunefleet.GridSearchCV(
            DecisionTreeClassifier(),
            {"random_state": [0, None]},
            cv=skms.KFold(),
            scoring="r2",
        ).fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["param_random_state"], [0, None])
    assert np.isnan(search.cv_results_["mean_test_score"]).all()


def test_failed_fits_are_counted_and_grouped_as_scikit_learn_does(data):
    X, y = data
    search = tunefleet.GridSearchCV(
        FlakyClassifier(), {"fail": [True, False, True]}, cv=4, refit=False, error_score=0.0
    )
    with pytest.warns(FitFailedWarning) as caught:
        search.fit(X, y)
    (message,) = [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)]
    assert "8 fits failed out of a total of 12 (in 2 of 3 trials)." in message
    assert "will be set to 0.0" in message
    assert "8 fits failed with the following error:\nArithmeticError" in message
    stored = search.study_.trials[0].user_attrs["tunefleet:cv"]["errors"]
    assert len(stored) == 4 and all(e.startswith("ArithmeticError") for e in stored)


@pytest.mark.parametrize(
    ("grid", "error", "message"),
    [
        ({"C": 1}, TypeError, "needs to be a list or a numpy array, but got 1 (of type int)"),
        ({"C": "1,2"}, TypeError, "but got '1,2' (of type str) instead. Single values need"),
        ({"C": []}, ValueError, "'C' need to be a non-empty sequence, got: []"),
    ],
)
def test_bad_param_grids_are_worded_as_scikit_learn_words_them(data, grid, error, message):
    X, y = data
    with pytest.raises(error, match=re.escape(message)) as caught:
        tunefleet.GridSearchCV(LogisticRegression(), grid).fit(X, y)
    assert str(caught.value).startswith("param_grid['C']: Parameter grid for parameter 'C'")
