"""build_mlp / build_cnn: architectures, outputs, augmentation, use in a tunefleet search."""

import keras
import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.preprocessing import StandardScaler

import tunefleet
from tunefleet.keras import KerasClassifier, OneCycle, StepDecay, WarmupCosine, build_cnn, build_mlp

# Keras 3.15 converts variables with np.array(variable) when saving; numpy 2 warns about it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype("float32"), y


@pytest.mark.parametrize(
    ("output", "units", "activation", "loss"),
    [
        ("binary", 1, "sigmoid", "binary_crossentropy"),
        ("multiclass:3", 3, "softmax", "sparse_categorical_crossentropy"),
        ("regression", 1, "linear", "mse"),
        ("regression:2", 2, "linear", "mse"),
    ],
)
def test_output_heads(output, units, activation, loss):
    model = build_mlp((4,), output, n_hidden=1, n_neurons=8)
    head = model.get_layer("output")
    assert head.units == units
    assert head.activation.__name__ == activation
    assert model.loss == loss
    assert model.compiled


def test_mlp_options_shape_the_network():
    model = build_mlp(
        (4,), "multiclass:3", n_hidden=3, n_neurons=16, dropout=0.3, batchnorm=True, l2=1e-3
    )
    types = layer_types(model)
    assert types.count("Dense") == 4
    assert types.count("BatchNormalization") == 3
    assert types.count("Dropout") == 3
    assert model.get_layer("dense_0").use_bias is False  # no bias before batch norm
    regularized = [layer for layer in model.layers if getattr(layer, "kernel_regularizer", None)]
    assert len(regularized) == 4  # an L2 penalty on every kernel, the output's included
    assert build_mlp((4,), "binary").get_layer("dense_0").kernel_regularizer is None

    selu = build_mlp((4,), "binary", activation="selu", dropout=0.1)
    assert "AlphaDropout" in layer_types(selu)
    assert type(selu.get_layer("dense_0").kernel_initializer).__name__ == "LecunNormal"
    assert type(build_mlp((4,), "binary").get_layer("dense_0").kernel_initializer).__name__ == (
        "HeNormal"
    )


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("step", StepDecay),
        ("cosine", keras.optimizers.schedules.CosineDecay),
        ("warmup_cosine", WarmupCosine),
        ("onecycle", OneCycle),
    ],
)
def test_named_schedules_span_schedule_steps(name, cls):
    model = build_mlp((4,), "binary", learning_rate=0.01, schedule=name, schedule_steps=300)
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, cls)
    rates = [float(schedule(step)) for step in range(0, 301, 10)]
    assert max(rates) == pytest.approx(0.01, rel=0.05)
    assert rates[-1] < 0.01 * 0.5  # decayed by the end of schedule_steps


def test_optimizer_choices():
    model = build_mlp((4,), "binary", optimizer="nesterov", learning_rate=0.05, clipnorm=1.0)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.nesterov and model.optimizer.momentum == pytest.approx(0.9)
    assert model.optimizer.clipnorm == 1.0
    given = keras.optimizers.RMSprop(0.002)
    assert build_mlp((4,), "binary", optimizer=given).optimizer is given


def test_mlp_trains_on_binary_and_regression_data():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype("float32")
    keras.utils.set_random_seed(0)
    model = build_mlp((30,), "binary", n_hidden=1, n_neurons=16, learning_rate=1e-2)
    model.fit(X[:400], y[:400], epochs=3, batch_size=32, verbose=0)
    assert model.evaluate(X[400:], y[400:], verbose=0, return_dict=True)["accuracy"] > 0.9

    X, y = load_iris(return_X_y=True)
    target = X[:, 2:].astype("float32")  # predict petal length and width from sepals
    inputs = StandardScaler().fit_transform(X[:, :2]).astype("float32")
    keras.utils.set_random_seed(0)
    reg = build_mlp((2,), "regression:2", n_hidden=1, n_neurons=16, learning_rate=3e-2)
    baseline = float(np.mean((target - target.mean(axis=0)) ** 2))
    reg.fit(inputs, target, epochs=8, batch_size=16, verbose=0)
    assert reg.evaluate(inputs, target, verbose=0, return_dict=True)["loss"] < 0.5 * baseline


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"output": "multi:3"}, "output"),
        ({"output": "multiclass:1"}, "output"),
        ({"output": "multiclass:ten"}, "output"),
        ({"output": 3}, "output"),
        ({"n_hidden": -1}, "n_hidden"),
        ({"n_neurons": 0}, "n_neurons"),
        ({"n_neurons": 2.5}, "n_neurons"),
        ({"dropout": 1.0}, "dropout"),
        ({"l2": -1.0}, "l2"),
        ({"activation": "sigmoidal"}, "activation"),
        ({"optimizer": "adamax2"}, "optimizer"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"schedule": "linear", "schedule_steps": 100}, "schedule"),
        ({"schedule": "cosine"}, "schedule_steps"),
        ({"input_shape": (0,)}, "input_shape"),
    ],
)
def test_bad_mlp_arguments_name_the_parameter(kwargs, name):
    args = {"input_shape": (4,), "output": "binary", **kwargs}
    with pytest.raises(ValueError, match=name):
        build_mlp(**args)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_conv_blocks": 4}, "n_conv_blocks"),
        ({"rotation": 0.7}, "rotation"),
        ({"flip": "diagonal"}, "flip"),
        ({"zoom": 1.0}, "zoom"),
        ({"pooling": "min"}, "pooling"),
        ({"fill_mode": "mirror"}, "fill_mode"),
        ({"input_shape": (64,)}, "input_shape"),
    ],
)
def test_bad_cnn_arguments_name_the_parameter(kwargs, name):
    args = {"input_shape": (8, 8, 1), "output": "multiclass:10", **kwargs}
    with pytest.raises(ValueError, match=name):
        build_cnn(**args)


def test_cnn_augmentation_is_active_in_training_only(digits):
    X, _ = digits
    images = X[:4].reshape(-1, 8, 8)
    full = build_cnn(
        (8, 8, 1), "multiclass:10", flip="horizontal", rotation=0.1, translation=0.1, zoom=0.2
    )
    types = layer_types(full)
    for layer in ("RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom"):
        assert layer in types
    assert full.get_layer("random_rotation").factor == (-0.1, 0.1)
    assert types.count("Conv2D") == 2 and "BatchNormalization" not in types
    with_bn = build_cnn((8, 8, 1), "multiclass:10", batchnorm=True, convs_per_block=2)
    assert layer_types(with_bn).count("BatchNormalization") == 5  # 4 convolutions + dense
    # (RandomRotation is left out of the calls below only because its first eager call
    # is slow on JAX; it is a Keras preprocessing layer like the others)
    model = build_cnn(
        (8, 8), "multiclass:10", translation=0.2, zoom=0.3, contrast=0.5, pixel_range=(0.0, 1.0)
    )
    augment = keras.Model(model.input, model.get_layer("random_contrast").output)

    def run(fn, training):
        return keras.ops.convert_to_numpy(fn(images, training=training))

    as_images = images[..., None]
    np.testing.assert_allclose(run(augment, False), as_images, atol=1e-6)
    trained_view = run(augment, True)
    assert np.abs(trained_view - as_images).mean() > 0.01
    assert trained_view.min() >= 0.0 and trained_view.max() <= 1.0  # pixel_range clips
    # inference is deterministic
    np.testing.assert_allclose(run(model, False), run(model, False))


def test_cnn_learns_digits(digits):
    # (training through the rotation/zoom/translation layers is right but slow to compile
    # on JAX's CPU backend, so this check trains without them)
    X, y = digits
    images = X.reshape(-1, 8, 8, 1)
    keras.utils.set_random_seed(0)
    model = build_cnn(
        (8, 8, 1), "multiclass:10", filters=8, global_pool=False, dense_units=0, learning_rate=1e-2
    )
    assert "Flatten" in layer_types(model)
    model.fit(images[:600], y[:600], epochs=2, batch_size=32, verbose=0)
    accuracy = model.evaluate(images[1200:], y[1200:], verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.7  # chance is 0.1


def test_build_mlp_in_a_tunefleet_search(digits):
    X, y = digits
    estimator = KerasClassifier(
        build_mlp,
        input_shape=(64,),
        output="multiclass:10",
        n_hidden=1,
        schedule_steps=3 * 4,  # epochs * batches per epoch (2 folds of 240 samples, 32 a batch)
        epochs=3,
        batch_size=32,
        verbose=0,
        random_state=0,
    )
    search = tunefleet.RandomizedSearchCV(
        estimator,
        {
            "n_neurons": [32, 64],
            "l2": [0.0, 1e-4],
            "schedule": [None, "cosine", "onecycle"],
            "learning_rate": loguniform(1e-2, 3e-2),
        },
        n_iter=3,
        cv=2,
        random_state=0,
    )
    search.fit(X[:240], y[:240])
    assert len(search.cv_results_["params"]) == 3
    # little data and 3 epochs: well above chance (0.1), not yet good
    assert search.best_score_ > 0.6
    assert search.best_estimator_.score(X[600:900], y[600:900]) > 0.6
    assert set(search.best_params_) == {"n_neurons", "l2", "schedule", "learning_rate"}


def test_bad_output_fails_before_the_search(digits):
    X, y = digits
    estimator = KerasClassifier(build_mlp, input_shape=(64,), output="multi:10", epochs=1)
    search = tunefleet.RandomizedSearchCV(estimator, {"n_neurons": [8, 16]}, n_iter=2, cv=2)
    with pytest.raises(ValueError, match="output='multi:10'"):
        search.fit(X[:100], y[:100])
