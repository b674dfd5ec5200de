"""One fleet batch: trials of one Keras model trained together, each ending as a normal trial.

Every face that trains trials as fleets (the ``*SearchCV`` classes, the tuners, Hyperband's
rounds) runs them through :class:`FleetBatch`. The face supplies an adapter that says only
what differs between faces: how an asked trial becomes a :class:`Member` (its estimator
configured, or its model built through the trial), which :class:`Row` s (one run of a member
in one fleet row) and which data (:class:`FitData`) each fold trains, the value of an epoch
for a row (a scorer on the held-out predictions, or the objective in the fleet's logs), what
a trained run records, and what a finished trial stores. The batch owns the rest, once:

* the fold loop: each fold's rows train in one :meth:`FleetTrainer.fit
  <tunefleet.fleet.FleetTrainer.fit>` (refilled trials no free row could take train in a
  fit of their own);
* the per-epoch callback: a row whose training loss is not finite stops (the adapter says
  whether that fails its trial, :meth:`EpochValues.on_nan`); each other row's value is read
  (:meth:`EpochValues.values`), its best epoch tracked and, with ``keep_weights``, the
  weights of that epoch copied to the host; the epoch's values of all trials are reported
  in one storage transaction (:func:`tunefleet.study.report_many`); with ``prune``, the
  pruner is asked once per trial that trained; rows of pruned or failed trials and runs at
  their last epoch stop;
* refilling the rows the first fold's fit frees with newly asked trials
  (:data:`tunefleet.execution.Ask`), sampled and prepared like the batch's own;
* time accounting (:attr:`FleetBatch.stats`) and finishing a trial
  (:func:`finish_trial`: its attributes in one transaction, its outcome for the caller,
  which tells the study).
"""

from __future__ import annotations

import functools
import math
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import optuna

from tunefleet.attrs import ERROR_ATTR, error_text
from tunefleet.execution import Ask
from tunefleet.study import report_many, set_user_attrs

if TYPE_CHECKING:  # tunefleet.fleet imports Keras and JAX: only when a fleet trains
    from tunefleet.fleet import EpochLogs, FleetResult, FleetTrainer, NewTrial
    from tunefleet.fleet.export import TrialWeights

#: What one trial of a batch ended as: its value, ``"pruned"`` or ``"failed"``.
Outcome = float | str


def fleet_unsupported_reason(*checks: Callable[[], str | None]) -> str | None:
    """Why a search cannot train its trials as fleets, or ``None`` if it can.

    The first check says whether the face's model can train as a fleet at all (it runs
    before Keras is imported); the JAX backend is checked next, then the other checks,
    in order. The first reason found is returned.

    Args:
        *checks: The face's checks, each ``check() -> reason or None``.

    Example:

    >>> from tunefleet.fleet_batch import fleet_unsupported_reason
    >>> fleet_unsupported_reason(lambda: None, lambda: "callbacks run one by one only")
    'callbacks run one by one only'
    >>> fleet_unsupported_reason(lambda: "not a Keras model", lambda: "never asked")
    'not a Keras model'
    """
    first, rest = (checks[0], checks[1:]) if checks else (None, ())
    for check in (first, _backend_reason, *rest):
        reason = None if check is None else check()
        if reason is not None:
            return reason
    return None


def _backend_reason() -> str | None:
    import keras

    if keras.backend.backend() != "jax":
        return f"fleet training needs the JAX backend (Keras runs on {keras.backend.backend()})"
    return None


def higher_is_better(a: float, b: float) -> bool:
    """Whether ``a`` beats ``b`` when higher is better (any finite ``a`` beats NaN).

    Example:

    >>> from tunefleet.fleet_batch import higher_is_better
    >>> higher_is_better(0.9, float("nan")), higher_is_better(0.8, 0.9)
    (True, False)
    """
    return math.isfinite(a) and (not math.isfinite(b) or a > b)


@dataclass(eq=False)
class Member:
    """One trial of a fleet batch; adapters subclass it with what they keep per trial.

    Args:
        trial: The study's trial.
        outcome: ``None`` while it trains, then ``"pruned"`` or ``"failed"``.
        error: Why it failed (stored as ``tunefleet:error`` when it finishes).
        solo: It trains one by one, outside the fleets (its model is one fleets cannot
            train); the adapter runs it when it finishes.

    Example:

    >>> import optuna
    >>> from tunefleet.fleet_batch import Member
    >>> member = Member(optuna.create_study().ask())
    >>> member.alive
    True
    >>> member.fail("ValueError: bad build")
    >>> member.alive, member.outcome
    (False, 'failed')
    """

    trial: optuna.Trial
    outcome: str | None = None
    error: str | None = None
    solo: bool = False

    @property
    def alive(self) -> bool:
        """Whether the trial still trains (neither pruned nor failed)."""
        return self.outcome is None

    def fail(self, message: str) -> None:
        """Fail the trial with ``message``; its rows stop at the next epoch."""
        self.outcome, self.error = "failed", message


@dataclass(eq=False)
class Row:
    """One run of a member (a fold, an execution) in one fleet fit.

    Args:
        member: The trial it trains.
        config: Its configuration, ``build_fn(**config)``.
        seed: Its build seed.
        batch_size: Its training batch size.
        epochs: Its epoch budget in this fit, counted from its start.
        run: Which run of the member it is (the adapter's numbering).
        step_offset: The trial's step of epoch 0 (its reports go to
            ``step_offset + epoch``).
        first_epoch: The epoch it starts at (a continued run: the epochs it had).
        best: The best value of the run so far (NaN for a new run).
        data: The adapter's own per-row data (e.g. the estimator's fleet inputs).

    Filled during the fit: ``index`` (its trial index in the fit), ``epoch`` (the epoch
    just finished, counted from ``first_epoch``), ``best``/``best_epoch``/``best_logs``
    (its best epoch and the logs of it), ``weights`` (the weights of that epoch, with
    ``keep_weights``), ``scores`` (what the adapter measured at the run's end),
    ``score_time`` (its share of the time the adapter took to read values) and, after
    the fit, ``fit_time`` (its share of the fit's time, less ``score_time``).

    Example:

    >>> import optuna
    >>> from tunefleet.fleet_batch import Member, Row
    >>> row = Row(Member(optuna.create_study().ask()), {"units": 8}, seed=0, batch_size=32,
    ...           epochs=3)
    >>> row.epoch = 2
    >>> row.last_epoch, row.new_trial()
    (True, NewTrial(config={'units': 8}, seed=0, batch_size=32, epochs=3))
    """

    member: Member
    config: Mapping[str, Any]
    seed: int
    batch_size: int
    epochs: int
    run: int = 0
    step_offset: int = 0
    first_epoch: int = 0
    best: float = math.nan
    data: Any = None
    index: int = -1
    epoch: int = -1
    best_epoch: int | None = None
    best_logs: dict[str, float] = field(default_factory=dict)
    weights: TrialWeights | None = None
    scores: dict[str, float] = field(default_factory=dict)
    score_time: float = 0.0
    fit_time: float = 0.0

    @property
    def last_epoch(self) -> bool:
        """Whether ``epoch`` is the last epoch of the row's budget."""
        return self.epoch - self.first_epoch + 1 >= self.epochs

    def new_trial(self) -> NewTrial:
        """The row as a trial the trainer starts in a freed row."""
        from tunefleet.fleet import NewTrial

        return NewTrial(self.config, seed=self.seed, batch_size=self.batch_size, epochs=self.epochs)


@dataclass
class FitData:
    """What one fleet fit trains on, and the trainer's build function.

    Args:
        build_fn: ``build_fn(**config)``; one :class:`~tunefleet.fleet.FleetTrainer` per
            build function serves every fit (its compiled programs are reused).
        x: Training inputs (one array).
        y: Training targets (one array).
        validation_data: ``(x_val, y_val)``, or ``None``.
        validation_split: As ``model.fit``'s, when ``validation_data`` is ``None``.
        shuffle: Shuffle the training samples every epoch.
        seed: The trainer's seed, when this fit makes it.

    Example:

    >>> import numpy as np
    >>> from tunefleet.fleet_batch import FitData
    >>> x, y = np.zeros((10, 4), "float32"), np.zeros(10, "int32")
    >>> FitData(dict, x, y, validation_split=0.2).shuffle
    True

    :class:`FleetBatch`'s example drives a whole batch.
    """

    build_fn: Callable[..., Any]
    x: Any
    y: Any
    validation_data: tuple[Any, Any] | None = None
    validation_split: float = 0.0
    shuffle: bool = True
    seed: int = 0


@dataclass
class FitDone:
    """One fit's rows: ``trained`` (in fit order), ``not_started`` (refills no free row took)."""

    trained: list[Row]
    not_started: list[Row]
    result: FleetResult
    elapsed: float


class EpochValues(Protocol):
    """What a face says about an epoch of a fit (the adapter of :meth:`FleetBatch.fit`)."""

    def values(self, logs: EpochLogs, rows: Sequence[Row]) -> list[float]:
        """The epoch's value of each of ``rows`` (those that trained, with a finite loss)."""
        ...

    def on_nan(self, row: Row, loss: float) -> None:
        """``row``'s training loss became ``loss``; the row stops (this may fail its trial)."""
        ...


class FleetAdapter(EpochValues, Protocol):
    """What a face supplies to run batches of trials (:meth:`FleetBatch.run`)."""

    @property
    def n_folds(self) -> int:
        """How many folds each trial trains (one fit of all rows per fold)."""
        ...

    @property
    def runs_per_member(self) -> int:
        """Rows each member takes in a fold (``executions_per_trial``)."""
        ...

    def member(self, trial: optuna.Trial) -> Member:
        """A trial of the batch (a failed build fails it, a model fleets cannot train: solo)."""
        ...

    def rows(self, fold: int, members: list[Member]) -> list[Row]:
        """The rows ``members`` train on ``fold`` (one that cannot start fails)."""
        ...

    def fit_data(self, fold: int, rows: list[Row]) -> FitData:
        """The data of a fit of ``rows`` on ``fold``."""
        ...

    def trained(self, fold: int, rows: list[Row]) -> None:
        """Record what ``rows`` (started in a fit on ``fold``) gave."""
        ...

    def finish(self, member: Member) -> Outcome:
        """Store the trial's record (see :func:`finish_trial`); return its outcome."""
        ...


def finish_trial(member: Member, attrs: dict[str, Any], value: float) -> Outcome:
    """Write a finished member's attributes in one transaction; return its outcome.

    A failed member's error is added as ``tunefleet:error``. The outcome is ``value`` for
    a member that trained to its end, else ``"pruned"`` or ``"failed"``; the caller tells
    the study (:func:`tunefleet.execution.run_trial_batches`).

    Example:

    >>> import optuna
    >>> from tunefleet.fleet_batch import Member, finish_trial
    >>> study = optuna.create_study()
    >>> member = Member(study.ask())
    >>> member.fail("ValueError: bad build")
    >>> finish_trial(member, {}, 0.5), member.trial.user_attrs["tunefleet:error"]
    ('failed', 'ValueError: bad build')
    """
    if member.error is not None:
        attrs = {**attrs, ERROR_ATTR: error_text(member.error)}
    set_user_attrs(member.trial.study, member.trial, attrs)
    return value if member.alive else str(member.outcome)


class FleetBatch:
    """Train batches of trials as fleets through a face's adapter (see the module docstring).

    Args:
        adapter: What differs between faces: a :class:`FleetAdapter` for :meth:`run`, or
            just :class:`EpochValues` for :meth:`fit`.
        prune: Ask the study's pruner about each trial after every epoch it trained.
        keep_weights: Copy each row's weights at its best epoch to the host (``Row.weights``).
        better: ``better(a, b)``: whether value ``a`` beats ``b`` (``b`` may be NaN).
        trainer_kwargs: Extra arguments of :class:`tunefleet.fleet.FleetTrainer`.
        stats: The dict to count seconds in (``"train"``, its ``"compile"`` part and
            ``"bookkeeping"``) and refilled trials (``"refilled"``).

    Example: three trials of an MLP on iris, the validation loss their value; a threshold
    pruner stops trials whose first epoch leaves it above 1.0, and their rows are refilled
    with newly asked trials (at most two here).

    >>> import math
    >>> from functools import partial
    >>> import numpy as np, optuna
    >>> from sklearn.datasets import load_iris
    >>> from tunefleet.fleet_batch import FitData, FleetBatch, Member, Row, finish_trial
    >>> from tunefleet.keras import build_mlp
    >>> x, y = load_iris(return_X_y=True)
    >>> order = np.random.default_rng(0).permutation(len(x))
    >>> x, y = ((x - x.mean(0)) / x.std(0))[order].astype("float32"), y[order]
    >>> build = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)
    >>> class Adapter:  # one fold, one run per trial
    ...     n_folds, runs_per_member = 1, 1
    ...     def __init__(self):
    ...         self.value = {}
    ...     def member(self, trial):
    ...         trial.suggest_categorical("learning_rate", [1e-5, 0.05])
    ...         return Member(trial)
    ...     def rows(self, fold, members):
    ...         return [Row(m, m.trial.params, seed=0, batch_size=16, epochs=2) for m in members]
    ...     def fit_data(self, fold, rows):
    ...         return FitData(build, x, y, validation_split=0.2)
    ...     def values(self, logs, rows):
    ...         return [float(logs["val_loss"][row.index]) for row in rows]
    ...     def on_nan(self, row, loss):
    ...         row.member.fail(f"the loss became {loss}")
    ...     def trained(self, fold, rows):
    ...         self.value.update({row.member.trial.number: row.best for row in rows})
    ...     def finish(self, member):
    ...         return finish_trial(member, {}, self.value[member.trial.number])
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1.0))
    >>> for lr in (1e-5, 0.05, 0.05, 0.05, 0.05):
    ...     study.enqueue_trial({"learning_rate": lr})
    >>> lower = lambda a, b: math.isfinite(a) and not a >= b
    >>> batch = FleetBatch(Adapter(), prune=True, better=lower)
    >>> asked = []
    >>> def ask(n):  # up to two more trials
    ...     new = [study.ask() for _ in range(min(n, 2 - len(asked)))]
    ...     asked.extend(new)
    ...     return new
    >>> outcomes = batch.run(study, [study.ask() for _ in range(3)], ask)
    >>> ["pruned" if o == "pruned" else "value" for o in outcomes], batch.stats["refilled"]
    (['pruned', 'value', 'value', 'value'], 1)
    """

    def __init__(
        self,
        adapter: EpochValues,
        *,
        prune: bool = False,
        keep_weights: bool = False,
        better: Callable[[float, float], bool] = higher_is_better,
        trainer_kwargs: Mapping[str, Any] | None = None,
        stats: dict[str, float] | None = None,
    ) -> None:
        self.adapter = adapter
        self.prune = prune
        self.keep_weights = keep_weights
        self.better = better
        self.trainer_kwargs = dict(trainer_kwargs or {})
        if stats is None:
            stats = {"train": 0.0, "compile": 0.0, "bookkeeping": 0.0, "refilled": 0}
        self.stats = stats
        self._trainers: dict[Any, FleetTrainer] = {}

    def trainer(self, build_fn: Callable[..., Any], seed: int = 0) -> FleetTrainer:
        """The trainer of ``build_fn`` (made with ``seed`` on first use, then reused)."""
        key = build_key(build_fn)
        trainer = self._trainers.get(key)
        if trainer is None:
            from tunefleet.fleet import FleetTrainer

            trainer = FleetTrainer(build_fn, seed=seed, **self.trainer_kwargs)
            self._trainers[key] = trainer
        return trainer

    # -- a batch -------------------------------------------------------------------------
    def run(
        self, study: optuna.Study, trials: list[optuna.Trial], ask: Ask | None = None
    ) -> list[Outcome]:
        """Train ``trials`` fold by fold as fleets; return each one's outcome.

        With ``ask`` (see :func:`tunefleet.execution.run_trial_batches`), rows the first
        fold's fit frees (trials pruned or failed before their last epoch) are refilled
        with new trials asked from the study; their outcomes follow those of ``trials``,
        in the order they were asked. The caller tells the study.
        """
        adapter: FleetAdapter = self.adapter  # type: ignore[assignment]
        members = [adapter.member(trial) for trial in trials]
        for fold in range(adapter.n_folds):
            more = None
            if ask is not None and fold == 0:
                more = functools.partial(self._more, ask, members, fold)
            pending = adapter.rows(fold, _trainable(members))
            while pending:  # refilled trials no free row took train in a fit of their own
                done = self.fit(study, pending, adapter.fit_data(fold, pending), refill=more)
                adapter.trained(fold, done.trained)
                pending = done.not_started
        return [adapter.finish(m) for m in members]

    def _more(self, ask: Ask, members: list[Member], fold: int, free: int) -> list[Row]:
        """Ask trials for ``free`` rows, add them to ``members``; return their rows."""
        adapter: FleetAdapter = self.adapter  # type: ignore[assignment]
        new = [adapter.member(trial) for trial in ask(free // adapter.runs_per_member)]
        members.extend(new)
        self.stats["refilled"] += len(new)
        return adapter.rows(fold, _trainable(new))

    # -- one fit -------------------------------------------------------------------------
    def fit(
        self,
        study: optuna.Study,
        rows: list[Row],
        data: FitData,
        refill: Callable[[int], list[Row]] | None = None,
    ) -> FitDone:
        """Train ``rows`` in one fleet fit, with the per-epoch callback.

        With ``refill``, rows freed during the fit are refilled with the rows
        ``refill(free)`` returns (they join at the next epoch, from their own epoch 0).
        """
        trainer = self.trainer(data.build_fn, data.seed)
        initial = list(rows)
        rows = list(rows)
        for k, row in enumerate(rows):
            row.index = k

        def on_epoch_end(_: int, logs: EpochLogs) -> np.ndarray:
            return self._on_epoch_end(study, rows, logs)

        def refill_rows(_: int, free: int) -> list[NewTrial]:
            assert refill is not None
            new = refill(free)
            for row in new:
                row.index = len(rows)
                rows.append(row)
            return [row.new_trial() for row in new]

        start = time.perf_counter()
        result = trainer.fit(
            [row.config for row in initial],
            data.x,
            data.y,
            epochs=max(row.epochs for row in initial),
            batch_size=[row.batch_size for row in initial],
            validation_data=data.validation_data,
            validation_split=data.validation_split,
            shuffle=data.shuffle,
            on_epoch_end=on_epoch_end,
            seeds=[row.seed for row in initial],
            refill=None if refill is None else refill_rows,
        )
        elapsed = time.perf_counter() - start
        self.stats["train"] += elapsed
        self.stats["compile"] = sum(t.compile_seconds for t in self._trainers.values())
        not_started = set(result.not_started)
        trained = [row for row in rows if row.index not in not_started]
        for row in trained:  # the fleet's time, shared evenly
            row.fit_time = elapsed / len(trained) - row.score_time
        return FitDone(trained, [rows[k] for k in sorted(not_started)], result, elapsed)

    def _on_epoch_end(self, study: optuna.Study, rows: list[Row], logs: EpochLogs) -> np.ndarray:
        """Stop rows at a non-finite loss, read values, keep bests, report, prune, stop."""
        start = time.perf_counter()
        keep = np.array(logs.active, dtype=bool)
        live = []
        for k, row in enumerate(rows):
            if not keep[k] or not row.member.alive:
                keep[k] = False
                continue
            row.epoch = row.first_epoch + int(logs.trial_epoch[k])
            loss = float(logs["loss"][k])
            if not math.isfinite(loss):  # as TerminateOnNaN
                keep[k] = False
                self.adapter.on_nan(row, loss)
                continue
            live.append(row)
        read = time.perf_counter()
        values = self.adapter.values(logs, live)
        score_time = time.perf_counter() - read
        reports, improved = [], []
        for row, value in zip(live, values, strict=True):
            k = row.index
            if self.better(value, row.best):
                row.best, row.best_epoch = value, row.epoch
                row.best_logs = {key: float(logs[key][k]) for key in logs}
                improved.append(k)
            if math.isfinite(value):
                reports.append((row.member.trial, row.step_offset + row.epoch, value))
            if row.last_epoch:
                keep[k] = False
        if self.keep_weights and improved:
            for k, weights in logs.weights(improved).items():
                rows[k].weights = weights
        report_many(study, reports)
        if self.prune:
            asked: set[int] = set()
            for k, row in enumerate(rows):
                member = row.member
                if logs.active[k] and member.alive and id(member) not in asked:
                    asked.add(id(member))
                    if member.trial.should_prune():
                        member.outcome = "pruned"
        keep &= np.array([row.member.alive for row in rows], dtype=bool)
        for row in rows:
            row.score_time += score_time / len(rows)
        self.stats["bookkeeping"] += time.perf_counter() - start - score_time
        return keep


def build_key(build_fn: Callable[..., Any]) -> Any:
    """What makes two build functions the same, for sharing a trainer and its programs.

    Every trial's estimator is a clone, whose build function is a deep copy: the same
    object for a plain function, but a new ``functools.partial`` or bound method, which
    compare by identity. Those are keyed by what they call with, where it is hashable.

    Example:

    >>> import copy, functools
    >>> build = functools.partial(dict, units=8)
    >>> build_key(copy.deepcopy(build)) == build_key(build)
    True
    """
    if isinstance(build_fn, functools.partial):
        key: Any = (
            "partial",
            build_key(build_fn.func),
            build_fn.args,
            tuple(sorted(build_fn.keywords.items())),
        )
    elif isinstance(build_fn, types.MethodType):
        key = ("method", build_fn.__func__, build_fn.__self__)
    else:
        return build_fn
    try:
        hash(key)
    except TypeError:  # unhashable arguments or owner: only the object itself
        return build_fn
    return key


def _trainable(members: list[Member]) -> list[Member]:
    return [m for m in members if m.alive and not m.solo]
