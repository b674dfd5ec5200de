"""Search-space parsing: what users write -> Optuna distributions, and errors up front."""

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from scipy import stats
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from tunefleet import Categorical, Float, Int
from tunefleet.space import SUBSPACE_KEY, parse_distributions, parse_grid, to_python


def dims(space):
    return {d.name: d for d in space.subspaces[0]}


def test_numpy_scalars_become_python_values():
    assert type(to_python(np.int64(3))) is int
    assert type(to_python(np.float64(0.5))) is float
    assert type(to_python(np.str_("adam"))) is str
    assert to_python([np.int64(1), (np.int32(2),)]) == [1, (2,)]


def test_scipy_and_ranges_become_optuna_distributions():
    space = parse_distributions(
        {
            "lr": stats.reciprocal(3e-4, 3e-2),
            "C": stats.loguniform(1e-3, 1e3),
            "alpha": stats.uniform(0.1, 0.4),
            "depth": stats.randint(2, 9),
            "units": np.arange(1, 100),
            "layers": range(0, 4),
            "optimizer": ["adam", "rmsprop"],
        }
    )
    d = dims(space)
    assert d["lr"].distribution == FloatDistribution(3e-4, 3e-2, log=True)
    assert d["C"].distribution.log
    assert d["alpha"].distribution == FloatDistribution(0.1, 0.5)
    assert d["depth"].distribution == IntDistribution(2, 8)
    assert d["units"].distribution == IntDistribution(1, 99)
    assert d["layers"].distribution == IntDistribution(0, 3)
    assert d["optimizer"].distribution == CategoricalDistribution(["adam", "rmsprop"])


def test_other_scipy_distributions_are_searched_through_their_quantiles():
    space = parse_distributions({"x": stats.norm(10, 2), "k": stats.poisson(3)})
    d = dims(space)
    assert d["x"].distribution == FloatDistribution(0.0, 1.0)
    assert d["x"].decode(0.5) == pytest.approx(10.0)
    assert type(d["k"].decode(0.5)) is int


def test_any_python_object_is_a_choice_and_comes_back_unchanged():
    scalers = [StandardScaler(), MinMaxScaler()]
    space = parse_distributions(
        {"scaler": scalers, "hidden": [(64,), (64, 32)], "max_depth": [None, 3]}
    )
    study = optuna.create_study()
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = space.suggest(trial)
        assert params["scaler"] in scalers  # the very objects
        assert params["hidden"] in [(64,), (64, 32)]
        seen.add(params["hidden"])
        study.tell(trial, 0.0)
        assert space.decode(study.trials[-1].params) == params
    assert seen == {(64,), (64, 32)}


def test_tunefleet_dimensions():
    space = parse_distributions(
        {
            "units": Int(16, 512, log=True),
            "lr": Float(1e-4, 1e-1, log=True),
            "act": Categorical(["relu", "tanh"]),
        }
    )
    d = dims(space)
    assert d["units"].distribution == IntDistribution(16, 512, log=True)
    assert d["lr"].distribution == FloatDistribution(1e-4, 1e-1, log=True)


def test_grid_points_cover_every_combination_of_every_subspace():
    space = parse_grid(
        [{"kernel": ["linear"], "C": [1, 10]}, {"kernel": ["rbf"], "C": [1], "gamma": [0.1, 1.0]}]
    )
    points = space.grid()
    assert len(points) == 4
    assert {p[SUBSPACE_KEY] for p in points} == {0, 1}
    decoded = [space.decode(p) for p in points]
    assert {"kernel": "rbf", "C": 1, "gamma": 1.0} in decoded


def test_same_name_with_different_choices_in_two_subspaces_gets_two_keys():
    space = parse_distributions([{"C": [1, 2]}, {"C": stats.loguniform(1e-3, 1)}])
    keys = [d.key for sub in space.subspaces for d in sub]
    assert len(set(keys)) == 2
    assert space.names == ["C"]


def test_fingerprint_changes_with_the_space():
    a = parse_distributions({"C": stats.loguniform(1e-3, 1)}).fingerprint()
    b = parse_distributions({"C": stats.loguniform(1e-3, 10)}).fingerprint()
    assert a != b
    assert a == parse_distributions({"C": stats.loguniform(1e-3, 1)}).fingerprint()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"units": []}, r"param_distributions\['units'\] is empty"),
        ({"units": np.array([])}, r"'units'\] is an empty array"),
        ({"units": range(5, 5)}, r"'units'\] is an empty range"),
        ({"C": stats.loguniform(1e-1, 1e-3)}, r"'C'\]: low \(0.1\) > high \(0.001\)"),
        ({"C": stats.uniform(1, -0.5)}, r"'C'\]: uniform\(loc=1, scale=-0.5\) is empty: low"),
        ({"k": stats.randint(9, 2)}, r"'k'\]: randint\(9, 2\) is empty"),
        ({"lr": Float(1.0, 0.1)}, r"'lr'\]: low \(1.0\) > high \(0.1\)"),
        ({"n": Int(0, 10, log=True)}, r"'n'\]: a log-scaled Int needs low >= 1"),
        ({"opt": "adam"}, r"'opt'\] must be a list of values or a distribution, got str"),
        ({"opt": 3}, r"'opt'\] must be a list of values or a distribution, got int"),
        ([], r"param_distributions is an empty list"),
        ("C", r"param_distributions must be a dict or a list of dicts"),
    ],
)
def test_bad_spaces_are_refused_with_the_parameter_named(spec, message):
    with pytest.raises((ValueError, TypeError), match=message):
        parse_distributions(spec)


def test_grid_refuses_distributions():
    with pytest.raises(TypeError, match=r"param_grid\['C'\] is a scipy.stats distribution"):
        parse_grid({"C": stats.loguniform(1e-3, 1)})
