"""``BaseTuner``: what Keras Tuner's tuners share, on tunefleet's engine.

A tuner translates Keras Tuner's vocabulary for the engine and back:

* ``build_model(hp)`` and the ``hp.*`` declarations become a define-by-run trial
  function (:class:`~tunefleet.tuners.trial_runner.TrialRunner`) run where
  :mod:`tunefleet.dispatch` says, as for every face: in this process, as fleets, or in
  worker processes (``n_jobs`` read as scikit-learn and joblib do);
* ``directory``/``project_name`` become a SQLite study (``<project>/study.db``) and a
  folder of saved ``.keras`` models (``<project>/trial_NNNN/model.keras``); rerunning
  resumes the study, ``overwrite=True`` starts over;
* ``objective`` becomes the study's direction; each trial's value is the best epoch's
  value of the objective (averaged over ``cv`` folds and ``executions_per_trial``), and
  every epoch's value is reported to the study's pruner;
* results (``get_best_trials``, ``get_best_hyperparameters``, ``get_best_models``,
  ``results_summary``) are read back from the storage.

The tuners themselves: :mod:`~tunefleet.tuners.random_search`,
:mod:`~tunefleet.tuners.grid_search`, :mod:`~tunefleet.tuners.bayesian`,
:mod:`~tunefleet.tuners.hyperband`.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import shutil
import warnings
from typing import Any, ClassVar

import optuna

from tunefleet import records
from tunefleet.attrs import GRID_LIMIT_ATTR, MODELS_ATTR, OBJECTIVE_ATTR, STRATEGY_ATTR
from tunefleet.dispatch import (
    RAY_ACTORS,
    check_backend,
    check_fleet,
    choose_executor,
    fleet_size,
    n_workers,
    runs_in_worker_process,
)
from tunefleet.experiment import check_resume, tuner_experiment
from tunefleet.heap import frozen_heap
from tunefleet.keras.memory import clear_session, release_memory
from tunefleet.progress import SearchProgress
from tunefleet.ray_workers import actor_options
from tunefleet.space import SearchSpace
from tunefleet.storage import open_storage, storage_url
from tunefleet.strategies import (
    DistinctSampler,
    describe,
    make_pruner,
    make_sampler,
    prunes,
)
from tunefleet.study import (
    Budget,
    check_study_name,
    enqueue_grid,
    open_study,
    recover_interrupted,
)
from tunefleet.tuners.folds import cv_splits
from tunefleet.tuners.hypermodel import as_hypermodel, defining_object
from tunefleet.tuners.hyperparameter_types import HyperParameter, from_search_argument
from tunefleet.tuners.hyperparameters import DeclaredSpace, HyperParameters
from tunefleet.tuners.models_dir import claim_models_dir, study_digest
from tunefleet.tuners.oracle import Oracle, as_objective, trial_state_counts
from tunefleet.tuners.search_watch import SearchWatch
from tunefleet.tuners.trial_runner import TrialRunner, check_model
from tunefleet.tuners.tuner_results import load_models, print_summary
from tunefleet.urls import mask_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


class BaseTuner:
    """Shared machinery of the Keras Tuner-style tuners (not meant to be used directly).

    Args:
        hypermodel: ``build_model(hp)`` returning a compiled ``keras.Model``, or a
            :class:`~tunefleet.HyperModel`.
        objective: a metric name (``"val_accuracy"``; direction inferred), an
            :class:`~tunefleet.Objective`, or ``None`` for ``"val_loss"``.
        max_trials: trials in all (a resumed search counts the stored ones).
        executions_per_trial: models trained per trial (and per fold); the objective is
            their mean.
        seed: seeds the sampler and each trial's weight initialisation.
        hyperparameters: a :class:`~tunefleet.HyperParameters` whose declarations
            override the build function's (``hp.Fixed`` to pin one).
        tune_new_entries: tune hyperparameters not in ``hyperparameters`` (else defaults).
        allow_new_entries: allow hyperparameters not in ``hyperparameters``.
        max_retries_per_trial: retries of a run whose build or fit raised.
        max_consecutive_failed_trials: stop the search after this many failed trials
            in a row.
        directory, project_name: the project folder (``directory/project_name``) holding
            the study (``study.db``, unless ``storage`` is given) and the saved models.
        overwrite: delete the stored study and models and start over.
        storage: an Optuna storage URL (``"sqlite:///tune.db"``, PostgreSQL...) or
            storage, instead of the project's SQLite file.
        study_name: the study's name (default: ``project_name``).
        cv: ``k`` (or a scikit-learn splitter): each trial trains on ``k`` folds of
            ``(x, y)``, validated on the held-out fold; the objective is the mean.
        pruner: ``None``, ``"median"``, ``"successive_halving"``, ``"hyperband"`` or an
            Optuna pruner, fed every epoch's objective value.
        strategy: the sampler (``"random"``, ``"tpe"``, ``"grid"``, ``"gp"``,
            ``"cmaes"``, ``"nsga2"`` or an Optuna sampler); each tuner has its own default.
        n_jobs: trials run at once, as in scikit-learn and joblib: ``None`` or 1 in
            this process, ``k > 1`` worker processes sharing the study (needs a database
            storage), ``-1`` one per CPU core, ``-2`` all cores but one...
        progress: show a progress bar (``None``: on a terminal only).
        optimizer, loss, metrics: if given, every model is compiled with them.
        max_model_size: trials whose model has more parameters fail.
        fleet: train many trials at once in one compiled JAX program
            (:mod:`tunefleet.fleet`): ``"auto"`` (default) when the backend is JAX and
            the search can (else one by one, saying why once), ``True`` (required),
            ``False``, or the number of trials per batch.
        resume: ``"auto"`` (default): a stored study of this name is continued only by
            the same experiment (build function, objective, ``cv``, the data's shapes
            and contents, ``optimizer``/``loss``/``metrics``, the space); another is
            refused before any trial, naming what differs, with nothing stored changed.
            ``"force"``: continue it anyway (logged as a warning and recorded in the
            study); a different space or objective is still refused.
        backend: ``"local"`` (this process, fleets, ``n_jobs`` worker processes) or
            ``"ray"``: trials run in Ray actors on a cluster (``pip install
            "tunefleet[ray]"``), ``n_jobs`` of them (``None``/-1: as many as the cluster
            holds), each with ``resources_per_trial`` (default ``{"cpu": 1}``), on the
            cluster at ``ray_address`` (or ``RAY_ADDRESS``; otherwise a local one). The
            study's storage must be reachable from every node (see ``docs/cluster.md``).

    Example:

    >>> import tempfile
    >>> import keras
    >>> from tunefleet.tuners import BaseTuner, RandomSearch
    >>> def build_model(hp):
    ...     model = keras.Sequential([keras.Input((4,)),
    ...         keras.layers.Dense(hp.Int("units", 4, 8, step=4)), keras.layers.Dense(1)])
    ...     model.compile("adam", "mse")
    ...     return model
    >>> tuner = RandomSearch(build_model, max_trials=1, directory=tempfile.mkdtemp())
    >>> isinstance(tuner, BaseTuner), os.path.basename(tuner.project_dir)
    (True, 'untitled_project')
    >>> tuner.search_space_summary()
    Search space summary
    Default search space size: 1
    units (Int)
    {'default': 4, 'conditions': [], 'min_value': 4, 'max_value': 8, 'step': 4, 'sampling': 'linear'}
    """

    _default_strategy: ClassVar[str] = "random"
    _schedule: ClassVar[str | None] = None  # a tuner's own early stopping ("hyperband")
    #: The tuner decides its number of trials itself (Hyperband): no max_trials.
    _plans_trials: ClassVar[bool] = False

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int | None = 10,
        seed: int | None = None,
        hyperparameters: HyperParameters | None = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int | None = 3,
        *,
        executions_per_trial: int = 1,
        directory: str | os.PathLike[str] | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        cv: Any = None,
        pruner: str | optuna.pruners.BasePruner | None = None,
        strategy: str | optuna.samplers.BaseSampler | None = None,
        n_jobs: int | None = None,
        progress: bool | None = None,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = None,
        max_model_size: int | None = None,
        fleet: bool | int | str = "auto",
        resume: str = "auto",
        backend: str = "local",
        resources_per_trial: dict[str, float] | None = None,
        ray_address: str | None = None,
        distribution_strategy: Any = None,
        logger: Any = None,
        tuner_id: str | None = None,
    ) -> None:
        self.hypermodel = as_hypermodel(hypermodel)
        self.objective = objective
        self.max_trials = max_trials
        self.executions_per_trial = executions_per_trial
        self.seed = seed
        self.hyperparameters = hyperparameters
        self.tune_new_entries = tune_new_entries
        self.allow_new_entries = allow_new_entries
        self.max_retries_per_trial = max_retries_per_trial
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        self.directory = directory
        self.project_name = project_name
        self.overwrite = overwrite
        self.storage = storage
        self.study_name = study_name
        self.cv = cv
        self.pruner = pruner
        self.strategy = strategy
        self.n_jobs = n_jobs
        self.progress = progress
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self.max_model_size = max_model_size
        self.fleet = fleet
        self.resume = resume
        self.backend = backend
        self.resources_per_trial = resources_per_trial
        self.ray_address = ray_address
        self.tuner_id = tuner_id
        for name, value in (("distribution_strategy", distribution_strategy), ("logger", logger)):
            if value is not None:
                warnings.warn(
                    f"{name}= is a Keras Tuner argument tunefleet does not use; it is ignored.",
                    UserWarning,
                    stacklevel=3,
                )
        self._objective = as_objective(objective)
        preset = [] if hyperparameters is None else list(hyperparameters.space)
        self._space = DeclaredSpace(
            preset, tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries
        )
        self._recorded: DeclaredSpace | None = None
        self._points: int | None = None  # distinct points of a finite random search
        self._n_trials: int | None = max_trials  # max_trials, capped at those points
        self._tuned: dict[str, HyperParameter] = {}
        self._study: optuna.Study | None = None
        self._overwritten = False
        self._last_runner: TrialRunner | None = None
        self._fleet_batch: int | None = None
        self.oracle = Oracle(self._read_study, self)
        self._check_settings()

    # -- settings ----------------------------------------------------------------------
    @property
    def project_dir(self) -> str:
        """The folder of the study's SQLite file and the saved models."""
        return os.path.join(
            os.fspath(self.directory or "."), self.project_name or "untitled_project"
        )

    def _study_name(self) -> str:
        return self.study_name or self.project_name or "untitled_project"

    def _storage_arg(self) -> str | optuna.storages.BaseStorage:
        if self.storage is not None:
            return self.storage
        return f"sqlite:///{os.path.abspath(os.path.join(self.project_dir, 'study.db'))}"

    def _strategy_name(self) -> str | optuna.samplers.BaseSampler:
        return self.strategy if self.strategy is not None else self._default_strategy

    @staticmethod
    def _check_int(name: str, value: Any, low: int, allow_none: bool = False) -> None:
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            none = " or None" if allow_none else ""
            raise ValueError(f"{name} must be an integer >= {low}{none}, got {value!r}.")

    def _check_settings(self) -> None:
        """Validate the arguments (also re-run by ``search``, after any change)."""
        self._objective = as_objective(self.objective)
        self._check_int(
            "max_trials", self.max_trials, 1, allow_none=self._grid() or self._plans_trials
        )
        self._check_int("executions_per_trial", self.executions_per_trial, 1)
        self._check_int("max_retries_per_trial", self.max_retries_per_trial, 0)
        self._check_int(
            "max_consecutive_failed_trials", self.max_consecutive_failed_trials, 1, allow_none=True
        )
        self._check_int("max_model_size", self.max_model_size, 1, allow_none=True)
        check_resume(self.resume)
        check_fleet(self.fleet)
        n_workers(self.n_jobs)
        if check_backend(self.backend) == "ray":
            actor_options(self.resources_per_trial)
            if self._plans_trials:
                raise ValueError(
                    f"backend='ray': {type(self).__name__} runs its synchronous brackets in "
                    "this process; use backend='local', or a RandomSearch/BayesianOptimization "
                    "tuner with pruner='hyperband' on Ray."
                )
        cv = self.cv
        if cv is not None and not hasattr(cv, "split"):
            self._check_int("cv", cv, 2, allow_none=True)
        make_sampler(self._strategy_name(), space=SearchSpace([[]]), seed=None, param="strategy")
        make_pruner(self.pruner)
        check_study_name(self.study_name)
        check_study_name(self.project_name, "project_name")
        self._check_int("seed", self.seed, 0, allow_none=True)
        self._check_directory()

    def _check_directory(self) -> None:
        """Refuse a ``directory`` (or project folder) that exists as something else than a folder."""
        if self.directory is not None and not isinstance(self.directory, (str, os.PathLike)):
            raise TypeError(
                f"directory must be a folder path (str or os.PathLike) or None, got "
                f"{type(self.directory).__name__}: {self.directory!r}."
            )
        for param, path in (("directory", self.directory), ("project_name", self.project_dir)):
            if path is not None and os.path.exists(path) and not os.path.isdir(path):
                raise ValueError(
                    f"{param}: {os.fspath(path)!r} is a file, not a folder; the tuner keeps its "
                    "study and models in a folder. Give a folder path (it is created if missing)."
                )

    def _grid(self) -> bool:
        return self._strategy_name() == "grid"

    def _compile_kwargs(self) -> dict[str, Any] | None:
        given = {"optimizer": self.optimizer, "loss": self.loss, "metrics": self.metrics}
        given = {k: v for k, v in given.items() if v is not None}
        return given or None

    # -- the space ---------------------------------------------------------------------
    def _record(self) -> DeclaredSpace:
        """Build once with default values: declares the space and checks the hypermodel.

        Raises before any trial runs for a build function that does not return a
        compiled model or declares a name twice with different settings.
        """
        recorded = DeclaredSpace(
            [self._space[n] for n in self._space.preset],
            tune_new_entries=self.tune_new_entries,
            allow_new_entries=self.allow_new_entries,
        )
        hp = HyperParameters._bound(recorded, None)
        for defn in self._tuned.values():
            hp._retrieve(defn)
        self.hypermodel.declare_hyperparameters(hp)
        clear_session()
        model = check_model(self.hypermodel.build(hp), self.hypermodel, self._compile_kwargs())
        del model
        for defn in recorded.definitions:
            self._space.register(defn)
        self._recorded = recorded
        return recorded

    def search_space_summary(self, extended: bool = False) -> None:
        """Print the hyperparameters declared so far (as Keras Tuner does)."""
        if self._recorded is None:
            self._record()
        definitions = self._space.definitions
        print("Search space summary")
        print(f"Default search space size: {len(definitions)}")
        for defn in definitions:
            print(f"{defn.name} ({defn.kind})")
            print(defn.config())

    # -- the study ---------------------------------------------------------------------
    def _read_study(self) -> optuna.Study | None:
        """The study, loaded without changing anything (``None`` if there is none)."""
        if self._study is not None:
            return self._study
        if self.storage is None and not os.path.exists(os.path.join(self.project_dir, "study.db")):
            return None
        try:
            self._study = optuna.load_study(
                study_name=self._study_name(), storage=open_storage(self._storage_arg())
            )
        except KeyError:
            return None
        return self._study

    def _open_study(
        self, experiment: dict[str, Any] | None = None
    ) -> tuple[optuna.Study, bool, optuna.samplers.BaseSampler]:
        if self.storage is None:
            os.makedirs(self.project_dir, exist_ok=True)
        storage = open_storage(self._storage_arg())
        name = self._study_name()
        if self.overwrite and not self._overwritten:
            self._delete(storage, name)
            self._overwritten = True
        assert self._recorded is not None
        space = self._recorded.search_space()
        sampler = self._sampler(space)
        try:  # the objective first: a refused study is left as it was
            stored = optuna.load_study(study_name=name, storage=storage).user_attrs.get(
                OBJECTIVE_ATTR
            )
        except KeyError:
            stored = None
        if stored is not None and stored != self._objective.name:
            raise ValueError(
                f"study_name={name!r} was searched with objective {stored!r}; this tuner "
                f"optimizes {self._objective.name!r}. Use another project_name/study_name, or "
                "overwrite=True to start over; nothing stored was changed."
            )
        study, created = open_study(
            storage,
            name,
            sampler=sampler,
            pruner=self._pruner(),
            fingerprint=self._recorded.fingerprint(),
            directions=[self._objective.optuna_direction],
            experiment=experiment,
            resume=self.resume,
        )
        if stored is None:
            study.set_user_attr(OBJECTIVE_ATTR, self._objective.name)
        study.set_user_attr(STRATEGY_ATTR, self._describe_strategy())  # for the report, CLI
        digest = study_digest(storage_url(storage), name)
        models = claim_models_dir(self.project_dir, name, digest)
        if study.user_attrs.get(MODELS_ATTR) != models:
            study.set_user_attr(MODELS_ATTR, models)
        self._study = study
        return study, created, sampler

    def _delete(self, storage: optuna.storages.BaseStorage, name: str) -> None:
        models = self.project_dir
        with contextlib.suppress(KeyError):
            study = optuna.load_study(study_name=name, storage=storage)
            models = self._models_dir_of(study)
            optuna.delete_study(study_name=name, storage=storage)
        if os.path.isdir(models):  # this study's models only
            for entry in os.listdir(models):
                if entry.startswith("trial_") or entry == "hyperband":
                    shutil.rmtree(os.path.join(models, entry), ignore_errors=True)
        self._study = None

    def models_dir(self) -> str:
        """The folder of this tuner's study's saved models (see ``tuners/models_dir.py``).

        ``project_dir``, unless another study's models were there first: then a folder
        of its own under ``project_dir/studies``.
        """
        return self._models_dir_of(self._read_study())

    def _models_dir_of(self, study: optuna.Study | None) -> str:
        relative = "" if study is None else study.user_attrs.get(MODELS_ATTR, "")
        return os.path.join(self.project_dir, relative) if relative else self.project_dir

    def _count_trials(self) -> int | None:
        """``max_trials``, capped (with a warning) at the points of a finite random search.

        As scikit-learn's ``ParameterSampler`` and Keras Tuner's random search do, a space
        whose hyperparameters all take finitely many values is drawn without replacement
        (``self._points`` says how many it has): each of its points runs once. Hyperband,
        which plans its trials, draws with replacement.
        """
        self._points = (
            self._recorded.n_points()  # type: ignore[union-attr]
            if self._strategy_name() == "random" and not self._plans_trials
            else None
        )
        if self._points is None or self.max_trials is None or self.max_trials <= self._points:
            return self.max_trials
        warnings.warn(
            f"The search space has {self._points} distinct points, fewer than "
            f"max_trials={self.max_trials}; running each once ({self._points} trials). "
            "For an exhaustive search, use GridSearch.",
            UserWarning,
            stacklevel=3,
        )
        return self._points

    def _sampler(self, space: SearchSpace) -> optuna.samplers.BaseSampler:
        if self._points is not None:
            return DistinctSampler(seed=self.seed)
        return make_sampler(
            self._strategy_name(),
            space=space,
            seed=self.seed,
            param="strategy",
            n_trials=self._n_trials,
            n_startup_trials=getattr(self, "num_initial_points", None),
        )

    def _pruner(self) -> optuna.pruners.BasePruner:
        return make_pruner(self.pruner)

    def _describe_strategy(self) -> str:
        """A short name such as ``"tpe + median"``, stored with the study."""
        return describe(self._strategy_name(), self._pruner(), self._schedule)

    # -- search ------------------------------------------------------------------------
    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Run (or resume) the search; arguments are those of ``model.fit``.

        A fit argument given as a hyperparameter is tuned: ``batch_size=Choice(
        "batch_size", [16, 32, 64])`` or ``epochs=tunefleet.Int(2, 10)``. With ``cv=k``
        pass ``x`` and ``y`` (arrays); each fold's held-out part is the validation data.
        ``verbose`` goes to ``model.fit`` (default 0) and, if given, sets how much the
        tuner prints (one line per trial by default).
        """
        with frozen_heap():  # the search's collections scan only what it makes
            self._search(fit_args, fit_kwargs)

    def _search(self, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any]) -> None:
        self._check_settings()
        verbose = fit_kwargs.get("verbose")
        display = 1 if verbose is None else int(verbose not in (0, False))
        fit_kwargs.setdefault("verbose", 0)
        tuned = {}
        for key, value in fit_kwargs.items():
            defn = from_search_argument(key, value)
            if defn is not None:
                tuned[key] = defn
        self._check_fit_arguments(fit_args, fit_kwargs, tuned)
        self._tuned = tuned
        self._record()
        self._n_trials = self._count_trials()
        splits, cv_data = cv_splits(self.cv, fit_args, fit_kwargs)
        workers = n_workers(self.n_jobs)
        grid = self._recorded.grid() if self._grid() else None  # type: ignore[union-attr]
        study, created, sampler = self._open_study(self._experiment(fit_args, fit_kwargs, splits))
        recover_interrupted(study, grid, retry_configurations=not self._plans_trials)
        runner = TrialRunner(
            hypermodel=self.hypermodel,
            space=self._space,
            objective=self._objective,
            fit_args=() if splits is not None else tuple(fit_args),
            fit_kwargs={k: v for k, v in fit_kwargs.items() if k not in ("x", "y")}
            if splits is not None
            else dict(fit_kwargs),
            tuned=tuned,
            project_dir=os.path.abspath(self.models_dir()),
            splits=splits,
            cv_data=cv_data,
            executions=self.executions_per_trial,
            seed=self.seed,
            report=prunes(self._pruner()),
            compile_kwargs=self._compile_kwargs(),
            max_model_size=self.max_model_size,
            max_retries=self.max_retries_per_trial,
        )
        self._last_runner = runner
        self._fleet_batch = self._fleet_size(runner, fit_args, fit_kwargs, workers)
        self._announce(study, created)
        try:
            self._run(study, runner, sampler, grid, created, workers, display)
        finally:
            # the last trial's models (and a last fleet batch's programs and freed pages)
            release_memory(trim=self._fleet_batch is not None)

    def _experiment(
        self, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any], splits: list[Any] | None
    ) -> dict[str, Any]:
        """What defines this search, stored with the study (see :mod:`tunefleet.experiment`)."""
        data = {
            "x": fit_args[0] if len(fit_args) > 0 else fit_kwargs.get("x"),
            "y": fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y"),
            "validation_data": fit_kwargs.get("validation_data"),
            "validation_split": fit_kwargs.get("validation_split"),
        }
        return tuner_experiment(
            defining_object(self.hypermodel),
            objective=(self._objective.name, self._objective.direction),
            cv=self.cv,
            n_splits=None if splits is None else len(splits),
            data=data,
            compile_kwargs=self._compile_kwargs(),
        )

    def _default_fleet_size(self) -> int | None:
        """Trials per fleet batch for ``fleet="auto"``/``True`` (``None``: the dispatcher's)."""
        return None

    def _fleet_size(
        self,
        runner: TrialRunner,
        fit_args: tuple[Any, ...],
        fit_kwargs: dict[str, Any],
        workers: int,
    ) -> int | None:
        """Trials per fleet batch, or ``None`` to train one by one (logging why, once).

        Decided by :func:`tunefleet.dispatch.fleet_size`, as for every face.
        """
        from tunefleet.tuners.fleet import fleet_unsupported_reason

        reason = RAY_ACTORS if self.backend == "ray" else None
        if reason is None and self.fleet is not False and self.fleet is not None:
            reason = fleet_unsupported_reason(runner, fit_args, fit_kwargs)
        return fleet_size(
            self.fleet,
            reason=reason,
            strategy=self._strategy_name(),
            n_trials=self._n_trials,
            who=type(self).__name__,
            n_workers=workers,
            default=self._default_fleet_size(),
        )

    def _check_fit_arguments(
        self, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any], tuned: dict[str, Any]
    ) -> None:
        """Hook for subclasses (Hyperband refuses a tuned ``epochs``)."""

    def _announce(self, study: optuna.Study, created: bool) -> None:
        if created:
            return
        found = trial_state_counts(study)
        n = found["COMPLETE"] + found["PRUNED"] + found["FAIL"]
        interrupted = found["interrupted"]
        where = mask_url(storage_url(study._storage) or "the given storage")
        print(
            f"Resuming study {study.study_name!r} in {where}: found {n} trials "
            f"({found['COMPLETE']} completed, {found['PRUNED']} pruned, {found['FAIL']} failed"
            + (f"; {interrupted} interrupted, to run again" if interrupted else "")
            + ").",
            flush=True,
        )

    def _run(
        self,
        study: optuna.Study,
        runner: TrialRunner,
        sampler: optuna.samplers.BaseSampler,
        grid: list[dict[str, Any]] | None,
        created: bool,
        workers: int,
        display: int,
    ) -> None:
        if grid is not None:
            limit = len(grid) if self.max_trials is None else min(self.max_trials, len(grid))
            changed = study.user_attrs.get(GRID_LIMIT_ATTR) not in (None, limit)
            enqueue_grid(study, grid[:limit], created or changed)
            study.set_user_attr(GRID_LIMIT_ATTR, limit)
            budget = Budget(None, grid=True)
            total = limit
        else:
            budget = Budget(self._n_trials, grid=False)
            total = int(self._n_trials)  # type: ignore[arg-type]
        remaining = budget.remaining(study)
        if remaining <= 0:
            print(
                f"Nothing to run: study {study.study_name!r} already holds {total - remaining} "
                f"trials, at least the {total} asked for "
                f"(max_trials={self.max_trials}). Raise max_trials to search further, or pass "
                "overwrite=True to start over.",
                flush=True,
            )
            return
        print(
            f"Search: {remaining} trial(s) to run of {total}, objective "
            f"{self._objective.name!r} ({self._objective.direction}).",
            flush=True,
        )
        watch = SearchWatch(
            self.oracle, self._objective, self.max_consecutive_failed_trials, study, display
        )
        with SearchProgress(
            total, done=total - remaining, description=type(self).__name__, enabled=self.progress
        ) as bar:
            watch.bar = bar
            fleet = None
            if self._fleet_batch is not None:
                from tunefleet.tuners.fleet import TunerFleet

                fleet = TunerFleet(runner)
            executor = choose_executor(
                runner,
                n_workers=self.n_jobs if self.backend == "ray" else workers,
                worker_process=fleet is None
                and storage_url(study._storage) is not None  # a worker opens it by URL
                and runs_in_worker_process(workers, total, self.backend),
                batch_size=self._fleet_batch,
                run_batch=None if fleet is None else fleet.run_batch,
                sampler=sampler,
                seed=self.seed,
                pruner=self._pruner(),
                backend=self.backend,
                resources_per_trial=self.resources_per_trial,
                ray_address=self.ray_address,
            )
            executor.run(study, budget, grid_points=grid, on_trial_end=watch, poll=watch.poll)
            if fleet is not None:
                self.fleet_stats_ = dict(fleet.stats)
        watch.finish()

    # -- results -----------------------------------------------------------------------
    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        """The hyperparameters of the ``num_trials`` best trials, best first."""
        return [t.hyperparameters for t in self.oracle.get_best_trials(num_trials)]

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The saved models of the ``num_models`` best trials (``.keras``, safe mode on).

        Each is the model at its best epoch (with ``cv``/``executions_per_trial``: of the
        best run), compiled, ready to ``evaluate`` or ``predict``.
        """
        return load_models(self.oracle.get_best_trials(num_models))

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the ``num_trials`` best trials (as Keras Tuner does)."""
        print_summary(self.oracle.get_best_trials(num_trials), self.models_dir(), self._objective)

    def trials_dataframe(self) -> Any:
        """Every trial as a pandas DataFrame, one row per trial.

        The columns of every face (see :func:`tunefleet.records.trials_dataframe`):
        ``number``, ``state``, ``value`` (the objective), ``std`` (over folds),
        ``duration`` (seconds), one ``param_<name>`` column per hyperparameter, ``error``,
        ``status`` (why a trial does not count: interrupted, surplus; else missing).
        """
        return records.trials_dataframe(self._read_study(), decode=self._space.values_of)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(objective={self._objective!r}, project_dir="
            f"{self.project_dir!r}, study_name={self._study_name()!r})"
        )
