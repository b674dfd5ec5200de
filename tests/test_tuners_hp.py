"""Keras Tuner's ``hp`` on Optuna (define-by-run), objectives and Hyperband's plan.

No training here: these tests drive ``HyperParameters`` with real Optuna trials.
"""

import subprocess
import sys
import textwrap

import optuna
import pytest

import tunefleet
from tunefleet.tuners import HyperParameters, Objective
from tunefleet.tuners.hyperband import hyperband_plan
from tunefleet.tuners.hyperparameter_types import (
    Choice,
    HyperParameterError,
    Int,
    from_search_argument,
)
from tunefleet.tuners.hyperparameters import DeclaredSpace
from tunefleet.tuners.oracle import as_objective, infer_direction


def declare(hp):
    """A build function's declarations: a parent and a conditional child."""
    kind = hp.Choice("kind", ["mlp", "cnn"])
    units = hp.Int("units", 8, 64, step=8)
    with hp.conditional_scope("kind", ["cnn"]):
        filters = hp.Int("filters", 4, 32, default=16)
    return kind, units, filters


def test_standalone_hp_returns_defaults_and_set_values():
    hp = HyperParameters()
    assert declare(hp) == ("mlp", 8, 16)
    assert hp.values == {"kind": "mlp", "units": 8}  # the inactive child is not a value
    assert hp.Float("lr", 1e-4, 1e-2, sampling="log") == pytest.approx(1e-4)
    assert hp.Boolean("dropout") is False
    assert hp.Fixed("optimizer", "adam") == "adam"
    assert not hp.is_active("filters") and hp.is_active("units")
    assert hp.get("filters") == 16 and hp["units"] == 8 and "filters" in hp
    other = HyperParameters()
    other.values.update(kind="cnn", units=32, filters=8)
    assert declare(other) == ("cnn", 32, 8)
    with pytest.raises(KeyError, match="'nope' was not declared"):
        hp.get("nope")


def test_inactive_conditional_hyperparameter_is_not_sampled():
    space = DeclaredSpace()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        hp = HyperParameters._bound(space, trial)
        kind, _, filters = declare(hp)
        seen.add(kind)
        if kind == "mlp":
            assert "filters" not in trial.params and filters == 16
        else:
            assert trial.params["filters"] == filters and 4 <= filters <= 32
        study.tell(trial, 0.0)
    assert seen == {"mlp", "cnn"}


def test_same_name_with_other_settings_is_refused_naming_it():
    hp = HyperParameters()
    assert hp.Int("units", 8, 64) == hp.Int("units", 8, 64)  # same declaration: same value
    with pytest.raises(HyperParameterError, match=r"'units' is declared twice.*max_value"):
        hp.Int("units", 8, 128)
    with pytest.raises(HyperParameterError, match="'units' is declared twice"):
        hp.Float("units", 8, 64)


@pytest.mark.parametrize(
    ("declare_bad", "match"),
    [
        (lambda hp: hp.Int("n", 5, 1), r"hp.Int\('n'\): low \(5\) > high \(1\)"),
        (lambda hp: hp.Float("lr", 0.0, 1.0, sampling="log"), "log-scaled Float needs low > 0"),
        (
            lambda hp: hp.Int("n", 1, 9, sampling="reverse_log"),
            "sampling must be 'linear' or 'log'",
        ),
        (lambda hp: hp.Choice("act", ["relu", 3]), "must all be of one type"),
        (lambda hp: hp.Choice("act", ["relu", "relu"]), "duplicates"),
        (lambda hp: hp.Choice("act", []), "non-empty list"),
        (lambda hp: hp.Int("n", 1, 9, default=12), "default=12 is not one of its values"),
        (lambda hp: hp.Boolean("b", default="yes"), "default must be a bool"),
        (lambda hp: hp.conditional_scope("ghost", [1]).__enter__(), "'ghost' was declared"),
    ],
)
def test_bad_declarations_raise_clear_errors(declare_bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        declare_bad(HyperParameters())


def test_log_sampling_with_step_multiplies_and_float_step_enumerates():
    assert Int("units", 32, 512, step=2, sampling="log").grid_values() == [32, 64, 128, 256, 512]
    hp = HyperParameters()
    assert hp.Float("lr", 1e-4, 1e-2, step=10, sampling="log") == pytest.approx(1e-4)
    assert hp.space[0].grid_values() == pytest.approx([1e-4, 1e-3, 1e-2])
    hp.Float("rate", 0.1, 0.5, step=0.1)
    assert hp.space[1].grid_values() == [0.1, 0.2, 0.3, 0.4, 0.5]
    study = optuna.create_study()
    trial = study.ask()
    drawn = HyperParameters._bound(hp._space, trial).Float("rate", 0.1, 0.5, step=0.1)
    assert drawn in (0.1, 0.2, 0.3, 0.4, 0.5)  # no 0.30000000000000004


def test_grid_skips_inactive_children_and_needs_float_steps():
    hp = HyperParameters()
    declare(hp)
    hp.Boolean("dropout")
    hp.Fixed("optimizer", "adam")
    points = hp._space.grid()
    # kind x units: mlp -> 8 units; cnn -> 8 units x 29 filters; x 2 dropout
    assert len(points) == (8 + 8 * 29) * 2
    assert all(("filters" in p) == (p["kind"] == "cnn") for p in points)
    assert all("optimizer" not in p for p in points)
    hp.Float("lr", 1e-4, 1e-2)
    with pytest.raises(ValueError, match=r"hp.Float\('lr'\) has no step"):
        hp._space.grid()


def test_search_arguments_become_hyperparameters():
    assert from_search_argument("epochs", 3) is None
    batch = from_search_argument("batch_size", tunefleet.Categorical([16, 32]))
    assert batch.name == "batch_size" and batch.grid_values() == [16, 32]
    epochs = from_search_argument("epochs", tunefleet.Int(2, 8, step=2))
    assert epochs.grid_values() == [2, 4, 6, 8]
    lr = from_search_argument("learning_rate", tunefleet.Float(1e-3, 1e-1, log=True))
    assert lr.distribution.log
    own = Choice("bs", [8, 16])
    assert from_search_argument("batch_size", own) is own


def test_fingerprint_is_stable_and_tells_spaces_apart():
    first, second, other = HyperParameters(), HyperParameters(), HyperParameters()
    declare(first)
    declare(second)
    other.Int("units", 8, 32)
    assert first._space.fingerprint() == second._space.fingerprint()
    assert first._space.fingerprint() != other._space.fingerprint()


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("val_accuracy", "max"),
        ("accuracy", "max"),
        ("val_loss", "min"),
        ("mean_absolute_error", "min"),
        ("val_mse", "min"),
        ("val_auc", "max"),
        ("val_sparse_categorical_accuracy", "max"),
    ],
)
def test_objective_direction_is_inferred(name, direction):
    assert infer_direction(name) == direction
    assert as_objective(name) == Objective(name, direction)


def test_objective_errors():
    with pytest.raises(ValueError, match="cannot tell whether to minimize or maximize"):
        as_objective("val_wobble")
    with pytest.raises(ValueError, match="direction must be 'min' or 'max'"):
        Objective("val_loss", "down")
    with pytest.raises(ValueError, match="optimize one objective"):
        as_objective(["val_loss", "val_accuracy"])
    assert as_objective(None) == Objective("val_loss", "min")
    assert Objective("val_loss", "minimize").direction == "min"


def test_hyperband_plan_is_keras_tuners_schedule():
    plan = hyperband_plan(max_epochs=9, factor=3)
    assert [[(r.configs, r.epochs) for r in b] for b in plan.brackets] == [
        [(9, 1), (3, 3), (1, 9)],
        [(5, 3), (2, 9)],
        [(3, 9)],
    ]
    assert plan.n_trials == 17
    assert plan.total_epochs() == 9 * 1 + 3 * 2 + 1 * 6 + 5 * 3 + 2 * 6 + 3 * 9
    assert plan.total_epochs(runs=3) == 3 * plan.total_epochs()
    # an exact power of the factor gives its brackets, not one more (float log)
    assert len(hyperband_plan(27, 3).brackets) == 4
    assert len(hyperband_plan(3, 3, iterations=2).brackets) == 4


def test_import_tunefleet_stays_free_of_keras():
    code = textwrap.dedent(
        """
        import sys
        import tunefleet
        assert "keras" not in sys.modules
        hp = tunefleet.HyperParameters()
        hp.Int("units", 1, 4)
        tunefleet.Objective("val_loss", "min")
        assert "keras" not in sys.modules, "hp objects must not import Keras"
        assert tunefleet.RandomSearch.__name__ == "RandomSearch"
        assert "keras" in sys.modules
        assert set(tunefleet.__all__) >= {"HyperParameters", "HyperModel", "Objective",
            "RandomSearch", "GridSearch", "BayesianOptimization", "Hyperband"}
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
