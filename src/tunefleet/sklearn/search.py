"""Drop-in scikit-learn searches on Optuna: persistent, resumable, parallel, pruning.

Every class here takes scikit-learn's constructor arguments and produces its fitted
attributes (``best_params_``, ``best_score_``, ``best_estimator_``, ``best_index_``,
``cv_results_``, ``n_splits_``, ``scorer_``, ``refit_time_``, ``multimetric_``), so changing
the import line is all a user does. On top, each search lives in an Optuna study
(``storage``, ``study_name``): fitting again continues it. With ``objectives=`` a search
also minimizes costs (parameters, bytes, latency) in a multi-objective study, and
``best_trials_`` is its Pareto front; ``compress=`` quantizes each fold's Keras model
before it is scored.

The subclasses differ only in how they describe the space and which Optuna sampler and
pruner they use (:meth:`BaseSearchCV._strategy`); the loop, the bookkeeping and the
results are here, once.
"""

from __future__ import annotations

import logging
import numbers
import os
import time
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from sklearn.base import is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import check_scoring, get_scorer
from sklearn.metrics._scorer import _BaseScorer
from sklearn.model_selection import check_cv
from sklearn.model_selection._search import BaseSearchCV as _SklearnBaseSearchCV
from sklearn.utils import indexable

from tunefleet import records
from tunefleet.attrs import CV_ATTR, ERROR_ATTR, STRATEGY_ATTR, is_non_finite_error
from tunefleet.dispatch import (
    RAY_ACTORS,
    check_backend,
    choose_executor,
    fleet_size,
    n_workers,
    runs_in_worker_process,
)
from tunefleet.experiment import check_resume, sklearn_experiment
from tunefleet.heap import frozen_heap
from tunefleet.objectives import Cost, Quantizer, make_quantizer, parse_objectives
from tunefleet.progress import SearchProgress
from tunefleet.ray_workers import actor_options
from tunefleet.results import cv_results, finished_trials, pareto_trials
from tunefleet.sklearn.callbacks import SearchCallbacks, managed_callbacks
from tunefleet.sklearn.routing import RoutedParams, route_fit_params
from tunefleet.space import SearchSpace
from tunefleet.storage import copy_to_memory, open_storage, reopenable, reopenable_by_workers
from tunefleet.strategies import describe, make_pruner, make_sampler, prunes
from tunefleet.study import Budget, check_study_name, enqueue_grid, open_study, recover_interrupted
from tunefleet.tradeoff import SmallestWithin
from tunefleet.trial import (
    CrossValidation,
    Resource,
    final_estimator,
    refit_metric,
    reports_epochs,
    with_params,
)
from tunefleet.trial_fleet import FleetCrossValidation, fleet_unsupported_reason

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class Strategy:
    """What a face chose: the space, the Optuna sampler (name or instance) and pruner."""

    space: SearchSpace
    sampler: str | optuna.samplers.BaseSampler
    pruner: optuna.pruners.BasePruner
    n_trials: int | None  # None: the grid's size
    resource: Resource | None = None
    population_size: int | None = None
    points: list[dict[str, Any]] | None = None  # a grid's points in order (default: the space's)
    label: str | None = None  # the description stored with the study, if not describe()
    fleet_size: int | None = None  # trials a fleet trains at once, if the face has its own

    @property
    def grid(self) -> bool:
        return self.sampler == "grid"

    def grid_points(self) -> list[dict[str, Any]] | None:
        """The points a grid strategy queues, in order; ``None`` for a sampler."""
        if not self.grid:
            return None
        return self.points if self.points is not None else self.space.grid()

    def describe(self) -> str:
        """A short name such as ``"tpe + hyperband"``, stored with the study."""
        return self.label or describe(self.sampler, self.pruner)


class BaseSearchCV(_SklearnBaseSearchCV):
    """Base class of tunefleet's searches: scikit-learn's search API on an Optuna study.

    Subclasses implement :meth:`_strategy`. Not meant to be used directly: every
    search (``GridSearchCV``, ``RandomizedSearchCV``, ``BayesSearchCV``, ...) takes its
    arguments, among them ``storage`` and ``study_name``, where a search keeps its trials
    and from where a second ``fit`` resumes it.

    Example:

    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from tunefleet.sklearn import BaseSearchCV, GridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> storage = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "tune.db")
    >>> search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3]},
    ...                       cv=3, storage=storage, study_name="tree")
    >>> isinstance(search, BaseSearchCV)
    True
    >>> len(search.fit(X, y).study_.trials)   # an Optuna study in the storage
    3
    >>> len(search.fit(X, y).study_.trials)   # resumed: the grid is done, no new trial
    3
    """

    def __init__(
        self,
        estimator: Any,
        *,
        scoring: Any = None,
        n_jobs: int | None = None,
        refit: bool | str | Any = True,
        cv: Any = None,
        verbose: int = 0,
        pre_dispatch: str | int = "2*n_jobs",
        random_state: int | None = None,
        error_score: float | str = np.nan,
        return_train_score: bool = False,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        pruner: str | optuna.pruners.BasePruner | None = None,
        progress: bool | None = None,
        fleet: bool | int | str = "auto",
        objectives: Any = None,
        compress: str | None = None,
        resume: str = "auto",
        backend: str = "local",
        resources_per_trial: dict[str, float] | None = None,
        ray_address: str | None = None,
    ) -> None:
        super().__init__(
            estimator=estimator,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.random_state = random_state
        self.storage = storage
        self.study_name = study_name
        self.pruner = pruner
        self.progress = progress
        self.fleet = fleet
        self.objectives = objectives
        self.compress = compress
        self.resume = resume
        self.backend = backend
        self.resources_per_trial = resources_per_trial
        self.ray_address = ray_address

    # -- the one hook -------------------------------------------------------------------
    def _strategy(
        self, X: Any, y: Any, n_splits: int, fit_params: dict[str, Any]
    ) -> Strategy:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run_search(self, evaluate_candidates: Any) -> None:  # pragma: no cover
        raise NotImplementedError("tunefleet searches run through Optuna; call fit().")

    # -- validation ---------------------------------------------------------------------
    def _whole_space(self, strategy: Strategy) -> Strategy:
        """The strategy that runs (see :meth:`SampledSearchCV._whole_space`)."""
        return strategy

    def _check_n_iter(self) -> int:
        n_iter = getattr(self, "n_iter", None)
        if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter <= 0:
            raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}.")
        return int(n_iter)

    def _check_random_state(self) -> int | None:
        """The integer seed of ``random_state`` (None, an int, or a numpy random generator).

        As in scikit-learn, a ``np.random.RandomState`` or ``np.random.Generator`` is drawn
        from, so each ``fit`` with the same generator object searches differently.
        """
        state = self.random_state
        if state is None:
            return None
        if isinstance(state, numbers.Integral) and not isinstance(state, bool):
            if not 0 <= state < 2**32:
                raise ValueError(f"random_state must be in [0, 2**32 - 1], got {state!r}.")
            return int(state)
        if isinstance(state, np.random.RandomState):
            return int(state.randint(np.iinfo(np.int32).max))
        if isinstance(state, np.random.Generator):
            return int(state.integers(np.iinfo(np.int32).max))
        raise TypeError(
            "random_state must be None, an int, a np.random.RandomState or a "
            f"np.random.Generator, got {type(state).__name__}: {state!r}."
        )

    def _scorers(self) -> tuple[dict[str, Any], str, Any]:
        """``(name -> scorer, the metric optimized, scorer_ as sklearn exposes it)``."""
        scoring = self.scoring
        if scoring is None or isinstance(scoring, str) or callable(scoring):
            scorer = check_scoring(self.estimator, scoring)
            return {"score": scorer}, "score", scorer
        if isinstance(scoring, (list, tuple, set)):
            names = list(scoring)
            if (
                not names
                or len(set(names)) != len(names)
                or not all(isinstance(n, str) for n in names)
            ):
                raise ValueError(
                    f"scoring={scoring!r}: a list of metrics must hold distinct scorer names, "
                    "e.g. ['accuracy', 'f1_macro']."
                )
            scorers = {n: get_scorer(n) for n in names}
        elif isinstance(scoring, Mapping):
            if not scoring:
                raise ValueError("scoring={} is empty; expected a dict of name -> scorer.")
            scorers = {n: get_scorer(s) if isinstance(s, str) else s for n, s in scoring.items()}
        else:
            raise ValueError(f"scoring={scoring!r} is not a scorer name, callable, list or dict.")
        refit = self.refit
        if callable(refit) or refit is False:
            primary = next(iter(scorers))
        elif isinstance(refit, str) and refit in scorers:
            primary = refit
        else:
            raise ValueError(
                "For multi-metric scoring, the parameter refit must be set to a scorer key or a "
                f"callable; valid keys are {list(scorers)}. If no refit is needed, set refit=False. "
                f"{refit!r} was passed."
            )
        return scorers, primary, scorers

    def _open_metrics(self) -> bool:
        """Whether ``scoring`` is one callable, which may return a dict of scores."""
        return callable(self.scoring) and not isinstance(self.scoring, str)

    def _result_metrics(
        self, trials: list[Any], scorers: dict[str, Any], primary: str
    ) -> tuple[list[str], str]:
        """The metrics of ``cv_results_`` and the one ranked for ``best_*``.

        A callable ``scoring`` that returns a dict of scores makes a multi-metric search
        whose metrics are the dict's keys (read from the stored records, in order), as in
        scikit-learn; ``refit`` must then name one of them, be a callable or ``False``.
        """
        if not self._open_metrics():
            return list(scorers), primary
        names: dict[str, None] = {}
        for trial in trials:
            for name in trial.user_attrs.get(CV_ATTR, {}).get("test", {}):
                names.setdefault(name)
        if not names or list(names) == ["score"]:
            return ["score"], "score"
        self.multimetric_ = True
        return list(names), refit_metric(self.refit, list(names))

    def _check_space_names(self, space: SearchSpace) -> None:
        """Every searched name must be a parameter of the estimator (checked before any trial).

        Keras wrappers also build their model once; with ``compress``, they check that Keras
        can quantize it in that mode.
        """
        for representative in space.representatives():
            try:
                estimator = with_params(self.estimator, representative)
            except ValueError as exc:
                raise ValueError(f"{space.source}: {exc}") from None
            check_build = getattr(final_estimator(estimator), "check_build", None)
            if not callable(check_build):
                continue
            if self.compress is None:
                check_build()
                continue
            try:
                check_build(quantize=self.compress)
            except ValueError as exc:
                if not str(exc).startswith("quantize:"):
                    raise
                raise ValueError(f"compress={self.compress!r} cannot be used: {exc}") from None

    def _objectives(self, strategy: Strategy, scorers: dict[str, Any]) -> list[Cost]:
        """The costs of ``objectives`` (checked with the strategy before any trial)."""
        costs = parse_objectives(self.objectives, scorer_names=scorers)
        names = [c.name for c in costs]
        refit = self.refit
        if isinstance(refit, SmallestWithin):
            if refit.cost not in names:
                raise ValueError(
                    f"refit=smallest_within(..., cost={refit.cost!r}) needs {refit.cost!r} among "
                    f"the search's objectives, got objectives={names or None}; e.g. "
                    f"objectives=[{refit.cost!r}]."
                )
            if refit.metric not in scorers:
                raise ValueError(
                    f"refit=smallest_within(..., metric={refit.metric!r}): expected one of the "
                    f"scorer names {list(scorers)}."
                )
        if not costs:
            return costs
        if prunes(strategy.pruner):
            given = self.pruner if self.pruner is not None else type(strategy.pruner).__name__
            raise ValueError(
                f"pruner={given!r} cannot be used with objectives={names}: Optuna does not "
                "prune multi-objective studies (they take no intermediate values); leave "
                "pruner=None."
            )
        sampler = strategy.sampler
        if sampler == "cmaes" or isinstance(sampler, optuna.samplers.CmaEsSampler):
            raise ValueError(
                f"objectives={names} makes a multi-objective search, which CMA-ES cannot do; "
                "use the genetic algorithm (EvolutionSearchCV(algorithm='nsga2') or "
                "sampler='nsga2'), 'tpe', 'gp' or 'random'."
            )
        if sampler == "gp" and _optuna_version() < (4, 4):
            raise ValueError(
                f"objectives={names} with sampler='gp' needs Optuna >= 4.4 (multi-objective "
                f"GPSampler); Optuna {optuna.__version__} is installed. Use sampler='tpe' or "
                "'nsga2', or upgrade Optuna."
            )
        return costs

    def _default_study_name(self) -> str:
        return f"{type(final_estimator(self.estimator)).__name__}-{type(self).__name__}"

    # -- fit ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, groups: Any = None, **fit_params: Any) -> BaseSearchCV:
        """Run (or resume) the search, then refit the best configuration on all the data.

        Args:
            X: training data.
            y: targets.
            groups: group labels for group-aware ``cv`` splitters.
            **fit_params: passed to every ``estimator.fit`` (``epochs``, ``callbacks``,
                ``validation_data``...; sample-aligned arrays are split with the folds).
                ``sample_weight`` also weights the scores of the scorers that accept
                it. With metadata routing enabled, each parameter goes where the
                estimator, the ``cv`` splitter and the scorers request it, as in
                scikit-learn (:mod:`tunefleet.sklearn.routing`).
        """
        params = fit_params if groups is None else {**fit_params, "groups": groups}
        with managed_callbacks(self), frozen_heap():  # collections scan only what it makes
            return self._fit(X, y, params)

    def _fit(self, X: Any, y: Any, params: dict[str, Any]) -> BaseSearchCV:
        check_study_name(self.study_name)
        self._seed = self._check_random_state()
        resume = check_resume(self.resume)
        scorers, primary, scorer_ = self._scorers()
        if self.error_score != "raise" and not isinstance(self.error_score, numbers.Real):
            raise ValueError(f"error_score must be 'raise' or a number, got {self.error_score!r}.")
        X, y = indexable(X, y)  # as scikit-learn: COO matrices become CSR
        routed = route_fit_params(self, X, scorers, params)
        fit_params = routed.fit
        hooks = SearchCallbacks(self, X, y, params.get("sample_weight"))
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, y, **routed.split)]
        n_splits = len(splits)
        if n_splits == 0:
            raise ValueError(
                "No fits were performed. Was the CV iterator empty? Were there no candidates?"
            )
        expected = cv.get_n_splits(X, y, **routed.split)
        if expected != n_splits:
            raise ValueError(
                "cv.split and cv.get_n_splits return inconsistent results. Expected "
                f"{expected} splits, got {n_splits}"
            )
        strategy = self._whole_space(self._strategy(X, y, n_splits, fit_params))
        costs = self._objectives(strategy, scorers)
        quantizer = make_quantizer(self.estimator, self.compress)
        sampler = make_sampler(
            strategy.sampler,
            space=strategy.space,
            seed=self._seed,
            population_size=strategy.population_size,
            n_trials=strategy.n_trials,
        )
        self._check_space_names(strategy.space)
        n_jobs = self._n_workers()
        on_ray = check_backend(self.backend) == "ray"
        if on_ray:
            actor_options(self.resources_per_trial)  # refuse bad resources before any trial
        fleet_batch = self._fleet_batch(strategy, n_jobs, X, routed, bool(costs), hooks.active)
        experiment = sklearn_experiment(
            self.estimator,
            searched=strategy.space.names,
            scoring=self.scoring,
            cv=cv,
            n_splits=n_splits,
            X=X,
            y=y,
            groups=routed.groups,
        )

        storage = open_storage(self.storage)
        # fit callbacks run in this process; a worker must be able to reopen the study
        in_worker = (
            fleet_batch is None
            and not hooks.active
            and reopenable(storage)
            and self._in_worker(strategy, n_jobs)
        )
        workers = None
        if on_ray:
            workers = "backend='ray' runs Ray actors"
        elif n_jobs > 1 or in_worker:
            workers = f"n_jobs={self.n_jobs} runs worker processes"
        study_name = self.study_name or self._default_study_name()
        with reopenable_by_workers(storage, workers) as run_storage:
            study, created = open_study(
                run_storage,
                study_name,
                sampler=sampler,
                pruner=strategy.pruner,
                fingerprint=strategy.space.fingerprint(),
                directions=["maximize"] + ["minimize"] * len(costs),
                objectives=[c.name for c in costs],
                experiment=experiment,
                resume=resume,
            )
            study.set_user_attr(STRATEGY_ATTR, strategy.describe())
            if costs:
                with warnings.catch_warnings():  # experimental in Optuna, used by reports
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.set_metric_names([primary, *(c.name for c in costs)])
            grid_points = strategy.grid_points()
            recover_interrupted(study, grid_points, retry_configurations=True)
            if grid_points is not None:
                enqueue_grid(study, grid_points, created)
            objective = CrossValidation(
                estimator=self.estimator,
                space=strategy.space,
                X=X,
                y=y,
                splits=splits,
                scorers=scorers,
                primary=primary,
                fit_params=fit_params,
                error_score=self.error_score,
                return_train_score=self.return_train_score,
                report=prunes(strategy.pruner),
                resource=strategy.resource,
                costs=tuple(costs),
                compress=quantizer,
                open_metrics=self._open_metrics(),
                refit=self.refit,
                score_params=routed.score,
                verbose=self.verbose,
                fit_hook=hooks.fold_hook(n_jobs == 1 and not on_ray and fleet_batch is None),
            )
            total = len(grid_points) if grid_points is not None else strategy.n_trials
            assert total is not None
            with hooks.search_task(total * n_splits if strategy.resource is None else None):
                self._run(
                    study,
                    objective,
                    strategy,
                    grid_points,
                    total,
                    n_jobs,
                    n_splits,
                    fleet_batch,
                    in_worker,
                )
            if run_storage is not storage:
                study = copy_to_memory(study_name, run_storage, sampler)

        self.study_ = study
        self.space_ = strategy.space
        self.multimetric_ = len(scorers) > 1 or not (
            self.scoring is None or isinstance(self.scoring, str) or callable(self.scoring)
        )
        self.scorer_ = scorer_
        self.n_splits_ = n_splits
        self._finish(study, strategy, scorers, primary, costs, X, y, fit_params, hooks)
        hooks.end()
        return self

    def _fleet_batch(
        self,
        strategy: Strategy,
        n_jobs: int,
        X: Any,
        routed: RoutedParams,
        costs: bool = False,
        callbacks: bool = False,
    ) -> int | None:
        """How many trials to train at once as fleets, or ``None`` for one by one.

        ``costs``: the search has objectives (a multi-objective study); ``callbacks``:
        scikit-learn callbacks are set on the search.
        """
        reason = RAY_ACTORS if self.backend == "ray" else None
        if reason is None and self.fleet is not False and self.fleet is not None:
            reason = fleet_unsupported_reason(
                self.estimator, routed.fit, self.return_train_score, X
            )
        if reason is None and any(routed.score.values()):
            reason = "parameters routed to the scorers (such as sample_weight) score one by one"
        if reason is None and self._open_metrics() and not isinstance(self.scoring, _BaseScorer):
            reason = (
                "a callable scoring may return a dict of scores, which fleets do not record; "
                "make_scorer(...) keeps fleets"
            )
        if reason is None and callbacks:
            reason = "the callbacks set on the search hook each fit"
        if reason is None and strategy.resource is not None:
            reason = f"Hyperband over {strategy.resource.kind} refits per rung"
        if reason is None and (costs or self.compress is not None):
            reason = "objectives= and compress= measure or quantize each fold's own Keras model"
        return fleet_size(
            self.fleet,
            reason=reason,
            strategy="grid" if strategy.grid else strategy.sampler,
            n_trials=strategy.n_trials,
            who=type(self).__name__,
            level=logging.INFO if reports_epochs(self.estimator) else logging.DEBUG,
            n_workers=n_jobs,
            default=strategy.fleet_size,
        )

    def _n_workers(self) -> int:
        return n_workers(self.n_jobs)

    def _in_worker(self, strategy: Strategy, n_jobs: int) -> bool:
        """Whether this search's Keras trials run in a replaced worker process (TensorFlow).

        See :func:`tunefleet.dispatch.runs_in_worker_process`; only Keras models keep
        TensorFlow's per-model memory, so other estimators always train here.
        """
        if not getattr(final_estimator(self.estimator), "_reports_epochs", False):
            return False
        points = strategy.grid_points()
        n_trials = len(points) if points is not None else strategy.n_trials
        return runs_in_worker_process(n_jobs, n_trials, self.backend)

    def _run(
        self,
        study: optuna.Study,
        objective: CrossValidation,
        strategy: Strategy,
        grid_points: list[dict[str, Any]] | None,
        total: int,
        n_jobs: int,
        n_splits: int,
        fleet_batch: int | None = None,
        in_worker: bool = False,
    ) -> None:
        budget = Budget(strategy.n_trials, grid=strategy.grid)
        remaining = budget.remaining(study)
        done = total - remaining
        if self.verbose > 0 and remaining <= 0:
            print(f"Nothing to fit: study {study.study_name!r} already holds {done} candidates")
        elif self.verbose > 0:
            resumed = f" ({done} already stored in study {study.study_name!r})" if done else ""
            print(
                f"Fitting {n_splits} folds for each of {remaining} candidates, totalling "
                f"{remaining * n_splits} fits{resumed}"
            )
        if remaining <= 0:
            return
        with SearchProgress(
            total, done=done, description=type(self).__name__, enabled=self.progress
        ) as bar:

            def refresh(trial: Any = None) -> None:
                if self.verbose > 1 and trial is not None:
                    value = trial.values[0] if len(trial.values or ()) == 1 else trial.values
                    print(
                        f"[trial {trial.number}] {trial.state.name} value={value} params={trial.params}"
                    )
                if bar.enabled:
                    finished = finished_trials(study.get_trials(deepcopy=False))
                    values = [t.values[0] for t in finished if t.state.name == "COMPLETE"]
                    bar.update(done=len(finished), best=max(values) if values else None)

            watch = refresh if bar.enabled or self.verbose > 1 else None
            fleet = FleetCrossValidation(objective) if fleet_batch is not None else None
            on_ray = self.backend == "ray"
            executor = choose_executor(
                objective,
                n_workers=self.n_jobs if on_ray else n_jobs,
                worker_process=in_worker,
                batch_size=fleet_batch,
                run_batch=None if fleet is None else fleet.run_batch,
                sampler=strategy.sampler,
                space=strategy.space,
                seed=self._seed,
                pruner=strategy.pruner,
                population_size=strategy.population_size,
                backend=self.backend,
                resources_per_trial=self.resources_per_trial,
                ray_address=self.ray_address,
            )
            try:
                executor.run(study, budget, grid_points=grid_points, on_trial_end=watch, poll=watch)
            finally:
                if fleet is not None:
                    # Each batch releases the previous one's memory when it starts; the last
                    # batch's (its models, the trainer's kept group programs, JAX's caches
                    # within their budget, the allocator's freed pages: several hundred MiB
                    # after 60 trials) is released here, not left behind by the search.
                    from tunefleet.keras.memory import release_memory

                    release_memory(trim=True)
            if fleet is not None:
                self.fleet_stats_ = dict(fleet.stats)

    def _finish(
        self,
        study: optuna.Study,
        strategy: Strategy,
        scorers: dict[str, Any],
        primary: str,
        costs: list[Cost],
        X: Any,
        y: Any,
        fit_params: dict[str, Any],
        hooks: SearchCallbacks,
    ) -> None:
        trials = finished_trials(study.get_trials(deepcopy=False))
        if not trials:
            raise RuntimeError(f"study {study.study_name!r} holds no finished trials.")
        self._trials = trials
        self._check_failed_fits(trials)
        metrics, primary = self._result_metrics(trials, scorers, primary)
        self._primary = primary
        self.cv_results_ = cv_results(
            trials,
            strategy.space,
            metrics=metrics,
            n_splits=self.n_splits_,
            return_train_score=self.return_train_score,
            error_score=self.error_score,
            with_resource=strategy.resource is not None,
            costs=[c.name for c in costs],
        )
        if costs:
            self.best_trials_ = pareto_trials(
                self.cv_results_, study.best_trials, primary=primary, costs=[c.name for c in costs]
            )
        _warn_non_finite(self.cv_results_, metrics, self.return_train_score)
        refit = self.refit
        if refit is not False or not self.multimetric_:
            if callable(refit):
                index = refit(self.cv_results_)
                if not isinstance(index, numbers.Integral):
                    raise TypeError("best_index_ returned is not an integer")
                if index < 0 or index >= len(trials):
                    raise IndexError("best_index_ index out of range")
                self.best_index_ = int(index)
            else:
                self.best_index_ = int(self.cv_results_[f"rank_test_{primary}"].argmin())
            self.best_params_ = self.cv_results_["params"][self.best_index_]
            if not callable(refit):
                self.best_score_ = float(self.cv_results_[f"mean_test_{primary}"][self.best_index_])
        if refit:
            self.best_estimator_ = with_params(self.estimator, self.best_params_)
            start = time.perf_counter()
            with hooks.refit(self.best_estimator_):
                if y is not None:
                    self.best_estimator_.fit(X, y, **fit_params)
                else:
                    self.best_estimator_.fit(X, **fit_params)
            if self.compress is not None:
                Quantizer(self.compress)(self.best_estimator_)
            self.refit_time_ = time.perf_counter() - start
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_

    def _check_failed_fits(self, trials: list[Any]) -> None:
        """Warn about failed fits, or raise when all failed, as scikit-learn words it.

        Fits are counted as scikit-learn counts them (each trial's folds); a trial that
        failed as a whole (it could not run) counts all its folds as failed. Trials told
        failed because their mean score was not finite ran: they are not failures.
        """
        n_fits = 0
        failed: list[str] = []
        failed_trials = 0
        for trial in trials:
            record = trial.user_attrs.get(CV_ATTR)
            n = len(record.get("fit_time", ())) if record else self.n_splits_
            n_fits += n
            error = trial.user_attrs.get(ERROR_ATTR)
            if error is None or is_non_finite_error(error):
                continue
            failed_trials += 1
            failed.extend((record or {}).get("errors") or [error] * n)
        if not failed:
            return
        groups = Counter(failed)
        details = "\n".join(
            f"{'-' * 80}\n{n} fits failed with the following error:\n{error}"
            for error, n in groups.items()
        )
        in_trials = f"in {failed_trials} of {len(trials)} trials"
        if len(failed) >= n_fits:
            raise ValueError(
                f"\nAll the {n_fits} fits failed ({in_trials}).\n"
                "It is very likely that your model is misconfigured.\n"
                "You can try to debug the error by setting error_score='raise'.\n\n"
                f"Below are more details about the failures:\n{details}"
            )
        warnings.warn(
            f"\n{len(failed)} fits failed out of a total of {n_fits} ({in_trials}).\n"
            "The score on these train-test partitions for these parameters will be set to "
            f"{self.error_score}.\n"
            "If these failures are not expected, you can try to debug them by setting "
            "error_score='raise'.\n\n"
            f"Below are more details about the failures:\n{details}",
            FitFailedWarning,
            stacklevel=4,
        )

    # -- extras -------------------------------------------------------------------------
    def report(self, path: str | os.PathLike[str]) -> Any:
        """Write the search's self-contained HTML report (plots, trials table) to ``path``."""
        from tunefleet.report import write_study_report

        return write_study_report(self.study_, path, space=self.space_)

    def plot_history(self, path: str | os.PathLike[str]) -> Any:
        """Save the optimization history (score per trial, best so far) as an image."""
        from tunefleet.report import plot_history

        return plot_history(self.study_, path, space=self.space_)

    def plot_importances(self, path: str | os.PathLike[str]) -> Any:
        """Save Optuna's parameter importances as an image."""
        from tunefleet.report import plot_importances

        return plot_importances(self.study_, path, space=self.space_)

    def trials_dataframe(self) -> Any:
        """All trials of the study as a pandas DataFrame (one row per trial).

        Columns (those of every face, see :func:`tunefleet.records.trials_dataframe`):
        ``number``, ``state``, ``value`` (the mean test score), a ``value_<name>`` column
        per cost of a multi-objective search, ``std`` (of the test score over folds),
        ``duration`` (seconds), one ``param_<name>`` column per searched parameter
        (original objects), ``error``, ``status`` (why a trial does not count, if so).
        """
        return records.trials_dataframe(
            self.study_, decode=self.space_.decode, metric=getattr(self, "_primary", None)
        )


def _warn_non_finite(results: dict[str, Any], metrics: list[str], train: bool) -> None:
    """scikit-learn's warning for candidates whose mean test (or train) score is not finite.

    Such candidates stay in ``cv_results_``, ranked last (NaN) as in scikit-learn; their
    trials are told to Optuna as failed (it stores no NaN), see ``docs/conformance.md``.
    """
    for metric in metrics:
        for dataset in ("test", "train") if train else ("test",):
            means = results.get(f"mean_{dataset}_{metric}")
            if means is not None and not np.all(np.isfinite(means)):
                warnings.warn(
                    f"One or more of the {dataset} scores are non-finite: {means}",
                    category=UserWarning,
                    stacklevel=4,
                )


def _optuna_version() -> tuple[int, int]:
    major, minor = optuna.__version__.split(".")[:2]
    return int(major), int(minor)


def search_pruner(pruner: Any, default: Any = None) -> optuna.pruners.BasePruner:
    """The Optuna pruner for a search's ``pruner`` setting (``default`` when ``None``)."""
    return make_pruner(default if pruner is None else pruner)
