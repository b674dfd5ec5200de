"""The epoch loop: all fleets advance one epoch in lockstep, then the callback decides.

Each epoch every fleet runs its compiled epoch program on the same batch order,
then its validation program; per-trial logs are gathered into arrays over all
trials of the fit and handed to ``on_epoch_end``, which may stop trials. A
stopped trial's weights are copied to the host at once; its rows keep computing
(masked out) until compacting the fleet pays for the extra compilation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import numpy as np

from tunefleet.fleet.export import TrialWeights
from tunefleet.fleet.padding import Recipe
from tunefleet.fleet.result import EpochLogs
from tunefleet.fleet.train import (
    FleetState,
    GroupFunctions,
    batch_rows,
    chunk_rows,
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
) -> tuple[list[dict[str, list[float]]], list[int | None], list[TrialWeights | None], dict]:
    """Train all fleets for ``epochs`` epochs in lockstep.

    Returns:
        ``(history, stopped_at, weights, stats)``, indexed by config.
    """
    history: list[dict[str, list[float]]] = [{} for _ in range(n_trials)]
    stopped_at: list[int | None] = [None] * n_trials
    weights: list[TrialWeights | None] = [None] * n_trials
    active = np.zeros(n_trials, dtype=bool)
    for fleet in fleets:
        active[fleet.rows[fleet.rows >= 0]] = True
    stats: dict[str, Any] = {"epoch_seconds": [], "compactions": 0, "callback_seconds": 0.0}
    val_chunks = None
    n_val = 0
    if validation is not None:
        n_val = len(validation[0])
        val_chunks = chunk_rows(validation[0], validation[1], eval_batch_size)
    for epoch in range(epochs):
        t_epoch = time.perf_counter()
        perm = order.next()
        outputs = []
        for fleet in fleets:
            t0 = time.perf_counter()
            batches, row_weights = batch_rows(perm, fleet.batch_size)
            fleet.state, train_logs = fleet.fns.run_train(
                fleet.state, fleet.hp, x, y, batches, row_weights
            )
            val_logs, preds = (None, None)
            if val_chunks is not None:
                val_logs, preds = fleet.fns.run_eval(fleet.state, fleet.hp, *val_chunks)
            train_logs, val_logs = jax.device_get((train_logs, val_logs))
            fleet.epoch_seconds.append(time.perf_counter() - t0)
            outputs.append((fleet, train_logs, val_logs, preds))

        values: dict[str, np.ndarray] = {}
        for fleet, train_logs, val_logs, _ in outputs:
            real = fleet.rows >= 0
            for prefix, logs in (("", train_logs), ("val_", val_logs)):
                for name, value in (logs or {}).items():
                    arr = values.setdefault(prefix + name, np.full(n_trials, np.nan))
                    arr[fleet.rows[real]] = np.asarray(value, dtype=np.float64)[real]
        for arr in values.values():
            arr[~active] = np.nan
        for i in np.flatnonzero(active):
            for name, arr in values.items():
                history[i].setdefault(name, []).append(float(arr[i]))

        keep = np.ones(n_trials, dtype=bool)
        if on_epoch_end is not None:
            t0 = time.perf_counter()
            snapshot = active.copy()
            logs = EpochLogs(
                epoch,
                values,
                snapshot,
                _predictions(outputs, n_trials, snapshot, n_val)
                if validation is not None
                else None,
                _capturer(fleets, snapshot),
            )
            decision = on_epoch_end(epoch, logs)
            if decision is not None:
                keep = np.asarray(decision, dtype=bool).reshape(n_trials)
            stats["callback_seconds"] += time.perf_counter() - t0
        stopping = active & ~keep
        last = epoch == epochs - 1
        remaining = epochs - epoch - 1
        for fleet in fleets:
            rows = [
                r
                for r, trial in enumerate(fleet.rows)
                if trial >= 0 and active[trial] and (last or stopping[trial])
            ]
            for trial, w in _capture(fleet, rows).items():
                weights[trial] = w
                if stopping[trial]:
                    stopped_at[trial] = epoch
        active &= ~stopping
        survivors = []
        for fleet in fleets:
            live = np.array([t >= 0 and active[t] for t in fleet.rows])
            if not live.any():
                continue
            if _should_compact(fleet, int(live.sum()), remaining, compact):
                index = np.flatnonzero(live)
                fleet.state = take(fleet.state, index)
                fleet.hp = take(fleet.hp, index)
                fleet.rows = fleet.rows[index]
                fleet.epoch_seconds = []
                stats["compactions"] += 1
            survivors.append(fleet)
        fleets = survivors
        stats["epoch_seconds"].append(time.perf_counter() - t_epoch)
        if not fleets:
            break
    return history, stopped_at, weights, stats


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
    outputs: list, n_trials: int, active: np.ndarray, n_val: int
) -> Callable[[], np.ndarray]:
    cache: list[np.ndarray] = []

    def predict_val() -> np.ndarray:
        if cache:
            return cache[0]
        full = None
        for fleet, _, _, preds in outputs:
            host = np.asarray(jax.device_get(preds))[:, :n_val]
            if full is None:
                full = np.full((n_trials, *host.shape[1:]), np.nan, dtype=host.dtype)
            for row, trial in enumerate(fleet.rows):
                if trial >= 0 and active[trial]:
                    full[trial] = host[row]
        assert full is not None
        cache.append(full)
        return full

    return predict_val
