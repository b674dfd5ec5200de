"""Fleet training for the Keras Tuner-style tuners: a batch of trials trained at once.

A tuner's search space is define-by-run: a trial's hyperparameters exist only once
``build(hp)`` has run. :class:`TunerFleet` therefore builds each trial of a batch
once through its Optuna trial (which samples it; that model is handed to the
:class:`~tunefleet.fleet.FleetTrainer`, not built again), then trains the batch
fold by fold as fleets, runs of ``executions_per_trial`` included. Every epoch, the
objective of each trial is reported to the study in one transaction and the pruner
is asked; each trial keeps the weights of its best epoch, which are saved as the
trial's model, as one-by-one training does.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import optuna

from tunefleet.attrs import BEST_STEP_ATTR, CV_ATTR, ERROR_ATTR, HP_ATTR, METRICS_ATTR, error_text
from tunefleet.execution import Ask
from tunefleet.fleet.export import TrialWeights, export_trial
from tunefleet.fleet.introspect import UnsupportedModelError
from tunefleet.fleet.refill import NewTrial
from tunefleet.keras.memory import release_memory
from tunefleet.study import report_many, set_user_attrs
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

    if keras.backend.backend() != "jax":
        return f"fleet training needs the JAX backend (Keras runs on {keras.backend.backend()})"
    if type(runner.hypermodel).fit is not HyperModel.fit:
        return f"{type(runner.hypermodel).__name__} overrides HyperModel.fit"
    other = sorted(set(fit_kwargs) - FLEET_FIT_ARGUMENTS)
    if other:
        return f"search({', '.join(k + '=' for k in other)}) is not supported by fleet training"
    tuned = sorted(set(runner.tuned) - {"batch_size", "epochs"})
    if tuned:
        return f"only batch_size and epochs can be tuned in search() with fleets, not {tuned}"
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


@dataclass(eq=False)
class _Member:
    """One trial of a batch: its settings and what its runs gave so far."""

    trial: optuna.Trial
    hp: HyperParameters
    config: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    batch_size: int = 32
    solo: bool = False  # trains one by one (a layer fleets do not support)
    outcome: float | str | None = None  # "pruned" / "failed" once decided
    folds: list[list[float]] = field(default_factory=list)
    fit_times: list[float] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    best: float = math.nan
    best_step: int | None = None
    best_model: tuple[int, TrialWeights] | None = None  # (seed, weights) of the best run
    model: keras.Model | None = None  # its first build, which the best weights load into

    @property
    def alive(self) -> bool:
        return self.outcome is None


#: One fleet member: a trial and the index of one of its ``executions_per_trial`` runs.
_Entry = tuple[_Member, int]


@dataclass
class _FoldFit:
    """The entries of one fold's fleet fit and each one's best epoch so far.

    Entries are indexed like the fit's trials: refills append theirs in the order
    they hand them to the trainer.
    """

    fold: int
    executions: int
    seed_of: Callable[[int, int], int]
    entries: list[_Entry] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    best_epoch: list[int | None] = field(default_factory=list)
    best_logs: list[dict[str, float]] = field(default_factory=list)
    best_weights: dict[int, TrialWeights] = field(default_factory=dict)

    def add(self, entries: list[_Entry]) -> list[NewTrial]:
        """Append entries; return them as the trainer's trials."""
        out = []
        for m, e in entries:
            run = self.fold * self.executions + e
            seed = self.seed_of(m.trial.number, run)
            self.entries.append((m, e))
            self.runs.append(run)
            self.seeds.append(seed)
            self.best.append(math.nan)
            self.best_epoch.append(None)
            self.best_logs.append({})
            out.append(NewTrial(m.config, seed=seed, batch_size=m.batch_size, epochs=m.epochs))
        return out

    def refill(self, more: Callable[[int], list[_Member]], epoch: int, free: int) -> list[NewTrial]:
        """The trainer's ``refill``: all runs of the new members ``more`` gives."""
        new = more(free // self.executions)
        return self.add([(m, e) for m in new for e in range(self.executions)])


@dataclass
class TunerFleet:
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
    _trainer: Any = field(default=None, repr=False)

    @property
    def trainer(self) -> Any:
        if self._trainer is None:
            from tunefleet.fleet import FleetTrainer

            seed = self.runner.seed or 0
            self._trainer = FleetTrainer(FixedBuild(self.runner), seed=seed, **self.trainer_kwargs)
        return self._trainer

    # -- a batch -------------------------------------------------------------------------
    def run_batch(
        self, study: optuna.Study, trials: list[optuna.Trial], ask: Ask | None = None
    ) -> list[float | str]:
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
            return self._run_batch(study, trials, ask)
        except FATAL_ERRORS as exc:
            trials[0].set_user_attr(ERROR_ATTR, error_text(f"{type(exc).__name__}: {exc}"))
            raise

    def _run_batch(
        self, study: optuna.Study, trials: list[optuna.Trial], ask: Ask | None
    ) -> list[float | str]:
        release_memory()  # the previous batch's models and (within a budget) programs
        members = [self._sample(trial) for trial in trials]
        more = None if ask is None else functools.partial(self._more, ask, members)
        executions = self.runner.executions
        pending = [(m, e) for m in members if m.alive and not m.solo for e in range(executions)]
        while pending:  # refills that fit no free row train in a fit of their own
            pending = self._train_fold(study, 0, pending, more)
        for fold in range(1, self.runner.n_folds):
            alive = [m for m in members if m.alive and not m.solo]
            if alive:
                self._train_fold(study, fold, [(m, e) for m in alive for e in range(executions)])
        return [self._solo(m.trial) if m.solo else self._finish(m) for m in members]

    def _more(self, ask: Ask, members: list[_Member], n: int) -> list[_Member]:
        """Ask up to ``n`` more trials and sample them into ``members``; return those
        a fleet can train."""
        new = [self._sample(trial) for trial in ask(n)]
        members.extend(new)
        self.stats["refilled"] += len(new)
        return [m for m in new if m.alive and not m.solo]

    def _sample(self, trial: optuna.Trial) -> _Member:
        """Build the trial's first model through the trial (drawing its hyperparameters)."""
        runner = self.runner
        hp = HyperParameters._bound(runner.space, trial)
        member = _Member(trial, hp, folds=[[] for _ in range(runner.n_folds)])
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
            self._fail(member, exc)
        return member

    def _solo(self, trial: optuna.Trial) -> float | str:
        """One-by-one training of a trial whose model fleets cannot train."""
        try:
            return self.runner(trial)
        except optuna.TrialPruned:
            return "pruned"
        except TrialFailed:
            return "failed"

    # -- one fold ------------------------------------------------------------------------
    def _train_fold(
        self,
        study: optuna.Study,
        fold: int,
        entries: list[_Entry],
        more: Callable[[int], list[_Member]] | None = None,
    ) -> list[_Entry]:
        """Train ``entries`` on ``fold`` as fleets; return the refilled ones not started.

        With ``more``, rows freed during the fit are refilled with the members
        ``more(n)`` returns (up to ``n`` new trials, all their runs).
        """
        runner = self.runner
        executions = runner.executions
        _, args, kwargs = runner.runs(dict(runner.fit_kwargs))[fold * executions]
        x, y = fit_xy(args, kwargs)
        fit = _FoldFit(fold, executions, runner.run_seed)
        initial = fit.add(entries)
        refill = None if more is None else functools.partial(fit.refill, more)
        start = time.perf_counter()
        result = self.trainer.fit(
            [t.config for t in initial],
            x,
            y,
            epochs=max(m.epochs for m, _ in entries),
            batch_size=[m.batch_size for m, _ in entries],
            validation_data=kwargs.get("validation_data"),
            validation_split=float(kwargs.get("validation_split") or 0.0),
            shuffle=bool(kwargs.get("shuffle", True)),
            on_epoch_end=self._epoch_callback(study, fit),
            seeds=fit.seeds[: len(entries)],
            refill=refill,
        )
        elapsed = time.perf_counter() - start
        self.stats["train"] += elapsed
        self.stats["compile"] = self.trainer.compile_seconds
        not_started = set(result.not_started)
        for k, (m, _) in enumerate(fit.entries):
            if k in not_started:
                continue
            m.fit_times[fold] += elapsed / (len(fit.entries) - len(not_started))
            if m.outcome == "pruned" or not m.alive:
                continue
            m.folds[fold].append(float(fit.best[k]))
            m.metrics.append(fit.best_logs[k])
            if runner.objective.better(float(fit.best[k]), m.best):
                m.best, m.best_step = float(fit.best[k]), fit.best_epoch[k]
                if k in fit.best_weights:
                    m.best_model = (fit.seeds[k], fit.best_weights[k])
        return [fit.entries[k] for k in sorted(not_started)]

    def _epoch_callback(self, study: optuna.Study, fit: _FoldFit) -> Callable[[int, Any], Any]:
        """The fit's ``on_epoch_end``: report, keep the best epochs, prune, stop finished runs."""
        runner = self.runner
        objective = runner.objective

        def on_epoch_end(epoch: int, logs: Any) -> np.ndarray:
            start = time.perf_counter()
            if objective.name not in logs:
                raise ObjectiveNotReported(objective.name, list(logs))
            values = logs[objective.name]
            keep = np.array(logs.active, dtype=bool)
            reports, improved = [], []
            for k, (m, _) in enumerate(fit.entries):
                if not keep[k] or not m.alive:
                    keep[k] = False
                    continue
                if not math.isfinite(float(logs["loss"][k])):  # as TerminateOnNaN
                    keep[k] = False
                    continue
                value, own_epoch = float(values[k]), int(logs.trial_epoch[k])
                if objective.better(value, fit.best[k]):
                    fit.best[k], fit.best_epoch[k] = value, own_epoch
                    fit.best_logs[k] = {key: float(logs[key][k]) for key in logs}
                    improved.append(k)
                if math.isfinite(value):
                    reports.append((m.trial, fit.runs[k] * m.epochs + own_epoch, value))
                if own_epoch + 1 >= m.epochs:
                    keep[k] = False
            if runner.save_models and improved:
                fit.best_weights.update(logs.weights(improved))
            report_many(study, reports)
            if runner.report:
                trained = {id(m): m for k, (m, _) in enumerate(fit.entries) if logs.active[k]}
                for m in trained.values():
                    if m.alive and m.trial.should_prune():
                        m.outcome = "pruned"
            keep &= np.array([m.alive for m, _ in fit.entries])
            self.stats["bookkeeping"] += time.perf_counter() - start
            return keep

        return on_epoch_end

    # -- bookkeeping ---------------------------------------------------------------------
    def _fail(self, member: _Member, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        member.trial.set_user_attr(ERROR_ATTR, error_text(message))
        member.outcome = "failed"

    def _finish(self, m: _Member) -> float | str:
        runner = self.runner
        trial = m.trial
        model, m.model = m.model, None
        attrs: dict[str, Any] = {HP_ATTR: dict(m.hp.values)} if m.hp.values else {}
        if m.outcome != "failed":
            attrs[CV_ATTR] = cv_record(runner.objective.name, m.folds, m.fit_times, runner.n_folds)
        if m.alive:  # trained to the end
            attrs[METRICS_ATTR] = mean_metrics(m.metrics)
            if m.best_step is not None:
                attrs[BEST_STEP_ATTR] = m.best_step
        set_user_attrs(trial.study, trial, attrs)
        if not m.alive:  # "pruned" or "failed"
            return m.outcome
        if m.best_model is not None:
            seed, weights = m.best_model
            model = export_trial(self.trainer.build_fn, m.config, seed, weights, model=model)
            runner.save_model(trial, model_to_save(model))
        scores = [float(np.mean(f)) if f else math.nan for f in m.folds]
        return float(np.mean(scores))


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
