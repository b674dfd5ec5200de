"""Many trials at once: cross-validation of a batch of configurations as fleets.

:class:`FleetCrossValidation` is the batched counterpart of
:class:`tunefleet.trial.CrossValidation`. For each fold it trains every configuration of
the batch together with :class:`tunefleet.fleet.FleetTrainer` (one compiled JAX program
per group of structurally equal models), scores each trial after every epoch with the
search's own scorer on the held-out fold, reports all those values to the study in one
storage transaction, asks the pruner about each trial and stops the pruned ones inside
the fleet. Every trial of a fleet ends as a normal trial of the study: its per-epoch
values, per-fold scores and state are the ones one-by-one training would have stored.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from sklearn.base import clone

from tunefleet.attrs import CV_ATTR, ERROR_ATTR, error_text
from tunefleet.execution import Ask
from tunefleet.study import report_many, set_user_attrs
from tunefleet.trial import CrossValidation, final_estimator, fold_fit_params, take

logger = logging.getLogger("tunefleet")

#: What one trial of a batch ended as: a value, ``"pruned"`` or ``"failed"``.
Outcome = float | str


class _Outputs:
    """Predictions already computed by the fleet, served to a wrapper's ``predict``."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw

    def predict(self, X: Any, **_: Any) -> np.ndarray:
        if len(X) != len(self.raw):
            raise ValueError("fleet predictions are only available for the validation fold")
        return self.raw


def fleet_unsupported_reason(
    estimator: Any, fit_params: dict[str, Any], return_train_score: bool
) -> str | None:
    """Why this search cannot train trials as fleets (``None`` if it can)."""
    if final_estimator(estimator) is not estimator or not getattr(
        estimator, "_reports_epochs", False
    ):
        return "fleet training needs a tunefleet KerasClassifier/KerasRegressor (not in a Pipeline)"
    import keras

    if keras.backend.backend() != "jax":
        return f"fleet training needs the JAX backend (Keras runs on {keras.backend.backend()})"
    if fit_params.get("callbacks") or getattr(estimator, "callbacks", None):
        return "Keras callbacks run only in one-by-one training"
    if fit_params.get("sample_weight") is not None or getattr(estimator, "class_weight", None):
        return "sample or class weights are not supported by fleet training yet"
    if return_train_score:
        return "return_train_score=True needs each trial's model on the training folds"
    return None


@dataclass
class _FoldData:
    """One fold's training data, fit parameters and the first built estimator (``like``)."""

    fold: int
    X_train: Any
    y_train: Any
    fit_params: dict[str, Any]
    like: Any = None


def _check_same_target(ready: list[tuple[Any, dict]], y_encoded: np.ndarray) -> None:
    if not all(
        i["y"].shape == y_encoded.shape and np.array_equal(i["y"], y_encoded) for _, i in ready
    ):
        raise ValueError(
            "the trials of one fleet encode their targets differently (e.g. a sigmoid and a "
            "softmax output); set fleet=False for this search"
        )


@dataclass(eq=False)
class _Member:
    trial: optuna.Trial
    estimator: Any
    record: dict[str, Any]
    epochs: int = 0
    alive: bool = True
    outcome: Outcome | None = None
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class FleetCrossValidation:
    """Cross-validate a batch of trials as fleets (see the module docstring).

    Args:
        cv: the one-trial runner whose settings (estimator, space, data, splits,
            scorers, error_score, report) this batch runner shares.
        trainer_kwargs: extra arguments of :class:`tunefleet.fleet.FleetTrainer`.
    """

    cv: CrossValidation
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, float] = field(
        default_factory=lambda: {"train": 0.0, "compile": 0.0, "bookkeeping": 0.0, "refilled": 0}
    )
    _trainers: dict[Any, Any] = field(default_factory=dict, repr=False)

    def run_batch(
        self, study: optuna.Study, trials: list[optuna.Trial], ask: Ask | None = None
    ) -> list[Outcome]:
        """Run ``trials`` together; return each one's outcome (the caller tells the study).

        With ``ask`` (see :func:`tunefleet.execution.run_trial_batches`), rows that
        pruned trials free during the first fold are refilled with new trials asked
        from the study; their outcomes follow those of ``trials``, in ask order.
        """
        from tunefleet.fleet import FleetTrainer
        from tunefleet.keras.memory import release_memory

        release_memory()  # the previous batch's models and (within a budget) programs
        cv = self.cv
        members = [self._member(trial) for trial in trials]
        n_samples = len(cv.y)
        for fold, (train, test) in enumerate(cv.splits):
            X_train, y_train = take(cv.X, train), take(cv.y, train)
            X_test, y_test = take(cv.X, test), take(cv.y, test)
            fit_params = fold_fit_params(cv.fit_params, train, n_samples)
            fit_params.pop("validation_data", None)  # only Keras's own val metrics use it
            fit_params.pop("validation_split", None)
            data = _FoldData(fold, X_train, y_train, fit_params)
            more = None
            if ask is not None and fold == 0:
                more = functools.partial(self._more, ask, members)
            pending = [m for m in members if m.alive]
            while pending:  # refilled trials no free row took train in a fit of their own
                ready = self._inputs(pending, data)
                if not ready:
                    break
                pending = self._train_fold(FleetTrainer, study, data, ready, X_test, y_test, more)
        return [self._finish(m) for m in members]

    def _member(self, trial: optuna.Trial) -> _Member:
        params = self.cv.space.suggest(trial)
        record: dict[str, Any] = {
            "test": {m: [] for m in self.cv.scorers},
            "fit_time": [],
            "score_time": [],
        }
        return _Member(trial, clone(self.cv.estimator).set_params(**params), record)

    def _inputs(self, members: list[_Member], data: _FoldData) -> list[tuple[_Member, dict]]:
        """Each member's fleet inputs on the fold; a member whose build fails fails."""
        ready = []
        for m in members:
            try:  # the fleet shares one output layer and loss: the first build shows it
                i = m.estimator._fleet_inputs(
                    data.X_train, data.y_train, data.fit_params, like=data.like
                )
            except Exception as exc:  # build or target errors: a failed trial
                self._fail(m, exc, data.fold)
                continue
            data.like = data.like or m.estimator
            m.epochs = int(i["params"]["epochs"])
            ready.append((m, i))
        return ready

    def _more(
        self, ask: Ask, members: list[_Member], data: _FoldData, n: int
    ) -> list[tuple[_Member, dict]]:
        """Ask up to ``n`` new trials, add them to ``members``; return the ready ones."""
        new = [self._member(trial) for trial in ask(n)]
        members.extend(new)
        self.stats["refilled"] += len(new)
        return self._inputs(new, data)

    # -- one fold ------------------------------------------------------------------------
    def _train_fold(
        self,
        trainer_cls: Any,
        study: optuna.Study,
        data: _FoldData,
        ready: list[tuple[_Member, dict]],
        X_test: Any,
        y_test: Any,
        more: Callable[..., list[tuple[_Member, dict]]] | None = None,
    ) -> list[_Member]:
        """Train ``ready`` on one fold as fleets; return refilled members not started."""
        cv = self.cv
        fold = data.fold
        first = ready[0][1]
        y_encoded = first["y"]
        _check_same_target(ready, y_encoded)
        epochs = max(m.epochs for m, _ in ready)
        X_val = ready[0][0].estimator._validate_X(X_test, reset=False)
        y_val_encoded = ready[0][0].estimator._encode_target(y_test)
        scorer = cv.scorers[cv.primary]
        members = [m for m, _ in ready]
        seeds = [_seed(m) for m in members]
        batch_sizes = [int(i["params"].get("batch_size") or 32) for _, i in ready]

        def on_epoch_end(_: int, logs: Any) -> np.ndarray:
            start = time.perf_counter()
            raw = logs.predict_val()
            keep = np.array(logs.active, dtype=bool)
            reports = []
            for k, m in enumerate(members):
                if not keep[k]:
                    continue
                epoch = int(logs.trial_epoch[k])  # the trial's own (refilled trials start later)
                loss = float(logs["loss"][k])
                if not math.isfinite(loss):
                    self._fail(
                        m,
                        FloatingPointError(
                            f"The training loss became {loss} at epoch {epoch} (counting from 0)."
                        ),
                        fold,
                    )
                    keep[k] = False
                    continue
                m.estimator.model_ = _Outputs(raw[k])
                value = float(scorer(m.estimator, X_test, y_test))
                if math.isfinite(value):
                    reports.append((m.trial, fold * m.epochs + epoch, value))
                if epoch + 1 >= m.epochs:  # trained: score it on every metric
                    keep[k] = False
                    m.scores = {
                        name: value
                        if name == cv.primary
                        else float(other(m.estimator, X_test, y_test))
                        for name, other in cv.scorers.items()
                    }
            score_time = time.perf_counter() - start
            report_many(study, reports)
            if cv.report:
                for k, m in enumerate(members):
                    if keep[k] and m.alive and m.trial.should_prune():
                        m.alive, m.outcome = False, "pruned"
                        keep[k] = False
            for m in members:
                m.record.setdefault("_score_time", 0.0)
                m.record["_score_time"] += score_time / len(members)
            self.stats["bookkeeping"] += time.perf_counter() - start - score_time
            return keep

        def refill(_: int, free: int) -> list[Any]:
            from tunefleet.fleet.refill import NewTrial

            assert more is not None
            new = []
            for m, i in more(data, free):
                try:
                    _check_same_target([(m, i)], y_encoded)
                except ValueError as exc:
                    self._fail(m, exc, fold)
                    continue
                members.append(m)
                batch_size = int(i["params"].get("batch_size") or 32)
                new.append(NewTrial(i["config"], _seed(m), batch_size, m.epochs))
            return new

        trainer = self._trainers.get(first["build_fn"])
        if trainer is None:  # one per build function: its compiled programs serve every fold
            trainer = trainer_cls(first["build_fn"], seed=seeds[0], **self.trainer_kwargs)
            self._trainers[first["build_fn"]] = trainer
        start = time.perf_counter()
        result = trainer.fit(
            [i["config"] for _, i in ready],
            first["X"],
            y_encoded,
            epochs=epochs,
            batch_size=batch_sizes,
            validation_data=(X_val, y_val_encoded),
            shuffle=bool(first["params"].get("shuffle", True)),
            on_epoch_end=on_epoch_end,
            seeds=seeds,
            refill=None if more is None else refill,
        )
        elapsed = time.perf_counter() - start
        self.stats["train"] += elapsed
        self.stats["compile"] = sum(t.compile_seconds for t in self._trainers.values())
        not_started = [members[k] for k in result.not_started]
        trained = [m for m in members if all(m is not n for n in not_started)]
        for m in trained:
            m.estimator.__dict__.pop("model_", None)
            score_time = m.record.pop("_score_time", 0.0)
            if m.outcome == "failed":
                continue
            # the fleet's time, shared evenly (a trial pruned in this fold gets its share too)
            m.record["fit_time"].append(elapsed / len(trained) - score_time)
            m.record["score_time"].append(score_time)
            if not m.alive:
                continue
            for name in cv.scorers:
                m.record["test"][name].append(m.scores.get(name, math.nan))
            m.scores = {}
        return not_started

    # -- bookkeeping ---------------------------------------------------------------------
    def _fail(self, member: _Member, exc: BaseException, fold: int) -> None:
        message = f"fold {fold + 1} with params {member.trial.params!r} failed: {type(exc).__name__}: {exc}"
        if self.cv.error_score == "raise":
            member.trial.set_user_attr(ERROR_ATTR, error_text(message))
            raise exc
        member.alive, member.outcome = False, "failed"
        member.record["error"] = message

    def _finish(self, m: _Member) -> Outcome:
        cv = self.cv
        n = len(cv.splits)
        record = m.record
        study = m.trial.study
        if m.outcome is None:
            set_user_attrs(study, m.trial, {CV_ATTR: record})
            return float(np.mean(record["test"][cv.primary]))
        fill = math.nan if m.outcome == "pruned" else float(cv.error_score)
        stored = {
            "test": {name: [fill] * n for name in cv.scorers},
            "fit_time": record["fit_time"] + [math.nan] * (n - len(record["fit_time"])),
            "score_time": record["score_time"] + [math.nan] * (n - len(record["score_time"])),
        }
        attrs = {CV_ATTR: stored}
        if m.outcome == "failed":
            attrs[ERROR_ATTR] = error_text(record["error"])
        set_user_attrs(study, m.trial, attrs)
        return m.outcome


def _seed(member: _Member) -> int:
    rs = getattr(member.estimator, "random_state", None)
    if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
        return int(rs)
    return 1000 + member.trial.number


def batch_runner(
    cv: CrossValidation, **trainer_kwargs: Any
) -> Callable[[optuna.Study, list[optuna.Trial]], list[Outcome]]:
    """The fleet runner for ``cv``'s search, as the executor calls it."""
    return FleetCrossValidation(cv, trainer_kwargs).run_batch
