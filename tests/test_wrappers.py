"""Tests of tunefleet.keras.KerasClassifier / KerasRegressor with real (tiny) Keras training."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import pickle
import warnings

import keras
import numpy as np
import pytest
import scipy.stats
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingRandomSearchCV,
    KFold,
    RandomizedSearchCV,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from tunefleet._hooks import observe_epochs
from tunefleet.keras import KerasClassifier, KerasRegressor

BIG_BATCH = 1024  # one batch per epoch: one XLA compilation per fit


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype("float32")
    return X, y


@pytest.fixture(scope="module")
def iris_names(iris):
    X, y = iris
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype("float32")
    y = X[:, 0] + 0.5 * X[:, 1] > 0
    return X, y


@pytest.fixture(scope="module")
def regression():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X[:200]).astype("float32")
    y = ((y[:200] - y[:200].mean()) / y[:200].std()).astype("float32")
    return X, y


# ------------------------------------------------------------ build functions
# (module level, so that estimators are picklable and loky workers can import them)


def build_clf(units=8, optimizer="adam", loss="sparse_categorical_crossentropy", n_classes=3):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(n_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def build_binary(units=8, learning_rate=0.05, n_features=5):
    model = keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    return model


def build_logits(units=8):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(3)]
    )
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def build_reg(n_hidden=1, n_neurons=30, learning_rate=3e-3, input_shape=(10,)):
    assert type(n_hidden) is int, type(n_hidden)
    assert type(n_neurons) is int, type(n_neurons)
    assert type(learning_rate) is float, type(learning_rate)
    model = keras.Sequential([keras.Input(input_shape)])
    for _ in range(n_hidden):
        model.add(keras.layers.Dense(n_neurons, activation="relu"))
    model.add(keras.layers.Dense(1))
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate))
    return model


def build_typed(units=4, rate=0.1, activation="relu", use_bias=True, sizes=(2, 3)):
    assert type(units) is int, type(units)
    assert type(rate) is float, type(rate)
    assert type(activation) is str, type(activation)
    assert type(use_bias) is bool, type(use_bias)
    assert all(type(s) is int for s in sizes), [type(s) for s in sizes]
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(units, activation=activation, use_bias=use_bias)]
    )
    model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
    return model


def build_required(units, depth=1):
    model = keras.Sequential([keras.Input((4,))])
    for _ in range(depth):
        model.add(keras.layers.Dense(units, activation="relu"))
    model.add(keras.layers.Dense(3, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def build_kwargs(units=4, **kwargs):
    return build_clf(units=units)


def build_uncompiled(units=4):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])


def build_not_a_model(units=4):
    return "a model"


def nan_loss(y_true, y_pred):
    return keras.ops.log(keras.ops.mean(y_pred) * 0.0 - 1.0)  # log(-1) = nan


def build_nan(units=4):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss=nan_loss)
    return model


def build_meta(meta, units=4):
    model = keras.Sequential(
        [
            keras.Input((meta["n_features_in_"],)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(meta["n_classes_"], activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


class Doubler(keras.layers.Layer):
    """A custom layer that is not registered: keras.saving.load_model cannot rebuild it."""

    def call(self, x):
        return x * 2.0


def build_custom_layer(units=4):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            Doubler(),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


class EpochRecorder(keras.callbacks.Callback):
    """Appends (self, epoch) to a class-level log; instances count their own epochs.

    The log holds the instances themselves, not their ids: a copy garbage-collected
    after its fit could otherwise hand its id to the next copy.
    """

    log: list = []

    def __init__(self):
        super().__init__()
        self.seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1
        EpochRecorder.log.append((self, epoch))


# ---------------------------------------------------------------- construction


def test_build_fn_and_model_forms_train_and_predict(iris):
    X, y = iris
    a = KerasClassifier(build_clf, epochs=2, batch_size=BIG_BATCH, random_state=0).fit(X, y)
    b = KerasClassifier(model=build_clf, epochs=2, batch_size=BIG_BATCH, random_state=0).fit(X, y)
    for est in (a, b):
        assert isinstance(est.model_, keras.Model)
        assert est.predict(X).shape == (150,)
        assert set(est.predict(X)) <= {0, 1, 2}
        assert len(est.history_["loss"]) == 2
        assert all(isinstance(v, float) for v in est.history_["loss"])
        assert est.n_features_in_ == 4
        assert est.n_classes_ == 3
    # same seed, same function: same model
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"build_fn": build_clf, "model": build_clf}, {"build_fn": 3}, {"model": "adam"}],
)
def test_exactly_one_of_build_fn_and_model(kwargs, iris):
    # scikit-learn's rule: the constructor stores its arguments, fit validates them
    est = KerasClassifier(**kwargs)
    params = est.get_params()
    assert params["build_fn"] is kwargs.get("build_fn")
    assert params["model"] is kwargs.get("model")
    assert clone(est).get_params()["build_fn"] is kwargs.get("build_fn")
    with pytest.raises(ValueError, match=r"build_fn=.*model="):
        est.fit(*iris)
    with pytest.raises(ValueError, match=r"build_fn=.*model="):
        est.check_build()
    assert not hasattr(est, "model_")


def test_model_instance_is_rejected_with_advice(iris):
    est = KerasClassifier(model=build_clf())
    with pytest.raises(TypeError, match="function that builds and compiles"):
        est.fit(*iris)


def test_build_arguments_given_before_the_build_function_are_checked_at_fit(iris):
    est = KerasClassifier(units=4, unitz=5)  # no build function yet: names unchecked
    assert est.get_params()["units"] == 4
    est.set_params(build_fn=build_clf)
    with pytest.raises(ValueError, match=r"Invalid parameter 'unitz'.*'units'"):
        est.fit(*iris)
    est = KerasClassifier(model__units=4, epochs=1, batch_size=BIG_BATCH)
    est.set_params(model=build_clf).fit(*iris)
    assert est.model_.layers[0].units == 4


def test_zero_and_negative_sample_weights(iris):
    X, y = iris
    est = KerasClassifier(build_clf, epochs=1, batch_size=BIG_BATCH)
    with pytest.raises(ValueError, match="at least one non-zero"):
        est.fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="Negative"):
        est.fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match=r"shape \(150,\)"):
        est.fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="requires y to be passed"):
        est.fit(X, None)


def test_sample_weights_count_like_repeated_samples(regression):
    """Weights rescaled to mean 1, zero weights left out: repeated rows, in full batches."""
    X, y = regression
    X, y = X[:40], y[:40]
    w = np.random.default_rng(0).integers(0, 4, size=len(y))
    kw = {"epochs": 3, "batch_size": BIG_BATCH, "random_state": 0, "shuffle": False}
    repeated = KerasRegressor(build_reg, **kw).fit(X.repeat(w, axis=0), y.repeat(w))
    weighted = KerasRegressor(build_reg, **kw).fit(X, y, sample_weight=w * 10.0)
    np.testing.assert_allclose(repeated.history_["loss"], weighted.history_["loss"], rtol=1e-5)
    np.testing.assert_allclose(repeated.predict(X), weighted.predict(X), rtol=1e-5, atol=1e-6)


def test_get_params_lists_fit_params_and_signature_defaults():
    est = KerasClassifier(build_clf, epochs=3, units=16)
    params = est.get_params()
    assert params["build_fn"] is build_clf
    assert params["model"] is None
    assert params["epochs"] == 3
    assert params["units"] == 16
    assert params["optimizer"] == "adam"  # the function's default
    assert params["loss"] == "sparse_categorical_crossentropy"
    for name in (
        "batch_size",
        "verbose",
        "callbacks",
        "validation_split",
        "validation_data",
        "class_weight",
        "shuffle",
        "random_state",
    ):
        assert name in params
    assert est.units == 16 and est.optimizer == "adam"  # attribute access
    reg_params = KerasRegressor(build_reg).get_params()
    assert "class_weight" not in reg_params
    assert reg_params["n_neurons"] == 30


def test_set_params_clone_and_routed_aliases():
    est = KerasClassifier(build_clf, model__units=5)
    assert est.get_params()["units"] == 5
    assert est.set_params(units=7) is est
    assert est.get_params()["units"] == 7
    est.set_params(build_fn__optimizer="rmsprop", epochs=4)
    assert est.get_params()["optimizer"] == "rmsprop"
    assert est.epochs == 4
    cb = keras.callbacks.EarlyStopping(patience=2)
    est.set_params(callbacks=[cb])
    twin = clone(est)  # sklearn checks that the clone's params are the very objects given
    assert twin is not est
    p1, p2 = est.get_params(), twin.get_params()
    assert p1.keys() == p2.keys()
    assert p2["units"] == 7 and p2["optimizer"] == "rmsprop" and p2["epochs"] == 4
    assert p2["callbacks"][0] is not cb  # clone deep-copies non-estimator params
    assert "units=7" in repr(twin)


def test_bad_names_are_reported_with_valid_ones():
    with pytest.raises(TypeError, match=r"'unitz'.*'units'"):
        KerasClassifier(build_clf, unitz=3)
    est = KerasClassifier(build_clf)
    with pytest.raises(ValueError, match=r"Invalid parameter 'unitz'.*Valid parameters.*'units'"):
        est.set_params(unitz=3)
    with pytest.raises(ValueError, match="model__nope"):
        est.set_params(model__nope=3)
    assert "unitz" not in est.get_params()
    # a build function with **kwargs takes anything
    free = KerasClassifier(build_kwargs, anything=1)
    free.set_params(other=2)
    assert free.get_params()["anything"] == 1 and free.get_params()["other"] == 2
    # sklearn's search reports invalid grid names
    with pytest.raises(ValueError, match="Invalid parameter 'unitz'"):
        GridSearchCV(est, {"unitz": [1, 2]}, cv=2).fit(np.zeros((6, 4)), [0, 1, 2] * 2)


def test_required_build_argument_error_names_it(iris):
    X, y = iris
    est = KerasClassifier(build_required, epochs=1)
    assert "units" not in est.get_params()
    with pytest.raises(TypeError, match=r"missing required argument.*'units'"):
        est.fit(X, y)
    with pytest.raises(TypeError, match="'units'"):
        est.check_build()
    est.set_params(units=4)
    est.check_build()
    assert est.get_params()["units"] == 4


def test_numpy_scalars_are_converted_before_building():
    est = KerasClassifier(
        build_typed,
        units=np.int64(3),
        rate=np.float64(0.5),
        activation=np.str_("tanh"),
        use_bias=np.bool_(False),
        sizes=[np.int64(1), np.array(2)],
    )
    est.check_build()  # the build function asserts Python types
    assert type(est.get_params()["units"]) is np.int64  # the stored value is left alone
    est.set_params(units=np.int32(2), rate=np.array(0.25), sizes=(np.int16(4),))
    est.check_build()


def test_fit_params_are_overridable_per_call(iris):
    X, y = iris
    est = KerasClassifier(build_clf, epochs=1, batch_size=BIG_BATCH)
    est.fit(X, y, epochs=np.int64(3))
    assert len(est.history_["loss"]) == 3
    assert est.epochs == 1
    est.fit(X, y)
    assert len(est.history_["loss"]) == 1
    with pytest.raises(TypeError, match=r"'steps'.*epochs"):
        est.fit(X, y, steps=3)


def test_callbacks_are_copied_per_fit_and_clone(iris):
    X, y = iris
    EpochRecorder.log.clear()
    rec = EpochRecorder()
    est = KerasClassifier(build_clf, epochs=2, batch_size=BIG_BATCH, callbacks=[rec])
    est.fit(X, y)
    clone(est).fit(X, y)
    est.fit(X, y, callbacks=[rec])
    assert rec.seen == 0 and rec.model is None  # the user's callback is never used itself
    ids = {id(copy) for copy, _ in EpochRecorder.log}
    assert len(EpochRecorder.log) == 6 and len(ids) == 3  # three fits, three copies
    assert id(rec) not in ids

    # a callback already attached to a model: the copy must not deep-copy that model
    other = build_clf()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0)
    other.fit(X, y, epochs=1, verbose=0, callbacks=[stop])
    assert stop.model is other
    est.fit(X, y, callbacks=[stop], epochs=3)
    assert stop.model is other
    assert len(est.history_["loss"]) >= 1


# ---------------------------------------------------------------------- targets


def test_string_labels_sparse_loss_and_validation_data(iris_names):
    X, y = iris_names
    est = KerasClassifier(build_clf, epochs=30, batch_size=BIG_BATCH, units=16, random_state=0)
    est.set_params(optimizer=keras.optimizers.Adam(0.05))
    est.fit(X[::2], y[::2], validation_data=(X[1::2], y[1::2]))
    assert list(est.classes_) == ["setosa", "versicolor", "virginica"]
    assert "val_loss" in est.history_ and len(est.history_["val_loss"]) == 30
    pred = est.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= set(est.classes_)
    assert est.score(X, y) > 0.8
    proba = est.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"not seen.*daisy"):
        est.fit(X, y, validation_data=(X[:3], ["setosa", "daisy", "setosa"]))


def test_int_labels_with_categorical_loss_get_one_hot_targets(iris):
    X, y = iris
    est = KerasClassifier(
        build_clf, loss="categorical_crossentropy", epochs=30, batch_size=BIG_BATCH, random_state=0
    )
    optimizer = keras.optimizers.Adam(0.05)
    est.set_params(optimizer=optimizer)
    est.fit(X, y + 10)
    assert list(est.classes_) == [10, 11, 12]
    assert est._target_format_ == "onehot"
    assert est.score(X, y + 10) > 0.8
    assert est.predict_proba(X).shape == (150, 3)
    # the optimizer instance is re-created for each build: a model of another shape works
    est.set_params(units=5).fit(X, y + 10, epochs=1)
    assert int(optimizer.iterations.value) == 0
    assert est.model_.optimizer is not optimizer


def test_one_hot_y_predicts_one_hot(iris):
    X, y = iris
    Y = np.eye(3)[y]
    est = KerasClassifier(
        build_clf, loss="categorical_crossentropy", epochs=3, batch_size=BIG_BATCH
    ).fit(X, Y)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    pred = est.predict(X)
    assert pred.shape == (150, 3)
    np.testing.assert_array_equal(pred.sum(axis=1), 1)
    assert 0.0 <= est.score(X, Y) <= 1.0


def test_binary_sigmoid_with_bool_labels_and_class_weight(binary):
    X, y = binary
    est = KerasClassifier(build_binary, epochs=40, batch_size=BIG_BATCH, random_state=0)
    est.fit(X, y, class_weight={False: 1.0, True: 2.0})
    assert est._target_format_ == "binary"
    np.testing.assert_array_equal(est.classes_, [False, True])
    proba = est.predict_proba(X)
    assert proba.shape == (120, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    pred = est.predict(X)
    assert pred.dtype == bool
    np.testing.assert_array_equal(pred, proba[:, 1] > 0.5)
    assert est.score(X, y) > 0.8
    labels = np.where(y, "yes", "no")
    est.fit(X, labels, epochs=1, class_weight="balanced")
    assert set(est.predict(X)) <= {"no", "yes"}


def test_output_width_mismatches_are_clear(iris, binary):
    X, y = iris
    with pytest.raises(ValueError, match=r"single output unit.*3 classes"):
        KerasClassifier(build_binary, n_features=4).fit(X, y)
    with pytest.raises(ValueError, match=r"output has 3 units but y has 2 classes"):
        KerasClassifier(build_clf).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match=r"output has 3 units but y has 2 classes"):
        KerasClassifier(build_clf).check_build(X[:100], y[:100])
    KerasClassifier(build_clf).check_build(X, y)


def test_build_function_with_meta_gets_data_description(iris):
    X, y = iris
    est = KerasClassifier(build_meta, units=3)
    assert "meta" not in est.get_params()
    est.check_build(X, y)  # builds a 4-input, 3-output model from meta
    assert not hasattr(est, "model_")
    with pytest.raises(ValueError, match=r"takes `meta`.*pass X and y"):
        est.check_build()


def test_clear_session_keeps_global_dtype_policy():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        KerasClassifier(build_clf).check_build()
        assert keras.config.dtype_policy().name == "mixed_float16"
    finally:
        keras.config.set_dtype_policy("float32")


def test_from_logits_outputs_become_probabilities(iris):
    X, y = iris
    est = KerasClassifier(build_logits, epochs=2, batch_size=BIG_BATCH).fit(X, y)
    proba = est.predict_proba(X)
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_regressor_r2_and_1d_predictions(regression):
    X, y = regression
    est = KerasRegressor(
        build_reg, epochs=150, batch_size=BIG_BATCH, learning_rate=0.01, random_state=0
    )
    est.fit(X, y)
    pred = est.predict(X)
    assert pred.shape == (200,)
    assert est.score(X, y) > 0.4
    assert is_regressor(est) and not is_classifier(est)
    assert is_classifier(KerasClassifier(build_clf))
    with pytest.raises(ValueError, match="output has 1 units but y has 2"):
        est.fit(X, np.column_stack([y, y]))


# ------------------------------------------------------------------- failures


def test_uncompiled_or_wrong_return_type_is_a_type_error(iris):
    X, y = iris
    msg = r"build_fn must return a compiled keras.Model; call model.compile\(...\) inside it"
    with pytest.raises(TypeError, match=msg + r".*not compiled"):
        KerasClassifier(build_uncompiled).fit(X, y)
    with pytest.raises(TypeError, match=msg + r".*returned builtins.str"):
        KerasClassifier(model=build_not_a_model).check_build()
    est = KerasClassifier(build_uncompiled)
    with pytest.raises(TypeError, match=msg):
        est.check_build()
    assert not hasattr(est, "model_")


def test_nan_loss_raises_floating_point_error(iris):
    X, y = iris
    est = KerasClassifier(build_nan, epochs=5, batch_size=BIG_BATCH)
    with pytest.raises(FloatingPointError, match="epoch 0"):
        est.fit(X, y)
    assert not hasattr(est, "model_")
    # scikit-learn records the failed fits and goes on with the others
    grid = GridSearchCV(est.set_params(epochs=1), {"build_fn": [build_nan, build_clf]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.simplefilter("ignore", UserWarning)
        grid.fit(X, y)
    scores = grid.cv_results_["mean_test_score"]
    assert np.isnan(scores[0]) and not np.isnan(scores[1])
    assert grid.best_params_["build_fn"] is build_clf


# ----------------------------------------------------------- model, pickling


def test_model_property(iris):
    X, y = iris
    est = KerasClassifier(build_clf, epochs=1, batch_size=BIG_BATCH)
    assert est.model is None
    est.fit(X, y)
    assert est.model is est.model_ and isinstance(est.model, keras.Model)
    assert est.get_params()["model"] is None  # the parameter is not the fitted model
    assert clone(est).model is None
    other = KerasClassifier(model=build_clf, epochs=1, batch_size=BIG_BATCH).fit(X, y)
    assert other.model is build_clf and isinstance(other.model_, keras.Model)


def test_pickle_round_trip_before_and_after_fit(iris_names):
    X, y = iris_names
    est = KerasClassifier(build_clf, epochs=2, batch_size=BIG_BATCH, units=6, random_state=1)
    fresh = pickle.loads(pickle.dumps(est))
    assert fresh.get_params()["units"] == 6 and fresh.build_fn is build_clf
    fresh.fit(X, y)
    restored = pickle.loads(pickle.dumps(fresh))
    assert isinstance(restored.model_, keras.Model) and restored.model_ is not fresh.model_
    np.testing.assert_array_equal(restored.predict_proba(X), fresh.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), fresh.predict(X))
    assert restored.history_ == fresh.history_
    assert "model_" in fresh.__dict__  # pickling did not touch the original


def test_pickle_round_trip_with_unregistered_custom_layer(iris):
    X, y = iris
    est = KerasClassifier(build_custom_layer, epochs=1, batch_size=BIG_BATCH).fit(X, y)
    restored = pickle.loads(pickle.dumps(est))  # rebuilt with build_fn, weights loaded
    np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))


# ---------------------------------------------------------------- scikit-learn


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search(iris, n_jobs):
    X, y = iris
    model = KerasClassifier(build_fn=build_clf, epochs=2, batch_size=BIG_BATCH, verbose=0)
    grid = GridSearchCV(model, dict(optimizer=["adam", "rmsprop"]), cv=2, n_jobs=n_jobs)
    grid.fit(X, y)
    assert grid.best_params_["optimizer"] in ("adam", "rmsprop")
    assert grid.cv_results_["mean_test_score"].shape == (2,)
    assert not np.isnan(grid.cv_results_["mean_test_score"]).any()
    assert isinstance(grid.best_estimator_.model, keras.Model)
    assert grid.predict(X).shape == (150,)


def test_randomized_search_with_fit_params(regression):
    X, y = regression
    reg = KerasRegressor(build_reg, batch_size=BIG_BATCH)
    params = {
        "n_hidden": [0, 1, 2, 3],
        "n_neurons": np.arange(1, 100),
        "learning_rate": scipy.stats.reciprocal(3e-4, 3e-2),
    }
    search = RandomizedSearchCV(reg, params, n_iter=2, cv=2, random_state=0)
    search.fit(
        X[:150],
        y[:150],
        epochs=5,
        validation_data=(X[150:], y[150:]),
        callbacks=[keras.callbacks.EarlyStopping(patience=2)],
    )
    assert set(search.best_params_) == {"n_hidden", "n_neurons", "learning_rate"}
    best = search.best_estimator_
    assert isinstance(best.model, keras.Model)
    assert "val_loss" in best.history_ and 1 <= len(best.history_["val_loss"]) <= 5


def test_halving_search_over_epochs(iris):
    X, y = iris
    est = KerasClassifier(build_clf, batch_size=BIG_BATCH, random_state=0)
    search = HalvingRandomSearchCV(
        est,
        {"units": [4, 8, 16]},
        resource="epochs",
        min_resources=1,
        max_resources=2,
        factor=2,
        n_candidates=2,
        cv=2,
        random_state=0,
    )
    search.fit(X, y)
    assert search.n_resources_ == [1, 2]
    assert search.best_estimator_.epochs == 2
    assert len(search.best_estimator_.history_["loss"]) == 2


def test_pipeline_and_cross_val_score(iris):
    X, y = iris
    raw = X * 10 + 5
    pipe = make_pipeline(StandardScaler(), KerasClassifier(build_clf, batch_size=BIG_BATCH))
    pipe.set_params(kerasclassifier__epochs=2, kerasclassifier__units=4)
    assert pipe.get_params()["kerasclassifier__units"] == 4
    scores = cross_val_score(pipe, raw, y, cv=KFold(2, shuffle=True, random_state=0))
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    assert isinstance(pipe, Pipeline)


def test_pandas_dataframe_input(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = KerasClassifier(build_clf, epochs=1, batch_size=BIG_BATCH).fit(df, pd.Series(y))
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c", "d"])
    assert est.predict(df).shape == (150,)


# ------------------------------------------------------------------ observer


def test_epoch_observer_is_called_once_per_epoch(iris):
    X, y = iris
    calls = []
    pipe = make_pipeline(StandardScaler(), KerasClassifier(build_clf, batch_size=BIG_BATCH))
    with observe_epochs(lambda epoch, epochs: calls.append((epoch, epochs))):
        pipe.fit(X, y, kerasclassifier__epochs=3)
    assert calls == [(0, 3), (1, 3), (2, 3)]
    KerasClassifier(build_clf, batch_size=BIG_BATCH, epochs=2).fit(X, y)
    assert len(calls) == 3  # no observer outside the context


def test_epoch_observer_exception_stops_fit(iris):
    X, y = iris
    calls = []

    class Stop(Exception):
        pass

    def observer(epoch, epochs):
        calls.append(epoch)
        if epoch == 1:
            raise Stop

    est = KerasClassifier(build_clf, batch_size=BIG_BATCH, epochs=10)
    with observe_epochs(observer), pytest.raises(Stop):
        est.fit(X, y)
    assert calls == [0, 1]
    assert not hasattr(est, "model_")
