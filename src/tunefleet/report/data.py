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
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
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
from tunefleet.space import SUBSPACE_KEY, SearchSpace
from tunefleet.storage import open_storage, storage_url
from tunefleet.urls import mask_url

SUBSPACE_NAME = "subspace"
"""Display name of the parameter that selects one dict of a list-of-dicts space."""

_QUANTILE_EPS = 1e-12
_FANOVA_MAX_TRIALS = 200


@dataclass(frozen=True)
class ParamInfo:
    """One searched parameter as the report shows it.

    Args:
        name: the user's parameter name.
        kind: ``"float"``, ``"int"`` or ``"categorical"``.
        log: whether the parameter was searched on a log scale.
        choices: the stored labels of a categorical parameter, in their order.
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
        return bool(self.choices) and all(_is_number_label(c) for c in self.choices or ())


def _is_number_label(label: str) -> bool:
    try:
        float(label)
    except ValueError:
        return False
    return label not in ("True", "False", "nan", "inf", "-inf")


@dataclass
class TrialRecord:
    """One stored trial, decoded.

    Attributes:
        number: the Optuna trial number.
        state: ``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``, ``"RUNNING"`` or ``"WAITING"``.
        values: the objective values of a complete trial, else ``None``.
        params: user parameter name -> value (numbers as numbers, categorical values as
            their stored labels).
        duration: seconds from start to completion (``None`` while not finished).
        start: when the trial started.
        complete: when it finished.
        intermediate: step -> value reported during training (per epoch, fold or rung).
        error: the error message of a failed trial.
        status: ``"interrupted"`` / ``"surplus"`` for trials left out of results.
        worker: the worker that ran the trial (``host:pid:...``).
        resource: the last Hyperband budget of the trial (samples or parameter value).
        folds: the number of cross-validation folds (from ``tunefleet:cv``).
    """

    number: int
    state: str
    values: tuple[float, ...] | None
    params: dict[str, Any]
    duration: float | None
    start: datetime | None
    complete: datetime | None
    intermediate: dict[int, float]
    error: str | None = None
    status: str | None = None
    worker: str | None = None
    resource: int | None = None
    folds: int | None = None

    @property
    def value(self) -> float | None:
        """The first objective value (``None`` unless complete)."""
        return self.values[0] if self.values else None

    @property
    def counted(self) -> bool:
        """Whether the trial belongs in results (not interrupted, not surplus)."""
        return self.status is None


@dataclass
class StudyData:
    """A study read from its storage into tidy records.

    Build one with :func:`load_study_data` (from a storage) or :func:`study_data` (from an
    ``optuna.Study``); every figure and the HTML report take it.

    Attributes:
        study_name: the study's name.
        directions: ``"maximize"`` / ``"minimize"`` per objective.
        objective_names: a label per objective (Optuna metric names, else ``"score"`` or
            ``"objective k"``).
        storage: the storage URL with any password masked (``None`` for storage objects
            without a URL, e.g. in memory).
        strategy: the search strategy, when known.
        trials: every trial, excluded ones included, by number.
        params: the searched parameters, in first-seen order.
        space: a one-line summary of the stored search space, when stored.
        lr_finder: the LR finder run (``lrs``, ``losses``, ``suggestion``), when stored.
        user_attrs: the study's user attributes.
    """

    study_name: str
    directions: list[str]
    objective_names: list[str]
    storage: str | None
    strategy: str | None
    trials: list[TrialRecord]
    params: list[ParamInfo]
    space: str | None = None
    lr_finder: dict[str, Any] | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)

    # -- views ----------------------------------------------------------------------------
    @property
    def multi_objective(self) -> bool:
        """Whether the study optimizes more than one objective."""
        return len(self.directions) > 1

    @property
    def counted(self) -> list[TrialRecord]:
        """Trials that belong in results (excluded ones left out)."""
        return [t for t in self.trials if t.counted]

    @property
    def complete(self) -> list[TrialRecord]:
        """Counted trials that finished with finite values."""
        return [
            t
            for t in self.trials
            if t.counted
            and t.state == "COMPLETE"
            and t.values
            and all(math.isfinite(v) for v in t.values)
        ]

    @property
    def pruned(self) -> list[TrialRecord]:
        """Counted pruned trials."""
        return [t for t in self.trials if t.counted and t.state == "PRUNED"]

    @property
    def failed(self) -> list[TrialRecord]:
        """Counted failed trials."""
        return [t for t in self.trials if t.counted and t.state == "FAIL"]

    def state_counts(self) -> dict[str, int]:
        """Trials per state; excluded trials are counted under their status instead."""
        counts = Counter(t.state if t.counted else str(t.status) for t in self.trials)
        order = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
        out = {s: counts.pop(s, 0) for s in order}
        out.update(sorted(counts.items()))
        return out

    def better(self, a: float, b: float, objective: int = 0) -> bool:
        """Whether value ``a`` beats ``b`` on ``objective``."""
        return a > b if self.directions[objective] == "maximize" else a < b

    @property
    def best_trial(self) -> TrialRecord | None:
        """The best complete trial of a single-objective study (first one on ties)."""
        if self.multi_objective:
            return None
        best = None
        for t in self.complete:
            if best is None or self.better(t.values[0], best.values[0]):
                best = t
        return best

    @property
    def best_trials(self) -> list[TrialRecord]:
        """The Pareto-optimal complete trials (the best trial for one objective)."""
        if not self.multi_objective:
            best = self.best_trial
            return [best] if best is not None else []
        return pareto_front(self.complete, self.directions)

    def epochs_per_fold(self) -> int | None:
        """Epochs per fold when intermediate values are per epoch of each fold in turn.

        Keras models report at ``step = fold * epochs + epoch``; this is recognised from
        complete trials whose steps are ``0 .. folds * epochs - 1``. ``1`` means one value
        per fold (scikit-learn estimators with a pruner: the mean of the folds so far);
        ``None``: not recognised (Hyperband budgets, studies from elsewhere).
        """
        found = set()
        for t in self.complete:
            if not t.intermediate or not t.folds or t.resource is not None:
                continue
            steps = list(t.intermediate)
            n = max(steps) + 1
            if n % t.folds or steps != list(range(n)):
                return None
            found.add(n // t.folds)
        return found.pop() if len(found) == 1 else None

    def durations(self) -> list[float]:
        """Durations in seconds of the counted finished trials."""
        return [t.duration for t in self.counted if t.duration is not None]

    def timing(self) -> dict[str, float | None]:
        """``total`` (sum of trial durations), ``wall`` (first start to last finish),
        ``mean`` / ``median`` / ``max`` trial duration, in seconds."""
        durations = self.durations()
        starts = [t.start for t in self.counted if t.start is not None]
        ends = [t.complete for t in self.counted if t.complete is not None]
        wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
        return {
            "total": sum(durations) if durations else None,
            "wall": wall,
            "mean": statistics.fmean(durations) if durations else None,
            "median": statistics.median(durations) if durations else None,
            "max": max(durations) if durations else None,
        }

    def frame(self) -> Any:
        """All trials as a pandas DataFrame, one row per trial.

        Columns: ``number``, ``state``, one column per objective, ``duration``,
        ``start``, ``complete``, one ``param_<name>`` column per parameter, ``error``,
        ``status``, ``worker``, ``n_intermediate``.
        """
        import pandas as pd

        rows = []
        for t in self.trials:
            row: dict[str, Any] = {"number": t.number, "state": t.state}
            for i, name in enumerate(self.objective_names):
                row[name] = t.values[i] if t.values else None
            row.update(duration=t.duration, start=t.start, complete=t.complete)
            for p in self.params:
                row[f"param_{p.name}"] = t.params.get(p.name)
            row.update(
                error=t.error,
                status=t.status,
                worker=t.worker,
                n_intermediate=len(t.intermediate),
            )
            rows.append(row)
        return pd.DataFrame(rows)


def pareto_front(trials: Sequence[TrialRecord], directions: Sequence[str]) -> list[TrialRecord]:
    """The trials no other trial dominates (better or equal on all objectives, better on one)."""
    signs = [1.0 if d == "maximize" else -1.0 for d in directions]
    points = [(t, [s * v for s, v in zip(signs, t.values or (), strict=True)]) for t in trials]
    # sort by the first objective (best first) so dominance checks only look back
    points.sort(key=lambda p: tuple(-x for x in p[1]))
    front: list[tuple[TrialRecord, list[float]]] = []
    for trial, point in points:
        dominated = any(
            all(f >= p for f, p in zip(other, point, strict=True)) and other != point
            for _, other in front
        )
        if not dominated:
            front.append((trial, point))
    return sorted((t for t, _ in front), key=lambda t: t.number)


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
        if all(_is_number_label(c) for c in choices):
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
def open_storage_for_reading(
    storage: str | os.PathLike[str] | optuna.storages.BaseStorage,
) -> optuna.storages.BaseStorage:
    """Open an existing storage without creating anything.

    Args:
        storage: a database URL (``"sqlite:///tune.db"``, ``"postgresql://..."``), the
            path of a SQLite file or of an Optuna journal file, or an Optuna storage
            object.

    Returns:
        The Optuna storage.

    Raises:
        ValueError: naming the (masked) URL when a SQLite or journal file does not exist
            or the storage cannot be opened.

    Example:

    >>> storage = open_storage_for_reading("sqlite:///tune.db")  # doctest: +SKIP
    """
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if isinstance(storage, str):
        prefix = "sqlite:///"
        if storage.startswith(prefix):
            path = storage[len(prefix) :].split("?", 1)[0]
            if path and path != ":memory:" and not os.path.exists(path):
                raise ValueError(
                    f"storage={mask_url(storage)!r}: no such SQLite file {path!r} (reading a "
                    "study creates nothing)."
                )
        elif "://" not in storage:
            if not os.path.isfile(storage):
                raise ValueError(
                    f"storage={storage!r} is neither a database URL (such as "
                    "'sqlite:///tune.db') nor an existing SQLite or Optuna journal file."
                )
            with open(storage, "rb") as handle:
                is_sqlite = handle.read(16) == b"SQLite format 3\x00"
            if is_sqlite:
                return open_storage(f"sqlite:///{os.path.abspath(storage)}")
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            return JournalStorage(JournalFileBackend(storage))
    return open_storage(storage)


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

    >>> data = load_study_data("sqlite:///tune.db", "SVC-RandomizedSearchCV")  # doctest: +SKIP
    >>> data.best_trial.params  # doctest: +SKIP
    {'C': 3.1, 'kernel': 'rbf'}
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


# -- parameter importances -------------------------------------------------------------------
def param_importances(
    data: StudyData,
    *,
    objective: int = 0,
    evaluators: Sequence[str] = ("fanova", "mean_decrease_impurity", "ped_anova"),
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Parameter importances by Optuna's evaluators, on the complete trials.

    fANOVA (32 trees), the most faithful, costs about a second per hundred trials; above
    200 complete trials it is fitted on a seeded random sample of 200. Mean decrease in
    impurity and PED-ANOVA use every complete trial. An evaluator that cannot run (too
    few trials, parameters that differ between trials) is left out.

    Args:
        data: the study.
        objective: which objective (for multi-objective studies).
        evaluators: names among ``"fanova"``, ``"mean_decrease_impurity"``,
            ``"ped_anova"``.
        seed: seeds the evaluators and the fANOVA sample.

    Returns:
        evaluator name -> parameter name -> importance (summing to 1 per evaluator),
        parameters sorted by decreasing importance.

    Example:

    >>> importances = param_importances(data)  # doctest: +SKIP
    >>> importances["fanova"]  # doctest: +SKIP
    {'C': 0.83, 'kernel': 0.17}
    """
    import random
    import warnings

    from optuna import importance

    complete = data.complete
    if len(complete) < 2:
        return {}
    usable = [p for p in data.params if all(p.name in t.params for t in complete)]
    usable = [p for p in usable if len({_key(t.params[p.name]) for t in complete}) > 1]
    if not usable:
        return {}
    direction = data.directions[objective]
    makers: dict[str, Callable[[], Any]] = {
        "fanova": lambda: importance.FanovaImportanceEvaluator(n_trees=32, seed=seed),
        "mean_decrease_impurity": lambda: importance.MeanDecreaseImpurityImportanceEvaluator(
            seed=seed
        ),
        "ped_anova": lambda: importance.PedAnovaImportanceEvaluator(),
    }
    for name in evaluators:
        if name not in makers:
            raise ValueError(f"evaluators: {name!r} is not known; expected any of {list(makers)}.")
    out: dict[str, dict[str, float]] = {}
    full_study: optuna.Study | None = None
    for name in evaluators:
        if name == "fanova" and len(complete) > _FANOVA_MAX_TRIALS:
            sample = random.Random(seed).sample(complete, _FANOVA_MAX_TRIALS)
            study = _importance_study(sample, usable, direction, objective)
        else:
            if full_study is None:
                full_study = _importance_study(complete, usable, direction, objective)
            study = full_study
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = importance.get_param_importances(
                    study, evaluator=makers[name](), params=[p.name for p in usable]
                )
        except Exception:
            continue
        values = {k: float(v) for k, v in result.items() if math.isfinite(float(v))}
        if values:
            out[name] = dict(sorted(values.items(), key=lambda kv: -kv[1]))
    return out


def _key(value: Any) -> Any:
    return value if isinstance(value, (int, float, str)) else repr(value)


def _importance_study(
    trials: Sequence[TrialRecord], params: Sequence[ParamInfo], direction: str, objective: int
) -> optuna.Study:
    """An in-memory single-objective study of ``trials`` over the decoded ``params``."""
    distributions: dict[str, BaseDistribution] = {}
    numeric = {p.name: p.ordered for p in params}
    for p in params:
        if not numeric[p.name]:
            seen = sorted({str(t.params[p.name]) for t in trials})
            distributions[p.name] = CategoricalDistribution(seen)
        else:
            values = [float(t.params[p.name]) for t in trials]
            low, high = min(values), max(values)
            if high <= low:
                high = low + 1.0
            log = p.log and low > 0
            distributions[p.name] = FloatDistribution(low, high, log=log)
    frozen = [
        optuna.trial.create_trial(
            value=t.values[objective],
            params={
                p.name: float(t.params[p.name]) if numeric[p.name] else str(t.params[p.name])
                for p in params
            },
            distributions=distributions,
        )
        for t in trials
    ]
    study = optuna.create_study(direction=direction)
    study.add_trials(frozen)
    return study
