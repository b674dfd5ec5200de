"""Hyperband's plan and brackets, as Keras Tuner plans and runs them.

:func:`hyperband_plan` computes the brackets (rounds of configurations and epochs) of
:class:`tunefleet.tuners.Hyperband`; a :class:`Bracket` runs one: it asks its trials
within the plan's budget through :mod:`tunefleet.execution`, trains the configurations of
each round (one by one, or together through a :class:`RoundTrainer` such as
:class:`tunefleet.tuners.hyperband_fleet.RoundFleet`), keeps the best ``1/factor`` for the
next round, continues the survivors from their checkpoints, and tells each trial once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Protocol

import keras
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tunefleet.attrs import (
    BEST_STEP_ATTR,
    BRACKET_ATTR,
    CONTINUES_ATTR,
    CV_ATTR,
    ERROR_ATTR,
    HP_ATTR,
    INTERRUPTED,
    METRICS_ATTR,
    PROGRESS_ATTR,
    ROUND_ATTR,
    STATUS_ATTR,
    error_text,
    non_finite_error,
)
from tunefleet.execution import ask_trial, finished_elsewhere, interrupt, tell
from tunefleet.keras.memory import release_memory
from tunefleet.strategies import n_brackets
from tunefleet.study import Budget, Worker, counts, set_user_attrs
from tunefleet.trial import TrialFailed
from tunefleet.tuners.hyperparameter_types import suggest
from tunefleet.tuners.hyperparameters import HyperParameters
from tunefleet.tuners.oracle import Objective
from tunefleet.tuners.search_watch import SearchWatch
from tunefleet.tuners.trial_runner import FATAL_ERRORS, TrialRunner, cv_record, mean_metrics

logger = logging.getLogger("tunefleet")

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class Round:
    """A round of a bracket: ``configs`` configurations trained up to ``epochs`` epochs."""

    configs: int
    epochs: int


@dataclass(frozen=True)
class HyperbandPlan:
    """Every bracket's rounds, in the order they run.

    Example:

    >>> plan = hyperband_plan(max_epochs=9, factor=3)
    >>> [[(r.configs, r.epochs) for r in b] for b in plan.brackets]
    [[(9, 1), (3, 3), (1, 9)], [(5, 3), (2, 9)], [(3, 9)]]
    >>> plan.n_trials, plan.total_epochs()
    (17, 75)
    """

    max_epochs: int
    factor: int
    iterations: int
    brackets: tuple[tuple[Round, ...], ...]

    @property
    def n_trials(self) -> int:
        """Configurations (Optuna trials) the search runs in all."""
        return sum(rounds[0].configs for rounds in self.brackets)

    def total_epochs(self, runs: int = 1) -> int:
        """Epochs trained in all when nothing fails (``runs``: folds x executions)."""
        total = 0
        for rounds in self.brackets:
            done = 0
            for r in rounds:
                total += r.configs * (r.epochs - done)
                done = r.epochs
        return total * runs

    def settings(self) -> dict[str, int]:
        return {"max_epochs": self.max_epochs, "factor": self.factor, "iterations": self.iterations}

    def describe(self, runs: int = 1) -> str:
        per = f" ({self.total_epochs()} per run x {runs} runs)" if runs > 1 else ""
        lines = [
            f"Hyperband plan (max_epochs={self.max_epochs}, factor={self.factor}, "
            f"hyperband_iterations={self.iterations}): {len(self.brackets)} brackets, "
            f"{self.n_trials} trials, {self.total_epochs(runs)} epochs in total{per}."
        ]
        for i, rounds in enumerate(self.brackets):
            steps = " -> ".join(
                f"{r.configs} x {r.epochs} epoch{'s' if r.epochs > 1 else ''}" for r in rounds
            )
            lines.append(f"  bracket {i}: {steps}")
        return "\n".join(lines)


def hyperband_plan(max_epochs: int, factor: int = 3, iterations: int = 1) -> HyperbandPlan:
    """Keras Tuner's bracket schedule (with exact integer logarithms).

    Bracket ``s`` (``s_max`` down to 0, ``s_max + 1`` brackets: see
    :func:`tunefleet.strategies.n_brackets`) runs ``s + 1`` rounds; round ``r`` keeps
    ``ceil(end / (s + 1) * factor**(s - r))`` configurations, ``end = ceil(1 +
    log_factor(max_epochs))``, trained to ``ceil(max_epochs / factor**(s - r))`` epochs.

    Example:

    >>> from tunefleet.tuners import hyperband_plan
    >>> plan = hyperband_plan(max_epochs=4, factor=2)
    >>> print(plan.describe())
    Hyperband plan (max_epochs=4, factor=2, hyperband_iterations=1): 3 brackets, 10 trials, 30 epochs in total.
      bracket 0: 4 x 1 epoch -> 2 x 2 epochs -> 1 x 4 epochs
      bracket 1: 3 x 2 epochs -> 2 x 4 epochs
      bracket 2: 3 x 4 epochs
    """
    s_max = n_brackets(1, max_epochs, factor) - 1
    # ceil(1 + log_factor(max_epochs)), exactly: 1 + s_max for a power of factor, else 2 + s_max
    end_size = s_max + (1 if factor**s_max == max_epochs else 2)
    brackets = []
    for _ in range(iterations):
        for s in range(s_max, -1, -1):
            rounds = tuple(
                Round(
                    configs=math.ceil(end_size / (s + 1) * factor ** (s - r)),
                    epochs=math.ceil(max_epochs / factor ** (s - r)),
                )
                for r in range(s + 1)
            )
            brackets.append(rounds)
    return HyperbandPlan(max_epochs, factor, iterations, tuple(brackets))


class RoundTrainer(Protocol):
    """Trains a round's configurations together (:class:`~tunefleet.tuners.hyperband_fleet.RoundFleet`)."""

    batch_size: int

    def advance(self, bracket: Bracket, members: list[BracketMember], target: int) -> None:
        """Train ``members`` of ``bracket`` up to ``target`` epochs."""


def finished_count(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if counts(t) and t.state in _FINISHED)


def waiting_to_continue(study: optuna.Study) -> bool:
    """Whether interrupted trials wait to be continued."""
    trials = study.get_trials(deepcopy=False)
    continued = {t.user_attrs.get(CONTINUES_ATTR) for t in trials}
    return any(
        t.user_attrs.get(STATUS_ATTR) == INTERRUPTED
        and BRACKET_ATTR in t.user_attrs
        and t.number not in continued
        for t in trials
    ) or any(t.state == TrialState.WAITING for t in trials)


@dataclass
class BracketMember:
    """A configuration alive in its bracket."""

    trial: optuna.Trial
    hp: HyperParameters
    epochs: int
    checkpoints: list[str] | None
    best: list[float]
    metrics: list[dict[str, float]]
    best_step: list[int | None]
    done: bool = False

    @classmethod
    def fresh(cls, trial: optuna.Trial, hp: HyperParameters, n_runs: int) -> BracketMember:
        """A configuration that has not trained yet."""
        return cls(trial, hp, 0, None, [math.nan] * n_runs, [{}] * n_runs, [None] * n_runs)

    def score(self) -> float:
        values = [b for b in self.best if math.isfinite(b)]
        return float(sum(values) / len(values)) if len(values) == len(self.best) else math.nan


class Bracket:
    """Run (or finish) one bracket: rounds in order, survivors continued from checkpoints.

    Its trials are asked within ``budget`` (default: the tuner's plan) and told through
    :mod:`tunefleet.execution`; a member whose trial another process finished first
    (see :func:`~tunefleet.execution.finished_elsewhere`) leaves the bracket as stored
    there, counted once, and gives its place to the others.
    """

    def __init__(
        self,
        objective: Objective,
        max_epochs: int,
        study: optuna.Study,
        runner: TrialRunner,
        worker: Worker,
        watch: SearchWatch,
        index: int,
        rounds: tuple[Round, ...],
        fleet: RoundTrainer | None,
        budget: Budget,
    ) -> None:
        self.max_epochs = max_epochs
        self.budget = budget
        self.fleet = fleet
        self.study = study
        self.runner = runner
        self.worker = worker
        self.watch = watch
        self.index = index
        self.rounds = rounds
        self.objective = objective
        self.n_runs = runner.n_folds * runner.executions
        self.members: list[BracketMember] = []

    # -- membership ----------------------------------------------------------------------
    def run(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        by_number = {t.number: t for t in trials}
        mine = [t for t in trials if t.user_attrs.get(BRACKET_ATTR) == self.index]
        running = [t.number for t in mine if t.state == TrialState.RUNNING]
        if running:
            raise RuntimeError(
                f"trials {running} of Hyperband bracket {self.index} of study "
                f"{self.study.study_name!r} are being run by another live process; Hyperband "
                "runs in one process per study."
            )
        continued = {t.user_attrs.get(CONTINUES_ATTR) for t in trials}
        finished = [t for t in mine if counts(t) and t.state in _FINISHED]
        orphans = [
            t
            for t in mine
            if t.state == TrialState.FAIL
            and t.user_attrs.get(STATUS_ATTR) == INTERRUPTED
            and t.number not in continued
        ]
        waiting = [t for t in mine if t.state == TrialState.WAITING]
        n_new = self.rounds[0].configs - len(finished) - len(orphans) - len(waiting)
        if n_new <= 0 and not orphans and not waiting:
            return
        try:
            for orphan in orphans:
                attrs = {
                    BRACKET_ATTR: self.index,
                    CONTINUES_ATTR: orphan.number,
                    HP_ATTR: orphan.user_attrs.get(HP_ATTR),
                    PROGRESS_ATTR: orphan.user_attrs.get(PROGRESS_ATTR),
                }
                self.study.enqueue_trial(
                    dict(orphan.params),
                    user_attrs={k: v for k, v in attrs.items() if v is not None},
                )
            for _ in range(len(waiting) + len(orphans)):
                self.members.append(self._continue(by_number))
            for r, round_ in enumerate(self.rounds):
                behind = [m for m in self._alive() if m.epochs < round_.epochs]
                for epochs in sorted({m.epochs for m in behind}):
                    self._advance_all([m for m in behind if m.epochs == epochs], round_.epochs)
                if r == 0:
                    self._start_new(max(n_new, 0), round_.epochs)
                if r + 1 < len(self.rounds):
                    self._promote(r, self.rounds[r + 1].configs)
            for member in self._alive():
                self._complete(member)
        except BaseException:
            for member in self._alive():
                interrupt(self.study, member.trial)
                member.done = True
            raise

    def _start_new(self, n: int, target: int) -> None:
        """Sample ``n`` new configurations and train each ``target`` epochs.

        One by one, each is asked after the previous one trained; with fleets, a
        fleet's worth is asked at once (the sampler sees the running ones through its
        constant liar) and trained together.
        """
        size = 1 if self.fleet is None else self.fleet.batch_size
        while n > 0:
            new = []
            for _ in range(min(n, size)):
                member = self._new_member()
                if member is None:
                    break
                new.append(member)
            if not new:
                logger.warning(
                    "Hyperband bracket %d of study %r: the plan's %s trials are all started "
                    "(another process added trials?); %d configuration(s) left out.",
                    self.index,
                    self.study.study_name,
                    self.budget.n_trials,
                    n,
                )
                return
            self.members += new
            self._advance_all(new, target)
            n -= len(new)

    def _advance_all(self, members: list[BracketMember], target: int) -> None:
        """Train ``members`` (at the same epoch) up to ``target`` epochs."""
        if self.fleet is None:
            for member in members:
                self.advance_one(member, target)
        else:
            self.fleet.advance(self, members, target)

    def _alive(self) -> list[BracketMember]:
        return [m for m in self.members if not m.done]

    def _ask(self) -> optuna.Trial | None:
        """Start this bracket's next trial within the budget (``None`` once it is spent)."""
        return ask_trial(
            self.study, self.budget, self.worker.owner, attrs={BRACKET_ATTR: self.index}
        )

    def _new_member(self) -> BracketMember | None:
        trial = self._ask()
        if trial is None:
            return None
        return BracketMember.fresh(
            trial, HyperParameters._bound(self.runner.space, trial), self.n_runs
        )

    def _continue(self, by_number: dict[int, FrozenTrial]) -> BracketMember:
        """Ask for a queued continuation and restore its progress."""
        trial = self._ask()
        if trial is None:  # the queued continuation counts: only extra trials can spend it
            raise RuntimeError(
                f"study {self.study.study_name!r} holds more trials than its Hyperband plan "
                f"({self.budget.n_trials}); another process added trials to it. Use another "
                "project_name/study_name, or overwrite=True to start over."
            )
        user = trial.user_attrs
        progress = user.get(PROGRESS_ATTR) or {}
        n = self.n_runs
        checkpoints = progress.get("checkpoints")
        if checkpoints is not None and not all(
            os.path.exists(os.path.join(self.runner.project_dir, c)) for c in checkpoints
        ):
            checkpoints = None  # files lost: start the configuration again
        hp = HyperParameters._bound(self.runner.space, trial)
        source = by_number.get(user.get(CONTINUES_ATTR, -1))
        if source is not None:  # the same configuration: same params, same hp values
            for name, distribution in source.distributions.items():
                suggest(trial, name, distribution)
            hp.values.update(user.get(HP_ATTR) or {})
        if checkpoints is None:
            return BracketMember.fresh(trial, hp, n)
        if source is not None:  # the epochs already trained keep their reported values
            max_epochs = self.max_epochs
            for step, value in sorted(source.intermediate_values.items()):
                if step % max_epochs < int(progress["epochs"]):
                    trial.report(value, step)
        return BracketMember(
            trial,
            hp,
            int(progress["epochs"]),
            list(checkpoints),
            [math.nan if b is None else float(b) for b in progress["best"]],
            list(progress.get("metrics") or [{}] * n),
            list(progress.get("best_step") or [None] * n),
        )

    # -- training ------------------------------------------------------------------------
    def advance_one(self, member: BracketMember, target: int) -> None:
        """Train ``member`` up to ``target`` epochs (each run from its last checkpoint)."""
        try:
            self._train(member, target)
        except UpdateFinishedTrialError as refusal:  # before Exception: it is one
            self._done(member, finished_elsewhere(self.study, member.trial, refusal))
        except FATAL_ERRORS as exc:
            self.fail(member, exc)
            raise
        except Exception as exc:  # the user's code failed: the configuration fails
            self.fail(member, exc)

    def _train(self, member: BracketMember, target: int) -> None:
        runner = self.runner
        trial, hp = member.trial, member.hp
        release_memory()  # free the previous configuration's models
        kwargs = runner.fit_kwargs_for(hp)
        kwargs.pop("epochs", None)
        directory = os.path.join(runner.project_dir, "hyperband")
        os.makedirs(directory, exist_ok=True)
        saved: list[str] = []
        for run, (_, args, run_kwargs) in enumerate(runner.runs(kwargs)):
            run_kwargs = {**run_kwargs, "epochs": target, "initial_epoch": member.epochs}
            result = None
            for attempt in range(runner.max_retries + 1):
                try:
                    model = None
                    if member.checkpoints is not None:
                        model = load_checkpoint(runner, hp, trial, run, member.checkpoints[run])
                    result = runner.fit_run(
                        trial,
                        hp,
                        run,
                        args,
                        run_kwargs,
                        model=model,
                        step_offset=run * self.max_epochs,
                    )
                    break
                except (*FATAL_ERRORS, UpdateFinishedTrialError):
                    raise
                except Exception:
                    if attempt == runner.max_retries:
                        raise
            assert result is not None
            try:
                rel = checkpoint_path(trial, run, target)
                result.model.save(os.path.join(runner.project_dir, rel))
                saved.append(rel)
                best_before = member.score()
                if self.objective.better(result.best, member.best[run]):
                    member.best[run] = result.best
                    member.metrics[run] = result.metrics
                    member.best_step[run] = result.best_epoch
                    if runner.save_models and (
                        self.n_runs == 1 or self.objective.better(result.best, best_before)
                    ):
                        runner.save_model(trial, result)
            finally:
                del result
        self.record_round(member, target, saved)

    def record_round(self, member: BracketMember, target: int, saved: list[str]) -> None:
        """Store that ``member`` reached ``target`` epochs, saved as ``saved`` (per run)."""
        old = member.checkpoints or []
        member.epochs, member.checkpoints = target, saved
        progress = {
            "epochs": target,
            "checkpoints": saved,
            "best": [None if not math.isfinite(b) else b for b in member.best],
            "metrics": member.metrics,
            "best_step": member.best_step,
        }
        set_user_attrs(self.study, member.trial, {PROGRESS_ATTR: progress})
        remove_checkpoints(self.runner.project_dir, [c for c in old if c not in saved])

    def _promote(self, r: int, keep: int) -> None:
        """Keep the best ``keep`` configurations; tell the others PRUNED.

        Members whose trials another process finished meanwhile leave first (as stored
        there), so that the places go to configurations still running here.
        """
        stored = {t.number: t for t in self.study.get_trials(deepcopy=False, states=_FINISHED)}
        for member in self._alive():
            if member.trial.number in stored:
                logger.info(
                    "trial %d was finished by another worker; it leaves its bracket",
                    member.trial.number,
                )
                self._done(member, stored[member.trial.number])
        alive = self._alive()
        sign = 1.0 if self.objective.direction == "min" else -1.0
        ranked = sorted(
            alive,
            key=lambda m: (
                not math.isfinite(m.score()),
                sign * m.score() if math.isfinite(m.score()) else 0.0,
                m.trial.number,
            ),
        )
        for member in ranked[keep:]:
            self._write_results(member, {ROUND_ATTR: r})
            self._finish(member, state=TrialState.PRUNED)

    def _complete(self, member: BracketMember) -> None:
        self._write_results(member)
        value = member.score()
        if math.isfinite(value):
            self._finish(member, value=value)
        else:
            set_user_attrs(self.study, member.trial, {ERROR_ATTR: non_finite_error(value)})
            self._finish(member, state=TrialState.FAIL)

    def _write_results(self, member: BracketMember, extra: dict[str, Any] | None = None) -> None:
        """Store the member's per-fold record, metrics, best step and hyperparameters."""
        runner = self.runner
        per_fold: list[list[float]] = [[] for _ in range(runner.n_folds)]
        for run, best in enumerate(member.best):
            per_fold[run // runner.executions].append(best)
        attrs: dict[str, Any] = dict(extra or {})
        attrs[CV_ATTR] = cv_record(
            self.objective.name, per_fold, [0.0] * runner.n_folds, runner.n_folds
        )
        attrs[METRICS_ATTR] = mean_metrics([m for m in member.metrics if m])
        best_run = self.objective.best_index(member.best)
        if best_run is not None and member.best_step[best_run] is not None:
            attrs[BEST_STEP_ATTR] = member.best_step[best_run]
        if member.hp.values:
            attrs[HP_ATTR] = dict(member.hp.values)
        set_user_attrs(self.study, member.trial, attrs)

    def fail(self, member: BracketMember, exc: BaseException) -> None:
        attrs: dict[str, Any] = {}
        if ERROR_ATTR not in member.trial.user_attrs:
            message = str(exc) if isinstance(exc, TrialFailed) else f"{type(exc).__name__}: {exc}"
            attrs[ERROR_ATTR] = error_text(message)
        if member.hp.values:
            attrs[HP_ATTR] = dict(member.hp.values)
        set_user_attrs(self.study, member.trial, attrs)
        self._finish(member, state=TrialState.FAIL)

    def _finish(
        self, member: BracketMember, *, value: float | None = None, state: TrialState | None = None
    ) -> None:
        """Tell the member's trial (through the engine: counted once) and let it go."""
        self._done(member, tell(self.study, member.trial, value, state=state))

    def _done(self, member: BracketMember, frozen: FrozenTrial) -> None:
        """The member's trial is finished as ``frozen``: drop its checkpoints, show it."""
        member.done = True
        remove_checkpoints(self.runner.project_dir, member.checkpoints or [])
        member.checkpoints = None
        self.watch(frozen)


def checkpoint_path(trial: optuna.Trial, run: int, epochs: int) -> str:
    """Where (under the project directory) a run's model is saved after ``epochs``."""
    return os.path.join("hyperband", f"trial_{trial.number:04d}_run{run}_epoch{epochs}.keras")


def load_checkpoint(
    runner: TrialRunner, hp: HyperParameters, trial: optuna.Trial, run: int, rel: str
) -> Any:
    """A saved round's model, to continue (rebuilt, weights loaded, if it cannot load).

    Loading draws new dropout seeds (Keras does not save them); with ``seed=`` they are
    drawn after seeding as for the run's build, so a continued run is reproducible.
    """
    if runner.seed is not None:
        keras.utils.set_random_seed(runner.run_seed(trial.number, run))
    path = os.path.join(runner.project_dir, rel)
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception:
        model = runner.build(hp, trial, run)
        model.load_weights(path)
        return model


def remove_checkpoints(project_dir: str, paths: list[str]) -> None:
    """Delete saved round checkpoints (paths under ``project_dir``; missing ones are fine)."""
    for rel in paths:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(project_dir, rel))
