"""The ``hp.*`` hyperparameter types: ``Int``, ``Float``, ``Choice``, ``Boolean``, ``Fixed``.

Each declaration holds a name, an Optuna distribution, a default and the conditions
under which it is active (:class:`Condition`); :func:`suggest` draws it through an
Optuna trial. The same objects passed to ``tuner.search`` as fit arguments tune those
arguments (:func:`from_search_argument`). The ``hp`` container that declares them
while a model is built is :class:`~tunefleet.tuners.hyperparameters.HyperParameters`.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from tunefleet import space as space_module
from tunefleet.space import to_python

_PRIMITIVES = (bool, int, float, str)
#: The most values (or points) a grid lists.
MAX_GRID_POINTS = 1_000_000


class HyperParameterError(ValueError):
    """A declaration that conflicts with the others (would fail every trial)."""


@dataclass(frozen=True)
class Condition:
    """``parent`` must take one of ``values`` for a hyperparameter to be active."""

    parent: str
    values: tuple[Any, ...]

    def describe(self) -> list[Any]:
        return [self.parent, list(self.values)]


def _check_name(name: Any, kind: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"hp.{kind}: name must be a non-empty string, got {name!r}.")
    return name


def parent_condition(parent_name: Any, parent_values: Any) -> tuple[Condition, ...]:
    """The condition given by ``parent_name=``/``parent_values=`` (none if both are ``None``)."""
    if parent_name is None and parent_values is None:
        return ()
    if parent_name is None or parent_values is None:
        raise ValueError(
            "parent_name and parent_values must be given together, got "
            f"parent_name={parent_name!r}, parent_values={parent_values!r}."
        )
    return (Condition(parent_name, as_values(parent_values)),)


def as_values(values: Any) -> tuple[Any, ...]:
    """A condition's parent values as a tuple of plain Python values."""
    if isinstance(values, (list, tuple, set, frozenset)):
        return tuple(to_python(v) for v in values)
    return (to_python(values),)


class HyperParameter:
    """One declared hyperparameter: its name, Optuna distribution, default and conditions.

    Instances are made by ``hp.Int(...)`` and friends; they can also be passed to
    ``tuner.search(...)`` as fit arguments (``batch_size=Choice("batch_size", [16, 32])``)
    to tune them without a :class:`~tunefleet.HyperModel` subclass.

    Example:

    >>> from tunefleet.tuners import Choice, HyperParameter
    >>> batch_size = Choice("batch_size", [16, 32, 64])
    >>> isinstance(batch_size, HyperParameter), batch_size.name, batch_size.default
    (True, 'batch_size', 16)
    >>> batch_size
    Choice(name='batch_size', default=16, values=[16, 32, 64], ordered=True)
    """

    kind = "HyperParameter"

    def __init__(self, name: str, default: Any, conditions: Sequence[Condition] = ()) -> None:
        self.name = name
        self.default = default
        self.conditions = tuple(conditions)
        self.distribution: BaseDistribution | None = None

    # -- identity --------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """What makes two declarations of a name the same (conditions excluded)."""
        dist = self.distribution
        return {
            "kind": self.kind,
            "distribution": None if dist is None else distribution_to_json(dist),
            "default": self.default,
        }

    def describe(self) -> dict[str, Any]:
        """JSON-able description, in the shape of :meth:`tunefleet.space.Dimension.describe`."""
        dist = self.distribution or CategoricalDistribution([self.default])
        out: dict[str, Any] = {"name": self.name, "distribution": distribution_to_json(dist)}
        if self.conditions:
            out["conditions"] = [c.describe() for c in self.conditions]
        return out

    def config(self) -> dict[str, Any]:
        """Keras Tuner's ``get_config()`` view, shown by ``search_space_summary()``."""
        return {
            "default": self.default,
            "conditions": [{"parent": c.parent, "values": list(c.values)} for c in self.conditions],
        }

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "conditions")
        return f"{self.kind}(name={self.name!r}, {items})"

    def with_conditions(self, conditions: Sequence[Condition]) -> HyperParameter:
        if tuple(conditions) == self.conditions:
            return self
        clone = copy.copy(self)
        clone.conditions = tuple(conditions)
        return clone

    # -- values ----------------------------------------------------------------------
    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this hyperparameter through an Optuna trial."""
        if self.distribution is None:
            return self.default
        return suggest(trial, self.name, self.distribution)

    def grid_values(self) -> list[Any]:
        """Every value, for grid search."""
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            return list(dist.choices)
        if isinstance(dist, IntDistribution):
            count = (dist.high - dist.low) // dist.step + 1
            if count > MAX_GRID_POINTS:
                raise ValueError(
                    f"hp.{self.kind}({self.name!r}) has {count} values; a grid can list at most "
                    f"{MAX_GRID_POINTS}: give it a larger step or use RandomSearch."
                )
            return list(range(dist.low, dist.high + 1, dist.step))
        return [self.default]

    def _check_default(self, where: str) -> None:
        dist = self.distribution
        if dist is None:
            return
        try:
            internal = dist.to_internal_repr(self.default)
            ok = dist._contains(internal)
        except (ValueError, TypeError):
            ok = False
        # True == 1 to Optuna: a bool default only among bools, and no bool for a number
        is_bool = isinstance(self.default, bool)
        if isinstance(dist, CategoricalDistribution):
            ok = ok and any(isinstance(c, bool) == is_bool for c in dist.choices)
        elif is_bool:
            ok = False
        if not ok:
            raise ValueError(f"{where}: default={self.default!r} is not one of its values.")


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*`` for an Optuna distribution (stepped floats rounded to 12 digits)."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        value = trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
        return value if dist.step is None else float(round(value, 12))
    raise TypeError(f"unknown distribution for {name!r}: {dist!r}")


def _multiplicative(low: float, high: float, factor: float, where: str, integer: bool) -> list[Any]:
    if (
        isinstance(factor, bool)
        or not isinstance(factor, numbers.Real)
        or not math.isfinite(factor)
        or factor <= 1
    ):
        raise ValueError(
            f"{where}: with sampling='log', step is a multiplicative factor and must be a "
            f"finite number > 1, got {factor!r}."
        )
    if low <= 0:
        raise ValueError(f"{where}: sampling='log' needs min_value > 0, got {low!r}.")
    count = math.log(high / low) / math.log(factor) + 1
    if count > MAX_GRID_POINTS:
        raise ValueError(
            f"{where}: step={factor!r} gives more than {MAX_GRID_POINTS} values between "
            f"{low!r} and {high!r}; use a larger factor or no step."
        )
    values: list[Any] = []
    value = float(low)
    while value <= high * (1 + 1e-9):
        values.append(round(value) if integer else float(value))
        value *= factor
    return list(dict.fromkeys(values))


def _check_step(step: Any, where: str) -> Any:
    step = to_python(step)
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Real)):
        raise TypeError(f"{where}: step must be a number or None, got {step!r}.")
    return step


def _sampling(sampling: Any, where: str) -> bool:
    if sampling is not None and not isinstance(sampling, str):
        raise TypeError(f"{where}: sampling must be 'linear' or 'log', got {sampling!r}.")
    if sampling is None or sampling == "linear":
        return False
    if sampling == "log":
        return True
    raise ValueError(f"{where}: sampling must be 'linear' or 'log', got {sampling!r}.")


class Int(HyperParameter):
    """An integer in ``[min_value, max_value]`` (``step`` apart; multiplied by ``step`` with log).

    Example:

    >>> from tunefleet.tuners import Int
    >>> Int("units", 32, 512, step=32).grid_values()[:3]
    [32, 64, 96]
    """

    kind = "Int"

    def __init__(
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        *,
        conditions: Sequence[Condition] = (),
    ) -> None:
        name = _check_name(name, "Int")
        where = f"hp.Int({name!r})"
        log = _sampling(sampling, where)
        min_value, max_value, step = (
            to_python(min_value),
            to_python(max_value),
            _check_step(step, where),
        )
        super().__init__(name, min_value if default is None else to_python(default), conditions)
        self.min_value, self.max_value, self.step, self.sampling = (
            min_value,
            max_value,
            step,
            "log" if log else "linear",
        )
        if log and step not in (None, 1):
            space_module.int_distribution(min_value, max_value, 1, False, where)
            self.distribution = CategoricalDistribution(
                _multiplicative(min_value, max_value, step, where, integer=True)
            )
        else:
            self.distribution = space_module.int_distribution(
                min_value, max_value, 1 if step is None else step, log, where
            )
        if default is None:  # min_value may be an integral float such as 1.0
            self.default = int(min_value)
        self._check_default(where)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "min_value": self.min_value,
            "max_value": self.max_value,
            "step": self.step,
            "sampling": self.sampling,
        }


class Float(HyperParameter):
    """A real number in ``[min_value, max_value]``; ``step`` makes it discrete.

    With ``sampling="log"`` the values are spread on a log scale; a ``step`` then is a
    multiplicative factor (Keras Tuner's rule): ``Float("lr", 1e-4, 1e-2, step=10,
    sampling="log")`` is one of ``1e-4, 1e-3, 1e-2``.

    Example:

    >>> from tunefleet.tuners import Float
    >>> Float("dropout", 0.0, 0.5, step=0.25).grid_values()
    [0.0, 0.25, 0.5]
    >>> Float("lr", 1e-4, 1e-2, step=10, sampling="log").grid_values()
    [0.0001, 0.001, 0.01]
    >>> Float("lr", 1e-4, 1e-2, sampling="log").default
    0.0001
    """

    kind = "Float"

    def __init__(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        *,
        conditions: Sequence[Condition] = (),
    ) -> None:
        name = _check_name(name, "Float")
        where = f"hp.Float({name!r})"
        log = _sampling(sampling, where)
        min_value, max_value, step = (
            to_python(min_value),
            to_python(max_value),
            _check_step(step, where),
        )
        if default is None and isinstance(min_value, numbers.Real):
            default = float(min_value)
        super().__init__(name, to_python(default), conditions)
        self.min_value, self.max_value, self.step, self.sampling = (
            min_value,
            max_value,
            step,
            "log" if log else "linear",
        )
        if log and step is not None:
            space_module.float_distribution(min_value, max_value, None, True, where)
            self.distribution = CategoricalDistribution(
                _multiplicative(min_value, max_value, step, where, integer=False)
            )
        else:
            self.distribution = space_module.float_distribution(
                min_value, max_value, step, log, where
            )
        if isinstance(self.default, int) and not isinstance(self.default, bool):
            self.default = float(self.default)
        self._check_default(where)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "min_value": self.min_value,
            "max_value": self.max_value,
            "step": self.step,
            "sampling": self.sampling,
        }

    def grid_values(self) -> list[Any]:
        dist = self.distribution
        if isinstance(dist, FloatDistribution):
            if dist.step is None:
                raise ValueError(
                    f"hp.Float({self.name!r}) has no step, so a grid cannot list its values; "
                    "give it step=... or use hp.Choice."
                )
            n = math.floor((dist.high - dist.low) / dist.step + 1e-9)
            if n >= MAX_GRID_POINTS:
                raise ValueError(
                    f"hp.Float({self.name!r}) has {n + 1} values; a grid can list at most "
                    f"{MAX_GRID_POINTS}: give it a larger step or use RandomSearch."
                )
            return [float(round(dist.low + k * dist.step, 12)) for k in range(n + 1)]
        return super().grid_values()


class Choice(HyperParameter):
    """One of ``values`` (ints, floats, strings or booleans, all of one type).

    The default is the first value unless ``default`` is given.

    Example:

    >>> from tunefleet.tuners import Choice
    >>> activation = Choice("activation", ["relu", "tanh"], default="tanh")
    >>> activation.default, activation.grid_values()
    ('tanh', ['relu', 'tanh'])
    """

    kind = "Choice"

    def __init__(
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        *,
        conditions: Sequence[Condition] = (),
    ) -> None:
        name = _check_name(name, "Choice")
        where = f"hp.Choice({name!r})"
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"{where}: values must be a non-empty list, got {values!r}.")
        values = [to_python(v) for v in values]
        bad = [v for v in values if not isinstance(v, _PRIMITIVES)]
        if bad:
            raise TypeError(
                f"{where}: values must be ints, floats, strings or booleans; got {bad[0]!r}. "
                "Choose among names and map them to objects inside build()."
            )
        kinds = {
            bool if isinstance(v, bool) else str if isinstance(v, str) else "number" for v in values
        }
        if len(kinds) > 1:
            raise TypeError(f"{where}: values must all be of one type, got {values!r}.")
        if any(isinstance(v, float) and math.isnan(v) for v in values):
            raise ValueError(f"{where}: values must not contain NaN, got {values!r}.")
        if len(set(values)) != len(values):  # 1 and 1.0 are one value to Optuna
            raise ValueError(f"{where}: values contain duplicates: {values!r}.")
        super().__init__(name, values[0] if default is None else to_python(default), conditions)
        self.values = values
        numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        self.ordered = numeric if ordered is None else bool(ordered)
        self.distribution = CategoricalDistribution(values)
        self._check_default(where)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "values": self.values, "ordered": self.ordered}


class Boolean(HyperParameter):
    """``True`` or ``False`` (default ``False``).

    Example:

    >>> from tunefleet.tuners import Boolean
    >>> Boolean("batchnorm").grid_values()
    [False, True]
    """

    kind = "Boolean"

    def __init__(
        self, name: str, default: bool = False, *, conditions: Sequence[Condition] = ()
    ) -> None:
        name = _check_name(name, "Boolean")
        if not isinstance(default, bool):
            raise TypeError(f"hp.Boolean({name!r}): default must be a bool, got {default!r}.")
        super().__init__(name, default, conditions)
        self.distribution = CategoricalDistribution([False, True])


class Fixed(HyperParameter):
    """A value that is not searched (shown with the others, and overridable).

    Given in a tuner's ``hyperparameters=``, it pins a hyperparameter the build
    function declares.

    Example:

    >>> from tunefleet.tuners import Fixed, HyperParameters
    >>> Fixed("units", 32).grid_values()
    [32]
    >>> hp = HyperParameters()
    >>> hp.Fixed("optimizer", "adam"), hp.values
    ('adam', {'optimizer': 'adam'})
    """

    kind = "Fixed"

    def __init__(self, name: str, value: Any, *, conditions: Sequence[Condition] = ()) -> None:
        name = _check_name(name, "Fixed")
        value = to_python(value)
        if not isinstance(value, (*_PRIMITIVES, type(None))):
            raise TypeError(
                f"hp.Fixed({name!r}): value must be an int, float, string, bool or None, "
                f"got {value!r}."
            )
        super().__init__(name, value, conditions)
        self.value = value

    def config(self) -> dict[str, Any]:
        return {**super().config(), "value": self.value}


def from_search_argument(name: str, value: Any) -> HyperParameter | None:
    """The hyperparameter a fit argument of ``tuner.search`` declares, or ``None``.

    Accepts this module's declarations (``Choice("batch_size", [16, 32])``) and
    tunefleet's space objects, named by the argument (``batch_size=Categorical([16, 32])``,
    ``epochs=Int(2, 8)``).
    """
    if isinstance(value, HyperParameter):
        return value
    if isinstance(value, (space_module.Int, space_module.Float, space_module.Categorical)):
        # validate the whole spec first (its log flag and step too), naming the argument
        space_module.parse_distributions({name: value}, source="search()")
    if isinstance(value, space_module.Int):
        return Int(
            name,
            value.low,
            value.high,
            step=None if value.step == 1 else value.step,
            sampling="log" if value.log else "linear",
        )
    if isinstance(value, space_module.Float):
        return Float(
            name, value.low, value.high, step=value.step, sampling="log" if value.log else "linear"
        )
    if isinstance(value, space_module.Categorical):
        return Choice(name, list(value.choices))
    return None
