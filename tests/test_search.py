"""The sklearn face: drop-in *SearchCV on real sklearn estimators and real Optuna studies."""

import pickle
import warnings

import numpy as np
import optuna
import pytest
from scipy import stats
from sklearn import model_selection as skms
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC

import tunefleet
from estimators import FlakyClassifier, iris
from tunefleet.strategies import ReportedRungsPruner


@pytest.fixture(scope="module")
def data():
    return iris()


def test_grid_search_matches_scikit_learn_key_for_key(data):
    X, y = data
    grid = {"C": [0.1, 1, 10], "kernel": ["rbf", "linear"]}
    ours = tunefleet.GridSearchCV(SVC(), grid, cv=3, return_train_score=True).fit(X, y)
    theirs = skms.GridSearchCV(SVC(), grid, cv=3, return_train_score=True).fit(X, y)
    assert set(theirs.cv_results_) <= set(ours.cv_results_)
    assert set(ours.cv_results_) - set(theirs.cv_results_) == {"trial_number", "state"}
    for key in theirs.cv_results_:
        if key.startswith(("split", "mean_test", "std_test", "rank", "mean_train")):
            np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], err_msg=key)
    assert ours.cv_results_["params"] == theirs.cv_results_["params"]
    assert list(ours.cv_results_["param_C"]) == list(theirs.cv_results_["param_C"])
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_score_ == pytest.approx(theirs.best_score_)
    assert ours.best_index_ == theirs.best_index_
    assert ours.n_splits_ == 3
    assert ours.refit_time_ > 0
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y))
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert isinstance(ours, skms._search.BaseSearchCV)


def test_randomized_search_on_random_forest(data):
    X, y = data
    search = tunefleet.RandomizedSearchCV(
        RandomForestClassifier(n_estimators=10, random_state=0),
        {"max_depth": [2, 3, None], "min_samples_leaf": stats.randint(1, 5)},
        n_iter=6,
        cv=3,
        random_state=0,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    assert search.best_score_ > 0.9
    assert set(search.best_params_) == {"max_depth", "min_samples_leaf"}
    assert search.best_estimator_.max_depth == search.best_params_["max_depth"]
    df = search.trials_dataframe()
    assert len(df) == 6 and set(df["state"]) == {"COMPLETE"}


def test_same_seed_same_configurations(data):
    X, y = data
    space = {"C": stats.loguniform(1e-3, 1e3)}
    a = tunefleet.RandomizedSearchCV(SVC(), space, n_iter=4, random_state=7).fit(X, y)
    b = tunefleet.RandomizedSearchCV(SVC(), space, n_iter=4, random_state=7).fit(X, y)
    assert a.cv_results_["params"] == b.cv_results_["params"]


def test_pipeline_with_estimator_choices_and_tuples_and_none():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:200], y[:200]
    pipe = Pipeline(
        [("scaler", StandardScaler()), ("clf", MLPClassifier(max_iter=50, random_state=0))]
    )
    space = {
        "scaler": [StandardScaler(), MinMaxScaler(), None],
        "clf__hidden_layer_sizes": [(8,), (8, 4)],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = tunefleet.GridSearchCV(pipe, space, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    kinds = {type(p["scaler"]).__name__ for p in search.cv_results_["params"]}
    assert kinds == {"StandardScaler", "MinMaxScaler", "NoneType"}
    assert search.best_params_["clf__hidden_layer_sizes"] in [(8,), (8, 4)]
    # best_params_ holds the original objects; best_estimator_ holds clones of them
    assert search.best_params_["scaler"] in space["scaler"]


def test_multi_metric_with_refit_name(data):
    X, y = data
    search = tunefleet.RandomizedSearchCV(
        LogisticRegression(max_iter=300),
        {"C": stats.loguniform(1e-3, 1e2)},
        n_iter=4,
        scoring=["accuracy", "f1_macro"],
        refit="f1_macro",
        random_state=0,
    ).fit(X, y)
    assert search.multimetric_
    assert "rank_test_f1_macro" in search.cv_results_ and "mean_test_accuracy" in search.cv_results_
    assert search.best_index_ == int(np.argmin(search.cv_results_["rank_test_f1_macro"]))
    assert search.best_score_ == search.cv_results_["mean_test_f1_macro"][search.best_index_]
    assert set(search.scorer_) == {"accuracy", "f1_macro"}
    # the study optimised the refit metric
    values = [t.value for t in search.study_.trials]
    np.testing.assert_allclose(values, search.cv_results_["mean_test_f1_macro"])


def test_multi_metric_needs_a_refit_key(data):
    X, y = data
    search = tunefleet.GridSearchCV(SVC(), {"C": [1]}, scoring=["accuracy", "f1_macro"], refit=True)
    with pytest.raises(ValueError, match="refit must be set to a scorer key"):
        search.fit(X, y)


def test_refit_callable_and_refit_false(data):
    X, y = data
    search = tunefleet.GridSearchCV(SVC(), {"C": [0.1, 1, 10]}, refit=lambda r: 0).fit(X, y)
    assert search.best_index_ == 0 and not hasattr(search, "best_score_")
    search = tunefleet.GridSearchCV(SVC(), {"C": [0.1, 1]}, refit=False).fit(X, y)
    assert not hasattr(search, "best_estimator_")
    assert search.best_params_ in search.cv_results_["params"]


def test_failing_trials_follow_error_score_and_the_search_goes_on(data):
    X, y = data
    search = tunefleet.GridSearchCV(
        FlakyClassifier(), {"fail": [False, True], "C": [1.0]}, error_score=-1.0
    )
    with pytest.warns(
        FitFailedWarning,
        match=r"(?s)5 fits failed out of a total of 10 \(in 1 of 2 trials\).*deliberate failure with C=1.0",
    ):
        search.fit(X, y)
    failed = search.cv_results_["params"].index({"fail": True, "C": 1.0})
    assert search.cv_results_["mean_test_score"][failed] == -1.0
    assert search.cv_results_["state"][failed] == "FAIL"
    assert search.best_params_ == {"fail": False, "C": 1.0}
    errors = search.trials_dataframe()["error"].dropna().tolist()
    assert len(errors) == 1 and "ArithmeticError" in errors[0]


def test_all_trials_failing_is_one_clear_error(data):
    X, y = data
    search = tunefleet.GridSearchCV(FlakyClassifier(fail=True), {"C": [1.0, 2.0]})
    with pytest.raises(
        ValueError, match=r"All the 10 fits failed(.|\n)*deliberate failure with C=1.0"
    ):
        search.fit(X, y)


def test_error_score_raise_raises_and_records_the_trial(data, tmp_path):
    X, y = data
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    search = tunefleet.GridSearchCV(
        FlakyClassifier(fail=True), {"C": [1.0]}, error_score="raise", storage=url
    )
    with pytest.raises(ArithmeticError, match="deliberate failure"):
        search.fit(X, y)
    trials = optuna.load_study(study_name="FlakyClassifier-GridSearchCV", storage=url).trials
    assert [t.state.name for t in trials] == ["FAIL"]
    assert "deliberate failure" in trials[0].user_attrs["tunefleet:error"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: tunefleet.RandomizedSearchCV(SVC(), {"C": [1]}, n_iter=0),
            "n_iter must be a positive integer, got 0",
        ),
        (
            lambda: tunefleet.RandomizedSearchCV(SVC(), {"C": [1]}, n_iter=-3),
            "n_iter must be a positive integer, got -3",
        ),
        (
            lambda: tunefleet.GridSearchCV(SVC(), {"C": []}),
            r"param_grid\['C'\]: Parameter grid for parameter 'C' need to be a non-empty",
        ),
        (
            lambda: tunefleet.GridSearchCV(SVC(), {"bogus": [1]}),
            r"param_grid: Invalid parameter 'bogus' for estimator SVC",
        ),
        (
            lambda: tunefleet.RandomizedSearchCV(SVC(), {"C": stats.uniform(2, -1)}),
            r"'C'\]: uniform\(loc=2, scale=-1\)",
        ),
        (
            lambda: tunefleet.BayesSearchCV(SVC(), {"C": [1]}, sampler="sobol"),
            r"sampler='sobol' is not a known strategy",
        ),
        (
            lambda: tunefleet.GridSearchCV(SVC(), {"C": [1]}, pruner="sometimes"),
            r"pruner='sometimes' is not a known pruner",
        ),
        (
            lambda: tunefleet.EvolutionSearchCV(SVC(), {"kernel": ["rbf"]}, algorithm="cmaes"),
            r"'cmaes' searches numeric spaces only",
        ),
        (
            lambda: tunefleet.HyperbandSearchCV(SVC(), {"C": [1]}, resource="epochs"),
            r"resource='epochs' needs a tunefleet Keras wrapper",
        ),
        (
            lambda: tunefleet.HyperbandSearchCV(SVC(), {"C": [1]}, schedule="async"),
            r"schedule='async' is not known; expected one of \['hyperband', 'halving'\]",
        ),
        (
            lambda: tunefleet.HyperbandSearchCV(SVC(), {"C": [1]}, resource="n_trees"),
            r"resource='n_trees' is not a parameter of SVC",
        ),
        (
            lambda: tunefleet.GridSearchCV(SVC(), {"C": [1]}, storage="nosuchdb://x"),
            r"storage='nosuchdb://x' could not be opened",
        ),
        (
            lambda: tunefleet.GridSearchCV(SVC(), {"C": [1]}, n_jobs=0),
            r"n_jobs must be a non-zero integer",
        ),
    ],
)
def test_bad_input_is_refused_before_any_trial_runs(data, make, message):
    X, y = data
    search = make()
    with pytest.raises((ValueError, TypeError), match=message):
        search.fit(X, y)
    assert not hasattr(search, "study_")


def test_storage_password_is_masked_in_errors(data):
    X, y = data
    search = tunefleet.GridSearchCV(
        SVC(), {"C": [1]}, storage="postgresql+nodriver://bob:hunter2@localhost/db"
    )
    with pytest.raises(ValueError, match="could not be opened") as info:
        search.fit(X, y)
    assert "hunter2" not in str(info.value) and "bob:***@" in str(info.value)


def test_clone_and_get_params_keep_sklearn_discipline():
    from sklearn.base import clone

    search = tunefleet.BayesSearchCV(
        SVC(), {"C": [1, 2]}, n_iter=3, storage="sqlite:///x.db", study_name="s"
    )
    copy = clone(search)
    assert copy.get_params()["storage"] == "sqlite:///x.db"
    assert copy.get_params()["n_iter"] == 3 and copy.get_params()["sampler"] == "tpe"
    for cls in (tunefleet.HyperbandSearchCV, tunefleet.EvolutionSearchCV):
        params = cls(SVC(), {"C": [1]}).get_params()
        assert {"scoring", "cv", "refit", "storage", "study_name", "random_state"} <= set(params)


def test_hyperband_over_samples_prunes_and_reports_resources(data):
    X, y = data
    search = tunefleet.HyperbandSearchCV(
        LogisticRegression(max_iter=300),
        {"C": stats.loguniform(1e-4, 1e2)},
        n_iter=12,
        cv=3,
        random_state=0,
    ).fit(X, y)
    states = set(search.cv_results_["state"])
    assert "PRUNED" in states and "COMPLETE" in states
    complete = search.cv_results_["state"] == "COMPLETE"
    assert (search.cv_results_["n_resources"][complete] == 100).all()  # 2/3 of 150 samples
    assert search.best_score_ > 0.9
    pruned = ~complete
    assert np.isnan(search.cv_results_["mean_test_score"][pruned]).all()
    assert (
        search.cv_results_["rank_test_score"][pruned] == search.cv_results_["rank_test_score"].max()
    ).all()


def test_halving_schedule_compares_every_trial_at_every_rung(data):
    X, y = data
    search = tunefleet.HyperbandSearchCV(
        LogisticRegression(max_iter=300),
        {"C": stats.loguniform(1e-4, 1e2)},
        schedule="halving",
        n_iter=12,
        cv=3,
        random_state=0,
    ).fit(X, y)
    assert search.study_.user_attrs["tunefleet:strategy"] == "random + halving"
    rungs = [18, 54]  # samples: 2 * 3 folds * 3 classes (min_resource), then x3; 100 is full
    assert list(search.cv_results_["n_resources"][:1]) == [100]  # the first trial goes on
    trials = search.study_.trials
    results = search.cv_results_
    trained = dict(zip(results["trial_number"], results["n_resources"], strict=True))
    for trial in trials:  # each rung kept the best third of the trials that reached it
        for rung in rungs:
            if rung not in trial.intermediate_values:
                continue
            earlier = [
                t.intermediate_values[rung]
                for t in trials
                if t.number <= trial.number and rung in t.intermediate_values
            ]
            best = sorted(earlier, reverse=True)[: max(1, len(earlier) // 3)]
            went_on = trained[trial.number] > rung
            assert went_on == (trial.intermediate_values[rung] >= best[-1]), trial.number
    assert "PRUNED" in set(search.cv_results_["state"])


def test_reported_rungs_pruner_ranks_the_values_reported_at_each_rung():
    pruner = ReportedRungsPruner(rungs=[0, 2], reduction_factor=3)
    study = optuna.create_study(direction="minimize", pruner=pruner)

    def report(values, step):
        trials = [study.ask() for _ in values]
        for trial, value in zip(trials, values, strict=True):
            trial.report(value, step)
        return [trial.should_prune() for trial in trials]

    # reported together (a fleet's epoch): only the best of three goes on, here the lowest
    assert report([0.3, 0.1, 0.2], 0) == [True, False, True]
    # alone, a trial is compared with those before it: best of 4 / not, then best 2 of 6
    assert report([0.05], 0) == [False] and report([0.5], 0) == [True]
    assert report([0.06], 0) == [False]
    assert report([float("nan")], 0) == [True]  # cannot be ranked
    # off the rungs every trial goes on; at the second rung the first one has no rival
    assert report([0.9], 1) == [False] and report([0.9], 2) == [False]
    with pytest.raises(ValueError, match="reduction_factor >= 2"):
        ReportedRungsPruner([0], reduction_factor=1)


def test_hyperband_over_a_named_integer_parameter(data):
    X, y = data
    search = tunefleet.HyperbandSearchCV(
        RandomForestClassifier(n_estimators=27, random_state=0),
        {"max_depth": [1, 2, 4, None]},
        resource="n_estimators",
        n_iter=8,
        cv=3,
        random_state=0,
    ).fit(X, y)
    assert search.cv_results_["n_resources"].max() == 27
    assert search.best_estimator_.n_estimators == 27


def test_bayes_and_evolution_find_good_configurations(data):
    X, y = data
    space = {
        "C": tunefleet.Float(1e-3, 1e3, log=True),
        "gamma": tunefleet.Float(1e-4, 1e1, log=True),
    }
    for cls in (tunefleet.BayesSearchCV, tunefleet.EvolutionSearchCV):
        search = cls(SVC(), space, n_iter=12, cv=3, random_state=0).fit(X, y)
        assert search.best_score_ > 0.93, cls.__name__
        assert len(search.cv_results_["params"]) == 12
    genetic = tunefleet.EvolutionSearchCV(  # 4 of 6 points (6 would run as a grid)
        SVC(), {"C": [0.1, 1, 10], "kernel": ["rbf", "linear"]}, n_iter=4
    )
    genetic.fit(X, y)
    assert isinstance(genetic.study_.sampler, optuna.samplers.NSGAIISampler)


def test_median_pruner_prunes_after_folds(data):
    X, y = data
    search = tunefleet.RandomizedSearchCV(
        LogisticRegression(max_iter=300),
        {"C": stats.loguniform(1e-5, 1e2)},
        n_iter=14,
        cv=5,
        pruner="median",
        random_state=1,
    ).fit(X, y)
    assert "PRUNED" in set(search.cv_results_["state"])
    assert search.best_score_ > 0.9


def test_a_fitted_genetic_search_pickles(data):
    X, y = data
    space = {"C": [0.1, 1, 10], "kernel": ["rbf", "linear"]}
    genetic = tunefleet.EvolutionSearchCV(SVC(), space, n_iter=4, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(genetic))  # Optuna's NSGA-II sampler holds a lock
    assert isinstance(loaded.study_.sampler, optuna.samplers.NSGAIISampler)
    np.testing.assert_array_equal(loaded.predict(X), genetic.predict(X))
    trial = loaded.study_.ask()  # the loaded sampler (and its new lock) still samples
    assert trial.suggest_categorical("kernel", ["rbf", "linear"]) in ("rbf", "linear")


def test_default_tpe_is_univariate_and_groups_conditional_spaces():
    """The configuration the search-quality suite chose (docs/strategies.md)."""
    X, y = iris()
    flat = tunefleet.BayesSearchCV(
        SVC(), {"C": tunefleet.Float(1e-2, 1e2, log=True), "kernel": ["rbf", "linear"]},
        n_iter=4, random_state=0,
    ).fit(X, y)  # fmt: skip
    assert isinstance(flat.study_.sampler, optuna.samplers.TPESampler)
    assert not flat.study_.sampler._multivariate and flat.study_.sampler._constant_liar
    conditional = tunefleet.BayesSearchCV(
        SVC(), [{"kernel": ["linear"], "C": tunefleet.Float(1e-2, 1e2, log=True)},
                {"kernel": ["rbf"], "gamma": tunefleet.Float(1e-3, 1.0, log=True)}],
        n_iter=4, random_state=0,
    ).fit(X, y)  # fmt: skip
    sampler = conditional.study_.sampler
    assert sampler._multivariate and sampler._group  # Optuna's groups need multivariate
