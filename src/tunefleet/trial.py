"""The trial runner: one configuration, cross-validated, reported, pruned, recorded.

:class:`CrossValidation` is what every face hands to the executor. Called with an Optuna
trial, it draws the configuration from the search space, fits a fresh clone of the
estimator on each fold, reports intermediate scores so the study's pruner can stop a bad
trial early, and records per-fold scores and timings on the trial, from which the faces
build their result objects (written with the trial's end: one transaction on an RDB
storage, see :mod:`tunefleet.storage`). It is picklable, so process workers and cluster
tasks run the very same code.
"""

from __future__ import annotations

import math
import numbers
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import optuna
from sklearn.base import clone

from tunefleet._hooks import observe_epochs
from tunefleet.attrs import CV_ATTR, ERROR_ATTR, RESOURCE_ATTR, error_text
from tunefleet.space import SearchSpace
from tunefleet.storage import record_at_end


class Cost(Protocol):
    """An extra objective measured on each fold's fitted estimator (and minimized).

    :class:`tunefleet.objectives.Cost` is the one the searches' ``objectives=`` makes.
    """

    name: str

    def __call__(self, estimator: Any, X: Any, y: Any) -> float: ...


class TrialFailed(Exception):
    """A trial's fit or scoring raised; its folds were scored with ``error_score``."""

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


@dataclass
class Resource:
    """What Hyperband budgets for estimators without epochs.

    ``kind`` is ``"n_samples"`` (fit on the first ``r`` samples of each training fold)
    or the name of an integer parameter such as ``n_estimators``.
    """

    kind: str
    rungs: list[int]


def final_estimator(estimator: Any) -> Any:
    """The last step of a ``Pipeline`` (or the estimator itself)."""
    steps = getattr(estimator, "steps", None)
    if steps:
        return final_estimator(steps[-1][1])
    return estimator


def reports_epochs(estimator: Any) -> bool:
    """Whether the estimator trains in epochs and reports after each (tunefleet Keras wrappers)."""
    return bool(getattr(final_estimator(estimator), "_reports_epochs", False))


def take(data: Any, indices: np.ndarray) -> Any:
    """Rows ``indices`` of arrays, sparse matrices, DataFrames or lists."""
    if data is None:
        return None
    if hasattr(data, "iloc"):
        return data.iloc[indices]
    if hasattr(data, "shape"):
        return data[indices]
    return [data[i] for i in indices]


def _n_rows(data: Any) -> int | None:
    if hasattr(data, "shape") and len(getattr(data, "shape", ())) > 0:
        return int(data.shape[0])
    if isinstance(data, (list, tuple)):
        return len(data)
    return None


def fold_fit_params(
    fit_params: Mapping[str, Any], indices: np.ndarray, n_samples: int
) -> dict[str, Any]:
    """Index the sample-aligned fit parameters (``sample_weight``...) by ``indices``."""
    out = {}
    for key, value in fit_params.items():
        if not isinstance(value, (str, tuple)) and _n_rows(value) == n_samples:
            out[key] = take(value, indices)
        else:
            out[key] = value
    return out


@dataclass
class CrossValidation:
    """Evaluate one configuration of ``estimator`` by cross-validation inside a trial.

    Args:
        estimator: the unfitted estimator to clone for every fold.
        space: the search space configurations are drawn from.
        X, y: the data.
        splits: ``(train_indices, test_indices)`` per fold.
        scorers: metric name -> scorer; ``primary`` names the one optimized.
        fit_params: keyword arguments for every ``fit``.
        error_score: score recorded for failed folds, or ``"raise"``.
        return_train_score: also score the training folds.
        report: ask the pruner after each epoch or fold (a pruner that prunes is in
            use). Keras wrappers report every epoch's score anyway (learning curves),
            except in multi-objective studies (``costs``), which take no reports.
        resource: Hyperband's resource for estimators without epochs.
        costs: extra objectives, measured on each fold's fitted estimator and minimized;
            with costs the trial's value is ``[mean score, mean cost...]``.
        compress: called on each fold's fitted estimator before it is scored and
            measured (``compress="int8"`` quantizes a Keras wrapper's model).
    """

    estimator: Any
    space: SearchSpace
    X: Any
    y: Any
    splits: list[tuple[np.ndarray, np.ndarray]]
    scorers: dict[str, Callable[..., float]]
    primary: str
    fit_params: dict[str, Any] = field(default_factory=dict)
    error_score: float | str = np.nan
    return_train_score: bool = False
    report: bool = False
    resource: Resource | None = None
    costs: tuple[Cost, ...] = ()
    compress: Callable[[Any], None] | None = None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        params = self.space.suggest(trial)
        if self.resource is None:
            record = self._cross_validate(trial, params, None)
        else:
            record = None
            for rung in self.resource.rungs:
                record = self._cross_validate(trial, params, rung)
                trial.set_user_attr(RESOURCE_ATTR, rung)
                if rung == self.resource.rungs[-1]:
                    break
                trial.report(record["mean"], step=rung)
                if trial.should_prune():
                    record_at_end(trial, {CV_ATTR: _nan_record(record)})
                    raise optuna.TrialPruned(f"pruned after {self.resource.kind}={rung}")
        assert record is not None
        errors = record.pop("errors")
        mean = record.pop("mean")
        if errors:
            record_at_end(trial, {CV_ATTR: record, ERROR_ATTR: error_text(errors[0])})
            raise TrialFailed(errors[0])
        record_at_end(trial, {CV_ATTR: record})
        if self.costs:
            return [mean, *(float(np.mean(record["cost"][c.name])) for c in self.costs)]
        return mean

    # -- one pass over the folds ---------------------------------------------------------
    def _cross_validate(
        self, trial: optuna.Trial, params: dict[str, Any], rung: int | None
    ) -> dict[str, Any]:
        n_samples = _n_rows(self.X) or len(self.y)
        record: dict[str, Any] = {
            "test": {m: [] for m in self.scorers},
            "fit_time": [],
            "score_time": [],
            "errors": [],
        }
        if self.return_train_score:
            record["train"] = {m: [] for m in self.scorers}
        if self.costs:
            record["cost"] = {c.name: [] for c in self.costs}
        for fold, (train, test) in enumerate(self.splits):
            if rung is not None and self.resource is not None and self.resource.kind == "n_samples":
                # a fixed random subset, the same for every trial and rung
                train = np.random.default_rng(fold).permutation(train)[:rung]
            estimator = clone(self.estimator).set_params(**params)
            if rung is not None and self.resource is not None and self.resource.kind != "n_samples":
                estimator.set_params(**{self.resource.kind: rung})
            X_train, y_train = take(self.X, train), take(self.y, train)
            X_test, y_test = take(self.X, test), take(self.y, test)
            fit_params = fold_fit_params(self.fit_params, train, n_samples)
            observer = None
            if self.resource is None and not self.costs and reports_epochs(estimator):
                # learning curves, always (multi-objective studies take no reports)
                observer = self._epoch_observer(trial, estimator, fold, X_test, y_test)
            start = time.perf_counter()
            try:
                with observe_epochs(observer):
                    estimator.fit(X_train, y_train, **fit_params)
                if self.compress is not None:
                    self.compress(estimator)
                fit_time = time.perf_counter() - start
                start = time.perf_counter()
                test_scores = self._score(estimator, X_test, y_test)
                score_time = time.perf_counter() - start
                train_scores = (
                    self._score(estimator, X_train, y_train) if self.return_train_score else {}
                )
                costs = {c.name: c(estimator, X_test, y_test) for c in self.costs}
            except optuna.TrialPruned:
                record["fit_time"].append(time.perf_counter() - start)
                record_at_end(trial, {CV_ATTR: _nan_record(record, len(self.splits))})
                raise
            except Exception as exc:
                if self.error_score == "raise":
                    record_at_end(trial, {ERROR_ATTR: error_text(_describe(exc, params, fold))})
                    raise
                fit_time = time.perf_counter() - start
                score_time = 0.0
                record["errors"].append(_describe(exc, params, fold))
                test_scores = dict.fromkeys(self.scorers, float(self.error_score))
                train_scores = dict.fromkeys(self.scorers, float(self.error_score))
                costs = {c.name: math.nan for c in self.costs}
            record["fit_time"].append(fit_time)
            record["score_time"].append(score_time)
            for m in self.scorers:
                record["test"][m].append(test_scores[m])
                if self.return_train_score:
                    record["train"][m].append(train_scores[m])
            for name, value in costs.items():
                record["cost"][name].append(value)
            if self.report and self.resource is None and observer is None and len(self.splits) > 1:
                trial.report(float(np.mean(record["test"][self.primary])), step=fold)
                if trial.should_prune():
                    record_at_end(trial, {CV_ATTR: _nan_record(record, len(self.splits))})
                    raise optuna.TrialPruned(f"pruned after fold {fold + 1}")
        record["mean"] = float(np.mean(record["test"][self.primary]))
        return record

    def _score(self, estimator: Any, X: Any, y: Any) -> dict[str, float]:
        scores = {}
        for name, scorer in self.scorers.items():
            value = scorer(estimator, X, y)
            if not isinstance(value, numbers.Number):
                raise ValueError(
                    f"scoring for {name!r} must return a number, got {type(value).__name__}: {value!r}"
                )
            scores[name] = float(value)
        return scores

    def _epoch_observer(
        self, trial: optuna.Trial, estimator: Any, fold: int, X_test: Any, y_test: Any
    ) -> Callable[[int, int], None]:
        scorer = self.scorers[self.primary]

        def observe(epoch: int, epochs: int) -> None:
            value = float(scorer(estimator, X_test, y_test))
            if not math.isfinite(value):
                return
            trial.report(value, step=fold * epochs + epoch)
            if self.report and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at fold {fold + 1}, epoch {epoch + 1}")

        return observe


def _nan_record(record: dict[str, Any], n_splits: int | None = None) -> dict[str, Any]:
    """The record of a pruned trial: its scores are not comparable, so they are NaN."""
    n = n_splits or len(record["fit_time"])
    out: dict[str, Any] = {
        "test": {m: [math.nan] * n for m in record["test"]},
        "fit_time": list(record["fit_time"]) + [math.nan] * (n - len(record["fit_time"])),
        "score_time": list(record["score_time"]) + [math.nan] * (n - len(record["score_time"])),
    }
    for key in ("train", "cost"):
        if key in record:
            out[key] = {m: [math.nan] * n for m in record[key]}
    return out


def _describe(exc: BaseException, params: Mapping[str, Any], fold: int) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return f"fold {fold + 1} with params {dict(params)!r} failed: {''.join(lines).strip()}"


def summarize_errors(messages: Sequence[str], limit: int = 3) -> str:
    """The first few distinct error messages, for warnings and the all-failed error."""
    distinct: list[str] = []
    for m in messages:
        if m not in distinct:
            distinct.append(m)
    shown = "\n".join(f"  - {m}" for m in distinct[:limit])
    more = (
        f"\n  ... and {len(distinct) - limit} more distinct errors" if len(distinct) > limit else ""
    )
    return shown + more
