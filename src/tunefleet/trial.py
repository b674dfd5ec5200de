"""The scikit-learn face of the trial runner: one configuration, cross-validated.

:class:`CrossValidation` is what the scikit-learn face hands to the executor. Called
with an Optuna trial, it draws the configuration from the search space and runs it
through the engine's trial runner (:class:`tunefleet.runner.Runner`), supplying what is
the face's own: a fresh clone of the estimator per fold, fitted and scored with
scikit-learn scorers, Hyperband's resource rungs for estimators without epochs, the
costs of a multi-objective search and ``compress``. The runner reports, prunes, applies
``error_score`` and records per-fold scores and timings on the trial (written with the
trial's end: one transaction on an RDB storage, see :mod:`tunefleet.storage`). It is
picklable, so process workers and cluster tasks run the very same code.

:class:`~tunefleet.runner.TrialFailed` is re-exported here, where it was defined before.
"""

from __future__ import annotations

import numbers
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import optuna
from joblib.logger import short_format_time
from sklearn.base import clone
from sklearn.utils.metaestimators import _safe_split

from tunefleet._hooks import observe_epochs
from tunefleet.attrs import RESOURCE_ATTR
from tunefleet.runner import EpochReporter, OnError, Run, Runner, RunScores, TrialFailed
from tunefleet.space import SearchSpace

__all__ = [
    "Cost",
    "CrossValidation",
    "InvalidScoring",
    "Resource",
    "TrialFailed",
    "call_scorer",
    "final_estimator",
    "fold_fit_params",
    "refit_metric",
    "reports_epochs",
    "take",
    "with_params",
]


class Cost(Protocol):
    """An extra objective measured on each fold's fitted estimator (and minimized).

    :class:`tunefleet.objectives.Cost` is the one the searches' ``objectives=`` makes.
    """

    name: str

    def __call__(self, estimator: Any, X: Any, y: Any) -> float: ...


@dataclass
class Resource:
    """What Hyperband budgets for estimators without epochs.

    ``kind`` is ``"n_samples"`` (fit on the first ``r`` samples of each training fold)
    or the name of an integer parameter such as ``n_estimators``.
    """

    kind: str
    rungs: list[int]


def with_params(estimator: Any, params: Mapping[str, Any]) -> Any:
    """A fresh clone of ``estimator`` with ``params`` set, as scikit-learn's searches do:
    parameter values that are estimators are cloned too, so the caller's stay unfitted.

    Example:

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> step = LogisticRegression()
    >>> pipe = with_params(Pipeline([("clf", None)]), {"clf": step})
    >>> pipe.named_steps["clf"] is step
    False
    """
    return clone(estimator).set_params(**clone(params, safe=False))


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
    if hasattr(data, "tocsr") and not hasattr(data, "__getitem__"):
        data = data.tocsr()  # COO (and DIA) matrices cannot be indexed by rows
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

    The scikit-learn face of the trial runner (:mod:`tunefleet.runner`): called with an
    Optuna trial, it draws the configuration and has a :class:`~tunefleet.runner.Runner`
    run one fold per run through an adapter that clones the estimator, sets the
    configuration, fits and scores it with the scorers (and measures the costs). What is
    the face's own: the scorers, Hyperband's resource rungs, the costs, ``compress``.

    Args:
        estimator: the unfitted estimator to clone for every fold.
        space: the search space configurations are drawn from.
        X, y: the data.
        splits: ``(train_indices, test_indices)`` per fold.
        scorers: metric name -> scorer; ``primary`` names the one optimized.
        fit_params: keyword arguments for every ``fit``.
        score_params: scorer name -> keyword arguments of its calls (metadata routed to
            the scorers, such as ``sample_weight``); sample-aligned values are cut with
            the folds, as ``fit_params`` are.
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
        open_metrics: ``scorers`` is the user's one callable ``scoring``, which may
            return a dict of scores (scikit-learn's callable multi-metric scoring): each
            key is a metric of the record, and the trial's value is the mean of the
            ``refit`` key, or of the first key when ``refit`` is ``False`` or a callable.
            Any other ``refit`` not among the keys raises :class:`InvalidScoring` (the
            search stops), as scikit-learn does after its first candidates.
        refit: the search's ``refit`` (see ``open_metrics``).
        verbose: above 1, print scikit-learn's line per fit (``[CV 2/5] END C=1;
            score=0.9 total time= 0.1s``; the scores above 2).
        fit_hook: ``fit_hook(estimator, X_train, y_train, fit_params)`` returns a context
            manager entered around each fold's ``fit`` (scikit-learn's fit callbacks, see
            :mod:`tunefleet.sklearn.callbacks`); it is exited when the fit raises too.

    Scorers are called as scikit-learn calls them: ``scorer(estimator, X, y)``, or
    ``scorer(estimator, X)`` when ``y`` is ``None`` (unsupervised estimators).

    Example:

    >>> import optuna
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.metrics import get_scorer
    >>> from sklearn.model_selection import KFold
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from tunefleet.space import parse_grid
    >>> X, y = load_iris(return_X_y=True)
    >>> cv = CrossValidation(
    ...     estimator=DecisionTreeClassifier(random_state=0),
    ...     space=parse_grid({"max_depth": [2, 3]}),
    ...     X=X, y=y,
    ...     splits=list(KFold(3, shuffle=True, random_state=0).split(X)),
    ...     scorers={"score": get_scorer("accuracy")}, primary="score",
    ... )
    >>> study = optuna.create_study(direction="maximize")
    >>> trial = study.ask()
    >>> value = cv(trial)
    >>> len(study.tell(trial, value).user_attrs["tunefleet:cv"]["test"]["score"])
    3
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
    open_metrics: bool = False
    refit: Any = True
    score_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    verbose: int = 0
    fit_hook: Callable[..., AbstractContextManager[Any]] | None = None

    def runner(self) -> Runner:
        """The engine's runner for this face's trials."""
        open_primary = self.refit if isinstance(self.refit, str) else None
        return Runner(
            metrics=() if self.open_metrics else tuple(self.scorers),
            primary=open_primary if self.open_metrics else self.primary,
            n_folds=len(self.splits),
            train=self.return_train_score,
            costs=tuple(c.name for c in self.costs),
            prune=self.report,
            fold_reports=self.report and self.resource is None and len(self.splits) > 1,
            on_error=replace(OnError.from_error_score(self.error_score), fatal=(InvalidScoring,)),
            open_metrics=self.open_metrics,
        )

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        params = self.space.suggest(trial)
        runner = self.runner()
        if self.resource is None:
            return runner.run(trial, _FoldFits(self, params))
        folds = None
        for rung in self.resource.rungs:
            folds = runner.cross_validate(trial, _FoldFits(self, params, rung))
            trial.set_user_attr(RESOURCE_ATTR, rung)
            if rung == self.resource.rungs[-1]:
                break
            runner.report(trial, folds, rung, f"pruned after {self.resource.kind}={rung}")
        assert folds is not None
        return runner.finish(trial, folds)

    def fold_score_params(self, indices: np.ndarray, n_samples: int) -> dict[str, dict[str, Any]]:
        """``score_params`` cut to the rows ``indices`` (a fold's test or training rows)."""
        return {
            name: fold_fit_params(params, indices, n_samples)
            for name, params in self.score_params.items()
        }

    def score(
        self, estimator: Any, X: Any, y: Any, params: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, float]:
        """Every scorer's score of a fitted ``estimator`` on ``X``, ``y``.

        ``params``: scorer name -> its keyword arguments on these rows (see
        :meth:`fold_score_params`). With ``open_metrics``, a dict returned by the
        callable gives one score per key. A scorer that raises scores ``error_score``,
        with scikit-learn's warning (the fit did not fail); ``error_score="raise"``
        raises.
        """
        scores = {}
        for name, scorer in self.scorers.items():
            try:
                value = call_scorer(scorer, estimator, X, y, **(params or {}).get(name, {}))
            except Exception:
                if self.error_score == "raise":
                    raise
                warnings.warn(
                    "Scoring failed. The score on this train-test partition for these "
                    f"parameters will be set to {self.error_score}. Details: \n"
                    f"{traceback.format_exc()}",
                    UserWarning,
                    stacklevel=2,
                )
                scores[name] = float(self.error_score)
                continue
            if self.open_metrics and isinstance(value, Mapping):
                self._dict_key(value)
                for key, score in value.items():
                    scores[str(key)] = _number(str(key), score)
                continue
            scores[name] = _number(name, value)
        return scores

    def primary_score(
        self, estimator: Any, X: Any, y: Any, params: Mapping[str, Mapping[str, Any]] | None = None
    ) -> float:
        """The score the trial's value averages (reported after each epoch)."""
        kwargs = (params or {}).get(self.primary, {})
        value = call_scorer(self.scorers[self.primary], estimator, X, y, **kwargs)
        if self.open_metrics and isinstance(value, Mapping):
            key = self._dict_key(value)
            return _number(str(key), value[key])
        return _number(self.primary, value)

    def _dict_key(self, scores: Mapping[Any, Any]) -> Any:
        """The key of a callable's dict of scores that the trial's value averages."""
        if not scores:
            raise InvalidScoring("the callable scoring returned an empty dict of scores.")
        return refit_metric(self.refit, list(scores))


def refit_metric(refit: Any, keys: Sequence[Any]) -> Any:
    """The key of a callable ``scoring``'s dict of scores that ``refit`` ranks by.

    ``refit`` itself when it is one of ``keys``; the first key when ``refit`` is ``False``
    or a callable; any other ``refit`` raises :class:`InvalidScoring` in scikit-learn's
    words.

    Example:

    >>> refit_metric("f1", ["accuracy", "f1"]), refit_metric(False, ["accuracy", "f1"])
    ('f1', 'accuracy')
    """
    if isinstance(refit, str) and refit in keys:
        return refit
    if refit is not False and not callable(refit):
        raise InvalidScoring(
            "For multi-metric scoring, the parameter refit must be set to a scorer key or "
            "a callable to refit an estimator with the best parameter setting on the "
            "whole data and make the best_* attributes available for that metric. If "
            f"this is not needed, refit should be set to False explicitly. {refit!r} was "
            f"passed (the callable scoring returned the keys {list(keys)})."
        )
    return keys[0]


class InvalidScoring(ValueError):
    """The scoring cannot score any trial (a callable's dict lacks the ``refit`` key)."""


def call_scorer(scorer: Callable[..., Any], estimator: Any, X: Any, y: Any, **kwargs: Any) -> Any:
    """``scorer(estimator, X, y, **kwargs)``, without ``y`` when it is ``None``.

    As scikit-learn scores a fold: an unsupervised search passes no ``y``, so a plain
    callable ``scoring(estimator, X)`` works. ``kwargs`` are the scorer's routed
    metadata (``sample_weight``...).

    Example:

    >>> call_scorer(lambda est, X: len(X), None, [1, 2], None)
    2
    """
    return scorer(estimator, X, **kwargs) if y is None else scorer(estimator, X, y, **kwargs)


def _number(name: str, value: Any) -> float:
    if not isinstance(value, numbers.Number):
        raise ValueError(
            f"scoring for {name!r} must return a number, got {type(value).__name__}: {value!r}"
        )
    return float(value)


class _FoldFits:
    """The adapter of one trial of :class:`CrossValidation` (see :class:`tunefleet.runner.Adapter`).

    One run per fold: a clone of the estimator with the configuration (and the rung's
    resource) fitted on the training fold and scored on the test fold.
    """

    def __init__(
        self, cv: CrossValidation, params: dict[str, Any], rung: int | None = None
    ) -> None:
        self.cv = cv
        self.params = params
        self.rung = rung
        self.n_samples = _n_rows(cv.X) or len(cv.y)

    def runs(self) -> list[Run]:
        return [Run(fold, fold, data=split) for fold, split in enumerate(self.cv.splits)]

    def fit_and_score(self, run: Run, reporter: EpochReporter) -> RunScores:
        cv, rung = self.cv, self.rung
        train, test = run.data
        kind = None if cv.resource is None or rung is None else cv.resource.kind
        if kind == "n_samples":
            # a fixed random subset, the same for every trial and rung
            train = np.random.default_rng(run.fold).permutation(train)[:rung]
        # as scikit-learn: estimator-valued params are cloned, the user's objects stay unfitted
        estimator = with_params(cv.estimator, self.params)
        if kind is not None and kind != "n_samples":
            estimator.set_params(**{kind: rung})
        # scikit-learn's split: a precomputed kernel (the pairwise tag) is cut in both axes
        X_train, y_train = _safe_split(estimator, cv.X, cv.y, train)
        X_test, y_test = _safe_split(estimator, cv.X, cv.y, test, train)
        fit_params = fold_fit_params(cv.fit_params, train, self.n_samples)
        test_params = cv.fold_score_params(test, self.n_samples)
        observer = None
        if cv.resource is None and not cv.costs and reports_epochs(estimator):
            # learning curves, always (multi-objective studies take no reports)
            observer = reporter.epoch_observer(
                lambda: cv.primary_score(estimator, X_test, y_test, test_params)
            )
        hook = (
            nullcontext()
            if cv.fit_hook is None
            else cv.fit_hook(estimator, X_train, y_train, fit_params)
        )
        start = time.perf_counter()
        with hook, observe_epochs(observer):
            estimator.fit(X_train, y_train, **fit_params)
        if cv.compress is not None:
            cv.compress(estimator)
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        test_scores = cv.score(estimator, X_test, y_test, test_params)
        score_time = time.perf_counter() - start
        train_scores = {}
        if cv.return_train_score:
            train_params = cv.fold_score_params(train, self.n_samples)
            train_scores = cv.score(estimator, X_train, y_train, train_params)
        costs = {c.name: c(estimator, X_test, y_test) for c in cv.costs}
        if cv.verbose > 1:
            print(self._fit_line(run, test_scores, train_scores, fit_time + score_time))
        return RunScores(test_scores, fit_time, score_time, train=train_scores, cost=costs)

    def _fit_line(
        self, run: Run, test: dict[str, float], train: dict[str, float], seconds: float
    ) -> str:
        """scikit-learn's line for a fit (``verbose > 1``), with the scores above 2."""
        verbose = self.cv.verbose
        progress = f" {run.fold + 1}/{len(self.cv.splits)}" if verbose > 2 else ""
        start = f"[CV{progress}] END "
        shown = ", ".join(f"{k}={self.params[k]}" for k in sorted(self.params))
        result = shown + (";" if shown else "")
        if verbose > 2 and list(test) == ["score"]:  # one metric
            score = f"{test['score']:.3f}"
            if train:
                score = f"(train={train['score']:.3f}, test={score})"
            result += f" score={score}"
        elif verbose > 2:
            for name in sorted(test):
                both = f"train={train[name]:.3f}, " if name in train else ""
                result += f" {name}: ({both}test={test[name]:.3f})"
        result += f" total time={short_format_time(seconds)}"
        return start + "." * (80 - len(start) - len(result)) + result

    def describe_error(self, run: Run, exc: BaseException) -> str:
        lines = traceback.format_exception_only(type(exc), exc)
        return f"fold {run.fold + 1} with params {dict(self.params)!r} failed: {''.join(lines).strip()}"
