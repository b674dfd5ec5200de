"""Property-based tests of the space parsers: every spec is a usable search or our own error.

Hypothesis generates scikit-learn style specs (lists, dicts, ranges, numpy arrays, scipy
frozen distributions, ``Int``/``Float``/``Categorical``) and Keras Tuner ``hp.*``
declarations, valid and malformed. The property: parsing either gives a space whose
suggestions (through a real in-memory Optuna study) and grid points decode to values the
spec allows, or raises a ``ValueError``/``TypeError`` from tunefleet's own code whose
message names the parameter, never a raw error from Optuna, scipy or numpy.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import traceback
import warnings
from typing import Any

import numpy as np
import optuna
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import stats

import tunefleet
from tunefleet.space import Categorical, Float, Int, parse_distributions, parse_grid
from tunefleet.tuners import hyperparameter_types as hpmod

optuna.logging.set_verbosity(optuna.logging.ERROR)

SRC = os.path.dirname(tunefleet.__file__)
FUZZ = settings(
    # 200 examples take seconds; TUNEFLEET_FUZZ_EXAMPLES=5000 searches longer
    max_examples=int(os.environ.get("TUNEFLEET_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# ------------------------------------------------------------------ building blocks

numbers_ = st.one_of(
    st.integers(-5, 20),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10),
    st.sampled_from([0, 1, 1e-300, 5e-324, 1e308, -1e308]),
    st.integers(-5, 20).map(np.int64),
    st.floats(-10, 10).map(np.float32),
)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.just(b"ab"),
    st.just([1, 2]),
    st.just({"a": 1}),
    st.just(np.zeros((2, 2))),
    st.just(object()),
)
any_number = st.one_of(numbers_, junk)
primitives = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True),
    st.text(max_size=2),
)
choice_items = st.one_of(
    primitives,
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.lists(st.integers(0, 2), max_size=2),
    st.just(np.int64(2)),
    st.just(np.float64(0.5)),
    st.just(np.zeros(2)),
    st.just({"nested": [1, {"x": None}]}),
)


def same(a: Any, b: Any) -> bool:
    """``a`` is ``b``, or equal with the same type (NaN equal to NaN)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return False


def one_of_choices(choices: list[Any]):
    py = [tunefleet.space.to_python(c) for c in choices]
    return lambda v: any(same(v, c) for c in py)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def between(low: Any, high: Any, integer: bool = False):
    tol = 1e-9 * max(1.0, abs(float(low)), abs(float(high)))

    def check(v: Any) -> bool:
        if integer and not is_int(v):
            return False
        return isinstance(v, (int, float)) and float(low) - tol <= v <= float(high) + tol

    return check


@st.composite
def list_values(draw):
    choices = draw(st.lists(choice_items, max_size=4))
    wrap = draw(st.sampled_from([list, tuple, Categorical]))
    return wrap(choices), one_of_choices(choices)


@st.composite
def ranges(draw):
    start, stop = draw(st.integers(-5, 10)), draw(st.integers(-5, 10))
    step = draw(st.integers(-3, 3).filter(bool))
    if draw(st.integers(0, 9)) == 0:  # huge ranges
        start, stop, step = 0, draw(st.sampled_from([10**7, 10**19, 10**30])), 1
    r = range(start, stop, step)
    return r, lambda v: is_int(v) and v in r


@st.composite
def arrays(draw):
    kind = draw(st.sampled_from(["arange", "int", "uint", "float", "2d", "empty", "0d", "big"]))
    if kind == "arange":
        a = np.arange(draw(st.integers(-5, 5)), draw(st.integers(-5, 15)), draw(st.integers(1, 3)))
    elif kind == "int":
        a = np.array(draw(st.lists(st.integers(-5, 5), min_size=1, max_size=4)), dtype=np.int64)
    elif kind == "uint":
        a = np.array(draw(st.lists(st.integers(0, 255), min_size=1, max_size=4)), dtype=np.uint8)
    elif kind == "float":
        a = np.array(draw(st.lists(st.floats(allow_nan=True), min_size=1, max_size=4)))
    elif kind == "big":
        a = np.array([-(2**63), 0, 2**63 - 1], dtype=np.int64)
    elif kind == "2d":
        a = np.zeros((2, 2))
    elif kind == "empty":
        a = np.array([], dtype=np.int64)
    else:
        a = np.array(3)
    values = a.tolist() if a.ndim == 1 else []
    return a, one_of_choices(values)


@st.composite
def int_specs(draw):
    low, high = draw(any_number), draw(any_number)
    step = draw(st.one_of(st.just(1), any_number))
    log = draw(st.one_of(st.booleans(), junk))
    spec = Int(low, high, step, log)
    try:
        check = between(low, high, integer=True)
    except (TypeError, ValueError, OverflowError):
        check = None
    return spec, check


@st.composite
def float_specs(draw):
    low, high = draw(any_number), draw(any_number)
    step = draw(st.one_of(st.none(), any_number))
    log = draw(st.one_of(st.booleans(), junk))
    try:
        check = between(low, high)
    except (TypeError, ValueError, OverflowError):
        check = None
    return Float(low, high, step, log), check


@st.composite
def scipy_specs(draw):
    a, b = draw(numbers_), draw(numbers_)
    kind = draw(
        st.sampled_from(
            [
                "uniform",
                "loguniform",
                "loguniform_kw",
                "randint",
                "norm",
                "expon",
                "beta",
                "poisson",
                "binom",
                "bernoulli",
                "randint_loc",
                "vector",
            ]
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dist = {
                "uniform": lambda: stats.uniform(a, b),
                "loguniform": lambda: stats.loguniform(a, b),
                "loguniform_kw": lambda: stats.loguniform(a=a, b=b),
                "randint": lambda: stats.randint(a, b),
                "norm": lambda: stats.norm(a, b),
                "expon": lambda: stats.expon(scale=b),
                "beta": lambda: stats.beta(a, b),
                "poisson": lambda: stats.poisson(a),
                "binom": lambda: stats.binom(a, 0.5),
                "bernoulli": lambda: stats.bernoulli(b),
                "randint_loc": lambda: stats.randint(0, 3, loc=a),
                "vector": lambda: stats.norm(loc=[0.0, 1.0]),
            }[kind]()
        except Exception:  # scipy refused to freeze it: not our parser's business
            dist = stats.uniform(0, 1)
    if kind == "uniform":
        with np.errstate(all="ignore"):
            check = between(a, a + b) if _finite(a, b) else None
    elif kind.startswith("loguniform"):
        check = between(a, b) if _finite(a, b) else None
    elif kind == "randint":
        check = between(a, b - 1, integer=True) if _finite(a, b) else None
    else:
        lo, hi = -math.inf, math.inf
        with contextlib.suppress(TypeError, ValueError):  # array parameters: refused anyway
            lo, hi = (float(x) for x in dist.support())
        discrete = kind in ("poisson", "binom", "bernoulli", "randint_loc")

        def check(v: Any, lo=lo, hi=hi, discrete=discrete) -> bool:
            ok = isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi
            return ok and (is_int(v) if discrete else True)

    return dist, check


def _finite(*values: Any) -> bool:
    try:
        return all(math.isfinite(v) for v in values)
    except (TypeError, OverflowError):
        return False


values_ = st.one_of(
    list_values(),
    ranges(),
    arrays(),
    int_specs(),
    float_specs(),
    scipy_specs(),
    junk.map(lambda v: (v, None)),
    numbers_.map(lambda v: (v, None)),
)
names = st.one_of(
    st.sampled_from(["C", "alpha", "model__units", "a#1", "tunefleet.subspace"]),
    st.text(min_size=1, max_size=4),
)
param_dicts = st.dictionaries(names, values_, max_size=3)
bad_names = st.dictionaries(st.one_of(st.integers(), st.none(), st.tuples(st.integers())), values_)
specs = st.one_of(
    param_dicts,
    st.lists(param_dicts, max_size=3),
    st.lists(st.one_of(param_dicts, junk), max_size=3),
    bad_names,
    junk,
)

# --------------------------------------------------------------------- the property

ANY = None  # no expectation on the decoded value

#: Specs Hypothesis found (or that were found by hand) to escape the parsers; always run.
FOUND = [
    {"n": (Int(1, 3), ANY)},  # a grid of an Int: AttributeError in grid()
    {"n": (range(10**19), ANY)},  # OverflowError from len(range)
    {"n": (Int(0, 2**70), ANY)},  # not exact in Optuna's float storage
    {"x": (Float(-1e308, 1e308), ANY)},  # numpy OverflowError while sampling
    {"x": (Float(0, 1e300, 1e-300), ANY)},  # OverflowError: infinity to integer
    {"x": (Float(0, 1, float("nan")), ANY)},  # NaN step
    {"x": (Float(0, 1, True), ANY)},  # a bool step
    {"x": (Int(1, 3, 1, np.zeros(2)), ANY)},  # an array as log
    {"x": (stats.norm(loc=[0.0, 1.0]), ANY)},  # array parameters
    {"x": (stats.norm(0, 0), ANY)},  # degenerate: no finite quantile
    {"x": (Categorical(5), ANY)},  # not a list of choices
    [{"tunefleet.subspace": ([1, 2], ANY)}, {"a": ([1], ANY)}],  # the subspace key
    {"x": ([1, True, 1.0, 0, False], ANY)},  # one value to Optuna: False came back as 0
]


def with_found(test):
    for spec in FOUND:
        test = example(spec)(test)
    return test


def assert_ours(exc: BaseException, *must_name: str) -> None:
    """A ValueError/TypeError raised in tunefleet's code, naming what was wrong."""
    last = traceback.extract_tb(exc.__traceback__)[-1]
    assert isinstance(exc, (ValueError, TypeError)), f"{type(exc).__name__}: {exc}"
    assert last.filename.startswith(SRC), f"raised in {last.filename}:{last.lineno}: {exc}"
    message = str(exc)
    assert any(name in message for name in must_name), f"{message!r} names none of {must_name}"


def checks_of(spec: Any) -> dict[str, Any]:
    """Parameter name -> check of a decoded value (None: no expectation)."""
    dicts = [spec] if isinstance(spec, dict) else spec if isinstance(spec, list) else []
    out: dict[str, list] = {}
    for d in dicts:
        if isinstance(d, dict):
            for name, value in d.items():
                if isinstance(value, tuple) and len(value) == 2:
                    out.setdefault(name, []).append(value[1])
    return out


def strip(spec: Any) -> Any:
    """The spec without the checks the strategies attach to each value."""
    if isinstance(spec, dict):
        return {k: v[0] if isinstance(v, tuple) and len(v) == 2 else v for k, v in spec.items()}
    if isinstance(spec, list):
        return [strip(d) for d in spec]
    return spec


def named_in_error(spec: Any, source: str) -> tuple[str, ...]:
    """What an error about ``spec`` must name: a parameter when the layout is right."""
    dicts = [spec] if isinstance(spec, dict) else spec if isinstance(spec, list) else None
    layout_ok = (
        dicts
        and all(isinstance(d, dict) for d in dicts)
        and all(isinstance(k, str) for d in dicts for k in d)
        and all(dicts)
    )
    if layout_ok:
        return tuple(repr(k) for d in dicts for k in d)
    return (source,)


def stored_form(params: dict[str, Any], distributions: dict[str, Any]) -> dict[str, Any]:
    """The params as an RDB storage (SQLite) gives them back: through the internal form."""
    out = {}
    for key, value in params.items():
        dist = distributions.get(key)
        out[key] = value if dist is None else dist.to_external_repr(dist.to_internal_repr(value))
    return out


def check_decoded(values: dict[str, Any], checks: dict[str, list]) -> None:
    for name, value in values.items():
        allowed = [c for c in checks.get(name, []) if c is not None]
        if allowed:
            assert any(c(value) for c in allowed), f"{name}={value!r} is outside its spec"


@FUZZ
@with_found
@given(specs)
def test_param_distributions_parse_to_a_usable_space_or_our_error(spec):
    checks, raw = checks_of(spec), strip(spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            space = parse_distributions(raw)
    except Exception as exc:
        assert_ours(exc, *named_in_error(raw, "param_distributions"))
        return
    space.fingerprint()
    for values in space.representatives():
        check_decoded(values, checks)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = space.suggest(trial)
        check_decoded(values, checks)
        decoded = space.decode(stored_form(trial.params, trial.distributions))
        assert decoded.keys() == values.keys()
        assert all(same(decoded[k], values[k]) for k in values)
        study.tell(trial, 0.0)


@FUZZ
@with_found
@given(specs)
def test_param_grid_parses_to_a_usable_grid_or_our_error(spec):
    checks, raw = checks_of(spec), strip(spec)
    try:
        space = parse_grid(raw)
        points = space.grid()
    except Exception as exc:
        assert_ours(exc, *named_in_error(raw, "param_grid"))
        return
    space.fingerprint()
    assert points
    dists = {d.key: d.distribution for sub in space.subspaces for d in sub}
    for point in points:
        values = space.decode(point)
        check_decoded(values, checks)
        decoded = space.decode(stored_form(point, dists))
        assert all(same(decoded[k], values[k]) for k in values)


# --------------------------------------------------------------- hp.* declarations

hp_names = st.one_of(st.sampled_from(["units", "lr", ""]), st.text(max_size=3), junk)
samplings = st.one_of(st.sampled_from(["linear", "log", None, "bogus", "LOG"]), junk)


@st.composite
def declarations(draw):
    kind = draw(st.sampled_from(["Int", "Float", "Choice", "Boolean", "Fixed", "search_arg"]))
    name = draw(hp_names)
    default = draw(st.one_of(st.none(), numbers_, primitives, junk))
    if kind in ("Int", "Float"):
        low, high = draw(any_number), draw(any_number)
        step = draw(st.one_of(st.none(), any_number))
        args = (name, low, high, step, draw(samplings), default)
    elif kind == "Choice":
        values = draw(
            st.one_of(
                st.lists(st.one_of(primitives, st.integers(-(2**60), 2**60)), max_size=4),
                st.lists(choice_items, max_size=3),
                junk,
            )
        )
        args = (name, values, draw(st.one_of(st.none(), st.booleans())), default)
    elif kind == "Boolean":
        args = (name, draw(st.one_of(st.booleans(), junk)))
    elif kind == "Fixed":
        args = (name, draw(st.one_of(primitives, junk, numbers_)))
    else:
        value = draw(st.one_of(int_specs(), float_specs(), list_values()))[0]
        args = ("arg", value)
    return kind, args


def declare(kind: str, args: tuple) -> hpmod.HyperParameter:
    if kind == "search_arg":
        return hpmod.from_search_argument(*args)
    return getattr(hpmod, kind)(*args)


def check_hp_value(defn: hpmod.HyperParameter, value: Any) -> None:
    if isinstance(defn, hpmod.Int):
        assert is_int(value)
        assert defn.min_value <= value <= defn.max_value
    elif isinstance(defn, hpmod.Float):
        assert isinstance(value, float)
        tol = 1e-9 * max(1.0, abs(defn.min_value), abs(defn.max_value))
        assert defn.min_value - tol <= value <= defn.max_value + tol
    elif isinstance(defn, hpmod.Choice):
        assert any(same(value, v) for v in defn.values)
    elif isinstance(defn, hpmod.Boolean):
        assert isinstance(value, bool)


@FUZZ
@example(("Int", ("units", 0.0, 13, None, "linear", None)))  # a float default for an Int
@example(("Int", ("units", 0, 18, None, np.zeros((2, 2)), None)))  # an array as sampling
@example(("Choice", ("x", [1, 1.0], None, None)))  # one value to Optuna
@example(("Choice", ("x", [float("nan"), 1.0], None, None)))
@example(("Float", ("x", 1.0, 1e300, 1.0000001, "log", None)))  # billions of values
@example(("Int", ("x", 0, 2**40, None, "linear", None)))  # a grid too large to list
@example(("search_arg", ("arg", Int(1, 3, 1, np.zeros(2)))))
@example(("Int", ("units", 0, 3, np.zeros((2, 2)), "log", None)))  # an array as step
@example(("Choice", ("units", [1, 2], None, True)))  # True == 1 to Optuna
@example(("Choice", ("units", [False], None, 0)))
@given(declarations())
def test_hp_declarations_give_usable_values_or_our_error(declaration):
    kind, args = declaration
    name = args[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            defn = declare(kind, args)
            if defn is None:  # not a declaration: the argument is passed through as is
                return
            grid = defn.grid_values() if not isinstance(defn, hpmod.Float) else None
    except Exception as exc:
        must = (repr(name),) if isinstance(name, str) and name else ("name",)
        assert_ours(exc, *must)
        return
    check_hp_value(defn, defn.default)
    for value in grid or []:
        check_hp_value(defn, value)
    json.dumps(defn.describe())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = defn.suggest(trial)
        check_hp_value(defn, value)
        study.tell(trial, 0.0)


def test_unsigned_arange_keeps_every_value():
    # np.diff of uint8 [5, 3, 1] wraps around to 254: the space used to hold only 1
    space = parse_distributions({"x": np.array([5, 3, 1], dtype=np.uint8)})
    dist = space.subspaces[0][0].distribution
    assert (dist.low, dist.high, dist.step) == (1, 5, 2)
