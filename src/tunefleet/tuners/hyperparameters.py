"""Keras Tuner's ``hp``: hyperparameters declared while the model is built (define-by-run).

A build function calls ``hp.Int``, ``hp.Float``, ``hp.Choice``, ``hp.Boolean`` and
``hp.Fixed``; each call declares a hyperparameter and returns its value for this build:

* inside a trial, the value is drawn through the trial's Optuna study
  (``trial.suggest_*``), so every sampler of :mod:`tunefleet.strategies` works on it;
* on a plain ``HyperParameters()`` (or one returned by ``get_best_hyperparameters``),
  the value is the stored one, else the default.

A hyperparameter declared inside ``hp.conditional_scope(parent, values)`` (or with
``parent_name=``/``parent_values=``) is *inactive* when its parent does not take one of
``values``: it is not sampled and the call returns its default (Keras Tuner returns
``None``; a default keeps code that uses the value unconditionally working).

The declarations seen by a tuner are kept in one :class:`_Space`, shared by the
``hp`` of every trial: it refuses a name declared twice with different settings,
gives the search space's fingerprint (stored with the study, to refuse resuming with
another space) and the grid of :class:`~tunefleet.tuners.GridSearch`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import numbers
from collections.abc import Iterator, Sequence
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

from tunefleet import space as _space_mod
from tunefleet.space import Dimension, SearchSpace, to_python

_PRIMITIVES = (bool, int, float, str)
_MAX_GRID = 1_000_000


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


def _parent_condition(parent_name: Any, parent_values: Any) -> tuple[Condition, ...]:
    if parent_name is None and parent_values is None:
        return ()
    if parent_name is None or parent_values is None:
        raise ValueError(
            "parent_name and parent_values must be given together, got "
            f"parent_name={parent_name!r}, parent_values={parent_values!r}."
        )
    return (Condition(parent_name, _as_values(parent_values)),)


def _as_values(values: Any) -> tuple[Any, ...]:
    if isinstance(values, (list, tuple, set, frozenset)):
        return tuple(to_python(v) for v in values)
    return (to_python(values),)


class HyperParameter:
    """One declared hyperparameter: its name, Optuna distribution, default and conditions.

    Instances are made by ``hp.Int(...)`` and friends; they can also be passed to
    ``tuner.search(...)`` as fit arguments (``batch_size=Choice("batch_size", [16, 32])``)
    to tune them without a :class:`~tunefleet.HyperModel` subclass.
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
            if count > _MAX_GRID:
                raise ValueError(
                    f"hp.{self.kind}({self.name!r}) has {count} values; a grid can list at most "
                    f"{_MAX_GRID}: give it a larger step or use RandomSearch."
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
    if count > _MAX_GRID:
        raise ValueError(
            f"{where}: step={factor!r} gives more than {_MAX_GRID} values between "
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
            _space_mod.int_distribution(min_value, max_value, 1, False, where)
            self.distribution = CategoricalDistribution(
                _multiplicative(min_value, max_value, step, where, integer=True)
            )
        else:
            self.distribution = _space_mod.int_distribution(
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
            _space_mod.float_distribution(min_value, max_value, None, True, where)
            self.distribution = CategoricalDistribution(
                _multiplicative(min_value, max_value, step, where, integer=False)
            )
        else:
            self.distribution = _space_mod.float_distribution(
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
            if n >= _MAX_GRID:
                raise ValueError(
                    f"hp.Float({self.name!r}) has {n + 1} values; a grid can list at most "
                    f"{_MAX_GRID}: give it a larger step or use RandomSearch."
                )
            return [float(round(dist.low + k * dist.step, 12)) for k in range(n + 1)]
        return super().grid_values()


class Choice(HyperParameter):
    """One of ``values`` (ints, floats, strings or booleans, all of one type)."""

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
    """``True`` or ``False``."""

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
    """A value that is not searched (shown with the others, and overridable)."""

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
    if isinstance(value, (_space_mod.Int, _space_mod.Float, _space_mod.Categorical)):
        # validate the whole spec first (its log flag and step too), naming the argument
        _space_mod.parse_distributions({name: value}, source="search()")
    if isinstance(value, _space_mod.Int):
        return Int(
            name,
            value.low,
            value.high,
            step=None if value.step == 1 else value.step,
            sampling="log" if value.log else "linear",
        )
    if isinstance(value, _space_mod.Float):
        return Float(
            name, value.low, value.high, step=value.step, sampling="log" if value.log else "linear"
        )
    if isinstance(value, _space_mod.Categorical):
        return Choice(name, list(value.choices))
    return None


class _Space:
    """The declarations a tuner has seen, shared by every trial's ``hp``.

    ``preset`` names come from the tuner's ``hyperparameters=`` argument: their
    declarations win over the build function's. ``tune_new_entries=False`` gives
    other names their defaults; ``allow_new_entries=False`` refuses them.
    """

    def __init__(
        self,
        preset: Sequence[HyperParameter] = (),
        *,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
    ) -> None:
        self._defs: dict[str, HyperParameter] = {}
        self.preset: set[str] = set()
        self.tune_new_entries = tune_new_entries
        self.allow_new_entries = allow_new_entries
        for defn in preset:
            self._defs[defn.name] = defn
            self.preset.add(defn.name)

    def copy(self) -> _Space:
        clone = _Space(
            tune_new_entries=self.tune_new_entries, allow_new_entries=self.allow_new_entries
        )
        clone._defs = dict(self._defs)
        clone.preset = set(self.preset)
        return clone

    def __contains__(self, name: str) -> bool:
        return name in self._defs

    def __getitem__(self, name: str) -> HyperParameter:
        return self._defs[name]

    @property
    def definitions(self) -> list[HyperParameter]:
        return list(self._defs.values())

    def register(self, defn: HyperParameter) -> HyperParameter:
        """Return the declaration in force for ``defn.name`` (registering ``defn`` if new)."""
        existing = self._defs.get(defn.name)
        if existing is None:
            if not self.allow_new_entries:
                raise HyperParameterError(
                    f"hyperparameter {defn.name!r} is not among the tuner's hyperparameters= "
                    f"({sorted(self._defs)}) and allow_new_entries=False."
                )
            self._defs[defn.name] = defn
            return defn
        if defn.name in self.preset:
            return existing
        if existing.settings() != defn.settings():
            raise HyperParameterError(
                f"hyperparameter {defn.name!r} is declared twice with different settings: "
                f"first {existing!r}, then {defn!r}. Give each its own name."
            )
        return existing

    def tunes(self, name: str) -> bool:
        return self.tune_new_entries or name in self.preset

    # -- derived views -----------------------------------------------------------------
    def fingerprint(self) -> str:
        """A canonical description (same shape as :meth:`SearchSpace.fingerprint`)."""
        return json.dumps([[d.describe() for d in self._defs.values()]], sort_keys=True)

    def search_space(self) -> SearchSpace:
        """The sampled dimensions as a :class:`SearchSpace` (for choosing a sampler).

        A conditional space has several subspaces (so TPE samples it by groups).
        """
        sampled = [
            d for d in self._defs.values() if d.distribution is not None and self.tunes(d.name)
        ]
        plain = [Dimension(d.name, d.name, d.distribution) for d in sampled if not d.conditions]
        groups: dict[tuple[Condition, ...], list[Dimension]] = {}
        for d in sampled:
            if d.conditions:
                groups.setdefault(d.conditions, []).append(
                    Dimension(d.name, d.name, d.distribution)
                )
        # a conditional space's alternatives: without the conditional ones, or with a set
        subspaces = [plain, *(plain + dims for dims in groups.values())] if groups else [plain]
        return SearchSpace(subspaces, source="hyperparameters")

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of values, with inactive conditional hyperparameters left out.

        Points hold the sampled hyperparameters only (Optuna's params of the trial).
        """
        points: list[dict[str, Any]] = [{}]
        fixed: set[str] = set()
        for defn in self._defs.values():
            if isinstance(defn, Fixed) or not self.tunes(defn.name):
                fixed.add(defn.name)
                values = [defn.default]
            else:
                values = defn.grid_values()
            grown = []
            for point in points:
                if not conditions_met(defn.conditions, point, self):
                    grown.append(point)
                    continue
                grown.extend({**point, defn.name: v} for v in values)
            points = grown
            if len(points) > _MAX_GRID:
                raise ValueError(
                    f"the grid has more than {_MAX_GRID} points (at {defn!r}); give its "
                    "hyperparameters fewer values or use RandomSearch."
                )
        return [{k: v for k, v in p.items() if k not in fixed} for p in points]

    def n_points(self) -> int | None:
        """How many distinct points the space has, counted as :meth:`grid` lists them.

        ``None`` when a tuned hyperparameter takes a continuum of values (``hp.Float``
        without a step) or the grid is too large to list.
        """
        try:
            return len(self.grid())
        except ValueError:
            return None

    def values_of(self, params: dict[str, Any]) -> dict[str, Any]:
        """Active values (fixed and default ones included) for a trial's stored params."""
        values: dict[str, Any] = {}
        for defn in self._defs.values():
            if not conditions_met(defn.conditions, values, self):
                continue
            if isinstance(defn, Fixed):
                values[defn.name] = defn.value
            elif defn.name in params:
                values[defn.name] = params[defn.name]
            else:
                values[defn.name] = defn.default
        for name, value in params.items():
            values.setdefault(name, value)
        return values


def conditions_met(conditions: Sequence[Condition], values: dict[str, Any], space: _Space) -> bool:
    """Whether every condition holds for ``values`` (an unset parent: inactive)."""
    for cond in conditions:
        if cond.parent not in space:
            raise HyperParameterError(
                f"conditional_scope({cond.parent!r}, ...): no hyperparameter named "
                f"{cond.parent!r} was declared before; declare the parent first."
            )
        if cond.parent not in values or values[cond.parent] not in cond.values:
            return False
    return True


class HyperParameters:
    """The ``hp`` a build function receives: declare hyperparameters, get their values.

    Used standalone (``build_model(HyperParameters())``) every call returns the
    default, or a value set beforehand (``hp.values["units"] = 64``). Inside a tuner's
    trial the values are drawn through the trial's Optuna study.

    Example:

    >>> hp = HyperParameters()
    >>> hp.Int("units", 32, 256, step=32)
    32
    >>> with hp.conditional_scope("units", [64]):
    ...     hp.Float("dropout", 0.0, 0.5, default=0.1)
    0.1
    >>> hp.values
    {'units': 32}
    """

    def __init__(self) -> None:
        self._space = _Space()
        self.values: dict[str, Any] = {}
        self._scopes: list[Condition] = []
        self._trial: optuna.Trial | None = None

    @classmethod
    def _bound(cls, space: _Space, trial: optuna.Trial | None) -> HyperParameters:
        hp = cls()
        hp._space = space
        hp._trial = trial
        return hp

    @classmethod
    def _with_values(cls, space: _Space, values: dict[str, Any]) -> HyperParameters:
        hp = cls._bound(space.copy(), None)
        hp.values = dict(values)
        return hp

    # -- declarations ------------------------------------------------------------------
    def Int(
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> int:
        """Declare an integer hyperparameter and return its value."""
        conditions = _parent_condition(parent_name, parent_values)
        return self._retrieve(
            Int(name, min_value, max_value, step, sampling, default, conditions=conditions)
        )

    def Float(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> float:
        """Declare a real hyperparameter and return its value."""
        conditions = _parent_condition(parent_name, parent_values)
        return self._retrieve(
            Float(name, min_value, max_value, step, sampling, default, conditions=conditions)
        )

    def Choice(
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """Declare a choice among ``values`` and return the chosen one."""
        conditions = _parent_condition(parent_name, parent_values)
        return self._retrieve(Choice(name, values, ordered, default, conditions=conditions))

    def Boolean(
        self,
        name: str,
        default: bool = False,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> bool:
        """Declare a boolean hyperparameter and return its value."""
        conditions = _parent_condition(parent_name, parent_values)
        return self._retrieve(Boolean(name, default, conditions=conditions))

    def Fixed(
        self, name: str, value: Any, parent_name: str | None = None, parent_values: Any = None
    ) -> Any:
        """Declare a hyperparameter that keeps ``value`` (unless overridden) and return it."""
        conditions = _parent_condition(parent_name, parent_values)
        return self._retrieve(Fixed(name, value, conditions=conditions))

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Hyperparameters declared inside are active only when ``parent_name`` is in ``parent_values``.

        Example:

        >>> hp = HyperParameters()
        >>> kind = hp.Choice("model", ["mlp", "cnn"])
        >>> with hp.conditional_scope("model", ["cnn"]):
        ...     filters = hp.Int("filters", 8, 64)   # default 8, not sampled for "mlp"
        """
        if parent_name not in self._space:
            raise HyperParameterError(
                f"conditional_scope({parent_name!r}, ...): no hyperparameter named "
                f"{parent_name!r} was declared before; declare the parent first."
            )
        self._scopes.append(Condition(parent_name, _as_values(parent_values)))
        try:
            yield
        finally:
            self._scopes.pop()

    def _retrieve(self, defn: HyperParameter) -> Any:
        defn = defn.with_conditions((*self._scopes, *defn.conditions))
        conditions = defn.conditions
        defn = self._space.register(defn)
        if not conditions_met(conditions, self.values, self._space):
            return defn.default
        if defn.name in self.values:
            return self.values[defn.name]
        if isinstance(defn, Fixed):
            value = defn.value
        elif self._trial is not None and self._space.tunes(defn.name):
            value = defn.suggest(self._trial)
        else:
            value = defn.default
        self.values[defn.name] = value
        return value

    # -- reading -----------------------------------------------------------------------
    @property
    def space(self) -> list[HyperParameter]:
        """The declarations seen so far."""
        return self._space.definitions

    def get(self, name: str) -> Any:
        """The value of ``name`` (its default when declared but inactive)."""
        if name in self.values:
            return self.values[name]
        if name in self._space:
            return self._space[name].default
        raise KeyError(f"hyperparameter {name!r} was not declared; known: {sorted(self.values)}.")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.values or name in self._space

    def is_active(self, hyperparameter: str | HyperParameter) -> bool:
        """Whether a declared hyperparameter is active for the current values."""
        name = hyperparameter if isinstance(hyperparameter, str) else hyperparameter.name
        if name not in self._space:
            return False
        return conditions_met(self._space[name].conditions, self.values, self._space)

    def copy(self) -> HyperParameters:
        """An independent copy (same declarations and values, not bound to a trial)."""
        return HyperParameters._with_values(self._space, self.values)

    def __repr__(self) -> str:
        return f"HyperParameters(values={self.values!r})"
