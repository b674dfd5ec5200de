"""The epoch loop: all fleets advance one epoch in lockstep, then the callback decides.

Each epoch every fleet runs its compiled epoch program: training on the same batch
order, then validation (one program: see ``GroupFunctions.run_epoch``). Per-trial logs
are gathered into arrays over all trials of the fit and handed to ``on_epoch_end``,
which may stop trials. A stopped trial's weights are copied to the host at once; its
rows keep computing (masked out) until compacting the fleet pays for the extra
compilation.

Every trial has its own epoch budget: the loop runs while any trial has epochs
left. Rows freed by trials stopped before their last epoch can be refilled with
new trials (a :data:`RefillHook`), which start from their own epoch 0 there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import numpy as np

from tunefleet.fleet.export import TrialWeights
from tunefleet.fleet.group import TrialStart
from tunefleet.fleet.padding import Recipe
from tunefleet.fleet.result import EpochLogs
from tunefleet.fleet.train import (
    FleetState,
    GroupFunctions,
    batch_rows,
    chunk_rows,
    put,
    take,
    take_host,
)

Callback = Callable[[int, EpochLogs], Any]
CompactPolicy = Literal["auto", "always", "never"]


@dataclass
class Fleet:
    """One vmapped batch of trials of a compile group, with its device state.

    Args:
        group: Index of its compile group.
        fns: The group's compiled functions.
        rows: Config index of every row; ``-1`` marks a padding row.
        state: Stacked trial state.
        hp: Stacked per-trial hyperparameters.
        batch_size: The fleet's training batch size.
        recipes: Per config index, the padding recipes of that trial.
    """

    group: int
    fns: GroupFunctions
    rows: np.ndarray
    state: FleetState
    hp: dict
    batch_size: int
    recipes: dict[int, list[tuple[list[Recipe], list[Recipe]]]]
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.rows)

    def put(self, rows: Sequence[int], trials: Sequence[int], starts: Sequence[TrialStart]) -> None:
        """Start new trials in ``rows``: their whole state and hyperparameters replaced."""
        index = np.asarray(rows)
        self.state = put(
            self.state,
            index,
            [FleetState(params=s.params, nontrain=s.nontrain, opt=s.opt) for s in starts],
        )
        self.hp = put(self.hp, index, [s.hp for s in starts])
        self.rows = self.rows.copy()
        self.rows[index] = trials
        self.recipes.update({trial: s.recipes for trial, s in zip(trials, starts, strict=True)})


#: ``hook(epoch, free, n_trials)``: free rows ``(fleet, row)``; new trials are numbered
#: from ``n_trials``. The hook writes the trials it starts into free rows
#: (:meth:`Fleet.put`) and returns, per new trial, its epoch budget, or ``None`` for a
#: trial it could not start.
RefillHook = Callable[[int, list[tuple[Fleet, int]], int], list[int | None]]


class EpochOrder:
    """Per-epoch sample order, the same as ``model.fit`` draws it after the same seed.

    Keras 3 draws the order with ``np.random.permutation`` each epoch and draws one
    extra permutation while it builds a fresh model's metrics, before epoch 0; after
    ``keras.utils.set_random_seed(seed)`` and ``build_fn`` the global NumPy state is
    ``RandomState(seed)``, so this reproduces a solo fit's batches exactly.

    Args:
        n: Number of training samples.
        shuffle: Whether to shuffle each epoch.
        seed: The seed.
    """

    def __init__(self, n: int, shuffle: bool, seed: int) -> None:
        self.n = n
        self.shuffle = shuffle
        self._rng = np.random.RandomState(seed)
        if shuffle:
            self._rng.permutation(n)

    def next(self) -> np.ndarray:
        if self.shuffle:
            return self._rng.permutation(self.n)
        return np.arange(self.n)


@dataclass
class Trials:
    """Per-trial bookkeeping of a fit, over all trials so far (refills append).

    Args:
        history: Metric name -> per-epoch values.
        stopped_at: The trial's own epoch at which the callback stopped it.
        weights: Host copy of the final (or stopped) weights.
        budget: Epochs the trial may train.
        trained: Epochs it has trained.
        active: Whether it trains in the next epoch.
        freed: Whether it was stopped before its last epoch (its rows may be refilled).
        not_started: Trials a refill returned that no free row could take.
    """

    history: list[dict[str, list[float]]] = field(default_factory=list)
    stopped_at: list[int | None] = field(default_factory=list)
    weights: list[TrialWeights | None] = field(default_factory=list)
    budget: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    trained: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    freed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    not_started: list[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.history)

    def add(self, budgets: Sequence[int | None]) -> None:
        """Append trials; a ``None`` budget marks a trial that was not started."""
        first = self.n
        k = len(budgets)
        self.history += [{} for _ in range(k)]
        self.stopped_at += [None] * k
        self.weights += [None] * k
        started = np.array([b is not None for b in budgets], dtype=bool)
        self.budget = np.concatenate([self.budget, [b or 0 for b in budgets]]).astype(int)
        self.trained = np.concatenate([self.trained, np.zeros(k, dtype=int)])
        self.active = np.concatenate([self.active, started])
        self.freed = np.concatenate([self.freed, np.zeros(k, dtype=bool)])
        self.not_started += [first + j for j, b in enumerate(budgets) if b is None]

    def record(self, values: dict[str, np.ndarray]) -> None:
        """Append this epoch's values to the active trials' histories."""
        for i in np.flatnonzero(self.active):
            for name, arr in values.items():
                self.history[i].setdefault(name, []).append(float(arr[i]))


def _capture(fleet: Fleet, rows: list[int]) -> dict[int, TrialWeights]:
    """Copy the given rows' weights to the host."""
    if not rows:
        return {}
    params, nontrain, opt = take_host(
        (fleet.state.params, fleet.state.nontrain, fleet.state.opt), np.asarray(rows)
    )
    program = fleet.fns.program
    dropout = fleet.fns.program.forward.dropout_layers
    out = {}
    for pos, row in enumerate(rows):
        trial = int(fleet.rows[row])
        out[trial] = TrialWeights(
            params=[[np.asarray(a[pos]) for a in layer] for layer in params],
            nontrain=[[np.asarray(a[pos]) for a in layer] for layer in nontrain],
            recipes=fleet.recipes[trial],
            dropout_layers=dropout,
            opt=[np.asarray(a[pos]) for a in opt],
            opt_reference=program.opt_reference,
        )
    return out


def _should_compact(fleet: Fleet, n_active: int, remaining: int, policy: CompactPolicy) -> bool:
    if n_active == fleet.size or remaining <= 0:
        return False
    if policy == "always":
        return True
    if policy == "never":
        return False
    fns = fleet.fns
    steady = sorted(fleet.epoch_seconds[1:]) or fleet.epoch_seconds
    epoch_time = steady[len(steady) // 2]
    saved = epoch_time * (1.0 - fns.relative_cost(n_active, fleet.size)) * remaining
    compile_cost = 0.0 if fns.has_compiled(n_active) else fns.compile_seconds_estimate()
    return saved > compile_cost


@dataclass
class _Output:
    """One fleet's epoch: its rows then, train/validation logs and predictions."""

    fleet: Fleet
    rows: np.ndarray
    train: dict
    val: dict | None
    preds: Any


def _run_epochs(
    fleets: list[Fleet], perm: np.ndarray, x: jax.Array, y: jax.Array, val_chunks: tuple | None
) -> list[_Output]:
    """One epoch of every fleet: all dispatched before any result is waited for.

    JAX dispatches asynchronously, so the host prepares the next fleet's launch
    and reads the previous one's logs while the device trains. The epoch seconds each
    fleet records leave out compiling (a fleet's first epoch, or its first at a new
    size): they price cutting the fleet (:func:`_should_compact`), which a compile
    counted as training would make look worth it after a single epoch.
    """
    functions = {id(f.fns): f.fns for f in fleets}.values()

    def compiling() -> float:
        return sum(fns.compile_seconds for fns in functions)

    t0, compiled_before = time.perf_counter(), compiling()
    launched = []
    for fleet in fleets:
        batches, row_weights = batch_rows(perm, fleet.batch_size)
        fleet.state, train_logs, val_logs, preds = fleet.fns.run_epoch(
            fleet.state, fleet.hp, x, y, batches, row_weights, val_chunks
        )
        launched.append((fleet, fleet.rows.copy(), train_logs, val_logs, preds))
    outputs = []
    for fleet, rows, train_logs, val_logs, preds in launched:
        train_logs, val_logs = jax.device_get((train_logs, val_logs))
        outputs.append(_Output(fleet, rows, train_logs, val_logs, preds))
    training = time.perf_counter() - t0 - (compiling() - compiled_before)
    share = training / len(fleets)  # one fleet's epoch, on average
    for fleet in fleets:
        fleet.epoch_seconds.append(share)
    return outputs


def _gather(outputs: list[_Output], trials: Trials) -> dict[str, np.ndarray]:
    """Per-trial arrays over all trials of the fit (``nan`` where not trained)."""
    values: dict[str, np.ndarray] = {}
    for out in outputs:
        real = out.rows >= 0
        for prefix, logs in (("", out.train), ("val_", out.val)):
            for name, value in (logs or {}).items():
                arr = values.setdefault(prefix + name, np.full(trials.n, np.nan))
                arr[out.rows[real]] = np.asarray(value, dtype=np.float64)[real]
    for arr in values.values():
        arr[~trials.active] = np.nan
    return values


def _end_trials(
    fleets: list[Fleet], trials: Trials, stopping: np.ndarray, ending: np.ndarray
) -> None:
    """Copy ending trials' weights to the host and record where the callback stopped them."""
    for fleet in fleets:
        rows = [r for r, t in enumerate(fleet.rows) if t >= 0 and ending[t]]
        for trial, w in _capture(fleet, rows).items():
            trials.weights[trial] = w
            if stopping[trial]:
                trials.stopped_at[trial] = int(trials.trained[trial]) - 1


def _free_rows(fleets: list[Fleet], trials: Trials) -> list[tuple[Fleet, int]]:
    """Rows whose trial the callback stopped before its last epoch."""
    return [(f, r) for f in fleets for r, t in enumerate(f.rows) if t >= 0 and trials.freed[t]]


def _compact_or_drop(
    fleets: list[Fleet], trials: Trials, policy: CompactPolicy, stats: dict
) -> list[Fleet]:
    """Fleets that still have live rows, cut to them where that pays."""
    survivors = []
    for fleet in fleets:
        live = np.array([t >= 0 and trials.active[t] for t in fleet.rows])
        if not live.any():
            continue
        live_trials = fleet.rows[live]
        remaining = int(np.max(trials.budget[live_trials] - trials.trained[live_trials]))
        if _should_compact(fleet, int(live.sum()), remaining, policy):
            index = np.flatnonzero(live)
            fleet.state = take(fleet.state, index)
            fleet.hp = take(fleet.hp, index)
            fleet.rows = fleet.rows[index]
            fleet.epoch_seconds = []
            stats["compactions"] += 1
        survivors.append(fleet)
    return survivors


def run_fleets(
    fleets: list[Fleet],
    *,
    n_trials: int,
    x: jax.Array,
    y: jax.Array,
    validation: tuple[np.ndarray, np.ndarray] | None,
    eval_batch_size: int = 2048,
    epochs: int,
    order: EpochOrder,
    on_epoch_end: Callback | None,
    compact: CompactPolicy = "auto",
    refill: RefillHook | None = None,
) -> tuple[Trials, dict]:
    """Train all fleets in lockstep until no trial has epochs left.

    The ``n_trials`` initial trials get ``epochs`` epochs each; trials started by
    ``refill`` get the budget it returns, from the epoch after the refill.

    Returns:
        ``(trials, stats)``; ``trials`` is indexed by config (refilled ones last).
    """
    trials = Trials()
    trials.add([epochs] * n_trials)
    trials.active[:] = False
    for fleet in fleets:
        trials.active[fleet.rows[fleet.rows >= 0]] = True
    stats: dict[str, Any] = {
        "epoch_seconds": [],
        "compactions": 0,
        "callback_seconds": 0.0,
        "refills": 0,
    }
    val_chunks = None
    n_val = 0
    if validation is not None:
        n_val = len(validation[0])
        val_chunks = chunk_rows(validation[0], validation[1], eval_batch_size)
    epoch = 0
    while fleets:
        t_epoch = time.perf_counter()
        perm = order.next()
        outputs = _run_epochs(fleets, perm, x, y, val_chunks)
        values = _gather(outputs, trials)
        trials.record(values)
        keep = np.ones(trials.n, dtype=bool)
        if on_epoch_end is not None:
            t0 = time.perf_counter()
            snapshot = trials.active.copy()
            logs = EpochLogs(
                epoch,
                values,
                snapshot,
                _predictions(outputs, trials.n, snapshot, n_val)
                if val_chunks is not None
                else None,
                _capturer(fleets, snapshot),
                trial_epoch=np.where(snapshot, trials.trained, -1),
            )
            decision = on_epoch_end(epoch, logs)
            if decision is not None:
                keep = np.asarray(decision, dtype=bool).reshape(trials.n)
            stats["callback_seconds"] += time.perf_counter() - t0
        stopping = trials.active & ~keep
        trials.trained[trials.active] += 1
        ending = stopping | (trials.active & (trials.trained >= trials.budget))
        _end_trials(fleets, trials, stopping, ending)
        trials.freed |= stopping & (trials.trained < trials.budget)
        trials.active &= ~ending
        if refill is not None and (free := _free_rows(fleets, trials)):
            budgets = refill(epoch, free, trials.n)
            trials.add(budgets)
            stats["refills"] += sum(b is not None for b in budgets)
        fleets = _compact_or_drop(fleets, trials, compact, stats)
        stats["epoch_seconds"].append(time.perf_counter() - t_epoch)
        epoch += 1
    return trials, stats


def _capturer(
    fleets: list[Fleet], active: np.ndarray
) -> Callable[[Sequence[int]], dict[int, TrialWeights]]:
    def capture(trials: Sequence[int]) -> dict[int, TrialWeights]:
        wanted = {int(t) for t in trials if active[t]}
        out: dict[int, TrialWeights] = {}
        for fleet in fleets:
            out.update(_capture(fleet, [r for r, t in enumerate(fleet.rows) if t in wanted]))
        return out

    return capture


def _predictions(
    outputs: list[_Output], n_trials: int, active: np.ndarray, n_val: int
) -> Callable[[], np.ndarray]:
    cache: list[np.ndarray] = []

    def predict_val() -> np.ndarray:
        if cache:
            return cache[0]
        full = None
        for out in outputs:
            host = np.asarray(jax.device_get(out.preds))[:, :n_val]
            if full is None:
                full = np.full((n_trials, *host.shape[1:]), np.nan, dtype=host.dtype)
            for row, trial in enumerate(out.rows):
                if trial >= 0 and active[trial]:
                    full[trial] = host[row]
        assert full is not None
        cache.append(full)
        return full

    return predict_val
