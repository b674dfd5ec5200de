"""Searches beyond scikit-learn's: Bayesian, Hyperband and evolutionary, same API."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import optuna
from sklearn.base import is_classifier

from tunefleet.sklearn.grid_random import SampledSearchCV
from tunefleet.sklearn.search import Strategy, search_pruner
from tunefleet.strategies import ReportedRungsPruner, describe, make_pruner, rung_resources
from tunefleet.trial import Resource, final_estimator, reports_epochs

#: HyperbandSearchCV's schedules (see its ``schedule`` argument).
SCHEDULES = ("hyperband", "halving")


class BayesSearchCV(SampledSearchCV):
    """Bayesian optimization (Optuna's TPE by default) with scikit-learn's search API.

    Model-based: each trial's configuration is chosen from the scores of the trials
    before it. With ``n_jobs > 1`` the constant-liar strategy keeps parallel workers from
    proposing the same point.

    Args:
        estimator: a scikit-learn estimator (or a tunefleet Keras wrapper).
        param_distributions: as for :class:`RandomizedSearchCV`.
        n_iter: number of trials in total; the first quarter (3 to 10) are random.
        sampler: ``"tpe"`` (default), ``"gp"`` (Gaussian process; needs PyTorch),
            ``"nsga2"`` or an Optuna sampler. All but ``"cmaes"`` handle ``objectives``.

    The other arguments are those of :class:`RandomizedSearchCV`.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.svm import SVC
    >>> from tunefleet import BayesSearchCV, Float
    >>> search = BayesSearchCV(SVC(), {"C": Float(1e-2, 1e2, log=True)}, n_iter=8,
    ...                        random_state=0).fit(*load_iris(return_X_y=True))
    >>> search.best_score_ > 0.9
    True
    """

    def __init__(
        self,
        estimator: Any,
        param_distributions: Any,
        *,
        n_iter: int = 10,
        sampler: str | optuna.samplers.BaseSampler = "tpe",
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
            estimator,
            param_distributions,
            n_iter=n_iter,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            random_state=random_state,
            error_score=error_score,
            return_train_score=return_train_score,
            storage=storage,
            study_name=study_name,
            pruner=pruner,
            progress=progress,
            fleet=fleet,
            objectives=objectives,
            compress=compress,
            resume=resume,
            backend=backend,
            resources_per_trial=resources_per_trial,
            ray_address=ray_address,
        )
        self.sampler = sampler

    def _strategy(self, X: Any, y: Any, n_splits: int, fit_params: dict[str, Any]) -> Strategy:
        n_iter = self._check_n_iter()
        if self.sampler in ("grid", "random"):
            raise ValueError(
                f"sampler={self.sampler!r} is not model-based; use 'tpe', 'gp' or an Optuna sampler "
                "(or GridSearchCV / RandomizedSearchCV)."
            )
        return Strategy(self._space(), self.sampler, search_pruner(self.pruner), n_trials=n_iter)


class HyperbandSearchCV(SampledSearchCV):
    """Hyperband: many configurations on a small budget, the best ones on the full budget.

    Successive halving over ``n_iter`` trials, asynchronous: a trial is compared at each
    rung with the trials that reached it before (``schedule="hyperband"``, the default,
    through Optuna's ``HyperbandPruner``; ``schedule="halving"`` in one bracket, where
    the trials a fleet trains together are also compared with each other). The Keras
    Tuner face's :class:`~tunefleet.Hyperband` plans synchronous brackets instead;
    :mod:`tunefleet.strategies` says where the two differ. The budget ("resource") is:

    * ``"epochs"`` for tunefleet Keras wrappers: the validation score is reported after
      every epoch of every fold, and a pruned trial stops training at once;
    * ``"n_samples"`` for other estimators: a trial is scored on growing subsets of
      each training fold, as scikit-learn's halving searches do;
    * or the name of an integer parameter such as ``"n_estimators"``.

    Args:
        estimator: a scikit-learn estimator (or a tunefleet Keras wrapper).
        param_distributions: as for :class:`RandomizedSearchCV`.
        n_iter: number of trials in total (pruned ones included).
        resource: ``"auto"`` (epochs for Keras wrappers, else samples), ``"epochs"``,
            ``"n_samples"``, or an integer parameter name.
        min_resource: smallest budget a trial gets (default: 1 epoch; for samples
            ``2 * n_splits`` (times the number of classes for classifiers); for a
            parameter ``max_resource // factor**3``).
        max_resource: the full budget (default: all epochs; the smallest training fold;
            the estimator's current value of the parameter).
        factor: the reduction factor between rungs (keep the best ``1/factor``).
        schedule: ``"hyperband"`` (default): Hyperband's brackets, through Optuna's
            ``HyperbandPruner``. ``"halving"``: successive halving in one bracket, the
            most aggressive: every trial is compared at every rung
            (:class:`~tunefleet.strategies.ReportedRungsPruner`). As fleets, trials
            reaching a rung together are compared with each other, so each fleet's
            first epoch is a synchronous round; a fleet then holds ``factor`` trials
            (unless ``fleet=`` says), and rows that pruned trials free are refilled with
            new ones. On the digits MLP benchmark, as fleets, it reached the target
            accuracy in less than half the epochs of Optuna's TPE + ``HyperbandPruner``
            (``docs/strategies.md``).
        sampler: ``"random"`` (classic Hyperband, default) or ``"tpe"`` (BOHB-like), or
            an Optuna sampler.
        objectives: not supported (Optuna cannot prune multi-objective studies).

    The other arguments are those of :class:`RandomizedSearchCV`.

    Example:

    >>> from tunefleet import HyperbandSearchCV
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> search = HyperbandSearchCV(RandomForestClassifier(n_estimators=27, random_state=0),
    ...     {"max_depth": [2, 4, 8, None]}, resource="n_estimators", n_iter=6, cv=3,
    ...     random_state=0).fit(X, y)
    >>> int(search.cv_results_["n_resources"].max())
    27
    """

    def __init__(
        self,
        estimator: Any,
        param_distributions: Any,
        *,
        n_iter: int = 10,
        resource: str = "auto",
        min_resource: int | None = None,
        max_resource: int | None = None,
        factor: int = 3,
        schedule: str = "hyperband",
        sampler: str | optuna.samplers.BaseSampler = "random",
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
            estimator,
            param_distributions,
            n_iter=n_iter,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            random_state=random_state,
            error_score=error_score,
            return_train_score=return_train_score,
            storage=storage,
            study_name=study_name,
            pruner=pruner,
            progress=progress,
            fleet=fleet,
            objectives=objectives,
            compress=compress,
            resume=resume,
            backend=backend,
            resources_per_trial=resources_per_trial,
            ray_address=ray_address,
        )
        self.resource = resource
        self.min_resource = min_resource
        self.max_resource = max_resource
        self.factor = factor
        self.schedule = schedule
        self.sampler = sampler

    def _strategy(self, X: Any, y: Any, n_splits: int, fit_params: dict[str, Any]) -> Strategy:
        if self.objectives:
            raise ValueError(
                f"objectives={self.objectives!r} cannot be used with HyperbandSearchCV: "
                "Hyperband prunes trials, and Optuna does not prune multi-objective studies. "
                "Use RandomizedSearchCV, BayesSearchCV or EvolutionSearchCV for an "
                "accuracy-versus-size search."
            )
        n_iter = self._check_n_iter()
        factor = self.factor
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
            raise ValueError(f"factor must be an integer >= 2, got {factor!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule={self.schedule!r} is not known; expected one of {list(SCHEDULES)}."
            )
        if self.pruner is not None:
            raise ValueError(
                "pruner cannot be set on HyperbandSearchCV: it prunes by its schedule; use "
                "schedule/factor/min_resource/max_resource to shape it."
            )
        for name in ("min_resource", "max_resource"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
        resource = self.resource
        if resource == "auto":
            resource = "epochs" if reports_epochs(self.estimator) else "n_samples"
        space = self._space()
        if resource == "epochs":
            if not reports_epochs(self.estimator):
                raise ValueError(
                    f"resource='epochs' needs a tunefleet Keras wrapper; "
                    f"{type(final_estimator(self.estimator)).__name__} does not train in epochs. "
                    "Use resource='n_samples' or an integer parameter name."
                )
            # Steps are fold * epochs + epoch: the full budget is known before any trial ends
            # (Optuna's "auto" would wait for a first complete trial, which a fleet lacks).
            epochs = fit_params.get("epochs", self.estimator.get_params().get("epochs"))
            if isinstance(epochs, numbers.Integral):
                default_max: int | str = n_splits * int(epochs)
            elif self.schedule == "halving" and self.max_resource is None:
                raise ValueError(
                    f"schedule='halving' needs the number of epochs: set max_resource, "
                    f"the estimator's epochs={epochs!r} is not an integer."
                )
            else:
                default_max = "auto"
            low, high = self.min_resource or 1, self.max_resource or default_max
            return self._pruned_strategy(space, n_iter, low, high)
        low, high = self._resource_bounds(resource, X, y, n_splits)
        return self._pruned_strategy(space, n_iter, low, high, resource)

    def _pruned_strategy(
        self, space: Any, n_iter: int, low: int, high: int | str, resource: str | None = None
    ) -> Strategy:
        """The strategy of :attr:`schedule` over ``low`` to ``high`` of ``resource``.

        ``resource`` is ``None`` for epochs, which a trial reports from step 0 (so ``k``
        epochs are step ``k - 1``); other resources report at their amount.
        """
        plan = None
        if resource is not None:
            assert isinstance(high, int)
            plan = Resource(resource, rung_resources(low, high, self.factor))
        if self.schedule == "hyperband":
            pruner = make_pruner(
                "hyperband", min_resource=low, max_resource=high, reduction_factor=self.factor
            )
            return Strategy(space, self.sampler, pruner, n_trials=n_iter, resource=plan)
        assert isinstance(high, int)  # an unknown number of epochs is refused for "halving"
        steps = plan.rungs if plan else [r - 1 for r in rung_resources(low, high, self.factor)]
        pruner = ReportedRungsPruner(steps[:-1], self.factor)
        label = describe(self.sampler, pruner, "halving")
        return Strategy(
            space, self.sampler, pruner, n_trials=n_iter, resource=plan, label=label,
            fleet_size=self.factor,
        )  # fmt: skip

    def _resource_bounds(self, resource: str, X: Any, y: Any, n_splits: int) -> tuple[int, int]:
        factor = self.factor
        if resource == "n_samples":
            n_samples = len(y) if y is not None else X.shape[0]
            high = self.max_resource or int(n_samples * (n_splits - 1) / n_splits)
            default_low = 2 * n_splits * (len(np.unique(y)) if is_classifier(self.estimator) else 1)
            low = self.min_resource or min(default_low, high)
        else:
            params = self.estimator.get_params()
            if resource not in params:
                raise ValueError(
                    f"resource={resource!r} is not a parameter of "
                    f"{type(self.estimator).__name__}; expected 'auto', 'epochs', 'n_samples' or "
                    f"one of its integer parameters: {sorted(params)}."
                )
            names = self._space().names
            if resource in names:
                raise ValueError(
                    f"resource={resource!r} cannot also be searched in param_distributions."
                )
            current = params[resource]
            high = self.max_resource or current
            if isinstance(high, bool) or not isinstance(high, int) or high < 1:
                raise ValueError(
                    f"resource={resource!r}: set max_resource, the estimator's {resource}={current!r} "
                    "is not a positive integer."
                )
            low = self.min_resource or max(1, high // factor**3)
        if low > high:
            raise ValueError(f"min_resource ({low}) > max_resource ({high}); expected min <= max.")
        return int(low), int(high)


class EvolutionSearchCV(SampledSearchCV):
    """Evolutionary search: CMA-ES on numeric spaces, a genetic algorithm otherwise.

    Args:
        estimator: a scikit-learn estimator (or a tunefleet Keras wrapper).
        param_distributions: as for :class:`RandomizedSearchCV`.
        n_iter: number of trials in total.
        algorithm: ``"auto"`` (CMA-ES when every parameter is numeric and there are no
            ``objectives``, else NSGA-II as a genetic algorithm), ``"cmaes"`` or
            ``"nsga2"`` (multi-objective: the Pareto front evolves).
        population_size: individuals per generation (default: the algorithm's).

    The other arguments are those of :class:`RandomizedSearchCV`.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.svm import SVC
    >>> from tunefleet import EvolutionSearchCV, Float
    >>> search = EvolutionSearchCV(SVC(), {"C": Float(1e-2, 1e2, log=True),
    ...     "gamma": Float(1e-3, 1e1, log=True)}, n_iter=8, random_state=0
    ...     ).fit(*load_iris(return_X_y=True))
    >>> search.best_score_ > 0.9
    True
    """

    def __init__(
        self,
        estimator: Any,
        param_distributions: Any,
        *,
        n_iter: int = 10,
        algorithm: str = "auto",
        population_size: int | None = None,
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
            estimator,
            param_distributions,
            n_iter=n_iter,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            random_state=random_state,
            error_score=error_score,
            return_train_score=return_train_score,
            storage=storage,
            study_name=study_name,
            pruner=pruner,
            progress=progress,
            fleet=fleet,
            objectives=objectives,
            compress=compress,
            resume=resume,
            backend=backend,
            resources_per_trial=resources_per_trial,
            ray_address=ray_address,
        )
        self.algorithm = algorithm
        self.population_size = population_size

    def _strategy(self, X: Any, y: Any, n_splits: int, fit_params: dict[str, Any]) -> Strategy:
        n_iter = self._check_n_iter()
        space = self._space()
        algorithm = self.algorithm
        if algorithm not in ("auto", "cmaes", "nsga2"):
            raise ValueError(
                f"algorithm={algorithm!r} is not known; expected 'auto', 'cmaes' or 'nsga2'."
            )
        if algorithm == "auto":
            algorithm = "cmaes" if space.is_numeric and not self.objectives else "nsga2"
        size = self.population_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 2):
            raise ValueError(f"population_size must be an integer >= 2 or None, got {size!r}.")
        return Strategy(
            space, algorithm, search_pruner(self.pruner), n_trials=n_iter, population_size=size
        )
