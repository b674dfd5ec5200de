"""Learning-rate schedules: values, Keras equivalences, serialization, bad input."""

import json
import math
import os

import keras
import numpy as np
import pytest

from tunefleet.keras import OneCycle, StepDecay, Warmup, WarmupCosine

# Keras 3.15 converts variables with np.array(variable) when saving; numpy 2 warns about it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def values(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_step_decay_values():
    schedule = StepDecay(0.1, drop=0.5, every=100)
    steps = [0, 99, 100, 199, 200, 450]
    expected = [0.1 * 0.5 ** math.floor(s / 100) for s in steps]
    np.testing.assert_allclose(values(schedule, steps), expected, rtol=1e-6)


def test_warmup_is_linear_then_the_wrapped_schedule_shifted():
    inner = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=50, decay_rate=0.5)
    schedule = Warmup(inner, warmup_steps=20, start_learning_rate=1e-4)
    np.testing.assert_allclose(
        values(schedule, [0, 10, 19]),
        [1e-4 + (1e-2 - 1e-4) * s / 20 for s in (0, 10, 19)],
        rtol=1e-5,
    )
    later = [20, 45, 120]
    np.testing.assert_allclose(
        values(schedule, later), values(inner, [s - 20 for s in later]), rtol=1e-6
    )
    # a float is a constant rate after the warmup
    np.testing.assert_allclose(values(Warmup(0.3, 10), [0, 5, 10, 500]), [0, 0.15, 0.3, 0.3])


def test_warmup_cosine_matches_keras_cosine_decay_behind_a_warmup():
    ours = WarmupCosine(1e-2, total_steps=300, warmup_steps=30, alpha=0.1)
    reference = Warmup(keras.optimizers.schedules.CosineDecay(1e-2, 270, alpha=0.1), 30)
    steps = [0, 7, 29, 30, 31, 100, 200, 299, 300, 1000]
    np.testing.assert_allclose(values(ours, steps), values(reference, steps), rtol=1e-5, atol=1e-9)
    assert float(ours(30)) == pytest.approx(1e-2)
    assert float(ours(5000)) == pytest.approx(1e-3)


def test_one_cycle_matches_pytorch_one_cycle_lr():
    torch = pytest.importorskip("torch")
    total, peak = 97, 0.1
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=peak)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peak, total_steps=total, pct_start=0.25, cycle_momentum=False
    )
    reference = []
    for step in range(total):
        reference.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if step < total - 1:
            scheduler.step()
    ours = values(OneCycle(peak, total, pct_start=0.25), range(total))
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-9)


def test_formulas_are_pure_and_take_array_parameters():
    # one value per trial, as fleet training would pass them
    peaks = np.array([0.1, 0.2, 0.4], dtype="float32")
    for step in (0, 40, 250):
        batched = keras.ops.convert_to_numpy(OneCycle.formula(step, peaks, 300))
        single = [float(OneCycle(float(p), 300)(step)) for p in peaks]
        np.testing.assert_allclose(batched, single, rtol=1e-5)
    drops = np.array([0.5, 0.1], dtype="float32")
    batched = keras.ops.convert_to_numpy(StepDecay.formula(250, 1.0, drops, 100))
    np.testing.assert_allclose(batched, [0.25, 0.01], rtol=1e-5)


@pytest.mark.parametrize(
    "schedule",
    [
        StepDecay(0.05, 0.5, 7),
        Warmup(keras.optimizers.schedules.CosineDecay(0.05, 40), 5),
        Warmup(StepDecay(0.05, 0.5, 7), 3),
        WarmupCosine(0.05, 40, 5),
        OneCycle(0.05, 40),
    ],
    ids=lambda s: type(s).__name__,
)
def test_model_compiled_with_a_schedule_trains_saves_and_loads(schedule, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)  # 16 steps in compiled train steps
    iterations = int(model.optimizer.iterations)
    assert iterations == 16
    # the optimizer used the schedule: its current rate is the formula at that step
    assert float(model.optimizer.learning_rate) == pytest.approx(float(schedule(iterations)))

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.optimizer._learning_rate
    assert type(restored) is type(schedule)
    assert keras.saving.serialize_keras_object(restored) == keras.saving.serialize_keras_object(
        schedule
    )
    steps = [0, 3, 9, 16, 39, 100]
    np.testing.assert_allclose(values(restored, steps), values(schedule, steps), rtol=1e-6)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # and through Keras' own schedule (de)serialization
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    np.testing.assert_allclose(values(again, steps), values(schedule, steps), rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: StepDecay(0.1, drop=0.0), "drop"),
        (lambda: StepDecay(0.1, drop=1.5), "drop"),
        (lambda: StepDecay(-0.1), "initial_learning_rate"),
        (lambda: StepDecay(0.1, every=0), "every"),
        (lambda: Warmup(0.1, warmup_steps=-1), "warmup_steps"),
        (lambda: Warmup(-0.1, warmup_steps=10), "schedule"),
        (lambda: WarmupCosine(0.1, total_steps=10, warmup_steps=10), "total_steps"),
        (lambda: WarmupCosine(0.1, total_steps=100, alpha=2.0), "alpha"),
        (lambda: OneCycle(0.1, 100, pct_start=1.0), "pct_start"),
        (lambda: OneCycle(0.1, 1), "total_steps"),
        (lambda: OneCycle(0.1, 100, div_factor=0.5), "div_factor"),
        (lambda: OneCycle(float("nan"), 100), "max_learning_rate"),
    ],
)
def test_bad_parameters_are_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_non_numbers_are_refused():
    with pytest.raises(TypeError, match="initial_learning_rate"):
        StepDecay("0.1")
    with pytest.raises(TypeError, match="warmup_steps"):
        Warmup(0.1, warmup_steps=True)


def test_numpy_scalars_become_plain_numbers_in_the_config():
    # parameters sampled by a search often arrive as numpy scalars
    schedule = OneCycle(np.float32(0.1), np.int64(100), pct_start=np.float64(0.25))
    config = schedule.get_config()
    assert type(config["max_learning_rate"]) is float
    assert type(config["total_steps"]) is int
    assert json.loads(json.dumps(config)) == config
