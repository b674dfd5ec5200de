"""tunefleet's searches on Keras wrappers: the seed-style code, per-epoch pruning, workers."""

import keras
import numpy as np
import optuna
import pytest
from scipy.stats import reciprocal
from sklearn.datasets import load_diabetes, load_iris
from sklearn.preprocessing import StandardScaler

import tunefleet
from keras_models import build_classifier, build_regressor
from tunefleet.keras import KerasClassifier, KerasRegressor


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype("float32"), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype("float32")
    y = ((y - y.mean()) / y.std()).astype("float32")
    return X[:300], y[:300], X[300:], y[300:]


def test_seed_style_grid_search_with_build_fn(iris):
    X, y = iris
    model = KerasClassifier(build_fn=build_classifier, epochs=5, batch_size=16, verbose=0)
    grid = tunefleet.GridSearchCV(
        estimator=model, param_grid=dict(optimizer=["adam", "rmsprop"]), cv=3
    )
    result = grid.fit(X, y)
    assert set(result.best_params_) == {"optimizer"}
    assert 0.5 < result.best_score_ <= 1.0
    assert isinstance(result.best_estimator_.model, keras.Model)  # old tf.keras attribute
    assert result.best_estimator_.model is result.best_estimator_.model_


def test_seed_style_randomized_regressor_with_fit_params(diabetes):
    X, y, X_valid, y_valid = diabetes
    keras_reg = KerasRegressor(build_regressor, input_shape=(10,))
    param_distribs = {
        "n_hidden": [0, 1, 2, 3],
        "n_neurons": np.arange(1, 100),
        "learning_rate": reciprocal(3e-4, 3e-2),
    }
    search = tunefleet.RandomizedSearchCV(
        keras_reg, param_distribs, n_iter=4, cv=3, random_state=42
    )
    search.fit(
        X,
        y,
        epochs=8,
        validation_data=(X_valid, y_valid),
        callbacks=[keras.callbacks.EarlyStopping(patience=2)],
    )
    assert len(search.cv_results_["params"]) == 4
    assert all(type(p["n_neurons"]) is int for p in search.cv_results_["params"])
    assert search.best_params_["n_hidden"] in [0, 1, 2, 3]
    assert np.isfinite(search.best_score_)
    history = search.best_estimator_.history_
    assert "val_loss" in history and 1 <= len(history["loss"]) <= 8
    assert search.score(X_valid, y_valid) == pytest.approx(
        search.best_estimator_.score(X_valid, y_valid)
    )


def test_hyperband_over_epochs_prunes_and_stops_training_at_once(iris):
    X, y = iris
    search = tunefleet.HyperbandSearchCV(
        KerasClassifier(build_classifier, epochs=9, batch_size=16),
        {"learning_rate": tunefleet.Float(1e-5, 1e-1, log=True), "n_neurons": [2, 16]},
        n_iter=10,
        cv=2,
        factor=3,
        random_state=0,
        fleet=False,  # one by one: Keras's own fit stops at the pruned epoch
    ).fit(X, y)
    trials = search.study_.trials
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert pruned and done
    # every epoch of every fold is reported: steps fold * epochs + epoch
    assert max(max(t.intermediate_values) for t in done) == 2 * 9 - 1
    # a pruned trial stopped training where it was pruned: nothing reported after
    for t in pruned:
        assert max(t.intermediate_values) < 2 * 9 - 1
        assert (
            t.user_attrs["tunefleet:cv"]["fit_time"][0]
            < max(d.user_attrs["tunefleet:cv"]["fit_time"][0] for d in done) * 2
        )
    assert isinstance(search.study_.pruner, optuna.pruners.HyperbandPruner)
    assert search.best_score_ > 0.6


def test_build_function_that_does_not_compile_is_refused_before_any_trial(iris):
    X, y = iris

    def not_compiled(units=4):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])

    search = tunefleet.GridSearchCV(KerasClassifier(not_compiled, epochs=1), {"units": [2, 4]})
    with pytest.raises(TypeError, match="compile"):
        search.fit(X, y)
    assert not hasattr(search, "study_")


def test_unknown_build_parameter_is_refused_before_any_trial(iris):
    X, y = iris
    search = tunefleet.RandomizedSearchCV(
        KerasClassifier(build_classifier), {"n_neurone": [2, 4]}, n_iter=2
    )
    with pytest.raises(ValueError, match="n_neurone"):
        search.fit(X, y)


def test_halving_without_a_number_of_epochs_is_refused_before_any_trial(iris):
    X, y = iris
    search = tunefleet.HyperbandSearchCV(
        KerasClassifier(build_classifier, epochs=None), {"n_neurons": [2, 4]}, schedule="halving"
    )
    with pytest.raises(ValueError, match="schedule='halving' needs the number of epochs"):
        search.fit(X, y)
    assert not hasattr(search, "study_")


def test_nan_loss_is_a_failed_trial_and_the_search_goes_on(diabetes):
    X, y, _, _ = diabetes
    search = tunefleet.GridSearchCV(
        KerasRegressor(build_regressor, input_shape=(10,), epochs=3),
        {"learning_rate": [1e-3, 1e6]},  # SGD at 1e6 diverges to inf/NaN at once
        cv=2,
    )
    with pytest.warns(
        Warning,
        match="(?s)fits failed out of a total of.*in 1 of 2 trials.*FloatingPointError: The training loss became",
    ):
        search.fit(X, y)
    params = [p["learning_rate"] for p in search.cv_results_["params"]]
    assert dict(zip(params, search.cv_results_["state"], strict=True)) == {
        1e-3: "COMPLETE",
        1e6: "FAIL",
    }
    assert search.best_params_ == {"learning_rate": 1e-3}


@pytest.mark.slow
def test_keras_search_with_process_workers(iris, tmp_path):
    X, y = iris
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    search = tunefleet.RandomizedSearchCV(
        KerasClassifier(build_classifier, epochs=3, batch_size=32),
        {"n_neurons": [4, 8, 16, 32], "learning_rate": tunefleet.Float(1e-3, 1e-1, log=True)},
        n_iter=4,
        cv=2,
        n_jobs=2,
        storage=url,
        random_state=0,
    ).fit(X, y)
    workers = {t.user_attrs["tunefleet:worker"] for t in search.study_.trials}
    assert len(workers) == 2
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.predict(X).shape == (150,)
