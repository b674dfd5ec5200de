"""Many trials at once: cross-validation of a batch of configurations as fleets.

:class:`FleetCrossValidation` is the batched counterpart of
:class:`tunefleet.trial.CrossValidation`, an adapter of the one fleet batch
(:class:`tunefleet.fleet_batch.FleetBatch`). It says what the ``*SearchCV`` classes do
differently: a trial is the search's estimator with the trial's parameters, each fold
trains on the estimator's own encoding of the fold's data, an epoch's value is the
search's scorer on the held-out fold (computed from the fleet's predictions), and a
trial ends with its cross-validation record (``tunefleet:cv``). Every trial of a fleet
ends as a normal trial of the study: its per-epoch values, per-fold scores and state are
the ones one-by-one training would have stored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from scipy.sparse import issparse

from tunefleet import fleet_batch
from tunefleet.attrs import CV_ATTR, ERROR_ATTR, error_text
from tunefleet.execution import Ask
from tunefleet.fleet_batch import FitData, FleetBatch, Member, Outcome, Row, finish_trial
from tunefleet.trial import (
    CrossValidation,
    final_estimator,
    fold_fit_params,
    take,
    with_params,
)

logger = logging.getLogger("tunefleet")


class _Outputs:
    """Predictions already computed by the fleet, served to a wrapper's ``predict``."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw

    def predict(self, X: Any, **_: Any) -> np.ndarray:
        if len(X) != len(self.raw):
            raise ValueError("fleet predictions are only available for the validation fold")
        return self.raw


def fleet_unsupported_reason(
    estimator: Any, fit_params: dict[str, Any], return_train_score: bool, X: Any = None
) -> str | None:
    """Why this search cannot train trials as fleets (``None`` if it can)."""

    def wrapper() -> str | None:
        if final_estimator(estimator) is estimator and getattr(estimator, "_reports_epochs", False):
            return None
        return "fleet training needs a tunefleet KerasClassifier/KerasRegressor (not in a Pipeline)"

    def callbacks() -> str | None:
        if fit_params.get("callbacks") or getattr(estimator, "callbacks", None):
            return "Keras callbacks run only in one-by-one training"
        return None

    def weights() -> str | None:
        if fit_params.get("sample_weight") is not None or getattr(estimator, "class_weight", None):
            return "sample or class weights are not supported by fleet training yet"
        return None

    def train_score() -> str | None:
        if return_train_score:
            return "return_train_score=True needs each trial's model on the training folds"
        return None

    def sparse() -> str | None:
        if issparse(X):
            return "sparse X trains one by one (Keras makes dense batches of it)"
        return None

    return fleet_batch.fleet_unsupported_reason(wrapper, callbacks, weights, train_score, sparse)


@dataclass
class _Fold:
    """One fold's data, and the fleet's target encoding once a trial prepared it."""

    X_train: Any
    y_train: Any
    X_test: Any
    y_test: Any
    fit_params: dict[str, Any]
    like: Any = None  # the first estimator prepared on the fold: the others copy its target format
    y_encoded: np.ndarray | None = None


@dataclass(eq=False)
class _Trial(Member):
    """A trial of the batch: its estimator and cross-validation record."""

    estimator: Any = None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class FleetCrossValidation:
    """Cross-validate a batch of trials as fleets (see the module docstring).

    Args:
        cv: the one-trial runner whose settings (estimator, space, data, splits,
            scorers, error_score, report) this batch runner shares.
        trainer_kwargs: extra arguments of :class:`tunefleet.fleet.FleetTrainer`.
        stats: seconds spent training (``"compile"``: the part spent compiling) and in
            bookkeeping, and the number of trials asked to refill freed rows.
    """

    cv: CrossValidation
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, float] = field(
        default_factory=lambda: {"train": 0.0, "compile": 0.0, "bookkeeping": 0.0, "refilled": 0}
    )
    _batch: FleetBatch = field(init=False, repr=False)
    _folds: dict[int, _Fold] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._batch = FleetBatch(
            self, prune=self.cv.report, trainer_kwargs=self.trainer_kwargs, stats=self.stats
        )

    def run_batch(
        self, study: optuna.Study, trials: list[optuna.Trial], ask: Ask | None = None
    ) -> list[Outcome]:
        """Run ``trials`` together; return each one's outcome (the caller tells the study).

        With ``ask`` (see :func:`tunefleet.execution.run_trial_batches`), rows that
        pruned trials free during the first fold are refilled with new trials asked
        from the study; their outcomes follow those of ``trials``, in ask order.
        """
        from tunefleet.keras.memory import release_memory

        release_memory()  # the previous batch's models and (within a budget) programs
        self._folds = {}
        return self._batch.run(study, trials, ask)

    # -- the adapter of the fleet batch --------------------------------------------------
    @property
    def n_folds(self) -> int:
        return len(self.cv.splits)

    runs_per_member = 1

    def member(self, trial: optuna.Trial) -> _Trial:
        params = self.cv.space.suggest(trial)
        record: dict[str, Any] = {
            "test": {m: [] for m in self.cv.scorers},
            "fit_time": [],
            "score_time": [],
        }
        return _Trial(
            trial,
            estimator=with_params(self.cv.estimator, params),
            record=record,
        )

    def _fold(self, fold: int) -> _Fold:
        data = self._folds.get(fold)
        if data is None:
            cv = self.cv
            train, test = cv.splits[fold]
            fit_params = fold_fit_params(cv.fit_params, train, len(cv.y))
            fit_params.pop("validation_data", None)  # only Keras's own val metrics use it
            fit_params.pop("validation_split", None)
            data = _Fold(
                take(cv.X, train), take(cv.y, train), take(cv.X, test), take(cv.y, test), fit_params
            )
            self._folds = {fold: data}
        return data

    def rows(self, fold: int, members: list[Member]) -> list[Row]:
        """Each member's fleet inputs on the fold; a member whose build fails fails."""
        data = self._fold(fold)
        rows = []
        for m in members:
            assert isinstance(m, _Trial)
            try:  # the fleet shares one output layer and loss: the first build shows it
                i = m.estimator._fleet_inputs(
                    data.X_train, data.y_train, data.fit_params, like=data.like
                )
                if data.y_encoded is not None:
                    _check_same_target(i["y"], data.y_encoded)
            except Exception as exc:  # build or target errors: a failed trial
                self._fail(m, exc, fold)
                continue
            data.like = data.like or m.estimator
            if data.y_encoded is None:
                data.y_encoded = i["y"]
            epochs = int(i["params"]["epochs"])
            batch_size = int(i["params"].get("batch_size") or 32)
            rows.append(
                Row(m, i["config"], _seed(m), batch_size, epochs, fold, fold * epochs, data=i)
            )
        return rows

    def fit_data(self, fold: int, rows: list[Row]) -> FitData:
        data = self._fold(fold)
        first, estimator = rows[0].data, rows[0].member.estimator  # type: ignore[attr-defined]
        return FitData(
            first["build_fn"],
            first["X"],
            first["y"],
            validation_data=(
                estimator._validate_X(data.X_test, reset=False),
                estimator._encode_target(data.y_test),
            ),
            shuffle=bool(first["params"].get("shuffle", True)),
            seed=rows[0].seed,
        )

    def values(self, logs: Any, rows: Sequence[Row]) -> list[float]:
        """The search's scorer on each row's held-out predictions; every scorer at the end."""
        if not rows:
            return []
        cv = self.cv
        data = self._fold(rows[0].run)
        scorer = cv.scorers[cv.primary]
        raw = logs.predict_val()
        values = []
        for row in rows:
            estimator = row.member.estimator  # type: ignore[attr-defined]
            estimator.model_ = _Outputs(raw[row.index])
            value = float(scorer(estimator, data.X_test, data.y_test))
            if row.last_epoch:  # trained: score it on every metric
                row.scores = {
                    name: value
                    if name == cv.primary
                    else float(other(estimator, data.X_test, data.y_test))
                    for name, other in cv.scorers.items()
                }
            values.append(value)
        return values

    def on_nan(self, row: Row, loss: float) -> None:
        error = FloatingPointError(
            f"The training loss became {loss} at epoch {row.epoch} (counting from 0)."
        )
        self._fail(row.member, error, row.run)

    def trained(self, fold: int, rows: list[Row]) -> None:
        for row in rows:
            m = row.member
            assert isinstance(m, _Trial)
            m.estimator.__dict__.pop("model_", None)
            if m.outcome == "failed":
                continue
            # the fleet's time, shared evenly (a trial pruned in this fold gets its share too)
            m.record["fit_time"].append(row.fit_time)
            m.record["score_time"].append(row.score_time)
            if not m.alive:
                continue
            for name in self.cv.scorers:
                m.record["test"][name].append(row.scores.get(name, math.nan))

    def finish(self, member: Member) -> Outcome:
        assert isinstance(member, _Trial)
        cv = self.cv
        n = len(cv.splits)
        record = member.record
        if member.alive:
            return finish_trial(
                member, {CV_ATTR: record}, float(np.mean(record["test"][cv.primary]))
            )
        fill = math.nan if member.outcome == "pruned" else float(cv.error_score)
        stored = {
            "test": {name: [fill] * n for name in cv.scorers},
            "fit_time": record["fit_time"] + [math.nan] * (n - len(record["fit_time"])),
            "score_time": record["score_time"] + [math.nan] * (n - len(record["score_time"])),
        }
        return finish_trial(member, {CV_ATTR: stored}, math.nan)

    def _fail(self, member: Member, exc: BaseException, fold: int) -> None:
        message = f"fold {fold + 1} with params {member.trial.params!r} failed: {type(exc).__name__}: {exc}"
        if self.cv.error_score == "raise":
            member.trial.set_user_attr(ERROR_ATTR, error_text(message))
            raise exc
        member.fail(message)


def _check_same_target(y: np.ndarray, y_encoded: np.ndarray) -> None:
    if not (y.shape == y_encoded.shape and np.array_equal(y, y_encoded)):
        raise ValueError(
            "the trials of one fleet encode their targets differently (e.g. a sigmoid and a "
            "softmax output); set fleet=False for this search"
        )


def _seed(member: _Trial) -> int:
    rs = getattr(member.estimator, "random_state", None)
    if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
        return int(rs)
    return 1000 + member.trial.number


def batch_runner(
    cv: CrossValidation, **trainer_kwargs: Any
) -> Callable[[optuna.Study, list[optuna.Trial]], list[Outcome]]:
    """The fleet runner for ``cv``'s search, as the executor calls it."""
    return FleetCrossValidation(cv, trainer_kwargs).run_batch
