"""The tuners' face of the trial runner: ``build(hp)`` -> ``fit`` -> the objective.

:class:`TrialRunner` is what a tuner runs for each trial, in-process or in worker
processes (it is picklable when the hypermodel is). It binds the trial's ``hp`` to the
shared space and runs the trial through the engine's trial runner
(:class:`tunefleet.runner.Runner`), supplying what is the tuners' own: building and
checking the model (:func:`check_model`), training each run (``cv`` folds x
``executions_per_trial``) with a Keras callback that hands each epoch's objective to the
runner's reporter (which reports it and asks the pruner), reading the objective from
what ``fit`` returned, and saving the best run's model. The runner retries failed runs
``max_retries`` times, then fails the trial, and stores the per-fold record (the shape
of :func:`cv_record`); the face adds the mean metrics (:func:`mean_metrics`), the best
step and the hyperparameters, all written with the trial's end. Fleet training
(:mod:`tunefleet.tuners.fleet`) and ``Hyperband`` reuse its pieces.
"""

from __future__ import annotations

import math
import numbers
import os
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import optuna

from tunefleet.attrs import BEST_STEP_ATTR, HP_ATTR, METRICS_ATTR, MODEL_ATTR
from tunefleet.keras.initializer_draws import shared_draw_programs
from tunefleet.keras.memory import release_memory
from tunefleet.keras.user_callbacks import fresh_callbacks
from tunefleet.runner import EpochReporter, OnError, Run, Runner, RunScores
from tunefleet.storage import record_at_end
from tunefleet.trial import TrialFailed, take
from tunefleet.tuners.folds import take_inputs
from tunefleet.tuners.hypermodel import HyperModel, describe
from tunefleet.tuners.hyperparameter_types import HyperParameter, HyperParameterError
from tunefleet.tuners.hyperparameters import DeclaredSpace, HyperParameters
from tunefleet.tuners.oracle import Objective

_MODEL_FILE = "model.keras"


class ObjectiveNotReported(ValueError):
    """The objective is not among the metrics the model reports.

    Raised by ``search`` at the first epoch (not recorded as a failed trial), with a
    hint: validation metrics need validation data.

    Example:

    >>> from tunefleet.tuners import ObjectiveNotReported
    >>> error = ObjectiveNotReported("val_accuracy", ["loss", "accuracy"])
    >>> isinstance(error, ValueError)
    True
    >>> print(error)  # doctest: +ELLIPSIS
    objective 'val_accuracy' is not among the metrics the model reports: ['accuracy', 'loss']. Validation metrics need validation data: ...
    """

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
FATAL_ERRORS = (ObjectiveNotReported, _ConfigurationError, HyperParameterError)


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


class _Monitor(keras.callbacks.Callback):
    """Watches the objective every epoch: checks it exists, reports it, keeps the best.

    Reporting and the pruning decision are the engine's (:class:`EpochReporter`, whose
    steps are ``run * epochs + epoch``); when the reporter says stop, the monitor stops
    training (and flags ``pruned``). ``strict``: the objective must be in every epoch's
    logs (raises at the first epoch otherwise); off for a custom ``HyperModel.fit``,
    whose return value may hold the objective instead.
    """

    def __init__(
        self,
        objective: Objective,
        reporter: EpochReporter | None,
        keep_best: bool,
        strict: bool = True,
    ) -> None:
        super().__init__()
        self.strict = strict
        self.objective = objective
        self.reporter = reporter
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
        if self.reporter is not None and self.reporter.report_epoch(epoch, value):
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
class TrialRunner:
    """The tuners' trial function: build(hp) -> fit -> objective, per fold and execution.

    Picklable (when the hypermodel is), so process workers run the very same code.
    """

    hypermodel: HyperModel
    space: DeclaredSpace
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
            fold_kwargs["validation_data"] = (take_inputs(x, test), take(y, test))
            args = (take_inputs(x, train), take(y, train))
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
        reporter: EpochReporter | None = None,
    ) -> RunResult:
        """Build (unless ``model`` is given, e.g. to continue it) and train one run.

        Each epoch's objective goes to ``reporter`` (by default one reporting to
        ``trial`` at ``step_offset + epoch`` and asking its pruner when the tuner prunes).
        """
        if model is None:
            model = self.build(hp, trial, run)
        if reporter is None and trial is not None:
            reporter = EpochReporter(trial, run, prune=self.report, offset=step_offset)
        monitor = _Monitor(
            self.objective,
            reporter,
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
    def runner(self) -> Runner:
        """The engine's runner for this face's trials."""
        return Runner(
            metrics=(self.objective.name,),
            n_folds=self.n_folds,
            prune=self.report,
            on_error=OnError.fail_trial(self.max_retries, fatal=FATAL_ERRORS),
            pruned_scores="partial",
        )

    def __call__(self, trial: optuna.Trial) -> float:
        # The previous trial's models are garbage now: free them, Keras' global state
        # and (within a budget) what they compiled, so a long search does not grow.
        release_memory()
        hp = HyperParameters._bound(self.space, trial)
        try:
            runs = _TrialRuns(self, trial, hp)
            value = self.runner().run(trial, runs)
            attrs: dict[str, Any] = {METRICS_ATTR: mean_metrics(runs.metrics)}
            if runs.best_step is not None:
                attrs[BEST_STEP_ATTR] = runs.best_step
            record_at_end(trial, attrs)
            assert isinstance(value, float)
            return value
        finally:
            if hp.values:
                record_at_end(trial, {HP_ATTR: dict(hp.values)})


class _TrialRuns:
    """The adapter of one tuner trial (see :class:`tunefleet.runner.Adapter`).

    Its runs are ``cv`` folds x executions; each builds the model, fits it with the
    reporting callback, and scores it by its best objective value. It keeps the best
    run's model saved (``save_models``) and every finished run's metrics.
    """

    def __init__(self, runner: TrialRunner, trial: optuna.Trial, hp: HyperParameters) -> None:
        self.runner = runner
        self.trial = trial
        self.hp = hp
        kwargs = runner.fit_kwargs_for(hp)
        self.epochs = int(kwargs.get("epochs", 1))
        self.plan = runner.runs(kwargs)
        self.metrics: list[dict[str, float]] = []
        self.best = math.nan
        self.best_step: int | None = None

    def runs(self) -> list[Run]:
        return [
            Run(index, fold, epochs=self.epochs, data=(args, kwargs))
            for index, (fold, args, kwargs) in enumerate(self.plan)
        ]

    def fit_and_score(self, run: Run, reporter: EpochReporter) -> RunScores:
        runner = self.runner
        args, kwargs = run.data
        result = runner.fit_run(self.trial, self.hp, run.index, args, kwargs, reporter=reporter)
        try:
            if result.pruned:
                return RunScores(test={}, fit_time=result.fit_time)
            self.metrics.append(result.metrics)
            if runner.objective.better(result.best, self.best):
                self.best, self.best_step = result.best, result.best_epoch
                if runner.save_models:
                    runner.save_model(self.trial, result)
            return RunScores(test={runner.objective.name: result.best}, fit_time=result.fit_time)
        finally:
            del result

    def describe_error(self, run: Run, exc: BaseException) -> str:
        return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def cv_record(
    name: str, folds: list[list[float]], fit_times: list[float], n_folds: int
) -> dict[str, Any]:
    """Per-fold scores in the shape of the sklearn face's ``tunefleet:cv`` record."""
    return {
        "test": {name: [float(np.mean(f)) if f else math.nan for f in folds]},
        "fit_time": list(fit_times),
        "score_time": [0.0] * n_folds,
    }


def mean_metrics(metrics: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the runs that report it."""
    keys = {k for m in metrics for k in m}
    return {k: float(np.mean([m[k] for m in metrics if k in m])) for k in sorted(keys)}
