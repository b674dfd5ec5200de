"""Learning-rate schedules in fleets: their numbers are per-trial state, their structure is not."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from test_fleet_equivalence import BATCH, EPOCHS, assert_same_history
from tunefleet.fleet import FleetTrainer
from tunefleet.keras import OneCycle, StepDecay, Warmup, WarmupCosine

SCHEDULES = keras.optimizers.schedules


class HalvingSchedule(SCHEDULES.LearningRateSchedule):
    """A user-defined schedule: unknown to the fleet, so its numbers stay structural."""

    def __init__(self, rate, every):
        self.rate = rate
        self.every = every

    def __call__(self, step):
        return self.rate * 0.5 ** keras.ops.floor(step / self.every)

    def get_config(self):
        return {"rate": self.rate, "every": self.every}


def make_schedule(kind, lr=3e-3, steps=10, rate=0.7, warmup=5, target=None, staircase=False):
    return {
        "step": lambda: StepDecay(lr, drop=rate, every=steps),
        "exp": lambda: SCHEDULES.ExponentialDecay(lr, steps, rate, staircase=staircase),
        "warmup_exp": lambda: Warmup(SCHEDULES.ExponentialDecay(lr, steps, rate), warmup),
        "warmup_cosine": lambda: Warmup(WarmupCosine(lr, steps, warmup_steps=2), warmup),
        "cosine": lambda: SCHEDULES.CosineDecay(
            lr, steps, warmup_target=target, warmup_steps=warmup
        ),
        "one_cycle": lambda: OneCycle(lr, steps, pct_start=rate),
        "custom": lambda: HalvingSchedule(lr, steps),
    }[kind]()


def build(kind="step", **schedule):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(make_schedule(kind, **schedule)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.fixture(scope="module")
def data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    return x[:300], y[:300], x[300:400], y[300:400]


# Three groups, each of two trials whose schedules differ only in numbers; 10 steps
# an epoch, so the decays and warmups all act within the 3 epochs.
CONFIGS = [
    {"kind": "step"},
    {"kind": "step", "lr": 1e-2, "rate": 0.3, "steps": 7},
    {"kind": "exp", "rate": 0.9},
    {"kind": "exp", "rate": 0.5},
    {"kind": "warmup_exp", "warmup": 3},
    {"kind": "warmup_exp", "warmup": 12, "lr": 1e-2, "steps": 6},
]


@pytest.fixture(scope="module")
def fleet(data):
    xt, yt, xv, yv = data
    return FleetTrainer(build, seed=0).fit(
        CONFIGS, xt, yt, epochs=EPOCHS, batch_size=BATCH, validation_data=(xv, yv)
    )


def solo_history(config, data):
    xt, yt, xv, yv = data
    keras.utils.set_random_seed(0)
    model = build(**config)
    return model.fit(
        xt, yt, epochs=EPOCHS, batch_size=BATCH, validation_data=(xv, yv), verbose=0
    ).history


def test_schedules_differing_in_numbers_share_one_group_compiled_once(fleet):
    assert fleet.groups == [[0, 1], [2, 3], [4, 5]]
    assert fleet.stats["traces"] == [{"train": 1, "eval": 1}] * 3


@pytest.mark.parametrize("i", [1, 5], ids=["StepDecay", "Warmup(ExponentialDecay)"])
def test_trial_with_a_schedule_matches_its_solo_fit(fleet, data, i):
    # The second trial of its group: its own numbers, not the group's first, drive it.
    assert_same_history(fleet.history[i], solo_history(CONFIGS[i], data))


def test_decay_rate_changes_training(fleet):
    assert not np.allclose(fleet.history[2]["loss"], fleet.history[3]["loss"], rtol=1e-3)


def test_export_keeps_the_trial_own_schedule(fleet):
    steps = EPOCHS * 10
    for i in (4, 5):
        optimizer = fleet.export(i).optimizer
        assert int(optimizer.iterations.value) == steps
        expected = float(make_schedule(**CONFIGS[i])(steps))
        assert float(optimizer.learning_rate) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("configs", "groups"),
    [
        ([{"kind": "warmup_cosine", "warmup": w, "steps": s} for w, s in ((2, 40), (9, 25))], 1),
        ([{"kind": "one_cycle", "lr": lr, "rate": r} for lr, r in ((0.1, 0.3), (0.01, 0.5))], 1),
        ([{"kind": "cosine", "target": t, "warmup": w} for t, w in ((0.01, 3), (0.02, 6))], 1),
        # Structure: a bool, None against a number, an unknown schedule's numbers.
        ([{"kind": "exp", "staircase": s} for s in (False, True)], 2),
        ([{"kind": "cosine", "target": t} for t in (None, 0.01)], 2),
        ([{"kind": "custom", "lr": lr} for lr in (1e-3, 1e-2)], 2),
    ],
    ids=["WarmupCosine", "OneCycle", "CosineDecay", "staircase", "warmup_target", "custom"],
)
def test_only_schedule_structure_splits_groups(configs, groups):
    assert len(FleetTrainer(build).plan(configs)) == groups
