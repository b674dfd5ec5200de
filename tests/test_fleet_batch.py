"""The one fleet batch (tunefleet.fleet_batch) driven by a tiny adapter over a real MLP.

A real Optuna study on SQLite, a real fleet of small Keras regressors on generated data:
the per-epoch values of a fleet epoch go to the storage in one transaction, a pruned trial
stops and its row is refilled with a newly asked trial, a trial whose loss becomes NaN
stops and fails, and every trial ends with its outcome, told by the engine's batch loop.
"""

import copy
import dataclasses
import functools
import math
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
import optuna
import pytest
import sqlalchemy
from sqlalchemy.engine import Engine

from tunefleet.execution import run_trial_batches
from tunefleet.fleet_batch import FitData, FleetBatch, Member, Row, finish_trial
from tunefleet.study import Budget

EPOCHS = 3
#: Each trial's kind sets its learning rate; a NaN learning rate makes the loss NaN.
LEARNING_RATE = {"good": 0.01, "prune": 0.01, "nan": math.nan}


def build(lr=0.01):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


@pytest.fixture(scope="module")
def folds():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(192, 8)).astype("float32")
    y = (x @ rng.normal(size=8) + 0.1 * rng.normal(size=192)).astype("float32")
    halves = (slice(0, 96), slice(96, 192))
    return [(x[a], y[a], x[b], y[b]) for a, b in (halves, halves[::-1])]


class PruneKind(optuna.pruners.BasePruner):
    """Prunes trials of kind "prune" once they reported a value (the engine asks it)."""

    def prune(self, study, trial):
        return trial.params["kind"] == "prune" and bool(trial.intermediate_values)


class Adapter:
    """Two folds, one run per trial; an epoch's value is the validation loss."""

    n_folds = 2
    runs_per_member = 1

    def __init__(self, folds):
        self.folds = folds
        self.nan = []  # (trial number, epoch) of each non-finite loss seen
        self.best = {}  # trial number -> best value per fold trained
        self.weights = {}  # trial number -> whether its best epoch's weights were kept

    def member(self, trial):
        trial.suggest_categorical("kind", list(LEARNING_RATE))
        return Member(trial)

    def rows(self, fold, members):
        return [
            Row(
                m,
                {"lr": LEARNING_RATE[m.trial.params["kind"]]},
                seed=m.trial.number,
                batch_size=32,
                epochs=EPOCHS,
                run=fold,
                step_offset=fold * EPOCHS,
            )
            for m in members
        ]

    def fit_data(self, fold, rows):
        x, y, x_val, y_val = self.folds[fold]
        return FitData(build, x, y, validation_data=(x_val, y_val), shuffle=False)

    def values(self, logs, rows):
        return [float(logs["val_loss"][row.index]) for row in rows]

    def on_nan(self, row, loss):
        self.nan.append((row.member.trial.number, row.epoch))
        row.member.fail(f"the training loss became {loss} at epoch {row.epoch}")

    def trained(self, fold, rows):
        for row in rows:
            self.best.setdefault(row.member.trial.number, []).append(row.best)
            self.weights[row.member.trial.number] = row.weights is not None

    def finish(self, member):
        best = self.best.get(member.trial.number, [])
        return finish_trial(member, {"test:best": best}, float(np.mean(best)) if best else 0.0)


def lower(a, b):
    return math.isfinite(a) and not a >= b


def test_fleet_batch_reports_prunes_refills_and_finishes(tmp_path, folds):
    url = f"sqlite:///{tmp_path / 'batch.db'}"
    study = optuna.create_study(study_name="batch", storage=url, pruner=PruneKind())
    for kind in ("good", "prune", "nan", "good", "good"):
        study.enqueue_trial({"kind": kind})
    adapter = Adapter(folds)
    batch = FleetBatch(adapter, prune=True, keep_weights=True, better=lower)

    per_transaction = []
    pending = {"values": 0}

    def count_value_writes(conn, cursor, statement, *args):
        if "trial_intermediate_values" in statement and statement.lstrip().startswith(
            ("INSERT", "UPDATE")
        ):
            pending["values"] += 1

    def count_commit(conn):
        if pending["values"]:
            per_transaction.append(pending["values"])
        pending["values"] = 0

    sqlalchemy.event.listen(Engine, "before_cursor_execute", count_value_writes)
    sqlalchemy.event.listen(Engine, "commit", count_commit)
    try:
        run_trial_batches(study, batch.run, Budget(5, grid=False), 3, refill=True)
    finally:
        sqlalchemy.event.remove(Engine, "before_cursor_execute", count_value_writes)
        sqlalchemy.event.remove(Engine, "commit", count_commit)

    trials = optuna.load_study(study_name="batch", storage=url).trials
    kinds = [t.params["kind"] for t in trials]
    states = [t.state.name for t in trials]
    assert kinds == ["good", "prune", "nan", "good", "good"]
    assert states == ["COMPLETE", "PRUNED", "FAIL", "COMPLETE", "COMPLETE"]

    # one transaction per fleet epoch, holding every value of that epoch: fold 0 trains
    # trials 0-2 (2 values: the NaN one has none), then 0 and the refills 3, 4 (3, 3),
    # then the refills' last epoch (2); fold 1 trains 0, 3, 4 for 3 epochs
    assert per_transaction == [2, 3, 3, 2, 3, 3, 3]

    # the pruned trial stopped after the epoch its pruner was asked at
    assert sorted(trials[1].intermediate_values) == [0]
    # the NaN trial stopped at its first epoch, failed with its message, reported nothing
    assert adapter.nan == [(2, 0)]
    assert trials[2].intermediate_values == {}
    assert "training loss became nan" in trials[2].user_attrs["tunefleet:error"]

    # their rows took trials 3 and 4, asked while the first batch was running, which
    # report from their own step 0 and train both folds
    assert batch.stats["refilled"] == 2
    assert max(t.datetime_start for t in trials[3:]) < trials[0].datetime_complete
    for t in (trials[0], trials[3], trials[4]):
        assert sorted(t.intermediate_values) == list(range(2 * EPOCHS))
        per_fold = [
            min(t.intermediate_values[fold * EPOCHS + e] for e in range(EPOCHS)) for fold in (0, 1)
        ]
        assert t.user_attrs["test:best"] == pytest.approx(per_fold)
        assert t.value == pytest.approx(np.mean(per_fold))
        assert adapter.weights[t.number]  # its best epoch's weights were kept
    # trials 3 and 4 train like trial 0 (same settings, other seeds): finite, comparable
    assert all(math.isfinite(t.value) for t in (trials[0], trials[3], trials[4]))
    assert batch.stats["train"] > 0 and batch.stats["bookkeeping"] > 0


# ------------------------------------------------------------ one trainer per build
@dataclasses.dataclass(frozen=True)
class Task:
    """A build function's owner that compares by value (a bound method's ``__self__``)."""

    units: int

    def build(self, lr=0.01):
        return build(lr)


def test_clones_build_functions_share_one_trainer_and_its_programs():
    # Each trial's estimator is a clone: its build function a deep copy. A new partial or
    # bound method compares by identity, and gave every fit a trainer of its own (so no
    # compiled program was ever reused across fits).
    batch = FleetBatch(object())
    partial = functools.partial(build, lr=0.1)
    method = Task(8).build
    for fn in (build, partial, method):
        assert batch.trainer(copy.deepcopy(fn)) is batch.trainer(fn)
    assert batch.trainer(functools.partial(build, lr=0.2)) is not batch.trainer(partial)
    assert batch.trainer(Task(9).build) is not batch.trainer(method)
    assert len(batch._trainers) == 5
    unhashable = functools.partial(build, lr=[0.1])  # keyed by the object itself
    assert batch.trainer(unhashable) is batch.trainer(unhashable)
    assert batch.trainer(copy.deepcopy(unhashable)) is not batch.trainer(unhashable)
