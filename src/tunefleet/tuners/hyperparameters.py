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

The declarations seen by a tuner are kept in one :class:`DeclaredSpace`, shared by the
``hp`` of every trial: it refuses a name declared twice with different settings,
gives the search space's fingerprint (stored with the study, to refuse resuming with
another space) and the grid of :class:`~tunefleet.tuners.GridSearch`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import optuna

from tunefleet.space import Dimension, SearchSpace
from tunefleet.tuners.hyperparameter_types import (
    MAX_GRID_POINTS,
    Boolean,
    Choice,
    Condition,
    Fixed,
    Float,
    HyperParameter,
    HyperParameterError,
    Int,
    as_values,
    parent_condition,
)


class DeclaredSpace:
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

    def copy(self) -> DeclaredSpace:
        clone = DeclaredSpace(
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
            if len(points) > MAX_GRID_POINTS:
                raise ValueError(
                    f"the grid has more than {MAX_GRID_POINTS} points (at {defn!r}); give its "
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


def conditions_met(
    conditions: Sequence[Condition], values: dict[str, Any], space: DeclaredSpace
) -> bool:
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
        self._space = DeclaredSpace()
        self.values: dict[str, Any] = {}
        self._scopes: list[Condition] = []
        self._trial: optuna.Trial | None = None

    @classmethod
    def _bound(cls, space: DeclaredSpace, trial: optuna.Trial | None) -> HyperParameters:
        hp = cls()
        hp._space = space
        hp._trial = trial
        return hp

    @classmethod
    def _with_values(cls, space: DeclaredSpace, values: dict[str, Any]) -> HyperParameters:
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
        conditions = parent_condition(parent_name, parent_values)
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
        conditions = parent_condition(parent_name, parent_values)
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
        conditions = parent_condition(parent_name, parent_values)
        return self._retrieve(Choice(name, values, ordered, default, conditions=conditions))

    def Boolean(
        self,
        name: str,
        default: bool = False,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> bool:
        """Declare a boolean hyperparameter and return its value."""
        conditions = parent_condition(parent_name, parent_values)
        return self._retrieve(Boolean(name, default, conditions=conditions))

    def Fixed(
        self, name: str, value: Any, parent_name: str | None = None, parent_values: Any = None
    ) -> Any:
        """Declare a hyperparameter that keeps ``value`` (unless overridden) and return it."""
        conditions = parent_condition(parent_name, parent_values)
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
        self._scopes.append(Condition(parent_name, as_values(parent_values)))
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
