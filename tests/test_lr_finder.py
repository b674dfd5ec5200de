"""The LR range test on a digits MLP: its suggestion must train well, its curve must be real."""

import json

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tunefleet.keras import LRFinderResult, build_mlp, lr_find
from tunefleet.report import load_study_data, lr_finder_figure

# Keras 3.15 converts variables with np.array(variable) when saving; numpy 2 warns about it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

MLP = {"input_shape": (64,), "output": "multiclass:10", "n_hidden": 1, "n_neurons": 64}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def result(digits):
    X_train, _, y_train, _ = digits
    return lr_find(build_mlp, X_train, y_train, build_kwargs=MLP)  # the defaults


def accuracy_after_training(digits, learning_rate, epochs=5):
    X_train, X_test, y_train, y_test = digits
    keras.utils.set_random_seed(0)
    model = build_mlp(**MLP, learning_rate=learning_rate)
    model.fit(X_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    return model.evaluate(X_test, y_test, verbose=0, return_dict=True)["accuracy"]


def test_curve_falls_then_diverges(result):
    assert isinstance(result, LRFinderResult)
    lrs, smoothed = np.array(result.learning_rates), np.array(result.smoothed_losses)
    assert np.all(np.diff(lrs) > 0)
    assert lrs[0] == pytest.approx(1e-5)  # the default start_lr
    assert len(result.losses) == len(lrs) == len(smoothed)
    # the loss fell well below where it started, then blew up: the test stopped early
    assert np.nanmin(smoothed) < 0.6 * smoothed[0]
    assert result.diverged
    assert len(lrs) < 200
    # the blown-up tail is left out of the smoothed curve (NaN), and only there
    finite = np.isfinite(smoothed)
    assert finite[0] and not finite[-1]
    assert np.all(finite[: finite.sum()])
    assert np.max(result.losses[finite.sum() :]) > 2 * np.nanmin(smoothed)
    # the suggestion lies below the minimum of the curve, by the documented rule
    assert result.suggestion == pytest.approx(result.min_loss_learning_rate / 10)
    assert set(result.suggestions) == {"min/10", "steepest"}
    assert 1e-5 < result.suggestions["steepest"] < result.min_loss_learning_rate


def test_suggestion_lies_where_training_reaches_good_accuracy(digits, result):
    good = accuracy_after_training(digits, result.suggestion)
    assert good >= 0.92, f"lr {result.suggestion:.3g} gave accuracy {good:.3f}"
    # the curve is informative: a rate 100x lower (the flat start of the curve)
    # learns much less in the same epochs
    assert accuracy_after_training(digits, result.suggestion / 100) < good - 0.1


def test_given_compiled_model_is_left_untouched(digits):
    X_train, _, y_train, _ = digits
    keras.utils.set_random_seed(0)
    model = build_mlp(**MLP, learning_rate=1e-3)
    weights = [w.copy() for w in model.get_weights()]
    result = lr_find(model, X_train, y_train, num_steps=30, method="steepest")
    assert result.method == "steepest"
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert int(model.optimizer.iterations) == 0


def test_plot_and_dict(result, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "lr.png"
    ax = result.plot(path=str(path))
    assert path.stat().st_size > 1000
    assert ax.get_xscale() == "log"
    data = result.to_dict()
    json.dumps(data, allow_nan=False)  # plain JSON (the NaN tail becomes None)
    assert data["suggestion"] == result.suggestion
    assert len(data["losses"]) == len(result.losses)
    assert "suggested learning rate" in str(result)


def test_a_run_saved_to_a_study_shows_in_its_report(result, tmp_path):
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    optuna.create_study(storage=storage, study_name="digits", direction="maximize")
    result.save_to_study(optuna.load_study(study_name="digits", storage=storage))
    data = load_study_data(storage, "digits")  # read back from the file
    assert data.lr_finder["lrs"] == pytest.approx(result.learning_rates)
    assert data.lr_finder["losses"] == pytest.approx(result.losses)
    assert data.lr_finder["suggestion"] == pytest.approx(result.suggestion)
    assert lr_finder_figure(data) is not None
    with pytest.raises(TypeError, match=r"save_to_study: study must be an optuna\.Study"):
        result.save_to_study(storage)


def test_bad_input(digits):
    X_train, _, y_train, _ = digits
    with pytest.raises(ValueError, match=r"start_lr .* must be smaller than end_lr"):
        lr_find(build_mlp, X_train, y_train, build_kwargs=MLP, start_lr=1.0, end_lr=1e-3)
    with pytest.raises(ValueError, match=r"start_lr .* must be smaller than end_lr"):
        lr_find(build_mlp, X_train, y_train, build_kwargs=MLP, start_lr=0.1, end_lr=0.1)
    with pytest.raises(ValueError, match="too small for num_steps=200"):
        lr_find(build_mlp, X_train[:200], y_train[:200], build_kwargs=MLP)
    lr_find(build_mlp, X_train[:200], y_train[:200], build_kwargs=MLP, num_steps=60)  # fits
    with pytest.raises(ValueError, match="num_steps"):
        lr_find(build_mlp, X_train, y_train, build_kwargs=MLP, num_steps=5)
    with pytest.raises(ValueError, match="method"):
        lr_find(build_mlp, X_train, y_train, build_kwargs=MLP, method="valley")
    with pytest.raises(ValueError, match="x has 100 samples but y has 99"):
        lr_find(build_mlp, X_train[:100], y_train[:99], build_kwargs=MLP, num_steps=10)
    uncompiled = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    with pytest.raises(TypeError, match="not compiled"):
        lr_find(uncompiled, X_train, y_train, num_steps=10)
    with pytest.raises(TypeError, match="model must be"):
        lr_find("build_mlp", X_train, y_train)
