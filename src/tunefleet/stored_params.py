"""Stored parameters read back: the user's names, decoded values, and how each was searched.

tunefleet's conventions on top of Optuna's stored params are decoded here once, for
:mod:`tunefleet.records`:

* parameter keys are turned back into the user's names (``C#1`` of a list-of-dicts space
  is shown as ``C``; the subspace selector as :data:`SUBSPACE_NAME`);
* ``scipy.stats`` parameters, stored as quantiles, become the values the estimator
  received, through the space stored with the study (or the search's own space);
* categorical values stay numbers when they are numbers, else their stored labels.

Example:

>>> from tunefleet.space import parse_distributions
>>> from scipy import stats
>>> space = parse_distributions({"C": stats.loguniform(1e-3, 1e3), "kernel": ["rbf", "linear"]})
>>> decoders = param_decoders(space.fingerprint())
>>> name, decode = decoders["C"]
>>> name, round(decode(5.0), 6)  # a log-uniform float is stored as itself
('C', 5.0)
>>> SUBSPACE_NAME
'subspace'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tunefleet.space import SUBSPACE_KEY, SearchSpace

SUBSPACE_NAME = "subspace"
"""Display name of the parameter that selects one dict of a list-of-dicts space."""

_QUANTILE_EPS = 1e-12

Decoder = Callable[[Any], Any]
"""Turns one stored value into the value shown."""


@dataclass(frozen=True)
class ParamInfo:
    """One searched parameter as the records (and the report) show it.

    Args:
        name: the user's parameter name.
        kind: ``"float"``, ``"int"`` or ``"categorical"``.
        log: whether the parameter was searched on a log scale.
        choices: the stored labels of a categorical parameter, in their order.

    Example:

    >>> import optuna
    >>> from tunefleet.records import study_data
    >>> study = optuna.create_study()
    >>> study.enqueue_trial({"C": 1.0, "kernel": "rbf"})
    >>> study.optimize(lambda t: t.suggest_float("C", 1e-3, 1e3, log=True)
    ...                + len(t.suggest_categorical("kernel", ["linear", "rbf"])), n_trials=1)
    >>> C, kernel = study_data(study).params
    >>> C
    ParamInfo(name='C', kind='float', log=True, choices=None)
    >>> kernel.choices, kernel.numeric, kernel.ordered
    (('linear', 'rbf'), False, False)
    """

    name: str
    kind: str
    log: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def numeric(self) -> bool:
        """Whether the parameter is an int or a float (else categorical)."""
        return self.kind != "categorical"

    @property
    def ordered(self) -> bool:
        """Whether values can be compared as numbers (numeric, or all choices numbers)."""
        if self.numeric:
            return True
        return bool(self.choices) and all(is_number_label(c) for c in self.choices or ())


def is_number_label(label: str) -> bool:
    """Whether a stored categorical label reads as a number (``"0.1"``; not ``"nan"``).

    Example:

    >>> is_number_label("0.1"), is_number_label("nan"), is_number_label("rbf")
    (True, False, False)
    """
    try:
        float(label)
    except ValueError:
        return False
    return label not in ("True", "False", "nan", "inf", "-inf")


def label(value: Any) -> str:
    """The label shown for a categorical value: a string as itself, else its ``repr``.

    Example:

    >>> label("rbf"), label(None), label(0.5)
    ('rbf', 'None', '0.5')
    """
    return value if isinstance(value, str) else repr(value)


def _identity(value: Any) -> Any:
    return value


def _quantile_decoder(frozen: Any) -> Decoder:
    from scipy.stats import rv_discrete

    discrete = isinstance(frozen.dist, rv_discrete)

    def decode(stored: Any) -> Any:
        q = min(max(float(stored), _QUANTILE_EPS), 1.0 - _QUANTILE_EPS)
        value = float(frozen.ppf(q))
        return round(value) if discrete else value

    return decode


def _decoders_from_space(space: SearchSpace) -> dict[str, tuple[str, Decoder]]:
    out: dict[str, tuple[str, Decoder]] = {}
    for sub in space.subspaces:
        for d in sub:
            decode = d.decode if d.quantile_of is not None else _identity
            out[d.key] = (d.name, decode)
    return out


def _decoders_from_fingerprint(fingerprint: str) -> dict[str, tuple[str, Decoder]]:
    """Rebuild key -> (name, decoder) from the stored space (see ``SearchSpace.describe``)."""
    try:
        subspaces = json.loads(fingerprint)
    except (TypeError, ValueError):
        return {}
    out: dict[str, tuple[str, Decoder]] = {}
    first: dict[str, str] = {}
    for index, sub in enumerate(subspaces if isinstance(subspaces, list) else []):
        for dim in sub if isinstance(sub, list) else []:
            if not isinstance(dim, dict) or "name" not in dim:
                continue
            name = str(dim["name"])
            described = json.dumps(dim, sort_keys=True)
            # the rule of tunefleet.space: a key is shared while the distributions agree
            key = name if first.setdefault(name, described) == described else f"{name}#{index}"
            decode: Decoder = _identity
            scipy_spec = dim.get("scipy")
            if isinstance(scipy_spec, dict):
                try:
                    import scipy.stats

                    frozen = getattr(scipy.stats, scipy_spec["name"])(
                        *scipy_spec.get("args", []), **scipy_spec.get("kwds", {})
                    )
                    decode = _quantile_decoder(frozen)
                except Exception:  # an unknown distribution: show the stored quantile
                    decode = _identity
            out.setdefault(key, (name, decode))
    return out


def param_decoders(
    fingerprint: Any, space: SearchSpace | None = None
) -> dict[str, tuple[str, Decoder]]:
    """Stored key -> ``(user name, decoder)``, from the stored space and/or the search's own.

    ``fingerprint`` is the study's ``tunefleet:space`` attribute (anything else: none);
    ``space``, when given, decodes exactly as the search did and wins over it.
    """
    decoders = _decoders_from_fingerprint(fingerprint) if isinstance(fingerprint, str) else {}
    if space is not None:
        decoders.update(_decoders_from_space(space))
    return decoders


def _param_info(name: str, distribution: BaseDistribution, decoded: bool) -> ParamInfo:
    if isinstance(distribution, CategoricalDistribution):
        return ParamInfo(name, "categorical", choices=tuple(label(c) for c in distribution.choices))
    if decoded:  # a scipy distribution sampled through its quantiles: the values are floats
        return ParamInfo(name, "float")
    if isinstance(distribution, IntDistribution):
        return ParamInfo(name, "int", log=distribution.log)
    if isinstance(distribution, FloatDistribution):
        return ParamInfo(name, "float", log=distribution.log)
    return ParamInfo(name, "float")


def _merge_info(a: ParamInfo, b: ParamInfo) -> ParamInfo:
    """One parameter searched differently in two subspaces of a list-of-dicts space."""
    if a == b:
        return a
    if a.kind == "categorical" and b.kind == "categorical":
        extra = tuple(c for c in b.choices or () if c not in (a.choices or ()))
        choices = (*(a.choices or ()), *extra)
        if all(is_number_label(c) for c in choices):
            choices = tuple(sorted(choices, key=float))
        return ParamInfo(a.name, "categorical", choices=choices)
    if a.numeric and b.numeric:
        kind = "int" if a.kind == b.kind == "int" else "float"
        return ParamInfo(a.name, kind, log=a.log and b.log)
    # a number in one subspace, a choice in another: show both as labels
    return ParamInfo(a.name, "categorical", choices=(*(a.choices or ()), *(b.choices or ())))


def _categorical_value(value: Any) -> Any:
    """Numbers stay numbers (they sort and compare as such); anything else is its label."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return label(value)


def decode_params(
    stored: dict[str, Any],
    distributions: dict[str, BaseDistribution],
    decoders: dict[str, tuple[str, Decoder]],
    infos: dict[str, ParamInfo],
) -> dict[str, Any]:
    """One trial's stored params as user name -> shown value; ``infos`` gains their :class:`ParamInfo`.

    Example:

    >>> from optuna.distributions import CategoricalDistribution
    >>> infos = {}
    >>> decode_params({"kernel": "rbf"}, {"kernel": CategoricalDistribution(["rbf", None])},
    ...               {}, infos)
    {'kernel': 'rbf'}
    >>> infos["kernel"].choices
    ('rbf', 'None')
    """
    out: dict[str, Any] = {}
    for key, value in stored.items():
        if key == SUBSPACE_KEY:
            name, decode = SUBSPACE_NAME, _identity
        else:
            name, decode = decoders.get(key, (key, _identity))
        distribution = distributions.get(key)
        if isinstance(distribution, CategoricalDistribution):
            shown: Any = _categorical_value(value)
        else:
            try:
                shown = decode(value)
            except Exception:
                shown = value
        out[name] = shown
        if distribution is not None:
            info = _param_info(name, distribution, decode is not _identity)
            infos[name] = _merge_info(infos[name], info) if name in infos else info
    return out


def summarize_space(fingerprint: Any) -> str | None:
    """A one-line summary of a stored search space (``None`` when none is stored).

    Example:

    >>> from tunefleet.space import parse_grid
    >>> summarize_space(parse_grid({"C": [0.1, 1.0], "kernel": ["rbf"]}).fingerprint())
    '{C: [0.1, 1.0], kernel: [rbf]}'
    """
    if not isinstance(fingerprint, str):
        return None
    try:
        subspaces = json.loads(fingerprint)
        parts = []
        for sub in subspaces:
            items = []
            for dim in sub:
                dist = json.loads(dim["distribution"])
                attrs = dist.get("attributes", {})
                if "scipy" in dim:
                    spec = dim["scipy"]
                    args = ", ".join(repr(a) for a in spec.get("args", []))
                    desc = f"{spec['name']}({args})"
                elif "choices" in attrs:
                    desc = "[" + ", ".join(label(c) for c in attrs["choices"]) + "]"
                else:
                    desc = f"[{attrs.get('low')}, {attrs.get('high')}]" + (
                        " log" if attrs.get("log") else ""
                    )
                items.append(f"{dim['name']}: {desc}")
            parts.append("{" + ", ".join(items) + "}")
        return " | ".join(parts)
    except (TypeError, ValueError, KeyError):
        return None
