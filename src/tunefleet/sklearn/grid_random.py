"""GridSearchCV and RandomizedSearchCV, and the base of every sampled search."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import optuna

from tunefleet.sklearn.search import BaseSearchCV, Strategy, search_pruner
from tunefleet.space import SearchSpace, parse_distributions, parse_grid
from tunefleet.strategies import make_sampler


class GridSearchCV(BaseSearchCV):
    """Exhaustive search over a grid, as scikit-learn's, stored in an Optuna study.

    Every grid point runs exactly once, also with ``n_jobs > 1`` and across resumed runs
    (points are queued in the study and popped by workers).

    Args:
        estimator: a scikit-learn estimator (or a tunefleet Keras wrapper).
        param_grid: dict (or list of dicts) of parameter name -> list of values; values
            may be any Python objects (estimators, tuples, ``None``).
        storage: ``None`` (in memory), an Optuna storage URL such as
            ``"sqlite:///tune.db"``, or an Optuna storage.
        study_name: the study to create or resume.
        pruner: ``None``, ``"median"``, ``"hyperband"`` or an Optuna pruner to stop bad
            trials early.
        progress: show a progress bar (``None``: on a terminal only).
        fleet: train many trials at once in one compiled JAX program (tunefleet Keras
            wrappers on the JAX backend): ``"auto"`` (when possible; otherwise one by
            one, and the reason is logged once), ``True``, ``False``, or the number of
            trials to ask for at once. Not with ``objectives`` or ``compress``.
        objectives: costs to minimize while the score is maximized, in a multi-objective
            study: a list of ``"n_params"``, ``"size_bytes"``, ``"latency"`` and callables
            ``cost(estimator, X_val, y_val) -> float`` (named by ``__name__``), measured
            on each fold's fitted estimator and averaged (see :mod:`tunefleet.objectives`).
            Adds ``mean_test_<cost>`` / ``std_test_<cost>`` / ``split<k>_test_<cost>`` and
            ``pareto_optimal`` to ``cv_results_``, and ``best_trials_`` (the Pareto front,
            :class:`tunefleet.results.ParetoTrial` rows, best score first). The refit
            still picks the best score unless ``refit`` is a callable such as
            :func:`tunefleet.smallest_within`. No pruner, no CMA-ES, no per-epoch reports.
        compress: ``None``, ``"int8"``, ``"int4"`` or ``"float8"``: quantize the Keras
            model of each fold's fitted tunefleet Keras wrapper (as
            :func:`tunefleet.keras.quantize` does) before it is scored and its costs are
            measured; ``best_estimator_`` is quantized the same way after the refit
            (``refit_time_`` includes it).
        backend: ``"local"`` (this process, fleets, ``n_jobs`` worker processes) or
            ``"ray"``: trials run in Ray actors on a cluster (``pip install
            "tunefleet[ray]"``), ``n_jobs`` of them (``None``/-1: as many as the cluster
            holds), each with ``resources_per_trial`` (default ``{"cpu": 1}``; ``"gpu"``,
            ``"memory"`` and custom resources too), on the cluster at ``ray_address`` (or
            ``RAY_ADDRESS``; otherwise a local one is started). ``storage`` must be a URL
            every node reaches (see ``docs/cluster.md``).

    ``scoring``, ``n_jobs``, ``refit``, ``cv``, ``verbose``, ``pre_dispatch``,
    ``error_score`` and ``return_train_score`` are as in scikit-learn.

    Example:

    >>> from tunefleet import GridSearchCV
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.svm import SVC
    >>> search = GridSearchCV(SVC(), {"C": [0.1, 1, 10]}, cv=3).fit(*load_iris(return_X_y=True))
    >>> sorted(search.best_params_)
    ['C']
    """

    def __init__(
        self,
        estimator: Any,
        param_grid: Any,
        *,
        scoring: Any = None,
        n_jobs: int | None = None,
        refit: bool | str | Any = True,
        cv: Any = None,
        verbose: int = 0,
        pre_dispatch: str | int = "2*n_jobs",
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
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
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
        self.param_grid = param_grid

    def _strategy(self, X: Any, y: Any, n_splits: int, fit_params: dict[str, Any]) -> Strategy:
        space = parse_grid(self.param_grid, source="param_grid")
        return Strategy(space, "grid", search_pruner(self.pruner), n_trials=None)


class SampledSearchCV(BaseSearchCV):
    """Shared constructor of the searches that draw ``n_iter`` configurations."""

    _default_sampler: str = "random"

    def __init__(
        self,
        estimator: Any,
        param_distributions: Any,
        *,
        n_iter: int = 10,
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
        self.param_distributions = param_distributions
        self.n_iter = n_iter

    def _space(self) -> SearchSpace:
        return parse_distributions(self.param_distributions, source="param_distributions")

    def _whole_space(self, strategy: Strategy) -> Strategy:
        """Run a space of lists that ``n_iter`` covers as a grid, each point once.

        As scikit-learn's ``ParameterSampler``, which draws a space of lists without
        replacement: an ``n_iter`` larger than the space runs its points (with
        scikit-learn's warning), in ``ParameterGrid``'s order (sorted names, the last
        varying fastest). The points are queued as a grid, so that a resumed or parallel
        search runs each once; a sampler has nothing to learn where every point runs.
        """
        n_points, n_iter = strategy.space.n_points, strategy.n_trials
        if n_points is None or n_iter is None or n_iter < n_points:
            return strategy
        # the sampler given is refused as it would be on a larger space (a bad sampler=)
        make_sampler(strategy.sampler, space=strategy.space, seed=None, n_trials=n_iter)
        if n_points < n_iter:
            warnings.warn(
                f"The total space of parameters {n_points} is smaller than n_iter={n_iter}. "
                f"Running {n_points} iterations. For exhaustive searches, use GridSearchCV.",
                UserWarning,
                stacklevel=4,
            )
        return replace(
            strategy,
            sampler="grid",
            n_trials=None,
            points=strategy.space.grid(sorted_names=True),
            label=strategy.describe(),
        )


class RandomizedSearchCV(SampledSearchCV):
    """Random search over distributions, as scikit-learn's, stored in an Optuna study.

    Args:
        estimator: a scikit-learn estimator (or a tunefleet Keras wrapper).
        param_distributions: dict (or list of dicts) of name -> list, ``range``,
            ``np.arange``, frozen ``scipy.stats`` distribution, or tunefleet
            ``Int``/``Float``/``Categorical``.
        n_iter: number of trials in total (a resumed search counts stored trials).

    ``scoring``, ``n_jobs``, ``refit``, ``cv``, ``verbose``, ``pre_dispatch``,
    ``random_state``, ``error_score`` and ``return_train_score`` are as in scikit-learn;
    ``storage``, ``study_name``, ``pruner``, ``progress``, ``fleet``, ``objectives``,
    ``compress``, ``resume``, ``backend``, ``resources_per_trial`` and ``ray_address`` as
    in :class:`GridSearchCV`.

    Example:

    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.svm import SVC
    >>> from tunefleet import RandomizedSearchCV
    >>> search = RandomizedSearchCV(
    ...     SVC(), {"C": loguniform(1e-2, 1e2), "kernel": ["linear", "rbf"]}, n_iter=5,
    ...     random_state=0).fit(*load_iris(return_X_y=True))
    >>> len(search.cv_results_["params"]), sorted(search.best_params_)
    (5, ['C', 'kernel'])
    """

    def _strategy(self, X: Any, y: Any, n_splits: int, fit_params: dict[str, Any]) -> Strategy:
        n_iter = self._check_n_iter()
        return Strategy(self._space(), "random", search_pruner(self.pruner), n_trials=n_iter)
