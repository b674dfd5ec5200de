"""Hyperband rounds trained as fleets: the configurations of a round train at once.

A round takes its configurations from the epochs they have (0 for new ones) to the
round's epochs. :class:`RoundFleet` trains them run by run (folds x executions), each
run as one :meth:`~tunefleet.fleet.FleetTrainer.fit` of all of them: a new
configuration joins with the model its trial built, a survivor with the model saved at
the end of its previous round, whose weights, optimizer slots and iteration count the
fleet carries in (so learning-rate schedules continue too), as one-by-one training
continues the loaded model with ``initial_epoch``. Every epoch's objective is reported on the trials in one transaction; at the end of
the round each configuration's model is saved as its checkpoint, and a run that
improved the configuration's best value saves the weights of its best epoch as the
trial's model, as one-by-one training does.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from tunefleet.fleet.export import TrialWeights, export_trial
from tunefleet.fleet.introspect import UnsupportedModelError
from tunefleet.keras.memory import release_memory
from tunefleet.study import report_many
from tunefleet.tuners.fleet import FixedBuild, fit_xy, model_to_save
from tunefleet.tuners.hyperband import (
    Bracket,
    BracketMember,
    checkpoint_path,
    load_checkpoint,
    remove_checkpoints,
)
from tunefleet.tuners.trial_runner import FATAL_ERRORS, ObjectiveNotReported

logger = logging.getLogger("tunefleet")


class RoundFleet:
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
        from tunefleet.fleet import FleetTrainer

        self.runner = runner
        self.batch_size = batch_size
        self.trainer = FleetTrainer(FixedBuild(runner), seed=runner.seed or 0, **trainer_kwargs)
        self.stats: dict[str, float] = {"train": 0.0, "compile": 0.0, "bookkeeping": 0.0}

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
                bracket._advance(member, target)

    def _advance_chunk(
        self, bracket: Bracket, members: list[BracketMember], target: int
    ) -> list[BracketMember]:
        runner = self.runner
        first_epoch = members[0].epochs
        directory = os.path.join(runner.project_dir, "hyperband")
        os.makedirs(directory, exist_ok=True)
        saved: dict[int, list[str]] = {id(m): [] for m in members}
        solo: list[BracketMember] = []  # trained one by one after the fleets
        for run, (_, args, kwargs) in enumerate(runner.runs(dict(runner.fit_kwargs))):
            rows, configs, seeds = [], [], []
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
                    bracket._fail(member, exc)
                    continue
                rows.append(member)
                configs.append(config)
                seeds.append(seed)
            if not rows:
                continue
            x, y = fit_xy(args, kwargs)
            batch_sizes = [int(runner.fit_kwargs_for(m.hp).get("batch_size") or 32) for m in rows]
            best_weights: dict[int, TrialWeights] = {}
            score_before = [m.score() for m in rows]
            best_before = [m.best[run] for m in rows]
            start = time.perf_counter()
            result = self.trainer.fit(
                configs,
                x,
                y,
                epochs=target - first_epoch,
                batch_size=batch_sizes,
                validation_data=kwargs.get("validation_data"),
                validation_split=float(kwargs.get("validation_split") or 0.0),
                shuffle=bool(kwargs.get("shuffle", True)),
                on_epoch_end=self._epoch_callback(bracket, rows, run, first_epoch, best_weights),
                seeds=seeds,
            )
            self.stats["train"] += time.perf_counter() - start
            self.stats["compile"] = self.trainer.compile_seconds
            objective = bracket.objective
            for k, member in enumerate(rows):
                rel = checkpoint_path(member.trial, run, target)
                result.export(k).save(os.path.join(runner.project_dir, rel))
                saved[id(member)].append(rel)
                improved = objective.better(member.best[run], best_before[k])
                if (
                    runner.save_models
                    and improved
                    and k in best_weights
                    and (bracket.n_runs == 1 or objective.better(member.score(), score_before[k]))
                ):
                    model = export_trial(
                        self.trainer.build_fn, configs[k], seeds[k], best_weights[k]
                    )
                    runner.save_model(member.trial, model_to_save(model))
        for member in members:
            if member.done:  # failed on a later run: this round's checkpoints are moot
                remove_checkpoints(runner.project_dir, saved[id(member)])
            elif not any(member is m for m in solo):
                bracket._record_round(member, target, saved[id(member)])
        return solo

    def _model(self, bracket: Bracket, member: BracketMember, run: int, seed: int) -> keras.Model:
        """The model a run of ``member`` starts from: its checkpoint, or a new build."""
        keras.utils.set_random_seed(seed)
        if member.checkpoints is not None:
            return load_checkpoint(
                self.runner, member.hp, member.trial, run, member.checkpoints[run]
            )
        return self.runner.build(member.hp, member.trial, run)

    def _epoch_callback(
        self,
        bracket: Bracket,
        rows: list[BracketMember],
        run: int,
        first_epoch: int,
        best_weights: dict[int, TrialWeights],
    ) -> Callable[[int, Any], np.ndarray]:
        """Report every row's objective, keep each run's best epoch, stop rows at NaN loss."""
        objective = bracket.objective
        offset = run * bracket.tuner.max_epochs

        def on_epoch_end(epoch: int, logs: Any) -> np.ndarray:
            start = time.perf_counter()
            if objective.name not in logs:
                raise ObjectiveNotReported(objective.name, list(logs))
            keep = np.array(logs.active, dtype=bool)
            reports, improved = [], []
            for k, member in enumerate(rows):
                if not keep[k]:
                    continue
                if not math.isfinite(float(logs["loss"][k])):  # as TerminateOnNaN
                    keep[k] = False
                    continue
                value, own = float(logs[objective.name][k]), first_epoch + epoch
                if math.isfinite(value):
                    reports.append((member.trial, offset + own, value))
                if objective.better(value, member.best[run]):
                    member.best[run] = value
                    member.metrics[run] = {key: float(logs[key][k]) for key in logs}
                    member.best_step[run] = own
                    improved.append(k)
            if self.runner.save_models and improved:
                best_weights.update(logs.weights(improved))
            report_many(bracket.study, reports)
            self.stats["bookkeeping"] += time.perf_counter() - start
            return keep

        return on_epoch_end
