"""Hyperband rounds trained as fleets: the configurations of a round train at once.

A round takes its configurations from the epochs they have (0 for new ones) to the
round's epochs. :class:`RoundFleet` trains them run by run (folds x executions), each
run as one :meth:`~tunefleet.fleet.FleetTrainer.fit` of all of them: a new
configuration joins with the model its trial built, a survivor with the model saved at
the end of its previous round, whose weights, optimizer slots and iteration count the
fleet carries in (so learning-rate schedules continue too), as one-by-one training
continues the loaded model with ``initial_epoch``. Each fit goes through the one fleet
batch (:meth:`tunefleet.fleet_batch.FleetBatch.fit`): every epoch's objective is
reported on the trials in one transaction and each run's best epoch kept. At the end of
the round each configuration's model is saved as its checkpoint, and a run that
improved the configuration's best value saves the weights of its best epoch as the
trial's model, as one-by-one training does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import keras

from tunefleet.fleet.export import export_trial
from tunefleet.fleet.introspect import UnsupportedModelError
from tunefleet.fleet_batch import FitData, FleetBatch, Member, Row
from tunefleet.keras.memory import release_memory
from tunefleet.tuners.brackets import (
    Bracket,
    BracketMember,
    checkpoint_path,
    load_checkpoint,
    remove_checkpoints,
)
from tunefleet.tuners.fleet import FixedBuild, ObjectiveInLogs, fit_xy, model_to_save
from tunefleet.tuners.trial_runner import FATAL_ERRORS

logger = logging.getLogger("tunefleet")


@dataclass(eq=False)
class _Configuration(Member):
    """A configuration of the round, as a member of its fleets."""

    bracket_member: BracketMember | None = None


class RoundFleet(ObjectiveInLogs):
    """Train Hyperband's configurations round by round as fleets.

    Args:
        runner: The tuner's trial function (data, folds, objective, saving, seed).
        batch_size: The most configurations trained in one fleet.
        trainer_kwargs: Extra arguments of :class:`tunefleet.fleet.FleetTrainer`.

    ``Hyperband`` makes one when it trains with fleets (``fleet="auto"`` on JAX):

    >>> tuner = tunefleet.Hyperband(build_model, "val_accuracy", max_epochs=9,
    ...                             fleet=True)  # doctest: +SKIP
    >>> tuner.search(x, y, validation_data=(x_val, y_val))  # doctest: +SKIP
    >>> tuner.fleet_stats_  # doctest: +SKIP
    {'train': 14.9, 'compile': 6.1, 'bookkeeping': 0.3}
    """

    def __init__(self, runner: Any, batch_size: int, **trainer_kwargs: Any) -> None:
        self.runner = runner
        self.batch_size = batch_size
        self.stats: dict[str, float] = {"train": 0.0, "compile": 0.0, "bookkeeping": 0.0}
        self._build = FixedBuild(runner)
        self._batch = FleetBatch(
            self,
            keep_weights=runner.save_models,
            better=runner.objective.better,
            trainer_kwargs=trainer_kwargs,
            stats=self.stats,
        )
        self.trainer = self._batch.trainer(self._build, runner.seed or 0)

    def advance(self, bracket: Bracket, members: list[BracketMember], target: int) -> None:
        """Train ``members`` (alive, all at the same epoch) up to ``target`` epochs.

        A configuration whose model fleets cannot train, found on its first run,
        advances one by one; one whose build fails is failed.
        """
        for start in range(0, len(members), self.batch_size):
            release_memory()  # the previous chunk's models and (within a budget) programs
            chunk = members[start : start + self.batch_size]
            solo = self._advance_chunk(bracket, chunk, target)
            for member in solo:
                bracket.advance_one(member, target)

    def _advance_chunk(
        self, bracket: Bracket, members: list[BracketMember], target: int
    ) -> list[BracketMember]:
        runner = self.runner
        first_epoch = members[0].epochs
        os.makedirs(os.path.join(runner.project_dir, "hyperband"), exist_ok=True)
        saved: dict[int, list[str]] = {id(m): [] for m in members}
        solo: list[BracketMember] = []  # trained one by one after the fleets
        for run, (_, args, kwargs) in enumerate(runner.runs(dict(runner.fit_kwargs))):
            rows = []
            for member in members:
                if member.done or any(member is m for m in solo):
                    continue
                seed = runner.run_seed(member.trial.number, run)
                try:
                    model = self._model(bracket, member, run, seed)
                    config = dict(member.trial.params)
                    self.trainer.adopt(config, seed, model)
                except UnsupportedModelError as exc:
                    if run > 0:
                        raise
                    logger.info("trial %d trains one by one: %s", member.trial.number, exc)
                    solo.append(member)
                    continue
                except FATAL_ERRORS:
                    raise
                except Exception as exc:  # the user's build failed: the configuration fails
                    bracket.fail(member, exc)
                    continue
                batch_size = int(runner.fit_kwargs_for(member.hp).get("batch_size") or 32)
                rows.append(
                    Row(
                        _Configuration(member.trial, bracket_member=member),
                        config,
                        seed,
                        batch_size,
                        epochs=target - first_epoch,
                        run=run,
                        step_offset=run * bracket.max_epochs,
                        first_epoch=first_epoch,
                        best=member.best[run],
                    )
                )
            if rows:
                self._fit_run(bracket, rows, args, kwargs, target, saved)
        for member in members:
            if member.done:  # failed on a later run: this round's checkpoints are moot
                remove_checkpoints(runner.project_dir, saved[id(member)])
            elif not any(member is m for m in solo):
                bracket.record_round(member, target, saved[id(member)])
        return solo

    def _fit_run(
        self,
        bracket: Bracket,
        rows: list[Row],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        target: int,
        saved: dict[int, list[str]],
    ) -> None:
        """One run of the round's configurations as one fleet fit; save what it gave."""
        runner = self.runner
        x, y = fit_xy(args, kwargs)
        data = FitData(
            self._build,
            x,
            y,
            validation_data=kwargs.get("validation_data"),
            validation_split=float(kwargs.get("validation_split") or 0.0),
            shuffle=bool(kwargs.get("shuffle", True)),
        )
        members = [_bracket_member(row) for row in rows]
        score_before = [m.score() for m in members]
        done = self._batch.fit(bracket.study, rows, data)
        for k, (row, member) in enumerate(zip(rows, members, strict=True)):
            rel = checkpoint_path(member.trial, row.run, target)
            done.result.export(k).save(os.path.join(runner.project_dir, rel))
            saved[id(member)].append(rel)
            if row.best_epoch is None:  # not improved in this round
                continue
            member.best[row.run] = row.best
            member.metrics[row.run] = row.best_logs
            member.best_step[row.run] = row.best_epoch
            if (
                runner.save_models
                and row.weights is not None
                and (
                    bracket.n_runs == 1 or bracket.objective.better(member.score(), score_before[k])
                )
            ):
                model = export_trial(self._build, row.config, row.seed, row.weights)
                runner.save_model(member.trial, model_to_save(model))

    def _model(self, bracket: Bracket, member: BracketMember, run: int, seed: int) -> keras.Model:
        """The model a run of ``member`` starts from: its checkpoint, or a new build."""
        keras.utils.set_random_seed(seed)
        if member.checkpoints is not None:
            return load_checkpoint(
                self.runner, member.hp, member.trial, run, member.checkpoints[run]
            )
        return self.runner.build(member.hp, member.trial, run)


def _bracket_member(row: Row) -> BracketMember:
    member = row.member
    assert isinstance(member, _Configuration) and member.bracket_member is not None
    return member.bracket_member
