"""Metadata routing, verbose fit lines and scikit-learn's fit callbacks, on the five searches.

scikit-learn's own tests of these run in test_sklearn_conformance_search.py (in-process,
scikit-learn's estimators); these check what they do not: every tunefleet search, worker
processes, fleets, and what a scorer that raises leaves.
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pytest
import scipy.sparse
import sklearn
from sklearn import model_selection as skms
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, make_scorer, recall_score

import tunefleet
from keras_models import build_classifier
from tunefleet.keras import KerasClassifier

SEARCHES = [
    "GridSearchCV",
    "RandomizedSearchCV",
    "BayesSearchCV",
    "HyperbandSearchCV",
    "EvolutionSearchCV",
]
SPACE = {"C": [0.01, 1.0, 100.0]}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    weights = np.random.default_rng(0).integers(0, 4, size=len(y)).astype(float)
    return X, y, weights


def search(name, estimator=None, **kwargs):
    estimator = estimator if estimator is not None else LogisticRegression()
    cls = getattr(tunefleet, name)
    if name == "GridSearchCV":
        return cls(estimator, SPACE, cv=2, **kwargs)
    return cls(estimator, SPACE, n_iter=3, cv=2, random_state=0, **kwargs)


def n_fits(found):
    """The fits a search ran (Hyperband refits a candidate per rung)."""
    return sum(len(t.user_attrs["tunefleet:cv"]["fit_time"]) for t in found.study_.trials)


# -- sample_weight and routed metadata reach the scorers --------------------------------
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_sample_weight_weights_fits_and_scores_as_in_scikit_learn(data, tmp_path, n_jobs):
    X, y, weights = data
    storage = f"sqlite:///{tmp_path}/s.db" if n_jobs > 1 else None
    ours = search("GridSearchCV", scoring="accuracy", n_jobs=n_jobs, storage=storage)
    ours.fit(X, y, sample_weight=weights)
    theirs = skms.GridSearchCV(LogisticRegression(), SPACE, cv=2, scoring="accuracy")
    theirs.fit(X, y, sample_weight=weights)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key])
    unweighted = search("GridSearchCV", scoring="accuracy").fit(X, y)
    assert not np.allclose(
        unweighted.cv_results_["mean_test_score"], ours.cv_results_["mean_test_score"]
    )


def test_a_scorer_without_sample_weight_is_named_in_a_warning(data):
    X, y, weights = data
    scoring = {"plain": make_scorer(lambda t, p: float(np.mean(t == p))), "acc": "accuracy"}
    with pytest.warns(UserWarning, match=r"The scoring plain=.* does not support sample_weight"):
        found = search("BayesSearchCV", scoring=scoring, refit="acc").fit(
            X, y, sample_weight=weights
        )
    # "plain" is unweighted, "acc" weighted: they differ
    assert not np.allclose(found.cv_results_["mean_test_plain"], found.cv_results_["mean_test_acc"])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_routed_metadata_reaches_the_scorers_that_request_it(data, tmp_path, n_jobs):
    X, y, weights = data
    storage = f"sqlite:///{tmp_path}/s.db" if n_jobs > 1 else None
    with sklearn.config_context(enable_metadata_routing=True):
        weighted = make_scorer(accuracy_score).set_score_request(sample_weight="score_weights")
        scoring = {"weighted": weighted, "recall": make_scorer(recall_score)}
        ours = search(
            "RandomizedSearchCV", scoring=scoring, refit="weighted", n_jobs=n_jobs, storage=storage
        )
        ours.fit(X, y, score_weights=weights)
        theirs = skms.GridSearchCV(
            LogisticRegression(), SPACE, cv=2, scoring=scoring, refit="weighted"
        )
        theirs.fit(X, y, score_weights=weights)
    by_point = {p["C"]: i for i, p in enumerate(theirs.cv_results_["params"])}
    order = [by_point[p["C"]] for p in ours.cv_results_["params"]]
    for key in ("mean_test_weighted", "mean_test_recall"):
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key][order])


def test_routing_refuses_metadata_nothing_requests(data):
    X, y, weights = data
    with sklearn.config_context(enable_metadata_routing=True):
        found = search("GridSearchCV", scoring="accuracy")
        with pytest.raises(TypeError, match="score_weights"):
            found.fit(X, y, score_weights=weights)
    assert not hasattr(found, "study_")


# -- a scorer that raises ---------------------------------------------------------------
def test_a_scorer_that_raises_scores_error_score_and_is_no_fit_failure(data):
    X, y, _ = data

    def broken(estimator, X, y):
        raise RuntimeError("no score today")

    with pytest.warns(UserWarning, match="(?s)Scoring failed.*no score today"):
        found = search(
            "GridSearchCV",
            scoring={"broken": broken, "acc": "accuracy"},
            refit="acc",
            error_score=-1.0,
        ).fit(X, y)
    assert list(found.cv_results_["mean_test_broken"]) == [-1.0] * 3
    assert np.all(found.cv_results_["mean_test_acc"] > 0.5)
    with pytest.raises(RuntimeError, match="no score today"):
        search("GridSearchCV", scoring=broken, error_score="raise").fit(X, y)


# -- verbose: scikit-learn's line per fit -------------------------------------------------
@pytest.mark.parametrize("name", SEARCHES)
def test_verbose_3_prints_scikit_learns_line_per_fit(data, capsys, name):
    X, y, _ = data
    found = search(name, verbose=3, return_train_score=True).fit(X, y)
    out = capsys.readouterr().out
    lines = re.findall(
        r"\[CV [12]/2\] END \.*C=[\d.]+; score=\(train=[\d.]+, test=[\d.]+\) total time=", out
    )
    if name == "HyperbandSearchCV":  # a line per rung's fit; the record keeps the last rung
        assert len(lines) >= n_fits(found) >= 6
    else:
        assert len(lines) == n_fits(found) >= 6


def test_verbose_3_prints_each_metric_of_a_multi_metric_search(data, capsys):
    X, y, _ = data
    search("GridSearchCV", verbose=3, scoring=["accuracy", "recall"], refit="accuracy").fit(X, y)
    out = capsys.readouterr().out
    assert (
        len(re.findall(r"END \.*C=[\d.]+; accuracy: \(test=[\d.]+\) recall: \(test=[\d.]+\)", out))
        == 6
    )


# -- scikit-learn's fit callbacks ---------------------------------------------------------
class Recording:
    """A scikit-learn fit callback that records its hooks' task names and metadata.

    scikit-learn passes a hook the keyword-only arguments it names (``metadata`` here).
    """

    def __init__(self):
        self.hooks = []

    def setup(self, estimator, context):
        self.hooks.append(("setup", None, None))

    def teardown(self, estimator, context):
        self.hooks.append(("teardown", None, None))

    def on_fit_task_begin(self, estimator, context, *, metadata=None):
        self.hooks.append(("begin", context.task_name, metadata))

    def on_fit_task_end(self, estimator, context, *, metadata=None):
        self.hooks.append(("end", context.task_name, metadata))

    def count(self, hook, task=None):
        return sum(1 for h, t, _ in self.hooks if h == hook and (task is None or t == task))


@pytest.mark.parametrize("name", SEARCHES)
def test_callbacks_get_the_search_tasks_and_a_task_per_fit(data, name):
    pytest.importorskip("sklearn.callback")
    X, y, weights = data
    recording = Recording()
    found = search(name).set_callbacks(recording).fit(X, y, sample_weight=weights)
    fits = n_fits(found)
    assert recording.count("setup") == recording.count("teardown") == 1
    evaluations = recording.count("begin", "candidate-split-evaluation")
    # Hyperband fits a candidate once per rung; its record keeps the last rung's folds
    assert evaluations == fits >= 6 if name != "HyperbandSearchCV" else evaluations >= fits >= 6
    assert recording.count("begin") == recording.count("end") == 1 + 1 + 1 + evaluations
    assert recording.count("begin", "refit-with-best-params") == 1
    fit_metadata = [m for h, t, m in recording.hooks if t == "candidate-split-evaluation"]
    # each fit's own rows (Hyperband's rungs train on subsets of the 40 training rows)
    sizes = {len(m["sample_weight"]) for m in fit_metadata}
    assert sizes == {40} if name != "HyperbandSearchCV" else max(sizes) <= 40


def test_callbacks_with_worker_processes_get_the_search_tasks_and_a_warning(data, tmp_path, caplog):
    pytest.importorskip("sklearn.callback")
    X, y, _ = data
    recording = Recording()
    found = search("GridSearchCV", n_jobs=2, storage=f"sqlite:///{tmp_path}/s.db")
    with caplog.at_level(logging.WARNING, logger="tunefleet"):
        found.set_callbacks(recording).fit(X, y)
    assert "receive no per-fit hooks" in caplog.text
    assert recording.count("begin", "candidate-split-evaluation") == 0
    assert recording.count("begin") == recording.count("end") == 3  # fit, search, refit
    assert len(found.cv_results_["params"]) == 3


def test_teardown_runs_when_the_search_raises(data):
    pytest.importorskip("sklearn.callback")
    X, y, _ = data
    recording = Recording()
    failing = search("GridSearchCV", estimator=LogisticRegression(solver="bogus"))
    with pytest.raises(ValueError, match="All the 6 fits failed"):
        failing.set_callbacks(recording).fit(X, y)
    assert recording.count("setup") == recording.count("teardown") == 1


# -- fleets: what falls back to one-by-one training --------------------------------------
def keras_search(scoring, **kwargs):
    estimator = KerasClassifier(
        build_classifier, n_features=5, n_classes=2, epochs=2, batch_size=16, random_state=0
    )
    return tunefleet.GridSearchCV(estimator, {"n_neurons": [4, 8]}, cv=2, scoring=scoring, **kwargs)


def test_fleets_take_make_scorer_but_fall_back_for_a_plain_callable_and_routed_scores(data, caplog):
    X, y, weights = data
    X = X.astype("float32")
    assert hasattr(keras_search(make_scorer(accuracy_score)).fit(X, y), "fleet_stats_")

    def plain(estimator, X, y):
        return {"acc": float(np.mean(estimator.predict(X) == y))}

    with caplog.at_level(logging.INFO, logger="tunefleet"):
        found = keras_search(plain, refit="acc").fit(X, y)
    assert not hasattr(found, "fleet_stats_")
    assert "a callable scoring may return a dict of scores" in caplog.text
    assert found.cv_results_["mean_test_acc"].shape == (2,)

    caplog.clear()
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        weighted = make_scorer(accuracy_score).set_score_request(sample_weight="score_weights")
        with caplog.at_level(logging.INFO, logger="tunefleet"):
            found = keras_search(weighted).fit(X, y, score_weights=weights)
    assert not hasattr(found, "fleet_stats_")
    assert "parameters routed to the scorers" in caplog.text


def test_sparse_x_trains_one_by_one_and_says_why(data, caplog):
    X, y, _ = data
    X = scipy.sparse.csr_matrix(X.astype("float32"))
    with caplog.at_level(logging.INFO, logger="tunefleet"):
        found = keras_search("accuracy").fit(X, y)
    assert "sparse X trains one by one" in caplog.text
    assert not hasattr(found, "fleet_stats_")
    assert found.best_estimator_.predict(X).shape == (80,)
    with pytest.raises(ValueError, match="fleet=True cannot be used: sparse X"):
        keras_search("accuracy", fleet=True).fit(X, y)
