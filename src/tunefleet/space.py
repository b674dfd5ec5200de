"""Search spaces: parse what users write into Optuna distributions, and back.

Users write spaces the way scikit-learn takes them: a dict (or a list of dicts) that
maps a parameter name to a list of values, a ``range`` / ``np.arange``, a frozen
``scipy.stats`` distribution, or one of tunefleet's own :class:`Int`, :class:`Float`,
:class:`Categorical`. This module turns each into an Optuna distribution so model-based
samplers can use it (``loguniform``/``reciprocal`` become log-scaled floats), keeps the
original Python objects of categorical choices (estimators, tuples, ``None``) although
Optuna stores only primitives, and validates everything up front with messages that
name the parameter.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from tunefleet.identity import describe_value, has_address, qualified_name, stable_hash

SUBSPACE_KEY = "tunefleet.subspace"
"""Optuna parameter that selects one dict of a list-of-dicts space."""

_PRIMITIVES = (type(None), bool, int, float, str)
_QUANTILE_EPS = 1e-12
_LABEL_LIMIT = 80
#: Optuna stores every number as a 64-bit float: integers beyond 2**53 are not exact.
MAX_EXACT_INT = 2**53
#: Most values one grid may hold (a larger one would never finish being listed).
MAX_GRID_POINTS = 1_000_000


def to_python(value: Any) -> Any:
    """Turn numpy scalars (and 0-d arrays) into the Python values they hold.

    Lists and tuples are converted element-wise; anything else is returned as is.

    Example:

    >>> import numpy as np
    >>> from tunefleet.space import to_python
    >>> to_python(np.int64(3)), type(to_python(np.float32(0.5)))
    (3, <class 'float'>)
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, list):
        return [to_python(v) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(to_python(v) for v in value)
    return value


@dataclass(frozen=True)
class Int:
    """An integer range ``[low, high]`` to search, optionally on a log scale.

    Args:
        low: smallest value (inclusive).
        high: largest value (inclusive).
        step: spacing between values (``log=False`` only).
        log: sample on a log scale (``low`` must be positive).

    Example:

    >>> from tunefleet import Int
    >>> space = {"units": Int(16, 512, log=True), "layers": Int(1, 4)}
    """

    low: int
    high: int
    step: int = 1
    log: bool = False


@dataclass(frozen=True)
class Float:
    """A real interval ``[low, high]`` to search, optionally on a log scale.

    Args:
        low: lower bound.
        high: upper bound.
        step: if given, only ``low + k * step`` values are drawn.
        log: sample on a log scale (``low`` must be positive).

    Example:

    >>> from tunefleet import Float
    >>> space = {"learning_rate": Float(1e-4, 1e-1, log=True)}
    """

    low: float
    high: float
    step: float | None = None
    log: bool = False


@dataclass(frozen=True)
class Categorical:
    """A finite set of choices: any Python objects (estimators, tuples, ``None``...).

    Args:
        choices: the values to choose from.

    Example:

    >>> from tunefleet import Categorical
    >>> space = {"activation": Categorical(["relu", "tanh"])}
    """

    choices: Sequence[Any]


@dataclass
class Dimension:
    """One searched parameter: the user's name, the Optuna key and distribution."""

    name: str
    key: str
    distribution: BaseDistribution
    labels: dict[Any, Any] | None = None  # stored label -> original object
    quantile_of: Any = None  # a scipy frozen distribution sampled through its ppf
    listed: bool = False  # given as a list of values (or range/array), not a distribution

    @property
    def n_values(self) -> int | None:
        """How many values a listed dimension has; ``None`` for a distribution."""
        if not self.listed:
            return None
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return len(d.choices)
        if isinstance(d, IntDistribution) and not d.log:
            return (d.high - d.low) // d.step + 1
        return None

    def listed_values(self) -> list[Any]:
        """The stored values of a listed dimension (see :attr:`n_values`), in order."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return list(d.choices)
        if isinstance(d, IntDistribution) and self.listed and not d.log:
            return list(range(d.low, d.high + 1, d.step))
        raise ValueError(f"{self.name!r} is a distribution, not a list of values")

    def decode(self, stored: Any) -> Any:
        """The Python value for what Optuna stored."""
        if self.labels is not None:
            return self.labels[stored]
        if self.quantile_of is not None:
            q = min(max(float(stored), _QUANTILE_EPS), 1.0 - _QUANTILE_EPS)
            value = to_python(self.quantile_of.ppf(q))
            if _is_discrete(self.quantile_of):
                value = round(value)
            return value
        return stored

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask ``trial`` for this dimension and return the decoded value."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            stored = trial.suggest_categorical(self.key, d.choices)
        elif isinstance(d, IntDistribution):
            stored = trial.suggest_int(self.key, d.low, d.high, step=d.step, log=d.log)
        else:
            stored = trial.suggest_float(self.key, d.low, d.high, step=d.step, log=d.log)
        return self.decode(stored)

    def describe(self) -> dict[str, Any]:
        """JSON-able description, used to recognise the same space on resume."""
        out: dict[str, Any] = {
            "name": self.name,
            "distribution": distribution_to_json(self.distribution),
        }
        if self.quantile_of is not None:
            out["scipy"] = _describe_scipy(self.quantile_of)
        return out

    def representative(self) -> Any:
        """A valid value of this dimension (used to validate names up front)."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return self.decode(d.choices[0])
        if self.quantile_of is not None:
            return self.decode(0.5)
        return d.low


@dataclass
class SearchSpace:
    """A list of subspaces (one per dict of a list-of-dicts space), each a list of dimensions."""

    subspaces: list[list[Dimension]]
    source: str = "param_distributions"
    _by_key: dict[str, Dimension] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key = {d.key: d for sub in self.subspaces for d in sub}

    @property
    def names(self) -> list[str]:
        """Every user parameter name, in first-seen order."""
        seen: dict[str, None] = {}
        for sub in self.subspaces:
            for d in sub:
                seen.setdefault(d.name)
        return list(seen)

    @property
    def is_numeric(self) -> bool:
        """True when no dimension is categorical (CMA-ES can search it natively)."""
        return len(self.subspaces) == 1 and all(
            not isinstance(d.distribution, CategoricalDistribution) for d in self.subspaces[0]
        )

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one configuration through ``trial`` (define-by-run)."""
        index = 0
        if len(self.subspaces) > 1:
            index = trial.suggest_categorical(SUBSPACE_KEY, list(range(len(self.subspaces))))
        return {d.name: d.suggest(trial) for d in self.subspaces[index]}

    def decode(self, stored_params: Mapping[str, Any]) -> dict[str, Any]:
        """Rebuild the user's parameter values from a trial's stored params."""
        return {
            self._by_key[k].name: self._by_key[k].decode(v)
            for k, v in stored_params.items()
            if k in self._by_key
        }

    @property
    def n_points(self) -> int | None:
        """The number of distinct points when every parameter is given as a list of values
        (as scikit-learn's ``ParameterSampler`` counts them), else ``None``."""
        total = 0
        for sub in self.subspaces:
            sizes = [d.n_values for d in sub]
            if any(n is None for n in sizes):
                return None
            total += math.prod(n for n in sizes if n is not None)
        return total

    def grid(self, *, sorted_names: bool = False) -> list[dict[str, Any]]:
        """Every point of a space given as lists of values, as Optuna param dicts (stored form).

        The first parameter varies slowest, in the order given; with ``sorted_names``, in
        the order of the sorted names, as scikit-learn's ``ParameterGrid`` enumerates.

        Raises:
            ValueError: when the grid has more than ``MAX_GRID_POINTS`` points.
        """
        points = []
        for index, sub in enumerate(self.subspaces):
            if sorted_names:
                sub = sorted(sub, key=lambda d: d.name)
            choices = [d.listed_values() for d in sub]
            size = math.prod(len(c) for c in choices)
            if size > MAX_GRID_POINTS:
                where = self.source if len(self.subspaces) == 1 else f"{self.source}[{index}]"
                raise ValueError(
                    f"{where} has {size} grid points ("
                    + " x ".join(f"{d.name!r}: {len(c)}" for d, c in zip(sub, choices, strict=True))
                    + f"); at most {MAX_GRID_POINTS} can be searched. Give the parameters fewer "
                    "values or sample them with RandomizedSearchCV."
                )
            for combo in itertools.product(*choices):
                point = {d.key: v for d, v in zip(sub, combo, strict=True)}
                if len(self.subspaces) > 1:
                    point[SUBSPACE_KEY] = index
                points.append(point)
        return points

    def representatives(self) -> list[dict[str, Any]]:
        """One valid configuration per subspace (for up-front validation)."""
        return [{d.name: d.representative() for d in sub} for sub in self.subspaces]

    def describe(self) -> list[list[dict[str, Any]]]:
        """JSON-able description of the whole space."""
        return [[d.describe() for d in sub] for sub in self.subspaces]

    def fingerprint(self) -> str:
        """A canonical string of :meth:`describe`, stored with the study."""
        return json.dumps(self.describe(), sort_keys=True)


def parse_grid(param_grid: Any, *, source: str = "param_grid") -> SearchSpace:
    """Parse a scikit-learn ``param_grid`` (dict or list of dicts of value lists).

    Example:

    >>> from tunefleet.space import parse_grid
    >>> space = parse_grid({"C": [0.1, 1, 10], "kernel": ["rbf", "linear"]})
    >>> len(space.grid())
    6
    """
    return _parse(param_grid, source=source, grid=True)


def parse_distributions(
    param_distributions: Any, *, source: str = "param_distributions"
) -> SearchSpace:
    """Parse a scikit-learn ``param_distributions`` into Optuna distributions.

    Example:

    >>> from tunefleet.space import parse_distributions
    >>> from scipy.stats import loguniform
    >>> space = parse_distributions({"C": loguniform(1e-3, 1e3), "kernel": ["rbf", "linear"]})
    >>> space.subspaces[0][0].distribution.log
    True
    """
    return _parse(param_distributions, source=source, grid=False)


def _parse(spec: Any, *, source: str, grid: bool) -> SearchSpace:
    if isinstance(spec, Mapping):
        dicts, single = [spec], True
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        dicts, single = list(spec), False
        if not dicts:
            raise ValueError(
                f"{source} is an empty list; expected a dict or a non-empty list of dicts."
            )
    else:
        raise TypeError(
            f"{source} must be a dict or a list of dicts, got {type(spec).__name__}: {spec!r}"
        )
    parsed: list[list[Dimension]] = []
    for i, d in enumerate(dicts):
        where = source if single else f"{source}[{i}]"
        if not isinstance(d, Mapping):
            raise TypeError(f"{where} must be a dict, got {type(d).__name__}: {d!r}")
        if not d and not grid:
            raise ValueError(f"{where} is empty; expected at least one parameter.")
        dims = []
        for name, value in d.items():
            if not isinstance(name, str):
                raise TypeError(f"{where} has a non-string parameter name {name!r}.")
            if name == SUBSPACE_KEY or "#" in name:
                raise ValueError(
                    f"{where}[{name!r}]: parameter names may not contain '#' nor be "
                    f"{SUBSPACE_KEY!r} (tunefleet uses them for the keys of subspaces)."
                )
            dims.append(_parse_dimension(name, value, where=f"{where}[{name!r}]", grid=grid))
        parsed.append(dims)
    _assign_keys(parsed)
    return SearchSpace(parsed, source=source)


def _assign_keys(subspaces: list[list[Dimension]]) -> None:
    """Share a key between subspaces only when the distributions agree."""
    first: dict[str, str] = {}
    for i, sub in enumerate(subspaces):
        for d in sub:
            described = json.dumps(d.describe(), sort_keys=True)
            if d.name not in first:
                first[d.name] = described
            elif first[d.name] != described:
                d.key = f"{d.name}#{i}"


def _parse_dimension(name: str, value: Any, *, where: str, grid: bool) -> Dimension:
    dim = _parse_value(name, value, where=where, grid=grid)
    dim.listed = not isinstance(value, (Int, Float)) and not _is_scipy_frozen(value)
    return dim


def _parse_value(name: str, value: Any, *, where: str, grid: bool) -> Dimension:
    if isinstance(value, (Int, Float)):
        make = int_distribution if isinstance(value, Int) else float_distribution
        dist = make(value.low, value.high, value.step, value.log, where)
        if grid:
            return _categorical(name, _grid_values(dist, where), where)
        return Dimension(name, name, dist)
    if isinstance(value, Categorical):
        choices = value.choices
        if isinstance(choices, (str, bytes)) or not isinstance(choices, (Sequence, np.ndarray)):
            raise TypeError(
                f"{where}: Categorical needs a list of choices, got "
                f"{type(choices).__name__}: {choices!r}."
            )
        return _categorical(name, list(choices), where)
    if _is_scipy_frozen(value):
        if grid:
            raise TypeError(
                f"{where} is a scipy.stats distribution; a grid needs a list of values. "
                "Use RandomizedSearchCV or BayesSearchCV for distributions."
            )
        return _from_scipy(name, value, where)
    if isinstance(value, range):
        if not value:
            raise ValueError(f"{where} is an empty range; expected at least one value.")
        low, high = min(value[0], value[-1]), max(value[0], value[-1])
        dist = int_distribution(low, high, abs(value.step), False, where)
        if grid or low == high:
            return _categorical(name, _grid_values(dist, where), where)
        return Dimension(name, name, dist)
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise ValueError(f"{where} must be a 1-d array of values, got shape {value.shape}.")
        if value.size == 0:
            raise ValueError(f"{where} is an empty array; expected at least one value.")
        if not grid and value.dtype.kind in "iu" and value.size > 1:
            ints = [int(v) for v in value.tolist()]  # Python ints: no unsigned wrap-around
            steps = {b - a for a, b in itertools.pairwise(ints)}
            if len(steps) == 1 and 0 not in steps:
                step = abs(steps.pop())
                dist = int_distribution(min(ints), max(ints), step, False, where)
                return Dimension(name, name, dist)
        return _categorical(name, list(value), where)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        if grid:  # scikit-learn's words (ParameterGrid), after where
            raise TypeError(
                f"{where}: Parameter grid for parameter {name!r} needs to be a list or a numpy "
                f"array, but got {value!r} (of type {type(value).__name__}) instead. Single "
                "values need to be wrapped in a list with one element."
            )
        raise TypeError(
            f"{where} must be a list of values or a distribution, got "
            f"{type(value).__name__}: {value!r}"
        )
    return _categorical(name, list(value), where, grid=grid)


def _categorical(name: str, choices: list[Any], where: str, *, grid: bool = False) -> Dimension:
    if not choices and grid:  # scikit-learn's words (ParameterGrid), after where
        raise ValueError(
            f"{where}: Parameter grid for parameter {name!r} need to be a non-empty sequence, "
            f"got: {choices!r}"
        )
    if not choices:
        raise ValueError(f"{where} is empty; expected at least one value.")
    choices = [to_python(c) for c in choices]
    typed = [(type(c), c) for c in choices]
    unique_primitives = all(isinstance(c, _PRIMITIVES) for c in choices) and len(set(typed)) == len(
        typed
    )
    # Optuna stores a choice as the index of the first equal one: 1, 1.0 and True (0 and
    # False) would all be read back from SQLite as the first, so such choices get labels.
    unique_primitives = unique_primitives and len(set(choices)) == len(choices)
    if unique_primitives and not any(isinstance(c, float) and math.isnan(c) for c in choices):
        return Dimension(name, name, CategoricalDistribution(choices))
    labels: dict[str, Any] = {}
    for i, c in enumerate(choices):
        label = choice_label(c)
        if label in labels:
            label = f"{i}: {label}"
        labels[label] = c
    return Dimension(name, name, CategoricalDistribution(list(labels)), labels=labels)


def choice_label(obj: Any) -> str:
    """The stored label of a categorical choice that Optuna cannot store itself.

    Its whole ``repr`` when that is short and holds no memory address (so studies stored
    by earlier versions keep their labels); else ``module:qualname`` for functions and
    classes, and for anything else the
    class and a hash of the object's full description (every parameter, deep), so two
    choices that differ anywhere get different labels, in every process.

    Example:

    >>> import json
    >>> from tunefleet.space import choice_label
    >>> from sklearn.svm import SVC
    >>> choice_label(SVC(C=2.0)), choice_label(json.dumps)
    ('SVC(C=2.0)', 'json:dumps')
    """
    text = " ".join(repr(obj).split())
    if len(text) <= _LABEL_LIMIT and not has_address(text):
        return text
    if isinstance(obj, type) or inspect.isroutine(obj):
        return qualified_name(obj)
    return f"{qualified_name(type(obj))}#{stable_hash(describe_value(obj))}"


def _grid_values(dist: IntDistribution | FloatDistribution, where: str) -> list[Any]:
    """Every value of a stepped distribution (a grid lists them)."""
    if isinstance(dist, FloatDistribution) and dist.step is None:
        raise TypeError(
            f"{where}: a Float without step has no finite list of values for a grid; "
            "give it step=... or a list of values."
        )
    count = round((dist.high - dist.low) / dist.step) + 1
    if count > MAX_GRID_POINTS:
        raise ValueError(
            f"{where} has {count} values; a grid can search at most {MAX_GRID_POINTS}."
        )
    if isinstance(dist, IntDistribution):
        return list(range(dist.low, dist.high + 1, dist.step))
    return [float(round(dist.low + k * dist.step, 12)) for k in range(count)]


def _check_number(label: str, v: Any, where: str) -> None:
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError(f"{where}: {label} must be a number, got {type(v).__name__}: {v!r}.")
    if isinstance(v, numbers.Integral) and abs(v) > MAX_EXACT_INT:
        raise ValueError(
            f"{where}: {label}={v!r} is too large; Optuna stores numbers as 64-bit floats, "
            f"so integers must be within +-2**53."
        )
    if not math.isfinite(v):
        raise ValueError(f"{where}: {label} must be a finite number, got {v!r}.")


def _check_log(log: Any, where: str) -> bool:
    log = to_python(log)
    if not isinstance(log, bool):
        raise TypeError(f"{where}: log must be True or False, got {log!r}.")
    return log


def _check_bounds(low: Any, high: Any, where: str) -> None:
    for label, v in (("low", low), ("high", high)):
        _check_number(label, v, where)
    if low > high:
        raise ValueError(f"{where}: low ({low}) > high ({high}); expected low <= high.")
    if not math.isfinite(high - low):
        raise ValueError(f"{where}: high - low ({high} - {low}) overflows a 64-bit float.")


def int_distribution(low: Any, high: Any, step: Any, log: Any, where: str) -> IntDistribution:
    """A validated Optuna ``IntDistribution`` (errors start with ``where``).

    ``high`` is lowered onto the last value ``low + k * step``.
    """
    low, high, step = to_python(low), to_python(high), to_python(step)
    log = _check_log(log, where)
    _check_bounds(low, high, where)
    if int(low) != low or int(high) != high:
        raise ValueError(f"{where}: Int bounds must be integers, got low={low!r}, high={high!r}.")
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"{where}: step must be a positive integer, got {step!r}.")
    _check_number("step", step, where)
    if log and (low < 1 or step != 1):
        raise ValueError(
            f"{where}: a log-scaled Int needs low >= 1 and step 1, got low={low}, step={step}."
        )
    high = int(low) + (int(high) - int(low)) // step * step
    return IntDistribution(int(low), int(high), log=log, step=int(step))


def float_distribution(low: Any, high: Any, step: Any, log: Any, where: str) -> FloatDistribution:
    """A validated Optuna ``FloatDistribution`` (errors start with ``where``).

    With a ``step``, ``high`` is lowered onto the last value ``low + k * step``.
    """
    low, high, step = to_python(low), to_python(high), to_python(step)
    log = _check_log(log, where)
    _check_bounds(low, high, where)
    if log and low <= 0:
        raise ValueError(f"{where}: a log-scaled Float needs low > 0, got low={low}.")
    if step is not None:
        if log:
            raise ValueError(f"{where}: step and log cannot be used together.")
        _check_number("step", step, where)
        if step <= 0:
            raise ValueError(f"{where}: step must be a positive number, got {step!r}.")
        count = (high - low) / step
        if count > MAX_EXACT_INT:
            raise ValueError(
                f"{where}: step={step!r} is too small for [{low}, {high}] (more than 2**53 values)."
            )
        high = low + math.floor(count + 1e-9) * step
    return FloatDistribution(
        float(low), float(high), log=log, step=None if step is None else float(step)
    )


def _is_scipy_frozen(value: Any) -> bool:
    return hasattr(value, "dist") and hasattr(value, "rvs") and hasattr(value, "ppf")


def _is_discrete(frozen: Any) -> bool:
    from scipy.stats import rv_discrete

    return isinstance(frozen.dist, rv_discrete)


def _describe_scipy(frozen: Any) -> dict[str, Any]:
    return {
        "name": frozen.dist.name,
        "args": [to_python(a) for a in frozen.args],
        "kwds": {k: to_python(v) for k, v in sorted(frozen.kwds.items())},
    }


def _from_scipy(name: str, frozen: Any, where: str) -> Dimension:
    dist_name = frozen.dist.name
    args = [to_python(a) for a in frozen.args]
    kwds = {k: to_python(v) for k, v in frozen.kwds.items()}
    for v in [*args, *kwds.values()]:
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise TypeError(
                f"{where}: the parameters of {dist_name} must be single numbers, got {v!r} "
                "(a distribution with array parameters draws several values at once)."
            )
    loc, scale = kwds.get("loc", 0), kwds.get("scale", 1)
    plain = loc == 0 and scale == 1 and len(args) >= 2
    if (
        dist_name in ("loguniform", "reciprocal")
        and len(args) + len([k for k in ("a", "b") if k in kwds]) >= 2
    ):
        a = args[0] if args else kwds["a"]
        b = args[1] if len(args) > 1 else kwds["b"]
        if loc == 0 and scale == 1:
            return Dimension(name, name, float_distribution(a, b, None, True, where))
    if dist_name == "uniform":
        loc = args[0] if args else loc
        scale = args[1] if len(args) > 1 else scale
        if scale <= 0:
            raise ValueError(
                f"{where}: uniform(loc={loc}, scale={scale}) is empty: low ({loc}) > high "
                f"({loc + scale}); expected scale > 0."
            )
        return Dimension(name, name, float_distribution(loc, loc + scale, None, False, where))
    if dist_name == "randint" and plain:
        low, high = args[0], args[1]
        if high <= low:
            raise ValueError(
                f"{where}: randint({low}, {high}) is empty: low ({low}) > high ({high - 1}); "
                "expected low < high."
            )
        return Dimension(name, name, int_distribution(low, high - 1, 1, False, where))
    lo, hi = frozen.support()
    if not (lo < hi):
        raise ValueError(
            f"{where}: distribution {dist_name}{tuple(args)} has an empty support [{lo}, {hi}]."
        )
    with np.errstate(all="ignore"):
        quantiles = np.asarray(frozen.ppf([_QUANTILE_EPS, 0.5, 1.0 - _QUANTILE_EPS]), dtype=float)
    if not np.all(np.isfinite(quantiles)):
        raise ValueError(
            f"{where}: distribution {dist_name}{tuple(args)} {kwds or ''} gives no finite "
            f"values (quantiles {quantiles.tolist()}); check its parameters."
        )
    # Any other distribution: search its quantile in (0, 1) and map it through the ppf,
    # so model-based samplers still see a bounded, continuous dimension.
    return Dimension(name, name, FloatDistribution(0.0, 1.0), quantile_of=frozen)
