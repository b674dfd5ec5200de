"""A stored study read into tidy records: what the report, the plots and the tables show.

Everything here reads the storage only (never a live search object), so a report can be
written by any process, during or after a search. tunefleet's conventions on top of
Optuna are decoded here once:

* parameter keys are turned back into the user's names (``C#1`` of a list-of-dicts space
  is shown as ``C``) and ``scipy.stats`` parameters, stored as quantiles, into the values
  the estimator received; categorical Python objects stay as their stored labels;
* trials excluded from results (``tunefleet:status`` interrupted / surplus) are kept but
  flagged, so counts and plots can leave them out;
* the error message of failed trials (``tunefleet:error``), the worker that ran each
  trial, the Hyperband resource, and an LR finder run stored as the study user attribute
  ``tunefleet:lr_finder`` are picked up when present.

The records themselves are in :mod:`tunefleet.report.records`; storages are opened by
:func:`tunefleet.storage.open_storage_for_reading`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from tunefleet.attrs import (
    CV_ATTR,
    ERROR_ATTR,
    GRID_DONE_ATTR,
    LR_FINDER_ATTR,
    RESOURCE_ATTR,
    SPACE_ATTR,
    STATUS_ATTR,
    STRATEGY_ATTR,
    WORKER_ATTR,
)
from tunefleet.report.records import ParamInfo, StudyData, TrialRecord, is_number_label
from tunefleet.space import SUBSPACE_KEY, SearchSpace
from tunefleet.storage import open_storage_for_reading, storage_url
from tunefleet.urls import mask_url

SUBSPACE_NAME = "subspace"
"""Display name of the parameter that selects one dict of a list-of-dicts space."""

_QUANTILE_EPS = 1e-12


# -- decoding parameters --------------------------------------------------------------------
Decoder = Callable[[Any], Any]


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


def _param_info(name: str, distribution: BaseDistribution, decoded: bool) -> ParamInfo:
    if isinstance(distribution, CategoricalDistribution):
        return ParamInfo(
            name, "categorical", choices=tuple(_label(c) for c in distribution.choices)
        )
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


def _label(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _categorical_value(value: Any) -> Any:
    """Numbers stay numbers (they sort and compare as such); anything else is its label."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return _label(value)


def _summarize_space(fingerprint: Any) -> str | None:
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
                    desc = "[" + ", ".join(_label(c) for c in attrs["choices"]) + "]"
                else:
                    desc = f"[{attrs.get('low')}, {attrs.get('high')}]" + (
                        " log" if attrs.get("log") else ""
                    )
                items.append(f"{dim['name']}: {desc}")
            parts.append("{" + ", ".join(items) + "}")
        return " | ".join(parts)
    except (TypeError, ValueError, KeyError):
        return None


# -- reading ----------------------------------------------------------------------------------
def load_study_data(
    storage: str | os.PathLike[str] | optuna.storages.BaseStorage,
    study_name: str | None = None,
    *,
    space: SearchSpace | None = None,
    strategy: str | None = None,
) -> StudyData:
    """Read a stored study into a :class:`StudyData`, without changing the storage.

    Args:
        storage: an Optuna storage URL (``"sqlite:///tune.db"``, ``"postgresql://..."``),
            the path of a SQLite or Optuna journal file, or an Optuna storage object.
        study_name: the study; may be left out when the storage holds exactly one.
        space: the search's :class:`~tunefleet.space.SearchSpace`, to decode parameters
            exactly as the search did (default: rebuilt from the space stored with the
            study).
        strategy: a label for the search strategy shown in the summary (default: the
            study's ``tunefleet:strategy`` attribute, else inferred where possible).

    Returns:
        The study's trials and metadata as tidy records.

    Example:

    >>> import os, tempfile, optuna
    >>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "tune.db")
    >>> study = optuna.create_study(storage=url, study_name="demo")
    >>> study.optimize(lambda t: t.suggest_int("n", 1, 3) ** 2, n_trials=4)
    >>> data = load_study_data(url)  # the storage's only study: no name needed
    >>> data.study_name, len(data.trials), [p.name for p in data.params]
    ('demo', 4, ['n'])
    """
    opened = open_storage_for_reading(storage)
    if study_name is None:
        names = optuna.get_all_study_names(storage=opened)
        if len(names) != 1:
            raise ValueError(
                f"study_name is required: the storage holds {len(names)} studies "
                f"({', '.join(map(repr, names[:20]))}{', ...' if len(names) > 20 else ''})."
            )
        study_name = names[0]
    try:
        study = optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:
        names = optuna.get_all_study_names(storage=opened)
        raise ValueError(
            f"study_name={study_name!r} is not in this storage; it holds: "
            f"{', '.join(map(repr, names[:20])) or 'no study'}."
        ) from None
    url = storage if isinstance(storage, str) else storage_url(opened)
    if isinstance(storage, os.PathLike):
        url = os.fspath(storage)
    return study_data(study, space=space, strategy=strategy, storage_label=url)


def study_data(
    study: optuna.Study,
    *,
    space: SearchSpace | None = None,
    strategy: str | None = None,
    storage_label: str | None = None,
) -> StudyData:
    """Read an ``optuna.Study`` (any storage) into a :class:`StudyData`.

    Args:
        study: the study.
        space: the search space, to decode parameters as the search did (default: the
            space stored with the study).
        strategy: a label for the search strategy (default: stored or inferred).
        storage_label: the storage URL to show (masked here); default: the study's
            storage URL when it has one.

    Example:

    >>> import optuna
    >>> study = optuna.create_study()
    >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
    >>> data = study_data(study)
    >>> len(data.complete), data.params[0].name
    (5, 'x')
    """
    attrs = dict(study.user_attrs)
    fingerprint = attrs.get(SPACE_ATTR)
    decoders = _decoders_from_fingerprint(fingerprint) if isinstance(fingerprint, str) else {}
    if space is not None:
        decoders.update(_decoders_from_space(space))
    trials_raw: list[FrozenTrial] = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)

    params: dict[str, ParamInfo] = {}
    records = []
    for t in trials_raw:
        decoded_params: dict[str, Any] = {}
        for key, stored in t.params.items():
            if key == SUBSPACE_KEY:
                name, decode = SUBSPACE_NAME, _identity
            else:
                name, decode = decoders.get(key, (key, _identity))
            distribution = t.distributions.get(key)
            if isinstance(distribution, CategoricalDistribution):
                value: Any = _categorical_value(stored)
            else:
                try:
                    value = decode(stored)
                except Exception:
                    value = stored
            decoded_params[name] = value
            if distribution is not None:
                info = _param_info(name, distribution, decode is not _identity)
                params[name] = _merge_info(params[name], info) if name in params else info
        values = tuple(float(v) for v in t.values) if t.values is not None else None
        if t.state != TrialState.COMPLETE:
            values = None
        records.append(
            TrialRecord(
                number=t.number,
                state=t.state.name,
                values=values,
                params=decoded_params,
                duration=t.duration.total_seconds() if t.duration is not None else None,
                start=t.datetime_start,
                complete=t.datetime_complete,
                intermediate={
                    int(k): float(v)
                    for k, v in sorted(t.intermediate_values.items())
                    if v is not None and math.isfinite(v)
                },
                error=_text(t.user_attrs.get(ERROR_ATTR)),
                status=_text(t.user_attrs.get(STATUS_ATTR)),
                worker=_text(t.user_attrs.get(WORKER_ATTR)),
                resource=_int(t.user_attrs.get(RESOURCE_ATTR)),
                folds=_n_folds(t.user_attrs.get(CV_ATTR)),
            )
        )
    directions = [d.name.lower() for d in study.directions]
    names = list(getattr(study, "metric_names", None) or [])
    if len(names) != len(directions):
        names = (
            ["score"]
            if len(directions) == 1
            else [f"objective {i}" for i in range(len(directions))]
        )
    if strategy is None:
        strategy = _text(attrs.get(STRATEGY_ATTR))
    if strategy is None and attrs.get(GRID_DONE_ATTR):
        strategy = "grid"
    if storage_label is None:
        storage_label = storage_url(study._storage)
    return StudyData(
        study_name=study.study_name,
        directions=directions,
        objective_names=names,
        storage=mask_url(storage_label) if storage_label is not None else None,
        strategy=strategy,
        trials=records,
        params=list(params.values()),
        space=_summarize_space(fingerprint),
        lr_finder=_lr_finder(attrs.get(LR_FINDER_ATTR)),
        user_attrs=attrs,
    )


def as_study_data(
    study: StudyData | optuna.Study, *, space: SearchSpace | None = None
) -> StudyData:
    """``study`` if it is a :class:`StudyData`, else read the ``optuna.Study`` into one."""
    if isinstance(study, StudyData):
        return study
    if isinstance(study, optuna.Study):
        return study_data(study, space=space)
    raise TypeError(
        f"study must be an optuna.Study or a tunefleet.report.StudyData; got "
        f"{type(study).__name__}. For a search, pass search.study_."
    )


def _n_folds(record: Any) -> int | None:
    if isinstance(record, Mapping) and isinstance(record.get("fit_time"), list):
        return len(record["fit_time"]) or None
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _lr_finder(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    try:
        lrs = [float(x) for x in value["lrs"]]
        losses = [float(x) for x in value["losses"]]
    except (KeyError, TypeError, ValueError):
        return None
    if not lrs or len(lrs) != len(losses):
        return None
    suggestion = value.get("suggestion")
    try:
        suggestion = float(suggestion) if suggestion is not None else None
    except (TypeError, ValueError):
        suggestion = None
    return {"lrs": lrs, "losses": losses, "suggestion": suggestion}
