"""Keras Tuner's tuners on tunefleet's engine: ``RandomSearch``, ``GridSearch``, ``BayesianOptimization``.

A tuner translates Keras Tuner's vocabulary for the engine and back:

* ``build_model(hp)`` and the ``hp.*`` declarations become a define-by-run trial
  function (:class:`_TrialRunner`) run by :func:`tunefleet.execution.run_trials`;
* ``directory``/``project_name`` become a SQLite study (``<project>/study.db``) and a
  folder of saved ``.keras`` models (``<project>/trial_NNNN/model.keras``); rerunning
  resumes the study, ``overwrite=True`` starts over;
* ``objective`` becomes the study's direction; each trial's value is the best epoch's
  value of the objective (averaged over ``cv`` folds and ``executions_per_trial``), and
  every epoch's value is reported to the study's pruner;
* results (``get_best_trials``, ``get_best_hyperparameters``, ``get_best_models``,
  ``results_summary``) are read back from the storage.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
import shutil
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from sklearn.model_selection import check_cv

from tunefleet.attrs import (
    BEST_STEP_ATTR,
    CV_ATTR,
    ERROR_ATTR,
    GRID_LIMIT_ATTR,
    HP_ATTR,
    METRICS_ATTR,
    MODEL_ATTR,
    OBJECTIVE_ATTR,
)
from tunefleet.execution import WorkerJob, run_in_processes, run_trial_batches, run_trials
from tunefleet.experiment import check_resume, tuner_experiment
from tunefleet.keras.initializer_draws import shared_draw_programs
from tunefleet.keras.memory import clear_session, release_memory
from tunefleet.keras.user_callbacks import fresh_callbacks
from tunefleet.progress import SearchProgress
from tunefleet.space import SearchSpace
from tunefleet.storage import open_storage, storage_url
from tunefleet.strategies import DistinctSampler, make_pruner, make_sampler, prunes
from tunefleet.study import (
    Budget,
    check_study_name,
    counts,
    enqueue_grid,
    open_study,
    recover_interrupted,
)
from tunefleet.trial import TrialFailed, take
from tunefleet.tuners.hypermodel import HyperModel, as_hypermodel, defining_object, describe
from tunefleet.tuners.hyperparameters import (
    HyperParameter,
    HyperParameterError,
    HyperParameters,
    _Space,
    from_search_argument,
)
from tunefleet.tuners.oracle import Objective, Oracle, Trial, as_objective, trial_state_counts
from tunefleet.urls import mask_url

optuna.logging.set_verbosity(optuna.logging.WARNING)

_MODEL_FILE = "model.keras"


class ObjectiveNotReported(ValueError):
    """The objective is not among the metrics the model reports."""

    def __init__(self, name: str, reported: Sequence[str]) -> None:
        reported = sorted(reported)
        if name.startswith("val_") and name[4:] in reported:
            hint = (
                "Validation metrics need validation data: pass validation_data=(x_val, y_val) "
                "or validation_split=0.2 to search(), or set cv=k on the tuner."
            )
        else:
            hint = (
                "Compile the model with that metric (metrics=[...]) or choose one of the "
                "reported names as the objective."
            )
        super().__init__(
            f"objective {name!r} is not among the metrics the model reports: {reported}. {hint}"
        )


class _ConfigurationError(TypeError):
    """A hypermodel that cannot work in any trial (e.g. it returns no compiled model)."""


#: Errors that would fail every trial: raised at once instead of recorded as failed trials.
_FATAL = (ObjectiveNotReported, _ConfigurationError, HyperParameterError)


def check_model(model: Any, hypermodel: HyperModel, compile_kwargs: dict[str, Any] | None) -> Any:
    """Compile with the tuner's ``optimizer``/``loss``/``metrics`` if given; check the model."""
    if not isinstance(model, keras.Model):
        raise _ConfigurationError(
            f"{describe(hypermodel)} must return a compiled keras.Model; it returned "
            f"{type(model).__module__}.{type(model).__qualname__}"
            + (" (a Keras 2 / tf.keras model?)" if "tf_keras" in repr(type(model)) else "")
            + "."
        )
    if compile_kwargs:
        model.compile(**compile_kwargs)
    if not getattr(model, "compiled", False):
        raise _ConfigurationError(
            f"{describe(hypermodel)} must return a compiled keras.Model; it returned "
            f"{type(model).__name__} {model.name!r}, which is not compiled. Call "
            "model.compile(...) in build(), or pass optimizer= and loss= to the tuner."
        )
    return model


def _take_x(x: Any, indices: np.ndarray) -> Any:
    """Rows of model inputs: an array, or a dict / list of arrays (several inputs)."""
    if isinstance(x, dict):
        return {k: take(v, indices) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and x and all(hasattr(v, "shape") for v in x):
        return type(x)(take(v, indices) for v in x)
    return take(x, indices)


def _n_rows(x: Any) -> int:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    elif isinstance(x, (list, tuple)) and x and all(hasattr(v, "shape") for v in x):
        x = x[0]
    return len(x)


class _Monitor(keras.callbacks.Callback):
    """Watches the objective every epoch: checks it exists, reports it, keeps the best.

    ``step_offset`` makes steps unique within a trial (``run * epochs + epoch`` with
    ``cv``/``executions_per_trial``). Stops training (and flags ``pruned``) when the
    study's pruner says so. ``strict``: the objective must be in every epoch's logs
    (raises at the first epoch otherwise); off for a custom ``HyperModel.fit``, whose
    return value may hold the objective instead.
    """

    def __init__(
        self,
        objective: Objective,
        trial: optuna.Trial | None,
        step_offset: int,
        prune: bool,
        keep_best: bool,
        strict: bool = True,
    ) -> None:
        super().__init__()
        self.strict = strict
        self.objective = objective
        self.trial = trial
        self.step_offset = step_offset
        self.prune = prune
        self.keep_best = keep_best
        self.best = math.nan
        self.best_epoch: int | None = None
        self.best_logs: dict[str, float] = {}
        self.best_weights: list[Any] | None = None
        self.last_epoch: int | None = None
        self.pruned = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        name = self.objective.name
        if name not in logs:
            if self.strict:
                raise ObjectiveNotReported(name, list(logs))
            return
        value = float(logs[name])
        self.last_epoch = epoch
        if self.objective.better(value, self.best):
            self.best, self.best_epoch = value, epoch
            self.best_logs = {k: float(v) for k, v in logs.items()}
            if self.keep_best:
                self.best_weights = self.model.get_weights()
        if self.trial is not None and math.isfinite(value):
            self.trial.report(value, step=self.step_offset + epoch)
            if self.prune and self.trial.should_prune():
                self.pruned = True
                self.model.stop_training = True


@dataclass
class RunResult:
    """One training run (a fold, an execution) of a trial."""

    model: Any
    best: float
    best_epoch: int | None
    metrics: dict[str, float]
    best_weights: list[Any] | None
    epochs_done: int
    pruned: bool
    fit_time: float


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, bool)


@dataclass
class _TrialRunner:
    """The tuners' trial function: build(hp) -> fit -> objective, per fold and execution.

    Picklable (when the hypermodel is), so process workers run the very same code.
    """

    hypermodel: HyperModel
    space: _Space
    objective: Objective
    fit_args: tuple[Any, ...]
    fit_kwargs: dict[str, Any]
    tuned: dict[str, HyperParameter]
    project_dir: str
    splits: list[tuple[np.ndarray, np.ndarray]] | None = None
    cv_data: tuple[Any, Any] | None = None
    executions: int = 1
    seed: int | None = None
    report: bool = False
    compile_kwargs: dict[str, Any] | None = None
    max_model_size: int | None = None
    max_retries: int = 0
    save_models: bool = True

    # -- what one trial trains ---------------------------------------------------------
    def fit_kwargs_for(self, hp: HyperParameters) -> dict[str, Any]:
        """The fit arguments with tuned ones (``batch_size=Choice(...)``) drawn for ``hp``."""
        kwargs = dict(self.fit_kwargs)
        for key, defn in self.tuned.items():
            kwargs[key] = hp._retrieve(defn)
        return kwargs

    def runs(self, kwargs: dict[str, Any]) -> list[tuple[int, tuple[Any, ...], dict[str, Any]]]:
        """``(fold, fit args, fit kwargs)`` of every run: folds x executions."""
        if self.splits is None:
            return [(0, self.fit_args, kwargs)] * self.executions
        assert self.cv_data is not None
        x, y = self.cv_data
        out = []
        for fold, (train, test) in enumerate(self.splits):
            fold_kwargs = dict(kwargs)
            weights = fold_kwargs.pop("sample_weight", None)
            if weights is not None:
                fold_kwargs["sample_weight"] = take(np.asarray(weights), train)
            fold_kwargs["validation_data"] = (_take_x(x, test), take(y, test))
            args = (_take_x(x, train), take(y, train))
            out += [(fold, args, fold_kwargs)] * self.executions
        return out

    @property
    def n_folds(self) -> int:
        return 1 if self.splits is None else len(self.splits)

    # -- one run -----------------------------------------------------------------------
    def run_seed(self, number: int, run: int) -> int:
        """The seed of trial ``number``'s run ``run`` (``seed=None`` counts as 0)."""
        return ((self.seed or 0) + 7919 * number + run) % (2**31)

    def build(self, hp: HyperParameters, trial: optuna.Trial | None, run: int) -> Any:
        """Seed, build and check a model."""
        if self.seed is not None:
            keras.utils.set_random_seed(self.run_seed(0 if trial is None else trial.number, run))
        with shared_draw_programs():
            model = check_model(self.hypermodel.build(hp), self.hypermodel, self.compile_kwargs)
        if self.max_model_size is not None and model.built:
            size = model.count_params()
            if size > self.max_model_size:
                raise TrialFailed(
                    f"the model has {size} parameters, more than max_model_size="
                    f"{self.max_model_size}."
                )
        return model

    def fit_run(
        self,
        trial: optuna.Trial | None,
        hp: HyperParameters,
        run: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        model: Any = None,
        step_offset: int = 0,
    ) -> RunResult:
        """Build (unless ``model`` is given, e.g. to continue it) and train one run."""
        if model is None:
            model = self.build(hp, trial, run)
        monitor = _Monitor(
            self.objective,
            trial,
            step_offset,
            prune=self.report,
            keep_best=self.save_models,
            strict=type(self.hypermodel).fit is HyperModel.fit,
        )
        kwargs = dict(kwargs)
        kwargs["callbacks"] = [
            *fresh_callbacks(kwargs.pop("callbacks", None)),
            keras.callbacks.TerminateOnNaN(),
            monitor,
        ]
        initial = int(kwargs.get("initial_epoch", 0))
        start = time.perf_counter()
        result = self.hypermodel.fit(hp, model, *args, **kwargs)
        fit_time = time.perf_counter() - start
        best, best_epoch, metrics = self._score(result, monitor)
        epochs_done = initial if monitor.last_epoch is None else monitor.last_epoch + 1
        return RunResult(
            model=model,
            best=best,
            best_epoch=best_epoch,
            metrics=metrics,
            best_weights=monitor.best_weights,
            epochs_done=epochs_done,
            pruned=monitor.pruned,
            fit_time=fit_time,
        )

    def _score(self, result: Any, monitor: _Monitor) -> tuple[float, int | None, dict[str, float]]:
        """The run's best objective value, its epoch and the metrics then.

        ``result`` is what ``HyperModel.fit`` returned: the objective's value, a dict of
        metrics (values or per-epoch lists), or the ``History`` (read by the monitor).
        """
        name = self.objective.name
        if _is_number(result):
            return float(result), None, {name: float(result)}
        if isinstance(result, dict):
            history = result
        elif monitor.best_epoch is not None:
            return monitor.best, monitor.best_epoch, monitor.best_logs
        else:  # a History whose epochs the monitor did not see (a custom fit)
            history = getattr(result, "history", None)
        if not isinstance(history, dict) or not history:
            raise _ConfigurationError(
                f"{type(self.hypermodel).__name__}.fit returned {type(result).__name__}; it "
                "must return the History of model.fit, a dict of metric values, or the "
                "objective's value."
            )
        if name not in history:
            raise ObjectiveNotReported(name, list(history))
        series = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in history.items()}
        index = self.objective.best_index([float(v) for v in series[name]])
        if index is None:
            return math.nan, None, {}
        metrics = {k: float(v[min(index, len(v) - 1)]) for k, v in series.items()}
        return metrics[name], index if len(series[name]) > 1 else None, metrics

    def save_model(self, trial: optuna.Trial, result: RunResult) -> None:
        """Save a run's model at its best epoch as the trial's model (``.keras``)."""
        rel = os.path.join(f"trial_{trial.number:04d}", _MODEL_FILE)
        path = os.path.join(self.project_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = path[: -len(".keras")] + ".partial.keras"
        try:
            if result.best_weights is not None:
                result.model.set_weights(result.best_weights)
            result.model.save(partial)
            os.replace(partial, path)
        except Exception as exc:
            warnings.warn(
                f"trial {trial.number}: the model could not be saved ({exc}); "
                "get_best_models() will not find it.",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        trial.set_user_attr(MODEL_ATTR, rel)

    # -- the trial function ------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> float:
        # The previous trial's models are garbage now: free them, Keras' global state
        # and (within a budget) what they compiled, so a long search does not grow.
        release_memory()
        hp = HyperParameters._bound(self.space, trial)
        try:
            return self._run_trial(trial, hp)
        finally:
            if hp.values:
                trial.set_user_attr(HP_ATTR, dict(hp.values))

    def _run_trial(self, trial: optuna.Trial, hp: HyperParameters) -> float:
        kwargs = self.fit_kwargs_for(hp)
        runs = self.runs(kwargs)
        epochs = int(kwargs.get("epochs", 1))
        folds: list[list[float]] = [[] for _ in range(self.n_folds)]
        fit_times = [0.0] * self.n_folds
        metrics: list[dict[str, float]] = []
        best, best_step = math.nan, None
        for run, (fold, args, run_kwargs) in enumerate(runs):
            result = self._attempt(trial, hp, run, args, run_kwargs, step_offset=run * epochs)
            try:
                fit_times[fold] += result.fit_time
                if result.pruned:
                    trial.set_user_attr(
                        CV_ATTR, _record(self.objective.name, folds, fit_times, self.n_folds)
                    )
                    raise optuna.TrialPruned(f"pruned at run {run + 1}, epoch {result.epochs_done}")
                folds[fold].append(result.best)
                metrics.append(result.metrics)
                if self.objective.better(result.best, best):
                    best, best_step = result.best, result.best_epoch
                    if self.save_models:
                        self.save_model(trial, result)
            finally:
                del result
        scores = [float(np.mean(f)) if f else math.nan for f in folds]
        trial.set_user_attr(CV_ATTR, _record(self.objective.name, folds, fit_times, self.n_folds))
        trial.set_user_attr(METRICS_ATTR, _mean_metrics(metrics))
        if best_step is not None:
            trial.set_user_attr(BEST_STEP_ATTR, best_step)
        return float(np.mean(scores))

    def _attempt(
        self,
        trial: optuna.Trial,
        hp: HyperParameters,
        run: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        step_offset: int,
    ) -> RunResult:
        """One run, retried ``max_retries`` times on errors of the user's code."""
        for attempt in range(self.max_retries + 1):
            try:
                return self.fit_run(trial, hp, run, args, kwargs, step_offset=step_offset)
            except (*_FATAL, optuna.TrialPruned):
                raise
            except TrialFailed as exc:
                trial.set_user_attr(ERROR_ATTR, str(exc))
                raise
            except Exception as exc:
                if attempt < self.max_retries:
                    continue
                message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                trial.set_user_attr(ERROR_ATTR, message[-2000:])
                raise TrialFailed(message, exc) from exc
        raise AssertionError("unreachable")


def _record(
    name: str, folds: list[list[float]], fit_times: list[float], n_folds: int
) -> dict[str, Any]:
    """Per-fold scores in the shape of the sklearn face's ``tunefleet:cv`` record."""
    return {
        "test": {name: [float(np.mean(f)) if f else math.nan for f in folds]},
        "fit_time": list(fit_times),
        "score_time": [0.0] * n_folds,
    }


def _mean_metrics(metrics: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for m in metrics for k in m}
    return {k: float(np.mean([m[k] for m in metrics if k in m])) for k in sorted(keys)}


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
        n_jobs: worker processes sharing the study (needs a database storage).
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
    """

    _default_strategy: ClassVar[str] = "random"
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
        self._space = _Space(
            preset, tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries
        )
        self._recorded: _Space | None = None
        self._points: int | None = None  # distinct points of a finite random search
        self._n_trials: int | None = max_trials  # max_trials, capped at those points
        self._tuned: dict[str, HyperParameter] = {}
        self._study: optuna.Study | None = None
        self._overwritten = False
        self._last_runner: _TrialRunner | None = None
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
        fleet = self.fleet
        if not (
            any(fleet is v for v in (True, False, None))
            or fleet == "auto"
            or (isinstance(fleet, numbers.Integral) and not isinstance(fleet, bool) and fleet >= 1)
        ):
            raise ValueError(
                f"fleet must be 'auto', True, False or a positive integer, got {fleet!r}."
            )
        if self.n_jobs is not None and self.n_jobs != -1:
            self._check_int("n_jobs", self.n_jobs, 1)
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

    def _n_workers(self) -> int:
        if self.n_jobs is None:
            return 1
        if self.n_jobs == -1:
            return os.cpu_count() or 1
        return int(self.n_jobs)

    def _compile_kwargs(self) -> dict[str, Any] | None:
        given = {"optimizer": self.optimizer, "loss": self.loss, "metrics": self.metrics}
        given = {k: v for k, v in given.items() if v is not None}
        return given or None

    # -- the space ---------------------------------------------------------------------
    def _record(self) -> _Space:
        """Build once with default values: declares the space and checks the hypermodel.

        Raises before any trial runs for a build function that does not return a
        compiled model or declares a name twice with different settings.
        """
        recorded = _Space(
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
        self._study = study
        return study, created, sampler

    def _delete(self, storage: optuna.storages.BaseStorage, name: str) -> None:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=storage)
        if os.path.isdir(self.project_dir):
            for entry in os.listdir(self.project_dir):
                if entry.startswith("trial_") or entry == "hyperband":
                    shutil.rmtree(os.path.join(self.project_dir, entry), ignore_errors=True)
        self._study = None

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

    # -- search ------------------------------------------------------------------------
    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Run (or resume) the search; arguments are those of ``model.fit``.

        A fit argument given as a hyperparameter is tuned: ``batch_size=Choice(
        "batch_size", [16, 32, 64])`` or ``epochs=tunefleet.Int(2, 10)``. With ``cv=k``
        pass ``x`` and ``y`` (arrays); each fold's held-out part is the validation data.
        ``verbose`` goes to ``model.fit`` (default 0) and, if given, sets how much the
        tuner prints (one line per trial by default).
        """
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
        splits, cv_data = self._splits(fit_args, fit_kwargs)
        n_workers = self._n_workers()
        grid = self._recorded.grid() if self._grid() else None  # type: ignore[union-attr]
        study, created, sampler = self._open_study(self._experiment(fit_args, fit_kwargs, splits))
        recover_interrupted(study, grid)
        runner = _TrialRunner(
            hypermodel=self.hypermodel,
            space=self._space,
            objective=self._objective,
            fit_args=() if splits is not None else tuple(fit_args),
            fit_kwargs={k: v for k, v in fit_kwargs.items() if k not in ("x", "y")}
            if splits is not None
            else dict(fit_kwargs),
            tuned=tuned,
            project_dir=os.path.abspath(self.project_dir),
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
        self._fleet_batch = self._fleet_size(runner, fit_args, fit_kwargs, n_workers)
        self._announce(study, created)
        try:
            self._run(study, runner, sampler, grid, created, n_workers, display)
        finally:
            release_memory()  # release the last trial's models

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

    def _default_fleet_size(self) -> int:
        """Trials per fleet batch for ``fleet="auto"``/``True``."""
        from tunefleet.dispatch import default_fleet_size

        return default_fleet_size(self._strategy_name(), self._n_trials)

    def _fleet_size(
        self,
        runner: _TrialRunner,
        fit_args: tuple[Any, ...],
        fit_kwargs: dict[str, Any],
        n_workers: int,
    ) -> int | None:
        """Trials per fleet batch, or ``None`` to train one by one (logging why, once)."""
        from tunefleet.tuners.fleet import fleet_unsupported_reason

        fleet = self.fleet
        if fleet is False or fleet is None:
            return None
        if n_workers > 1:
            reason = "n_jobs > 1 trains in worker processes, one trial at a time each"
        else:
            reason = fleet_unsupported_reason(runner, fit_args, fit_kwargs)
        if reason is not None:
            if fleet != "auto":
                raise ValueError(f"fleet={fleet!r} cannot be used: {reason}.")
            _log_once(f"{type(self).__name__}: training trials one by one: {reason}.")
            return None
        if fleet is True or fleet == "auto":
            return self._default_fleet_size()
        return int(fleet)

    def _check_fit_arguments(
        self, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any], tuned: dict[str, Any]
    ) -> None:
        """Hook for subclasses (Hyperband refuses a tuned ``epochs``)."""

    def _splits(
        self, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]] | None, tuple[Any, Any] | None]:
        if self.cv is None:
            return None, None
        for key in ("validation_data", "validation_split"):
            if fit_kwargs.get(key) not in (None, 0, 0.0):
                raise ValueError(
                    f"cv={self.cv!r} validates each fold on its held-out part; remove {key}= "
                    "from search()."
                )
        x = fit_args[0] if len(fit_args) > 0 else fit_kwargs.get("x")
        y = fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y")
        if len(fit_args) > 2 or x is None or y is None or not hasattr(y, "__len__"):
            raise ValueError(
                f"cv={self.cv!r} needs search(x, y, ...) with x and y as arrays (or a dict of "
                "arrays for x); datasets and generators cannot be split into folds."
            )
        if _n_rows(x) != len(y):
            raise ValueError(f"x has {_n_rows(x)} samples but y has {len(y)}.")
        splitter = check_cv(self.cv, np.asarray(y), classifier=True)
        rows = np.zeros((len(y), 1))
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(rows, y)]
        return splits, (x, y)

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
        runner: _TrialRunner,
        sampler: optuna.samplers.BaseSampler,
        grid: list[dict[str, Any]] | None,
        created: bool,
        n_workers: int,
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
                f"Nothing to run: study {study.study_name!r} already holds its {total} trials "
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
        watch = _Watch(self, study, display)
        with SearchProgress(
            total, done=total - remaining, description=type(self).__name__, enabled=self.progress
        ) as bar:
            watch.bar = bar
            if self._fleet_batch is not None:
                from tunefleet.tuners.fleet import TunerFleet

                fleet = TunerFleet(runner)
                run_trial_batches(
                    study,
                    fleet.run_batch,
                    budget,
                    self._fleet_batch,
                    grid_points=grid,
                    on_trial_end=watch,
                    refill=True,
                )
                self.fleet_stats_ = dict(fleet.stats)
            elif n_workers == 1:
                run_trials(study, runner, budget, grid_points=grid, on_trial_end=watch)
            else:
                url = storage_url(study._storage)
                if url is None:
                    raise ValueError(
                        f"n_jobs={self.n_jobs} runs worker processes, which need a database "
                        "storage URL (e.g. 'sqlite:///tune.db')."
                    )
                job = WorkerJob(
                    storage_url=url,
                    study_name=study.study_name,
                    sampler=sampler,
                    space=SearchSpace([[]]),
                    seed=self.seed,
                    pruner=self._pruner(),
                    objective=runner,
                    budget=Budget(self._n_trials, grid=grid is not None),
                    grid_points=grid,
                )
                run_in_processes(job, n_workers, poll=watch.poll)
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
        models = []
        for trial in self.oracle.get_best_trials(num_models):
            path = trial.model_path
            if path is None or not os.path.exists(path):
                raise FileNotFoundError(
                    f"trial {trial.trial_id} has no saved model"
                    + (f" at {path}" if path else "")
                    + "; rebuild it with hypermodel.build(get_best_hyperparameters()[0]) "
                    "and train it."
                )
            try:
                models.append(keras.saving.load_model(path, safe_mode=True))
            except ValueError as exc:
                raise ValueError(
                    f"{exc}\n(tunefleet loads saved models with safe_mode=True; a model with "
                    f"Lambda layers can be loaded, if you trust {path}, with "
                    "keras.saving.load_model(path, safe_mode=False).)"
                ) from exc
        return models

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the ``num_trials`` best trials (as Keras Tuner does)."""
        trials = self.oracle.get_best_trials(num_trials)
        print("Results summary")
        print(f"Results in {self.project_dir}")
        print(f"Showing {len(trials)} best trials")
        objective = self._objective
        print(f'Objective(name="{objective.name}", direction="{objective.direction}")')
        for trial in trials:
            print()
            trial.summary()

    def trials_dataframe(self) -> Any:
        """Every counted trial as a pandas DataFrame, one row per trial.

        Columns: ``trial``, ``state``, ``score``, ``std`` (over folds), ``duration_s``,
        one column per hyperparameter, ``error``.
        """
        import pandas as pd

        study = self._read_study()
        rows = []
        for frozen in [] if study is None else study.get_trials(deepcopy=False):
            if not counts(frozen):
                continue
            view = self.oracle._view(frozen)
            folds = view.cv_scores or []
            row: dict[str, Any] = {
                "trial": frozen.number,
                "state": frozen.state.name,
                "score": frozen.value,
                "std": float(np.std(folds)) if len(folds) > 1 else math.nan,
                "duration_s": frozen.duration.total_seconds() if frozen.duration else None,
            }
            row.update(view.hyperparameters.values)
            row["error"] = view.error
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(objective={self._objective!r}, project_dir="
            f"{self.project_dir!r}, study_name={self._study_name()!r})"
        )


_LOGGED: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _LOGGED:
        _LOGGED.add(message)
        logging.getLogger("tunefleet").info(message)


class _Watch:
    """After each trial: one line (when no bar is shown), the bar, the failure streak."""

    def __init__(self, tuner: BaseTuner, study: optuna.Study, display: int) -> None:
        self.tuner = tuner
        self.study = study
        self.display = display
        self.bar: SearchProgress | None = None
        self.streak: list[str] = []
        self.start = time.perf_counter()

    def _best(self) -> Trial | None:
        best = self.tuner.oracle.get_best_trials(1)
        return best[0] if best else None

    def __call__(self, frozen: FrozenTrial) -> None:
        objective = self.tuner._objective
        best = self._best()
        if self.bar is not None and self.bar.enabled:
            self.poll()
        elif self.display:
            value = "" if frozen.value is None else f" {objective.name}={frozen.value:.4g}"
            seconds = frozen.duration.total_seconds() if frozen.duration else 0.0
            so_far = "" if best is None else f"; best {best.score:.4g} (trial {best.trial_id})"
            params = frozen.user_attrs.get(HP_ATTR, frozen.params)
            print(
                f"Trial {frozen.number} {frozen.state.name}{value}{so_far} [{seconds:.1f}s] {params}",
                flush=True,
            )
        self._streak(frozen)

    def _streak(self, frozen: FrozenTrial) -> None:
        limit = self.tuner.max_consecutive_failed_trials
        if frozen.state == TrialState.FAIL:
            self.streak.append(frozen.user_attrs.get(ERROR_ATTR, "unknown error"))
        else:
            self.streak = []
        if limit is not None and len(self.streak) >= limit:
            raise RuntimeError(
                f"{len(self.streak)} consecutive trials failed (max_consecutive_failed_trials="
                f"{limit}); the search stops. The last error:\n{self.streak[-1]}"
            )

    def poll(self) -> None:
        if self.bar is None or not self.bar.enabled:
            return
        finished = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if counts(t) and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        ]
        best = self._best()
        self.bar.update(done=len(finished), best=None if best is None else best.score)

    def finish(self) -> None:
        best = self._best()
        elapsed = time.perf_counter() - self.start
        if best is None:
            print(f"Search done in {elapsed:.1f}s; no trial completed.", flush=True)
            return
        print(
            f"Search done in {elapsed:.1f}s. Best {self.tuner._objective.name}: "
            f"{best.score:.4g} (trial {best.trial_id}) {best.hyperparameters.values}",
            flush=True,
        )


class RandomSearch(BaseTuner):
    """Random search over the ``hp.*`` space (Keras Tuner's ``RandomSearch``).

    Takes Keras Tuner's arguments in its order (``hypermodel, objective, max_trials,
    seed, hyperparameters, tune_new_entries, allow_new_entries, max_retries_per_trial,
    max_consecutive_failed_trials``) and the keyword arguments of :class:`BaseTuner`
    (``directory``, ``project_name``, ``overwrite``, ``executions_per_trial``,
    ``storage``, ``study_name``, ``cv``, ``pruner``, ``strategy``, ``n_jobs``...).

    Example:

    >>> import keras
    >>> import tunefleet as kt
    >>> def build_model(hp):
    ...     model = keras.Sequential([keras.Input((64,)),
    ...         keras.layers.Dense(hp.Int("units", 16, 64, step=16), activation="relu"),
    ...         keras.layers.Dense(10, activation="softmax")])
    ...     model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
    ...                   "sparse_categorical_crossentropy", metrics=["accuracy"])
    ...     return model
    >>> tuner = kt.RandomSearch(build_model, objective="val_accuracy", max_trials=3,
    ...                         directory="runs", project_name="digits")  # doctest: +SKIP
    >>> tuner.search(x, y, epochs=5, validation_split=0.2)  # doctest: +SKIP
    >>> best_model = tuner.get_best_models(1)[0]  # doctest: +SKIP
    """

    _default_strategy = "random"


class GridSearch(BaseTuner):
    """Every combination of the ``hp.*`` values, each once (Keras Tuner's ``GridSearch``).

    ``hp.Choice``/``hp.Boolean``/``hp.Fixed`` give their values, ``hp.Int`` every value
    ``step`` apart, ``hp.Float`` needs a ``step``. Inactive conditional hyperparameters
    are left out of a point. Points are queued in the study, so parallel workers and
    resumed runs never repeat one. ``max_trials`` (default: all) runs the first points.
    Hyperparameters declared only in branches the default values do not reach are drawn
    at random. Arguments: as :class:`RandomSearch`.
    """

    _default_strategy = "grid"

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(hypermodel, objective, max_trials, *args, **kwargs)


class BayesianOptimization(BaseTuner):
    """Model-based search (Keras Tuner's ``BayesianOptimization``), on Optuna's TPE.

    Keras Tuner fits a Gaussian process; tunefleet uses TPE by default (it handles
    categorical and conditional ``hp`` natively and needs no PyTorch); pass
    ``strategy="gp"`` for Optuna's Gaussian process. ``alpha`` and ``beta`` (Keras
    Tuner's GP settings) are accepted and not used.

    Args:
        num_initial_points: random trials before the model is used (default: a
            quarter of ``max_trials``, between 3 and 10).
        other arguments: as :class:`RandomSearch`, in Keras Tuner's order
            (``hypermodel, objective, max_trials, num_initial_points, alpha, beta, seed,
            ...``).
    """

    _default_strategy = "tpe"

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int = 10,
        num_initial_points: int | None = None,
        alpha: float = 1e-4,
        beta: float = 2.6,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.num_initial_points = num_initial_points
        self.alpha = alpha
        self.beta = beta
        super().__init__(hypermodel, objective, max_trials, *args, **kwargs)

    def _check_settings(self) -> None:
        super()._check_settings()
        self._check_int("num_initial_points", self.num_initial_points, 1, allow_none=True)
