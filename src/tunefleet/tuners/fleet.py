"""Fleet training for the Keras Tuner-style tuners: a batch of trials trained at once.

:class:`TunerFleet` is the tuners' adapter of the one fleet batch
(:class:`tunefleet.fleet_batch.FleetBatch`). A tuner's search space is define-by-run: a
trial's hyperparameters exist only once ``build(hp)`` has run. Each trial of a batch is
therefore built once through its Optuna trial (which samples it; that model is handed to
the :class:`~tunefleet.fleet.FleetTrainer`, not built again), then the batch trains fold
by fold as fleets, runs of ``executions_per_trial`` included. An epoch's value is the
objective in the fleet's logs; each run keeps the weights of its best epoch, and the best
run's are saved as the trial's model, as one-by-one training does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import optuna

from tunefleet import fleet_batch
from tunefleet.attrs import BEST_STEP_ATTR, CV_ATTR, ERROR_ATTR, HP_ATTR, METRICS_ATTR, error_text
from tunefleet.execution import Ask
from tunefleet.fleet.export import TrialWeights, export_trial
from tunefleet.fleet.introspect import UnsupportedModelError
from tunefleet.fleet_batch import FitData, FleetBatch, Member, Outcome, Row, finish_trial
from tunefleet.keras.memory import release_memory
from tunefleet.trial import TrialFailed
from tunefleet.tuners.hyperparameters import HyperParameters
from tunefleet.tuners.trial_runner import (
    FATAL_ERRORS,
    ObjectiveNotReported,
    RunResult,
    TrialRunner,
    check_model,
    cv_record,
    mean_metrics,
)

logger = logging.getLogger("tunefleet")

#: ``search()`` arguments fleet training understands; any other one means one by one.
FLEET_FIT_ARGUMENTS = frozenset(
    {"x", "y", "epochs", "batch_size", "validation_data", "validation_split", "shuffle", "verbose"}
)


def fleet_unsupported_reason(
    runner: TrialRunner, fit_args: tuple[Any, ...], fit_kwargs: Mapping[str, Any]
) -> str | None:
    """Why a tuner's search cannot train its trials as fleets (``None`` if it can)."""
    from tunefleet.tuners.hypermodel import HyperModel

    def own_fit() -> str | None:
        if type(runner.hypermodel).fit is not HyperModel.fit:
            return f"{type(runner.hypermodel).__name__} overrides HyperModel.fit"
        return None

    def arguments() -> str | None:
        other = sorted(set(fit_kwargs) - FLEET_FIT_ARGUMENTS)
        if other:
            return f"search({', '.join(k + '=' for k in other)}) is not supported by fleet training"
        tuned = sorted(set(runner.tuned) - {"batch_size", "epochs"})
        if tuned:
            return f"only batch_size and epochs can be tuned in search() with fleets, not {tuned}"
        return None

    def arrays() -> str | None:
        x, y = fit_xy(fit_args, fit_kwargs)
        if not _is_array(x) or not _is_array(y):
            return "fleet training needs x and y as single arrays (not datasets or several inputs)"
        validation = fit_kwargs.get("validation_data")
        if validation is not None and (
            not isinstance(validation, (tuple, list))
            or len(validation) != 2
            or not all(_is_array(v) for v in validation)
        ):
            return "fleet training needs validation_data=(x_val, y_val) as arrays"
        return None

    return fleet_batch.fleet_unsupported_reason(own_fit, arguments, arrays)


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "__len__") and not isinstance(value, dict)


def fit_xy(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    """``x`` and ``y`` of ``model.fit``-style arguments (positional or keyword)."""
    x = args[0] if len(args) > 0 else kwargs.get("x")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    return x, y


class FixedBuild:
    """``build(**params)``: the hypermodel built with a trial's stored parameter values."""

    def __init__(self, runner: TrialRunner) -> None:
        self.runner = runner

    def __call__(self, **params: Any) -> keras.Model:
        runner = self.runner
        hp = HyperParameters._bound(runner.space, optuna.trial.FixedTrial(params))
        return check_model(runner.hypermodel.build(hp), runner.hypermodel, runner.compile_kwargs)


class ObjectiveInLogs:
    """An epoch's value for the tuners' fleets: the objective in the fleet's logs.

    A mixin for the adapters of :class:`~tunefleet.fleet_batch.FleetBatch` that have a
    ``runner`` (:class:`~tunefleet.tuners.trial_runner.TrialRunner`). A run whose loss is
    not finite stops, as with ``TerminateOnNaN``; its trial keeps its best epoch.

    Example:

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from tunefleet.fleet_batch import Row
    >>> from tunefleet.tuners.fleet import ObjectiveInLogs
    >>> from tunefleet.tuners.oracle import Objective
    >>> values = ObjectiveInLogs()
    >>> values.runner = SimpleNamespace(objective=Objective("val_loss", "min"))
    >>> row = Row(None, {}, seed=0, batch_size=32, epochs=1, index=1)
    >>> values.values({"val_loss": np.array([0.5, 0.25])}, [row])
    [0.25]
    """

    runner: TrialRunner

    def values(self, logs: Any, rows: Sequence[Row]) -> list[float]:
        """The objective of each row, from the fleet's logs."""
        name = self.runner.objective.name
        if name not in logs:
            raise ObjectiveNotReported(name, list(logs))
        return [float(logs[name][row.index]) for row in rows]

    def on_nan(self, row: Row, loss: float) -> None:
        """The run stops; its trial keeps its best epoch."""


@dataclass(eq=False)
class _Member(Member):
    """One trial of a batch: its settings and what its runs gave so far."""

    hp: HyperParameters | None = None
    config: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    batch_size: int = 32
    folds: list[list[float]] = field(default_factory=list)
    fit_times: list[float] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    best: float = math.nan
    best_step: int | None = None
    best_model: tuple[int, TrialWeights] | None = None  # (seed, weights) of the best run
    model: keras.Model | None = None  # its first build, which the best weights load into


@dataclass
class TunerFleet(ObjectiveInLogs):
    """Run batches of a tuner's trials as fleets (see the module docstring).

    Args:
        runner: The tuner's one-by-one trial function, whose settings (hypermodel,
            space, objective, data, folds, executions, seed, pruning, saving) it shares.
        trainer_kwargs: Extra arguments of :class:`tunefleet.fleet.FleetTrainer`.
        stats: Seconds spent training (``"compile"``: the part spent compiling) and
            in bookkeeping, and the number of trials asked to refill freed rows
            (``"refilled"``).
    """

    runner: TrialRunner
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, float] = field(
        default_factory=lambda: {"train": 0.0, "compile": 0.0, "bookkeeping": 0.0, "refilled": 0}
    )
    _batch: FleetBatch = field(init=False, repr=False)
    _build: FixedBuild = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._build = FixedBuild(self.runner)
        self._batch = FleetBatch(
            self,
            prune=self.runner.report,
            keep_weights=self.runner.save_models,
            better=self.runner.objective.better,
            trainer_kwargs=self.trainer_kwargs,
            stats=self.stats,
        )

    @property
    def trainer(self) -> Any:
        """The :class:`~tunefleet.fleet.FleetTrainer` of every batch (built on first use)."""
        return self._batch.trainer(self._build, self.runner.seed or 0)

    # -- a batch -------------------------------------------------------------------------
    def run_batch(
        self, study: optuna.Study, trials: list[optuna.Trial], ask: Ask | None = None
    ) -> list[Outcome]:
        """Train ``trials`` together; return each one's value, ``"pruned"`` or ``"failed"``.

        With ``ask`` (see :func:`tunefleet.execution.run_trial_batches`), rows that
        the first fold's fit frees (trials pruned or stopped before the fit's last
        epoch) are refilled with new trials asked from the study, sampled and built
        like the batch's own; their outcomes follow those of ``trials``, in the
        order they were asked.

        An error that would fail every trial (e.g. the objective is not in the logs)
        fails the first trial of the batch with its message, as one-by-one training
        would, leaves the others interrupted (not counted, run again on resume) and
        propagates.
        """
        try:
            release_memory()  # the previous batch's models and (within a budget) programs
            return self._batch.run(study, trials, ask)
        except FATAL_ERRORS as exc:
            trials[0].set_user_attr(ERROR_ATTR, error_text(f"{type(exc).__name__}: {exc}"))
            raise

    # -- the adapter of the fleet batch --------------------------------------------------
    @property
    def n_folds(self) -> int:
        return self.runner.n_folds

    @property
    def runs_per_member(self) -> int:
        return self.runner.executions

    def member(self, trial: optuna.Trial) -> _Member:
        """Build the trial's first model through the trial (drawing its hyperparameters)."""
        runner = self.runner
        hp = HyperParameters._bound(runner.space, trial)
        member = _Member(trial, hp=hp, folds=[[] for _ in range(runner.n_folds)])
        member.fit_times = [0.0] * runner.n_folds
        try:
            kwargs = runner.fit_kwargs_for(hp)
            member.epochs = int(kwargs.get("epochs", 1))
            member.batch_size = int(kwargs.get("batch_size") or 32)
            seed = runner.run_seed(trial.number, 0)
            keras.utils.set_random_seed(seed)
            model = runner.build(hp, trial, 0)
            member.config = dict(trial.params)
            self.trainer.adopt(member.config, seed, model)
            member.model = model  # the fleet only reads it; the export loads into it
        except UnsupportedModelError as exc:
            logger.info("trial %d trains one by one: %s", trial.number, exc)
            member.solo = True
        except FATAL_ERRORS:
            raise
        except Exception as exc:  # the user's build failed: a failed trial
            message = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr(ERROR_ATTR, error_text(message))  # now: a batch that dies fails it
            member.outcome = "failed"
        return member

    def rows(self, fold: int, members: list[Member]) -> list[Row]:
        """Every run (execution) of each member on ``fold``."""
        runner = self.runner
        rows = []
        for m in members:
            assert isinstance(m, _Member)
            for e in range(runner.executions):
                run = fold * runner.executions + e
                seed = runner.run_seed(m.trial.number, run)
                rows.append(Row(m, m.config, seed, m.batch_size, m.epochs, run, run * m.epochs))
        return rows

    def fit_data(self, fold: int, rows: list[Row]) -> FitData:
        runner = self.runner
        _, args, kwargs = runner.runs(dict(runner.fit_kwargs))[fold * runner.executions]
        x, y = fit_xy(args, kwargs)
        return FitData(
            self._build,
            x,
            y,
            validation_data=kwargs.get("validation_data"),
            validation_split=float(kwargs.get("validation_split") or 0.0),
            shuffle=bool(kwargs.get("shuffle", True)),
            seed=runner.seed or 0,
        )

    def trained(self, fold: int, rows: list[Row]) -> None:
        objective = self.runner.objective
        for row in rows:
            m = row.member
            assert isinstance(m, _Member)
            m.fit_times[fold] += row.fit_time
            if not m.alive:
                continue
            m.folds[fold].append(float(row.best))
            m.metrics.append(row.best_logs)
            if objective.better(float(row.best), m.best):
                m.best, m.best_step = float(row.best), row.best_epoch
                if row.weights is not None:
                    m.best_model = (row.seed, row.weights)

    def finish(self, member: Member) -> Outcome:
        assert isinstance(member, _Member)
        if member.solo:
            return self._solo(member.trial)
        runner = self.runner
        trial = member.trial
        model, member.model = member.model, None
        hp = member.hp
        attrs: dict[str, Any] = {HP_ATTR: dict(hp.values)} if hp is not None and hp.values else {}
        if member.outcome != "failed":
            attrs[CV_ATTR] = cv_record(
                runner.objective.name, member.folds, member.fit_times, runner.n_folds
            )
        if member.alive:  # trained to the end
            attrs[METRICS_ATTR] = mean_metrics(member.metrics)
            if member.best_step is not None:
                attrs[BEST_STEP_ATTR] = member.best_step
        scores = [float(np.mean(f)) if f else math.nan for f in member.folds]
        outcome = finish_trial(member, attrs, float(np.mean(scores)) if member.alive else math.nan)
        if member.alive and member.best_model is not None:
            seed, weights = member.best_model
            model = export_trial(self._build, member.config, seed, weights, model=model)
            runner.save_model(trial, model_to_save(model))
        return outcome

    def _solo(self, trial: optuna.Trial) -> Outcome:
        """One-by-one training of a trial whose model fleets cannot train."""
        try:
            return self.runner(trial)
        except optuna.TrialPruned:
            return "pruned"
        except TrialFailed:
            return "failed"


def model_to_save(model: keras.Model) -> RunResult:
    """A run result holding just a model to save (weights already at the best epoch)."""
    return RunResult(
        model=model,
        best=math.nan,
        best_epoch=None,
        metrics={},
        best_weights=None,
        epochs_done=0,
        pruned=False,
        fit_time=0.0,
    )
