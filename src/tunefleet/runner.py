"""The trial runner: one configuration, run by folds and executions, reported, pruned, recorded.

Every face evaluates a configuration the same way, and this module does it once. A face
hands the runner an :class:`Adapter` for the trial, which supplies only what differs
between faces: the runs that make up the trial (``cv`` folds x executions), how one run
builds, fits and scores its model, and how a failure is described. :class:`Runner` does
the rest:

* it gives each run an :class:`EpochReporter`, through which the run reports the value
  of every epoch at step ``run * epochs + epoch`` and asks the study's pruner; a run
  that reports no epochs can be followed by a report of the running mean at step ``run``
  (``fold_reports``);
* it collects the per-fold record (``tunefleet:cv``: ``test`` per metric, ``fit_time``,
  ``score_time``, optionally ``train``, ``cost`` and ``errors``, the error of each run
  scored with ``error_score``): a fold's score is the mean over its executions, its
  times the sum;
* it applies one :class:`OnError` policy to a run that raises: score it with a number
  (scikit-learn's ``error_score``), re-raise the error (``error_score="raise"``), or retry
  the run and then fail the trial (the tuners' ``max_retries``);
* it writes the trial's record, whatever the outcome, through
  :func:`tunefleet.storage.record_at_end`: on an RDB storage it is committed in the
  transaction of the trial's tell, with its state;
* it returns the trial's value: the mean over folds of the primary metric, followed, in a
  multi-objective study, by the mean of each cost.

What each outcome stores, and raises (the executor then tells the trial's state):

* every run scored: ``CV_ATTR``; returns the value(s);
* the pruner stopped the trial: the pruned ``CV_ATTR`` (see ``pruned_scores``);
  ``optuna.TrialPruned``;
* runs failed under ``OnError(mode="score")``: ``CV_ATTR`` (failed runs scored
  ``error_score``) and the first failure under ``ERROR_ATTR``; ``TrialFailed``;
* a run failed under ``mode="fail"`` (after its retries): ``ERROR_ATTR``; ``TrialFailed``;
* a run failed under ``mode="raise"``: ``ERROR_ATTR``; the error itself;
* the adapter raised ``TrialFailed`` (the configuration cannot run): ``ERROR_ATTR``; it;
* an error of ``OnError.fatal`` (it would fail every trial): nothing; the error itself.

Faces: :class:`tunefleet.trial.CrossValidation` (scikit-learn estimators, Keras
wrappers) and :class:`tunefleet.tuners.trial_runner.TrialRunner` (the tuners' ``build(hp)``
and ``fit``) each run a trial through a :class:`Runner` and an adapter.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import optuna

from tunefleet._hooks import EpochObserver
from tunefleet.attrs import CV_ATTR, ERROR_ATTR, error_text
from tunefleet.storage import record_at_end

__all__ = [
    "Adapter",
    "EpochReporter",
    "FoldRecord",
    "OnError",
    "Run",
    "RunScores",
    "Runner",
    "TrialFailed",
]


class TrialFailed(Exception):
    """A trial failed: its runs raised (their record and error are stored), or it cannot run.

    The executor tells such a trial ``FAIL`` and goes on with the search. ``original`` is
    the exception that failed it, when there is one.

    Example:

    >>> error = TrialFailed("fold 1 failed: ValueError: bad")
    >>> print(error), error.original
    fold 1 failed: ValueError: bad
    (None, None)
    """

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


@dataclass(frozen=True)
class Run:
    """One training run of a trial: a fold, or one execution of a fold.

    Args:
        index: the run's position in the trial (0, 1, ...); its epochs report at steps
            ``index * epochs + epoch``.
        fold: the fold it trains on (its scores go to that fold of the record).
        epochs: the epochs it trains, when known before it starts (else the run passes
            them with each report).
        data: whatever the face needs to run it (indices, fit arguments...).

    Example:

    >>> Run(index=3, fold=1, epochs=5).index * 5
    15
    """

    index: int
    fold: int
    epochs: int | None = None
    data: Any = None


@dataclass
class RunScores:
    """What one run measured: a score per metric, its times, optional train scores and costs.

    Example:

    >>> RunScores(test={"accuracy": 0.9}, fit_time=1.5).score_time
    0.0
    """

    test: dict[str, float]
    fit_time: float
    score_time: float = 0.0
    train: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)


class EpochReporter:
    """Reports a run's epochs to the trial and asks the pruner: the one decision of every face.

    The runner makes one for each run and passes it to :meth:`Adapter.fit_and_score`. A
    Keras callback calls :meth:`report_epoch` after each epoch and stops training when it
    returns ``True``; a fit that cannot be stopped that way (a Keras wrapper inside a
    ``Pipeline``) installs :meth:`epoch_observer`, which raises ``optuna.TrialPruned``.
    Non-finite values are not reported. The pruner is asked only with ``prune``.

    Args:
        trial: the trial to report to (``None``: report nothing).
        run_index: the run's position in the trial.
        prune: ask the study's pruner after each report.
        epochs: the run's epochs, if known up front (else passed with each report).
        offset: the step of epoch 0, if not ``run_index * epochs``.

    Example:

    >>> import optuna
    >>> study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    >>> trial = study.ask()
    >>> reporter = EpochReporter(trial, run_index=2, prune=True, epochs=3)
    >>> reporter.report_epoch(0, 0.5)  # False: the pruner does not stop it
    False
    >>> reporter.step(1)
    7
    >>> study.tell(trial, 0.5).intermediate_values
    {6: 0.5}
    """

    def __init__(
        self,
        trial: optuna.Trial | None,
        run_index: int = 0,
        *,
        prune: bool = False,
        epochs: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.trial = trial
        self.run_index = run_index
        self.prune = prune
        self.epochs = epochs
        self.offset = offset
        #: whether the run reports its epochs (a report was made, or an observer made)
        self.per_epoch = False
        #: the last epoch reported (``None`` before the first)
        self.last_epoch: int | None = None
        #: whether the pruner stopped the run
        self.pruned = False

    def step(self, epoch: int, epochs: int | None = None) -> int:
        """The step ``epoch`` (from 0) is reported at."""
        if self.offset is not None:
            return self.offset + epoch
        total = epochs if epochs is not None else self.epochs
        return self.run_index * (total or 1) + epoch

    def report_epoch(self, epoch: int, value: float, epochs: int | None = None) -> bool:
        """Report ``value`` for ``epoch``; ``True`` when the pruner says stop."""
        self.per_epoch = True
        self.last_epoch = epoch
        if self.trial is None or not math.isfinite(value):
            return False
        self.trial.report(value, step=self.step(epoch, epochs))
        if self.prune and self.trial.should_prune():
            self.pruned = True
        return self.pruned

    def epoch_observer(self, score: Callable[[], float]) -> EpochObserver:
        """An observer for :func:`tunefleet._hooks.observe_epochs` reporting ``score()``.

        It raises ``optuna.TrialPruned`` when the pruner says stop.
        """
        self.per_epoch = True

        def observe(epoch: int, epochs: int) -> None:
            if self.report_epoch(epoch, float(score()), epochs):
                raise optuna.TrialPruned(f"pruned at run {self.run_index + 1}, epoch {epoch + 1}")

        return observe


class Adapter(Protocol):
    """What a face supplies for one trial: its runs, how to fit and score one, its errors.

    An adapter is made for one trial (it holds the trial's configuration). The runner
    calls :meth:`runs` once, then :meth:`fit_and_score` for each run in order (again for a
    retried run), and :meth:`describe_error` for a run that raised.
    """

    def runs(self) -> Sequence[Run]:
        """The trial's runs, in order: folds x executions."""
        ...

    def fit_and_score(self, run: Run, reporter: EpochReporter) -> RunScores:
        """Build, fit and score ``run``'s model, reporting epochs through ``reporter``.

        A run the pruner stops either raises ``optuna.TrialPruned`` or returns with
        ``reporter.pruned`` set (its scores are then ignored, its ``fit_time`` kept).
        """
        ...

    def describe_error(self, run: Run, exc: BaseException) -> str:
        """The failure record of ``run`` raising ``exc``."""
        ...


@dataclass(frozen=True)
class OnError:
    """What the runner does when a run raises (an ``Exception`` other than a pruning).

    Args:
        mode: ``"score"``: record the run with ``error_score`` for every metric (NaN
            costs), finish the other runs, store the record and the first error and fail
            the trial; ``"raise"``: store the error and re-raise it (the search stops);
            ``"fail"``: store the error and fail the trial at once.
        error_score: the score of a failed run in ``"score"`` mode.
        max_retries: run a failed run again this many times before ``mode`` applies.
        fatal: errors re-raised at once, unrecorded and never retried (a configuration
            that would fail every trial).

    Example:

    >>> OnError.from_error_score("raise").mode
    'raise'
    >>> OnError.from_error_score(0.0)
    OnError(mode='score', error_score=0.0, max_retries=0, fatal=())
    >>> OnError.fail_trial(max_retries=2).mode
    'fail'
    """

    mode: Literal["score", "raise", "fail"] = "fail"
    error_score: float | str = math.nan
    max_retries: int = 0
    fatal: tuple[type[BaseException], ...] = ()

    @classmethod
    def from_error_score(cls, error_score: float | str) -> OnError:
        """scikit-learn's ``error_score``: a number scores failed runs, ``"raise"`` re-raises."""
        if isinstance(error_score, str) and error_score == "raise":
            return cls(mode="raise")
        return cls(mode="score", error_score=error_score)

    @classmethod
    def fail_trial(
        cls, max_retries: int = 0, fatal: tuple[type[BaseException], ...] = ()
    ) -> OnError:
        """Retry a failed run ``max_retries`` times, then fail the trial."""
        return cls(mode="fail", max_retries=max_retries, fatal=fatal)


class FoldRecord:
    """The per-fold record of a trial's runs, as they finish (what ``tunefleet:cv`` stores).

    Each fold collects its runs' scores (a fold's score is their mean) and times (a
    fold's time is their sum). :meth:`record` is the stored record; :meth:`pruned` the
    record of a trial stopped part way.

    Example:

    >>> folds = FoldRecord(["score"], n_folds=2)
    >>> folds.add(Run(0, fold=0), RunScores({"score": 0.5}, fit_time=1.0))
    >>> folds.add(Run(1, fold=1), RunScores({"score": 0.7}, fit_time=2.0))
    >>> folds.record()
    {'test': {'score': [0.5, 0.7]}, 'fit_time': [1.0, 2.0], 'score_time': [0.0, 0.0]}
    >>> round(folds.mean(), 6)
    0.6
    """

    def __init__(
        self,
        metrics: Sequence[str],
        n_folds: int,
        *,
        primary: str | None = None,
        train: bool = False,
        costs: Sequence[str] = (),
        open_metrics: bool = False,
    ) -> None:
        self.metrics = list(metrics)
        self.primary = self.metrics[0] if primary is None and self.metrics else primary
        self.n_folds = n_folds
        self.open_metrics = open_metrics
        self.train = train
        self.costs = list(costs)
        self._test: dict[str, list[list[float]]] = {m: self._empty() for m in self.metrics}
        self._train: dict[str, list[list[float]]] = {m: self._empty() for m in self.metrics}
        self._cost: dict[str, list[list[float]]] = {c: self._empty() for c in self.costs}
        self._fit_time = self._empty()
        self._score_time = self._empty()
        #: the failure records of the runs scored with ``error_score``
        self.errors: list[str] = []
        #: ``(fold, error_score)`` of each failed run (a metric first seen later gets it)
        self._failed_runs: list[tuple[int, float]] = []
        self._run_errors: list[str] = []

    def _empty(self) -> list[list[float]]:
        return [[] for _ in range(self.n_folds)]

    def add(self, run: Run, scores: RunScores) -> None:
        """Add a finished run's scores and times to its fold.

        With ``open_metrics``, a metric first seen here joins the record: the failed runs
        before it get their ``error_score`` for it, the scored ones NaN.
        """
        if self.open_metrics:
            for name in scores.test:
                if name not in self._test:
                    self._add_metric(name)
        self._fit_time[run.fold].append(scores.fit_time)
        self._score_time[run.fold].append(scores.score_time)
        for m in self.metrics:
            self._test[m][run.fold].append(scores.test.get(m, math.nan))
            if self.train:
                self._train[m][run.fold].append(scores.train.get(m, math.nan))
        for c in self.costs:
            self._cost[c][run.fold].append(scores.cost[c])

    def add_failed(
        self, run: Run, error_score: float, fit_time: float, error: str | None = None
    ) -> None:
        """Add a run that raised: ``error_score`` for every metric, NaN costs.

        ``error`` (the exception, as one line) is kept in the record's ``errors``, one
        entry per failed run, so that failures can be counted and grouped as
        scikit-learn's ``FitFailedWarning`` does.
        """
        self._failed_runs.append((run.fold, error_score))
        if error is not None:
            self._run_errors.append(error_text(error))
        self.add(run, _failed(self, error_score, fit_time))

    def _add_metric(self, name: str) -> None:
        failed: list[list[float]] = self._empty()
        for fold, error_score in self._failed_runs:
            failed[fold].append(error_score)
        scored = [len(f) - len(e) for f, e in zip(self._fit_time, failed, strict=True)]
        self._test[name] = [e + [math.nan] * n for e, n in zip(failed, scored, strict=True)]
        self._train[name] = [list(f) for f in self._test[name]]
        self.metrics.append(name)

    def add_fit_time(self, run: Run, fit_time: float) -> None:
        """Add the training time of a run that was stopped (pruned) before it was scored."""
        self._fit_time[run.fold].append(fit_time)

    def mean(self) -> float:
        """The mean over the folds run so far of the primary metric's fold scores."""
        primary = self.primary
        if self.open_metrics and primary not in self._test:  # not scored (yet): the first
            primary = self.metrics[0] if self.metrics else None
        runs = self._test.get(primary, []) if primary is not None else []
        scores = [float(np.mean(f)) for f in runs if f]
        return float(np.mean(scores)) if scores else math.nan

    def record(self) -> dict[str, Any]:
        """The record: per fold, the mean score of each metric, the summed times."""
        return self._build(scores=True, fill=math.nan)

    def pruned(self, scores: Literal["nan", "partial"] = "nan") -> dict[str, Any]:
        """The record of a pruned trial, for every fold (including those never run).

        ``"nan"``: no scores (a pruned trial's are not comparable with complete ones),
        the times of what ran, NaN for the rest. ``"partial"``: the folds' scores so
        far (NaN for folds without a finished run), the times of what ran, 0 for the rest.
        """
        if scores == "nan":
            return self._build(scores=False, fill=math.nan)
        return self._build(scores=True, fill=0.0)

    def _build(self, *, scores: bool, fill: float) -> dict[str, Any]:
        def per_fold(runs: list[list[float]]) -> list[float]:
            if not scores:
                return [math.nan] * self.n_folds
            return [float(np.mean(f)) if f else math.nan for f in runs]

        def times(runs: list[list[float]]) -> list[float]:
            return [sum(f) if f else fill for f in runs]

        out: dict[str, Any] = {
            "test": {m: per_fold(self._test[m]) for m in self.metrics},
            "fit_time": times(self._fit_time),
            "score_time": times(self._score_time),
        }
        if self.train:
            out["train"] = {m: per_fold(self._train[m]) for m in self.metrics}
        if self.costs:
            out["cost"] = {c: per_fold(self._cost[c]) for c in self.costs}
        if self._run_errors:
            out["errors"] = list(self._run_errors)
        return out


@dataclass(frozen=True)
class Runner:
    """The trial runner: runs one configuration through a face's :class:`Adapter`.

    See the module's docstring for what it does and stores. Configurations searched
    over a resource (Hyperband's rungs) run :meth:`cross_validate` once per rung,
    :meth:`report` between rungs and :meth:`finish` after the last; :meth:`run` is the
    single pass.

    Args:
        metrics: the metrics each run scores.
        n_folds: the folds of the record.
        primary: the metric optimized (default: the first).
        train: runs also score their training data (``train`` in the record).
        costs: names of the costs each run measures (multi-objective studies).
        prune: ask the study's pruner after each report.
        fold_reports: after a run that reported no epochs, report the running mean of
            the primary metric at step ``run.index`` (and ask the pruner).
        on_error: what a run that raises does to the trial.
        open_metrics: runs may score metrics not in ``metrics`` (a scikit-learn callable
            ``scoring`` that returns a dict of scores): each joins the record when first
            seen, and without ``primary`` the first one seen is the trial's value.
        pruned_scores: what a pruned trial's record holds (see :meth:`FoldRecord.pruned`).

    Example:

    >>> import optuna
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> class Halves:  # an adapter: two folds, a tree fitted and scored on each
    ...     def runs(self):
    ...         return [Run(0, 0, data=(slice(0, None, 2), slice(1, None, 2))),
    ...                 Run(1, 1, data=(slice(1, None, 2), slice(0, None, 2)))]
    ...     def fit_and_score(self, run, reporter):
    ...         train, test = run.data
    ...         tree = DecisionTreeClassifier(random_state=0).fit(X[train], y[train])
    ...         return RunScores({"accuracy": tree.score(X[test], y[test])}, fit_time=0.0)
    ...     def describe_error(self, run, exc):
    ...         return f"fold {run.fold + 1}: {exc!r}"
    >>> study = optuna.create_study(direction="maximize")
    >>> trial = study.ask()
    >>> value = Runner(metrics=("accuracy",), n_folds=2).run(trial, Halves())
    >>> frozen = study.tell(trial, value)
    >>> len(frozen.user_attrs["tunefleet:cv"]["test"]["accuracy"]), value > 0.9
    (2, True)
    """

    metrics: tuple[str, ...]
    n_folds: int
    primary: str | None = None
    train: bool = False
    costs: tuple[str, ...] = ()
    prune: bool = False
    fold_reports: bool = False
    on_error: OnError = field(default_factory=OnError)
    pruned_scores: Literal["nan", "partial"] = "nan"
    open_metrics: bool = False

    def run(self, trial: optuna.Trial, adapter: Adapter) -> float | list[float]:
        """Run every run of ``adapter``, store the trial's record, return its value(s)."""
        return self.finish(trial, self.cross_validate(trial, adapter))

    def cross_validate(self, trial: optuna.Trial, adapter: Adapter) -> FoldRecord:
        """Run every run of ``adapter`` (reporting, pruning); the record is not stored yet.

        Raises ``optuna.TrialPruned`` (with the pruned record stored) when the pruner
        stops the trial, and what :class:`OnError` says when a run fails.
        """
        folds = FoldRecord(
            self.metrics,
            self.n_folds,
            primary=self.primary,
            train=self.train,
            costs=self.costs,
            open_metrics=self.open_metrics,
        )
        for run in adapter.runs():
            reporter = self._run(trial, adapter, run, folds)
            if self.fold_reports and not reporter.per_epoch:
                self.report(trial, folds, step=run.index, why=f"pruned after run {run.index + 1}")
        return folds

    def report(self, trial: optuna.Trial, folds: FoldRecord, step: int, why: str) -> None:
        """Report the running mean at ``step``; if the pruner says stop, store the pruned
        record and raise ``optuna.TrialPruned(why)``."""
        trial.report(folds.mean(), step=step)
        if trial.should_prune():
            record_at_end(trial, {CV_ATTR: folds.pruned(self.pruned_scores)})
            raise optuna.TrialPruned(why)

    def finish(self, trial: optuna.Trial, folds: FoldRecord) -> float | list[float]:
        """Store the record (and the first error, raising ``TrialFailed``); the value(s)."""
        record = folds.record()
        if folds.errors:
            record_at_end(trial, {CV_ATTR: record, ERROR_ATTR: error_text(folds.errors[0])})
            raise TrialFailed(folds.errors[0])
        record_at_end(trial, {CV_ATTR: record})
        mean = folds.mean()
        if self.costs:
            return [mean, *(float(np.mean(record["cost"][c])) for c in self.costs)]
        return mean

    def _run(
        self, trial: optuna.Trial, adapter: Adapter, run: Run, folds: FoldRecord
    ) -> EpochReporter:
        """One run, with the error policy; adds it to ``folds``. Its reporter."""
        policy = self.on_error
        for attempt in range(policy.max_retries + 1):
            reporter = EpochReporter(trial, run.index, prune=self.prune, epochs=run.epochs)
            start = time.perf_counter()
            try:
                scores = adapter.fit_and_score(run, reporter)
            except optuna.TrialPruned:
                folds.add_fit_time(run, time.perf_counter() - start)
                record_at_end(trial, {CV_ATTR: folds.pruned(self.pruned_scores)})
                raise
            except policy.fatal:
                raise
            except TrialFailed as exc:  # the face says this configuration cannot run
                record_at_end(trial, {ERROR_ATTR: error_text(str(exc))})
                raise
            except Exception as exc:
                if attempt < policy.max_retries:
                    continue
                elapsed = time.perf_counter() - start
                message = adapter.describe_error(run, exc)
                if policy.mode == "score":
                    folds.errors.append(message)
                    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                    folds.add_failed(run, float(policy.error_score), elapsed, error)
                    return reporter
                record_at_end(trial, {ERROR_ATTR: error_text(message)})
                if policy.mode == "raise":
                    raise
                raise TrialFailed(message, exc) from exc
            if reporter.pruned:
                folds.add_fit_time(run, scores.fit_time)
                record_at_end(trial, {CV_ATTR: folds.pruned(self.pruned_scores)})
                epoch = (reporter.last_epoch or 0) + 1
                raise optuna.TrialPruned(f"pruned at run {run.index + 1}, epoch {epoch}")
            folds.add(run, scores)
            return reporter
        raise AssertionError("unreachable")


def _failed(folds: FoldRecord, error_score: float, fit_time: float) -> RunScores:
    """The scores of a failed run: ``error_score`` for every metric, NaN costs."""
    scores: Mapping[str, float] = dict.fromkeys(folds.metrics, error_score)
    return RunScores(
        test=dict(scores),
        fit_time=fit_time,
        score_time=0.0,
        train=dict(scores),
        cost=dict.fromkeys(folds.costs, math.nan),
    )
