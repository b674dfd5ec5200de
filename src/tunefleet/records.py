"""Stored trials read into records: the one reader behind every table, the CLI and the report.

Everything here reads the storage only (never a live search object), so any process can
read a study, during or after a search. :func:`study_data` (or :func:`load_study_data`,
from a storage) turns a study into a :class:`StudyData`: one :class:`TrialRecord` per
stored trial and one :class:`~tunefleet.stored_params.ParamInfo` per searched parameter.
What tunefleet stores on top of Optuna is decoded here once (the keys are in
:mod:`tunefleet.attrs`; parameter names and values in :mod:`tunefleet.stored_params`):

* trials excluded from results (``tunefleet:status`` interrupted / surplus / duplicate)
  are kept but flagged (:attr:`TrialRecord.status`), so counts and plots can leave them out;
* the error message of failed trials, the worker that ran each trial, the Hyperband
  resource, the per-fold scores (``tunefleet:cv``), a tuner's hyperparameter values
  (``tunefleet:hp``) and an LR finder run stored with the study are picked up when present.

:func:`trials_dataframe` is the trials table every face's ``trials_dataframe()`` returns
(the same columns for the scikit-learn searches and the tuners); :func:`trials_table`
gives its rows to writers without pandas (the CLI).

Example:

>>> import optuna
>>> from tunefleet.records import study_data, trials_dataframe
>>> study = optuna.create_study(direction="maximize")
>>> study.optimize(lambda t: t.suggest_int("n", 1, 3), n_trials=3)
>>> data = study_data(study)
>>> len(data.trials), data.best_trial.value == max(t.value for t in data.trials)
(3, True)
>>> list(trials_dataframe(data).columns)
['number', 'state', 'value', 'std', 'duration', 'param_n', 'error', 'status']
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from tunefleet.attrs import (
    CV_ATTR,
    ERROR_ATTR,
    GRID_DONE_ATTR,
    HP_ATTR,
    LR_FINDER_ATTR,
    OBJECTIVE_ATTR,
    OBJECTIVES_ATTR,
    RESOURCE_ATTR,
    SPACE_ATTR,
    STATUS_ATTR,
    STRATEGY_ATTR,
    WORKER_ATTR,
)
from tunefleet.space import SearchSpace
from tunefleet.storage import open_storage_for_reading, storage_url
from tunefleet.stored_params import (
    ParamInfo,
    decode_params,
    param_decoders,
    summarize_space,
)
from tunefleet.urls import mask_url

ParamDecoder = Callable[[dict[str, Any]], dict[str, Any]]
"""A face's decoding of a trial's stored params into its users' values (e.g. ``SearchSpace.decode``)."""


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
        status: ``"interrupted"`` / ``"surplus"`` / ``"duplicate"`` for trials left out
            of results.
        worker: the worker that ran the trial (``host:pid:...``).
        resource: the last Hyperband budget of the trial (samples or parameter value).
        folds: the number of cross-validation folds (from ``tunefleet:cv``).
        cv: the per-fold test scores by metric (from ``tunefleet:cv``), when stored.
        stored_params: the params as Optuna stores them (keys and values undecoded).
        hyperparameters: a tuner trial's hyperparameter values (``tunefleet:hp``: the
            active ones, fixed ones included), when stored.

    Example:

    >>> import optuna
    >>> from tunefleet.records import study_data
    >>> study = optuna.create_study(direction="maximize")
    >>> study.enqueue_trial({"x": 0.5})
    >>> def objective(trial):
    ...     x = trial.suggest_float("x", 0, 1)
    ...     trial.report(x / 2, step=0)
    ...     return x
    >>> study.optimize(objective, n_trials=1)
    >>> record = study_data(study).trials[0]
    >>> record.number, record.state, record.value, record.params, record.intermediate
    (0, 'COMPLETE', 0.5, {'x': 0.5}, {0: 0.25})
    >>> record.counted  # not interrupted, not surplus
    True
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
    cv: dict[str, list[float]] | None = None
    stored_params: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] | None = None

    @property
    def value(self) -> float | None:
        """The first objective value (``None`` unless complete)."""
        return self.values[0] if self.values else None

    @property
    def counted(self) -> bool:
        """Whether the trial belongs in results (not interrupted, not surplus)."""
        return self.status is None

    def fold_scores(self, metric: str | None = None) -> list[float] | None:
        """The per-fold test scores of ``metric`` (default: the record's only metric)."""
        if not self.cv:
            return None
        if metric is not None and metric in self.cv:
            return self.cv[metric]
        return next(iter(self.cv.values())) if len(self.cv) == 1 else None

    def std(self, metric: str | None = None) -> float:
        """The standard deviation over folds of ``metric`` (NaN with fewer than two folds).

        As ``std_test_*`` in scikit-learn's ``cv_results_``: the population deviation.
        """
        scores = self.fold_scores(metric)
        if not scores or len(scores) < 2:
            return math.nan
        try:
            return float(np.std(np.asarray(scores, dtype=np.float64)))
        except (TypeError, ValueError):
            return math.nan

    def param_values(self, decode: ParamDecoder | None = None) -> dict[str, Any]:
        """The trial's parameter values as a face shows them.

        A tuner's stored hyperparameter values if any; else ``decode(stored_params)``
        (a face's own decoding, e.g. to the very objects searched); else :attr:`params`.
        """
        if self.hyperparameters is not None:
            return dict(self.hyperparameters)
        if decode is not None:
            try:
                return dict(decode(self.stored_params))
            except Exception:  # params the face's space cannot decode: show them as stored
                return dict(self.params)
        return dict(self.params)


@dataclass
class StudyData:
    """A study read from its storage into tidy records.

    Build one with :func:`load_study_data` (from a storage) or :func:`study_data` (from an
    ``optuna.Study``); every figure, the HTML report, the CLI and ``trials_dataframe``
    take it.

    Attributes:
        study_name: the study's name.
        directions: ``"maximize"`` / ``"minimize"`` per objective.
        objective_names: a label per objective (Optuna metric names, else ``"score"`` and
            the stored cost names, else ``"objective k"``).
        storage: the storage URL with any password masked (``None`` for storage objects
            without a URL, e.g. in memory).
        strategy: the search strategy, when known.
        trials: every trial, excluded ones included, by number.
        params: the searched parameters, in first-seen order.
        space: a one-line summary of the stored search space, when stored.
        lr_finder: the LR finder run (``lrs``, ``losses``, ``suggestion``), when stored.
        user_attrs: the study's user attributes.
        metric: the metric of the per-fold scores that the first objective is the mean
            of (``None``: a record's only metric).

    Example:

    >>> import optuna
    >>> from tunefleet.records import study_data
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> for accuracy, size in [(0.9, 100), (0.8, 10), (0.7, 50)]:
    ...     study.add_trial(optuna.trial.create_trial(values=[accuracy, size]))
    >>> data = study_data(study)
    >>> data.multi_objective, data.objective_names, len(data.complete)
    (True, ['objective 0', 'objective 1'], 3)
    >>> [t.number for t in data.best_trials]  # trial 2 is dominated by trial 1
    [0, 1]
    >>> data.state_counts()
    {'COMPLETE': 3, 'PRUNED': 0, 'FAIL': 0, 'RUNNING': 0, 'WAITING': 0}
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
    metric: str | None = None

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
        """The Pareto-optimal complete trials (the best trial for one objective).

        The front is Optuna's (``Study.best_trials``) over :attr:`complete`: trials left
        out of results and trials with non-finite values take no part.
        """
        if not self.multi_objective:
            best = self.best_trial
            return [best] if best is not None else []
        complete = self.complete
        if not complete:
            return []
        # Optuna's front (Study.best_trials) over these trials' values only
        front = optuna.create_study(directions=self.directions)
        front.add_trials([optuna.trial.create_trial(values=list(t.values)) for t in complete])
        return [complete[t.number] for t in sorted(front.best_trials, key=lambda t: t.number)]

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
        """All trials as a pandas DataFrame, one row per trial, with the report's extras.

        The columns of :func:`trials_dataframe`, then one column per objective name
        (the objective values again, under the report's labels), ``start``, ``complete``,
        ``worker`` and ``n_intermediate``.
        """
        frame = trials_dataframe(self)
        for i, name in enumerate(self.objective_names):
            if name not in frame.columns:
                frame[name] = [t.values[i] if t.values else None for t in self.trials]
        frame["start"] = [t.start for t in self.trials]
        frame["complete"] = [t.complete for t in self.trials]
        frame["worker"] = [t.worker for t in self.trials]
        frame["n_intermediate"] = [len(t.intermediate) for t in self.trials]
        return frame


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
    metric: str | None = None,
) -> StudyData:
    """Read an ``optuna.Study`` (any storage) into a :class:`StudyData`.

    Args:
        study: the study.
        space: the search space, to decode parameters as the search did (default: the
            space stored with the study).
        strategy: a label for the search strategy (default: stored or inferred).
        storage_label: the storage URL to show (masked here); default: the study's
            storage URL when it has one.
        metric: the metric of the per-fold scores the first objective is the mean of
            (default: the study's first metric name, else a tuner's objective, else each
            fold record's only metric).

    Example:

    >>> import optuna
    >>> from tunefleet.records import study_data
    >>> study = optuna.create_study()
    >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
    >>> data = study_data(study)
    >>> len(data.complete), data.params[0].name
    (5, 'x')
    """
    attrs = dict(study.user_attrs)
    fingerprint = attrs.get(SPACE_ATTR)
    decoders = param_decoders(fingerprint, space)
    infos: dict[str, ParamInfo] = {}
    frozen = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    records = [
        _record(t, decode_params(t.params, t.distributions, decoders, infos)) for t in frozen
    ]
    directions = [d.name.lower() for d in study.directions]
    names = _objective_names(study, directions, attrs)
    if metric is None:
        stored_names = list(getattr(study, "metric_names", None) or [])
        metric = _text(stored_names[0] if stored_names else attrs.get(OBJECTIVE_ATTR))
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
        params=list(infos.values()),
        space=summarize_space(fingerprint),
        lr_finder=_lr_finder(attrs.get(LR_FINDER_ATTR)),
        user_attrs=attrs,
        metric=metric,
    )


def as_study_data(
    study: StudyData | optuna.Study, *, space: SearchSpace | None = None
) -> StudyData:
    """``study`` if it is a :class:`StudyData`, else read the ``optuna.Study`` into one.

    Example:

    >>> import optuna
    >>> data = as_study_data(optuna.create_study())
    >>> as_study_data(data) is data, data.trials
    (True, [])
    """
    if isinstance(study, StudyData):
        return study
    if isinstance(study, optuna.Study):
        return study_data(study, space=space)
    raise TypeError(
        f"study must be an optuna.Study or a tunefleet.report.StudyData; got "
        f"{type(study).__name__}. For a search, pass search.study_."
    )


def _record(t: FrozenTrial, params: dict[str, Any]) -> TrialRecord:
    user = t.user_attrs
    values = tuple(float(v) for v in t.values) if t.values is not None else None
    hp = user.get(HP_ATTR)
    return TrialRecord(
        number=t.number,
        state=t.state.name,
        values=values if t.state == TrialState.COMPLETE else None,
        params=params,
        duration=t.duration.total_seconds() if t.duration is not None else None,
        start=t.datetime_start,
        complete=t.datetime_complete,
        intermediate={
            int(k): float(v)
            for k, v in sorted(t.intermediate_values.items())
            if v is not None and math.isfinite(v)
        },
        error=_text(user.get(ERROR_ATTR)),
        status=_text(user.get(STATUS_ATTR)),
        worker=_text(user.get(WORKER_ATTR)),
        resource=_int(user.get(RESOURCE_ATTR)),
        folds=_n_folds(user.get(CV_ATTR)),
        cv=_fold_scores(user.get(CV_ATTR)),
        stored_params=dict(t.params),
        hyperparameters=dict(hp) if isinstance(hp, Mapping) else None,
    )


def _objective_names(
    study: optuna.Study, directions: list[str], attrs: dict[str, Any]
) -> list[str]:
    names = list(getattr(study, "metric_names", None) or [])
    if len(names) == len(directions):
        return names
    if len(directions) == 1:
        return ["score"]
    costs = attrs.get(OBJECTIVES_ATTR)
    if isinstance(costs, list) and len(costs) == len(directions) - 1:
        return ["score", *map(str, costs)]
    return [f"objective {i}" for i in range(len(directions))]


def _n_folds(record: Any) -> int | None:
    if isinstance(record, Mapping) and isinstance(record.get("fit_time"), list):
        return len(record["fit_time"]) or None
    return None


def _fold_scores(record: Any) -> dict[str, list[float]] | None:
    test = record.get("test") if isinstance(record, Mapping) else None
    if not isinstance(test, Mapping):
        return None
    return {str(m): list(v) for m, v in test.items() if isinstance(v, list)}


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


# -- the trials table ---------------------------------------------------------------------------
def trials_table(
    study: optuna.Study | StudyData | None,
    *,
    decode: ParamDecoder | None = None,
    metric: str | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of :func:`trials_dataframe`: one dict per trial, by number.

    A row holds only the parameters its trial has (a conditional hyperparameter left out
    is absent, not ``None``); ``columns`` lists them all, in first-seen order. The
    arguments are those of :func:`trials_dataframe`.

    Example:

    >>> import optuna
    >>> study = optuna.create_study()
    >>> study.add_trial(optuna.trial.create_trial(
    ...     params={"x": 2.0}, distributions={"x": optuna.distributions.FloatDistribution(0, 5)},
    ...     value=4.0))
    >>> columns, rows = trials_table(study)
    >>> columns
    ['number', 'state', 'value', 'std', 'duration', 'param_x', 'error', 'status']
    >>> rows[0]["param_x"], rows[0]["value"]
    (2.0, 4.0)
    """
    if study is None:
        return ["number", "state", "value", "std", "duration", "error", "status"], []
    data = study if isinstance(study, StudyData) else study_data(study, metric=metric)
    metric = metric if metric is not None else data.metric
    extra = [f"value_{name}" for name in data.objective_names[1:]]
    params: dict[str, None] = {}
    rows = []
    for t in data.trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state, "value": t.value}
        for i, column in enumerate(extra, start=1):
            row[column] = t.values[i] if t.values else None
        row["std"] = t.std(metric)
        row["duration"] = t.duration
        for name, value in t.param_values(decode).items():
            params.setdefault(f"param_{name}")
            row[f"param_{name}"] = value
        row["error"] = t.error
        row["status"] = t.status
        rows.append(row)
    columns = ["number", "state", "value", *extra, "std", "duration", *params, "error", "status"]
    return columns, rows


def trials_dataframe(
    study: optuna.Study | StudyData | None,
    *,
    decode: ParamDecoder | None = None,
    metric: str | None = None,
) -> Any:
    """Every trial of a study as a pandas DataFrame, one row per trial, by number.

    What every face's ``trials_dataframe()`` returns (``*SearchCV`` and the tuners alike),
    with the column names of Optuna's ``Study.trials_dataframe`` and scikit-learn's
    ``cv_results_`` where they have one:

    * ``number``: the Optuna trial number;
    * ``state``: ``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING`` or ``WAITING``;
    * ``value``: the (first) objective of a complete trial, else missing; a
      multi-objective study adds ``value_<name>`` for each further objective (its Optuna
      metric name, e.g. ``value_n_params`` for a search's cost);
    * ``std``: the standard deviation of the per-fold scores (as ``std_test_*``: over the
      folds, ``ddof=0``), NaN with one fold or none stored;
    * ``duration``: seconds from start to finish, a float (missing while running);
    * ``param_<name>``: one column per parameter (missing where a trial has none);
    * ``error``: a failed trial's error message;
    * ``status``: why a trial does not count in results (``interrupted``, ``surplus``,
      ``duplicate``), else missing.

    Args:
        study: an ``optuna.Study`` or a :class:`StudyData` (``None``: no trials yet).
        decode: a face's decoding of stored params into its users' values (the sklearn
            face passes ``SearchSpace.decode``: the very objects searched); a tuner
            trial's stored hyperparameter values are used as they are. Default: the
            records' values (numbers, labels for other choices).
        metric: the metric of the per-fold scores behind ``std`` (default: the study's
            first metric name, a tuner's objective, else a fold record's only metric).

    Returns:
        A pandas DataFrame with the columns above, in that order.

    Example:

    >>> import warnings, optuna
    >>> from tunefleet.records import trials_dataframe
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> with warnings.catch_warnings():  # metric names are experimental in Optuna
    ...     warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    ...     study.set_metric_names(["accuracy", "n_params"])
    >>> study.add_trial(optuna.trial.create_trial(values=[0.9, 120.0]))
    >>> frame = trials_dataframe(study)
    >>> list(frame.columns)
    ['number', 'state', 'value', 'value_n_params', 'std', 'duration', 'error', 'status']
    >>> frame["value_n_params"].tolist()
    [120.0]
    """
    import pandas as pd

    columns, rows = trials_table(study, decode=decode, metric=metric)
    return pd.DataFrame(rows, columns=columns)
