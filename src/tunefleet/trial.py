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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import optuna
from sklearn.base import clone
from sklearn.utils.metaestimators import _safe_split

from tunefleet._hooks import observe_epochs
from tunefleet.attrs import RESOURCE_ATTR
from tunefleet.runner import EpochReporter, OnError, Run, Runner, RunScores, TrialFailed
from tunefleet.space import SearchSpace

__all__ = [
    "Cost",
    "CrossValidation",
    "Resource",
    "TrialFailed",
    "final_estimator",
    "fold_fit_params",
    "reports_epochs",
    "summarize_errors",
    "take",
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

    def runner(self) -> Runner:
        """The engine's runner for this face's trials."""
        return Runner(
            metrics=tuple(self.scorers),
            primary=self.primary,
            n_folds=len(self.splits),
            train=self.return_train_score,
            costs=tuple(c.name for c in self.costs),
            prune=self.report,
            fold_reports=self.report and self.resource is None and len(self.splits) > 1,
            on_error=OnError.from_error_score(self.error_score),
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

    def score(self, estimator: Any, X: Any, y: Any) -> dict[str, float]:
        """Every scorer's score of a fitted ``estimator`` on ``X``, ``y``."""
        scores = {}
        for name, scorer in self.scorers.items():
            value = scorer(estimator, X, y)
            if not isinstance(value, numbers.Number):
                raise ValueError(
                    f"scoring for {name!r} must return a number, got {type(value).__name__}: {value!r}"
                )
            scores[name] = float(value)
        return scores


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
        estimator = clone(cv.estimator).set_params(**clone(self.params, safe=False))
        if kind is not None and kind != "n_samples":
            estimator.set_params(**{kind: rung})
        # scikit-learn's split: a precomputed kernel (the pairwise tag) is cut in both axes
        X_train, y_train = _safe_split(estimator, cv.X, cv.y, train)
        X_test, y_test = _safe_split(estimator, cv.X, cv.y, test, train)
        fit_params = fold_fit_params(cv.fit_params, train, self.n_samples)
        observer = None
        if cv.resource is None and not cv.costs and reports_epochs(estimator):
            # learning curves, always (multi-objective studies take no reports)
            scorer = cv.scorers[cv.primary]
            observer = reporter.epoch_observer(lambda: scorer(estimator, X_test, y_test))
        start = time.perf_counter()
        with observe_epochs(observer):
            estimator.fit(X_train, y_train, **fit_params)
        if cv.compress is not None:
            cv.compress(estimator)
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        test_scores = cv.score(estimator, X_test, y_test)
        score_time = time.perf_counter() - start
        train_scores = cv.score(estimator, X_train, y_train) if cv.return_train_score else {}
        costs = {c.name: c(estimator, X_test, y_test) for c in cv.costs}
        return RunScores(test_scores, fit_time, score_time, train=train_scores, cost=costs)

    def describe_error(self, run: Run, exc: BaseException) -> str:
        lines = traceback.format_exception_only(type(exc), exc)
        return f"fold {run.fold + 1} with params {dict(self.params)!r} failed: {''.join(lines).strip()}"


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
