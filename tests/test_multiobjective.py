"""Accuracy-versus-size searches: objectives=, the Pareto front, smallest_within, compress=."""

import json
import re

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

import tunefleet
from keras_models import build_classifier
from tunefleet import (
    EvolutionSearchCV,
    GridSearchCV,
    HyperbandSearchCV,
    Int,
    RandomizedSearchCV,
    smallest_within,
)
from tunefleet.cli import app
from tunefleet.keras import KerasClassifier, count_params, model_size_bytes
from tunefleet.results import ParetoTrial

# Keras 3.15 converts variables with np.array(variable) when saving; numpy 2 warns about it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype("float32"), y


def keras_classifier(**params):
    defaults = {"epochs": 15, "batch_size": 16, "verbose": 0, "random_state": 0}
    return KerasClassifier(build_classifier, **{**defaults, **params})


def build_embedding_classifier(dim=3):
    """Integer features -> an embedding -> softmax: no layer float8 can quantize."""
    model = keras.Sequential(
        [
            keras.Input((4,), dtype="int32"),
            keras.layers.Embedding(20, dim, name="emb"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Softmax(),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def dominates(a, b):
    """``a`` dominates ``b`` for (maximize, minimize, ...) values."""
    signs = np.array([1.0] + [-1.0] * (len(a) - 1))
    a, b = signs * np.asarray(a), signs * np.asarray(b)
    return bool(np.all(a >= b) and np.any(a > b))


def assert_pareto_front(search):
    """``best_trials_`` is exactly the non-dominated set of the completed trials."""
    complete = [t for t in search.study_.trials if t.state.name == "COMPLETE"]
    front = {t.number for t in search.best_trials_}
    assert front
    for t in complete:
        dominated = any(dominates(o.values, t.values) for o in complete)
        assert dominated == (t.number not in front), (t.number, t.values)
    results = search.cv_results_
    assert results["pareto_optimal"].dtype == bool
    assert set(results["trial_number"][results["pareto_optimal"]]) == front
    for p in search.best_trials_:
        assert isinstance(p, ParetoTrial)
        assert results["trial_number"][p.index] == p.number
        assert p.params == results["params"][p.index]
        trial = search.study_.trials[p.number]
        np.testing.assert_allclose(p.values, trial.values)
    scores = [p.score for p in search.best_trials_]
    assert scores == sorted(scores, reverse=True)


def test_keras_pareto_search_refits_the_smallest_within_points(iris):
    X, y = iris
    search = RandomizedSearchCV(
        keras_classifier(),
        {"n_neurons": [2, 4, 8, 32], "n_hidden": [1, 2]},
        n_iter=5,
        cv=2,
        random_state=0,
        objectives=["n_params"],
        refit=smallest_within(0.05, "n_params"),
    ).fit(X, y)
    study = search.study_
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["score", "n_params"]
    assert_pareto_front(search)

    results = search.cv_results_
    for key in ("mean_test_n_params", "std_test_n_params", "split0_test_n_params"):
        assert key in results
    assert "rank_test_n_params" not in results
    for i, params in enumerate(results["params"]):
        k, hidden = params["n_neurons"], params["n_hidden"]
        expected = 4 * k + k + (hidden - 1) * (k * k + k) + 3 * k + 3  # Dense weights + biases
        assert results["mean_test_n_params"][i] == expected
        assert results["std_test_n_params"][i] == 0
        trial = study.trials[results["trial_number"][i]]
        np.testing.assert_allclose(
            trial.values, [results["mean_test_score"][i], results["mean_test_n_params"][i]]
        )
        assert trial.intermediate_values == {}  # multi-objective studies take no reports

    # the refit: recomputed from cv_results_ by the documented rule
    scores, sizes = results["mean_test_score"], results["mean_test_n_params"]
    eligible = np.flatnonzero(scores >= np.nanmax(scores) - 0.05 - 1e-9)
    expected_index = min(eligible, key=lambda i: (sizes[i], -scores[i], i))
    assert search.best_index_ == expected_index
    assert search.best_params_ == results["params"][expected_index]
    assert count_params(search.best_estimator_.model_) == sizes[expected_index]
    assert not hasattr(search, "best_score_")  # a refit callable, as in scikit-learn
    assert not hasattr(search, "fleet_stats_")  # fleet="auto" trained one by one

    frame = search.trials_dataframe()
    assert list(frame["value_n_params"]) == [t.values[1] for t in study.trials]


def report_json(text, script_id):
    """The JSON a report embeds in ``<script id=script_id>`` (the trials, the figures)."""
    found = re.search(f'<script type="application/json" id="{script_id}">(.*?)</script>', text)
    return json.loads(found.group(1))


def test_multi_objective_report_draws_the_pareto_front(iris, tmp_path):
    X, y = iris
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [1, 2, 3, 6]},
        cv=2,
        objectives=["n_params"],
    ).fit(X, y)
    path = search.report(tmp_path / "report.html")
    text = path.read_text()
    assert "Pareto front" in text
    study = search.study_
    front = {t.number for t in study.best_trials}
    by_depth = {t.params["max_depth"]: t for t in study.trials}
    # depth 6 grows a bigger tree than depth 3 for the same accuracy: dominated
    assert dominates(by_depth[3].values, by_depth[6].values)
    assert by_depth[6].number not in front and len(front) == 3
    # the front the report marks is Optuna's: in the table, the summary and the figure
    assert set(report_json(text, "tf-trials")["best"]) == front
    assert "3 Pareto-optimal trials." in text
    traces = {t["name"]: t for t in report_json(text, "tf-figures")["pareto_front"]["data"]}
    assert set(traces) == {"dominated", "Pareto front (3)"}

    def numbers(trace):
        return {int(h.split("<br>")[0].removeprefix("trial ")) for h in trace["hovertext"]}

    assert numbers(traces["Pareto front (3)"]) == front
    assert numbers(traces["dominated"]) == {by_depth[6].number}


def test_sklearn_estimators_n_params_size_bytes_and_callables(iris):
    X, y = iris

    def n_leaves(estimator, X_val, y_val):
        return estimator.get_n_leaves()

    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [1, 2, 4]},
        cv=3,
        objectives=["n_params", "size_bytes", n_leaves],
    ).fit(X, y)
    results = search.cv_results_
    for name in ("n_params", "size_bytes", "n_leaves"):
        assert np.all(np.diff(results[f"mean_test_{name}"]) > 0), name  # deeper is bigger
    assert results["mean_test_n_leaves"][0] == 2
    # the best score is kept as in scikit-learn (refit=True picks by score)
    assert search.best_index_ == int(np.argmax(results["mean_test_score"]))
    assert search.best_score_ == results["mean_test_score"].max()
    assert_pareto_front(search)

    linear = GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=2, objectives="n_params"
    ).fit(X, y)
    # coef_ (3x4), intercept_, classes_ and n_iter_
    assert list(linear.cv_results_["mean_test_n_params"]) == [19, 19]


def test_nsga2_is_the_evolution_of_a_multi_objective_search(iris):
    X, y = iris
    search = EvolutionSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": Int(1, 6)},
        n_iter=6,
        cv=2,
        random_state=0,
        objectives=["n_params"],
    ).fit(X, y)
    assert isinstance(search.study_.sampler, optuna.samplers.NSGAIISampler)
    assert_pareto_front(search)


def test_compress_int8_quantizes_the_scored_and_the_refit_models(iris):
    X, y = iris
    params = {"n_neurons": 256, "n_hidden": 2}  # big enough for the weights to dominate the file
    search = GridSearchCV(
        keras_classifier(),
        {name: [value] for name, value in params.items()},
        cv=2,
        objectives=["size_bytes"],
        compress="int8",
    ).fit(X, y)
    plain = keras_classifier(**params).fit(X, y)  # the same training as the refit, not quantized
    float_bytes = model_size_bytes(plain.model_)
    assert search.cv_results_["mean_test_size_bytes"][0] < 0.6 * float_bytes
    model = search.best_estimator_.model_
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert dense and all(layer.quantization_mode == "int8" for layer in dense)
    assert model_size_bytes(model) < 0.6 * float_bytes
    # still a sensible classifier, predicting as the float model does
    assert search.best_score_ > 0.75
    assert (search.best_estimator_.predict(X) == plain.predict(X)).mean() >= 0.9


def test_bad_objectives_compress_and_strategies_are_refused_before_any_trial(iris):
    X, y = iris
    tree = DecisionTreeClassifier()
    space = {"max_depth": [1, 2]}
    with pytest.raises(ValueError, match=r"'params' is not a known objective.*'n_params'"):
        GridSearchCV(tree, space, objectives=["params"]).fit(X, y)
    with pytest.raises(ValueError, match="given twice"):
        GridSearchCV(tree, space, objectives=["n_params", "n_params"]).fit(X, y)
    with pytest.raises(ValueError, match="__name__"):
        GridSearchCV(tree, space, objectives=[lambda e, X, y: 1.0]).fit(X, y)
    with pytest.raises(ValueError, match=r"objectives=.*not valid"):
        GridSearchCV(tree, space, objectives=3).fit(X, y)
    with pytest.raises(ValueError, match=r"CMA-ES.*'nsga2'"):
        EvolutionSearchCV(
            tree, {"max_depth": Int(1, 4)}, algorithm="cmaes", objectives=["n_params"]
        ).fit(X, y)
    with pytest.raises(ValueError, match="HyperbandSearchCV"):
        HyperbandSearchCV(tree, space, objectives=["n_params"]).fit(X, y)
    with pytest.raises(ValueError, match="pruner='median' cannot be used with objectives"):
        RandomizedSearchCV(tree, space, pruner="median", objectives=["n_params"]).fit(X, y)
    with pytest.raises(ValueError, match=r"smallest_within.*cost='size_bytes'.*objectives"):
        GridSearchCV(
            tree, space, objectives=["n_params"], refit=smallest_within(0.01, "size_bytes")
        ).fit(X, y)
    with pytest.raises(ValueError, match=r"compress='int8'.*DecisionTreeClassifier has none"):
        GridSearchCV(tree, space, compress="int8").fit(X, y)
    with pytest.raises(ValueError, match=r"compress='int2' is not a quantization mode"):
        GridSearchCV(keras_classifier(), {"n_neurons": [4]}, compress="int2").fit(X, y)
    with pytest.raises(ValueError, match=r"compress='float8'.*Embedding 'emb'"):
        GridSearchCV(
            KerasClassifier(build_embedding_classifier, verbose=0),
            {"dim": [3]},
            compress="float8",
        ).fit(X.astype("int32"), y)
    with pytest.raises(ValueError, match="fleet=True cannot be used"):
        GridSearchCV(
            keras_classifier(), {"n_neurons": [4]}, objectives=["n_params"], fleet=True
        ).fit(X, y)


def test_a_cost_that_is_not_a_number_fails_the_trials(iris):
    X, y = iris

    def label(estimator, X_val, y_val):
        return "big"

    with pytest.raises(ValueError, match="'label' must return a number"):
        GridSearchCV(DecisionTreeClassifier(), {"max_depth": [1]}, objectives=[label]).fit(X, y)


def test_a_stored_study_refuses_other_objectives_and_keeps_its_trials(iris, tmp_path):
    X, y = iris
    storage = f"sqlite:///{tmp_path / 'tune.db'}"

    def search(objectives, n_iter=3):
        return RandomizedSearchCV(
            DecisionTreeClassifier(random_state=0),
            {"max_depth": Int(1, 5)},
            n_iter=n_iter,
            cv=2,
            random_state=0,
            storage=storage,
            study_name="trees",
            objectives=objectives,
        )

    search(["n_params"]).fit(X, y)

    def stored():
        study = optuna.load_study(study_name="trees", storage=storage)
        return [(t.number, t.state, t.values, dict(t.user_attrs)) for t in study.trials]

    before = stored()
    for other in (["size_bytes"], ["n_params", "latency"], None):
        with pytest.raises(ValueError, match=r"created with objectives=\['n_params'\]"):
            search(other).fit(X, y)
        assert stored() == before
    resumed = search(["n_params"], n_iter=4).fit(X, y)
    assert len(resumed.cv_results_["params"]) == 4
    assert stored()[:3] == before
    best = CliRunner().invoke(app, ["best", str(tmp_path / "tune.db"), "--study", "trees"])
    assert best.exit_code == 1 and "no single best trial" in best.output


def test_smallest_within_bad_input():
    with pytest.raises(ValueError, match="points must be a finite number >= 0"):
        smallest_within(-0.01)
    with pytest.raises(ValueError, match="points must be a finite number >= 0"):
        smallest_within(float("nan"))
    with pytest.raises(ValueError, match="cost must be a non-empty string"):
        smallest_within(0.01, cost=None)
    refit = tunefleet.smallest_within(0.01, "size_bytes")
    results = {"mean_test_score": np.array([0.9, 0.95]), "mean_test_n_params": np.array([1, 2])}
    with pytest.raises(ValueError, match=r"cost='size_bytes'.*\['n_params', 'score'\]"):
        refit(results)
    assert smallest_within(0.06, "n_params")(results) == 0
    assert smallest_within(0.01, "n_params")(results) == 1
