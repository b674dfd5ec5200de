"""Grouping trials into compile groups, and sizing the fleets a group runs as.

Two trials share a compile group when their signatures are equal (see
:mod:`tunefleet.fleet.introspect`) and, for every layer whose width differs
between them, the difference can be masked: the layer's activation is
elementwise and its channels reach the next Dense/Conv only through
channel-wise layers (Dropout, BatchNormalization over the last axis, elementwise
activations, pooling) or ``Flatten``. Otherwise that width becomes part of the
group key.

A group is then cut into fleets of equal size (one compiled program per group);
the size is bounded by a memory estimate and, when a throughput curve was
measured, by the smallest fleet size reaching 90% of the best measured
throughput.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import psutil

from tunefleet.fleet.introspect import (
    CHANNELWISE_LAYERS,
    ELEMENTWISE_ACTIVATIONS,
    WIDTH_KEYS,
    TrialSpec,
    activation_name,
)


def _maskable(layers: list, k: int) -> bool:
    """Whether layer ``k``'s width may differ inside a group (see module doc)."""
    layer = layers[k]
    if activation_name(layer) not in ELEMENTWISE_ACTIVATIONS:
        return False
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return False
    for nxt in layers[k + 1 :]:
        name = type(nxt).__name__
        if name in ("Dense", "Conv1D", "Conv2D"):
            return True
        if name == "Flatten":
            continue
        if name not in CHANNELWISE_LAYERS:
            return False
        if name == "Activation" and activation_name(nxt) not in ELEMENTWISE_ACTIVATIONS:
            return False
        if name == "BatchNormalization" and nxt.axis not in (-1,):
            return False
        if getattr(nxt, "data_format", "channels_last") != "channels_last":
            return False
    return False


def maskable_width_layers(layers: list) -> tuple[int, ...]:
    """Width layers whose width may differ inside a group (its program masks them)."""
    return tuple(
        k
        for k, layer in enumerate(layers)
        if type(layer).__name__ in WIDTH_KEYS and _maskable(layers, k)
    )


def fixed_width_layers(spec: TrialSpec) -> tuple[int, ...]:
    """Width layers whose width must be equal within a group."""
    return tuple(
        k
        for k, layer in enumerate(spec.layers)
        if type(layer).__name__ in WIDTH_KEYS and not _maskable(spec.layers, k)
    )


def group_trials(specs: Sequence[TrialSpec], batch_sizes: Sequence[int]) -> list[list[int]]:
    """Split trials into compile groups (lists of indices, in first-seen order).

    Args:
        specs: Every trial's reading.
        batch_sizes: Every trial's training batch size.

    Example:

    >>> from tunefleet.fleet.introspect import read_trial
    >>> from tunefleet.fleet.plan import group_trials
    >>> from tunefleet.keras import build_mlp
    >>> specs = [read_trial(build_mlp((4,), "multiclass:3", n_hidden=1, n_neurons=n, activation=a))
    ...          for n, a in [(8, "relu"), (8, "tanh"), (32, "relu")]]
    >>> group_trials(specs, [32, 32, 32])   # widths may differ within a group
    [[0, 2], [1]]
    """
    groups: dict[tuple, list[int]] = defaultdict(list)
    fixed_cache: dict[tuple, tuple[int, ...]] = {}
    for i, spec in enumerate(specs):
        base = (spec.signature, int(batch_sizes[i]))
        if spec.signature not in fixed_cache:
            fixed_cache[spec.signature] = fixed_width_layers(spec)
        widths = tuple(spec.widths[k] for k in fixed_cache[spec.signature])
        groups[(*base, widths)].append(i)
    return list(groups.values())


@dataclass
class ThroughputCurve:
    """Measured training speed of one group as a function of fleet size.

    Args:
        sizes: Fleet sizes measured.
        step_seconds: Seconds per training step (one batch, all trials) per size.
        compile_seconds: Seconds spent compiling the probes, per size.

    Example:

    >>> from tunefleet.fleet import ThroughputCurve
    >>> curve = ThroughputCurve(sizes=[1, 8, 32], step_seconds=[0.001, 0.002, 0.006])
    >>> print(curve.table())
    fleet size | ms/step | trial-steps/s
             1 |    1.00 |          1000
             8 |    2.00 |          4000
            32 |    6.00 |          5333
    >>> curve.best_size(cap=64), curve.best_size(cap=16)   # within 90% of the best
    (32, 8)
    """

    sizes: list[int]
    step_seconds: list[float]
    compile_seconds: list[float] = field(default_factory=list)

    def trial_steps_per_second(self) -> np.ndarray:
        """Throughput: trial-steps per second at each measured size."""
        return np.asarray(self.sizes) / np.asarray(self.step_seconds)

    def seconds_per_step(self, n: int) -> float:
        """Interpolated seconds per step for a fleet of ``n`` trials."""
        sizes = np.asarray(self.sizes, dtype=float)
        secs = np.asarray(self.step_seconds, dtype=float)
        if n >= sizes[-1]:
            return float(secs[-1] * n / sizes[-1])  # beyond the curve: linear
        return float(np.interp(n, sizes, secs))

    def best_size(self, cap: int, fraction: float = 0.9) -> int:
        """Smallest measured size within ``cap`` reaching ``fraction`` of the best throughput."""
        tput = self.trial_steps_per_second()
        allowed = [i for i, s in enumerate(self.sizes) if s <= cap] or [0]
        best = max(tput[i] for i in allowed)
        return min(self.sizes[i] for i in allowed if tput[i] >= fraction * best)

    def table(self) -> str:
        """The curve as a small text table."""
        rows = ["fleet size | ms/step | trial-steps/s"]
        for n, s, t in zip(
            self.sizes, self.step_seconds, self.trial_steps_per_second(), strict=True
        ):
            rows.append(f"{n:10d} | {s * 1e3:7.2f} | {t:13.0f}")
        return "\n".join(rows)


@dataclass
class MemoryEstimate:
    """Estimated device bytes of one trial of a group, and the device's budget.

    Args:
        per_trial_bytes: State (weights, gradients, optimizer, statistics) plus
            training and evaluation activations of one trial.
        budget_bytes: The share of free device memory fleets may use.

    Example:

    >>> from tunefleet.fleet import MemoryEstimate
    >>> MemoryEstimate(per_trial_bytes=2**20, budget_bytes=2**30).max_trials
    1024

    ``FleetTrainer.plan`` estimates one per compile group (``plan.memory``).
    """

    per_trial_bytes: int
    budget_bytes: int

    @property
    def max_trials(self) -> int:
        return max(1, int(self.budget_bytes // max(1, self.per_trial_bytes)))


def device_budget(fraction: float = 0.5) -> int:
    """Bytes fleets may use on the default device (``fraction`` of what is free)."""
    device = jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:
        stats = None
    if stats and "bytes_limit" in stats:
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    else:
        free = int(psutil.virtual_memory().available)
    return int(free * fraction)


def state_bytes(program: Any) -> int:
    """Bytes of one trial's weights, gradients and optimizer variables (all float32)."""
    params = sum(int(np.prod(v.shape)) for v in program.flat_trainables)
    opt = sum(int(np.prod(v.shape)) for v in program.optimizer.variables)
    return 4 * (2 * params + opt)


def last_level_cache_bytes(default: int = 16 * 2**20) -> int:
    """Size of the CPU's last-level cache (Linux sysfs), else ``default``."""
    import glob

    sizes = []
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as fh:
                text = fh.read().strip().upper()
        except OSError:
            continue
        factor = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * factor)
    return max(sizes) if sizes else default


def cache_fleet_size(trial_state_bytes: int, fraction: float = 0.6, minimum: int = 4) -> int:
    """CPU fleet size whose training state fits ``fraction`` of the last-level cache.

    The optimizer update streams every weight each step, so a fleet that spills out
    of the cache is slower per trial, while many small fleets pay per-fleet overhead.
    On an idle 2-core EPYC (32 MiB L3), training 64 trials for 20 epochs (wall
    seconds, compile excluded) was fastest at fleets of 22-32 for the digits MLP
    (0.67 MiB of state per trial: 10.1-11.4 s, against 12.8 s for fleets of 8 and
    10.9 s for one of 64) and of 8 for the digits CNN (2.3 MiB: 22.6 s per 5
    epochs, against 24.4 s for 4 and 29.1 s for 64): both at about 60% of the cache.
    """
    return max(minimum, int(last_level_cache_bytes() * fraction // max(1, trial_state_bytes)))


def estimate_trial_bytes(
    program: Any, batch_size: int, n_val: int = 0, eval_batch_size: int = 2048
) -> int:
    """Rough device bytes of one trial of a group's template.

    Args:
        program: The group's ``GroupProgram``.
        batch_size: Training batch size.
        n_val: Number of validation samples (predictions are kept per trial).
        eval_batch_size: Validation chunk size.
    """
    params = sum(int(np.prod(v.shape)) for v in program.flat_trainables)
    nontrain = sum(
        int(np.prod(v.shape)) for layer in program.layers for v in layer.non_trainable_variables
    )
    opt = sum(int(np.prod(v.shape)) for v in program.optimizer.variables)
    shape = program.input_shape
    acts = 0
    for layer in program.layers:
        shape = tuple(layer.compute_output_shape(shape))
        acts += int(np.prod([d for d in shape[1:] if d is not None]))
    out = int(np.prod([d for d in shape[1:] if d is not None]))
    floats = (
        2 * params  # weights and gradients
        + 2 * params  # updated copies inside the step
        + nontrain
        + opt
        + 3 * batch_size * acts  # forward activations, their gradients, dropout masks
        + min(eval_batch_size, max(n_val, 1)) * acts
        + n_val * out  # kept validation predictions
    )
    return 4 * floats


@dataclass
class FleetPlan:
    """Compile groups and the fleets each runs as.

    Iterating a plan yields its compile groups (lists of config indices); each
    group compiles once. ``fleets`` cuts every group into equal-size fleets.

    Args:
        groups: Config indices of each compile group.
        fleets: Per group, the config indices of each of its fleets.
        fleet_size: Per group, the (padded) size of its fleets.
        memory: Per group, the memory estimate used.
        curves: Per group, the measured throughput curve (if measured).
        reasons: Per group, how its fleet size was chosen.

    Example:

    >>> from functools import partial
    >>> from tunefleet.fleet import FleetTrainer, MemoryEstimate
    >>> from tunefleet.keras import build_mlp
    >>> build_fn = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)
    >>> configs = [{"activation": "relu"}, {"activation": "tanh"}, {"n_neurons": 8}]
    >>> plan = FleetTrainer(build_fn).plan(configs)
    >>> [list(group) for group in plan]   # the activation decides the compiled program
    [[0, 2], [1]]
    >>> [len(fleets) for fleets in plan.fleets]   # each group runs as one fleet here
    [1, 1]
    >>> isinstance(plan.memory[0], MemoryEstimate)
    True
    """

    groups: list[list[int]]
    fleets: list[list[list[int]]]
    fleet_size: list[int]
    memory: list[MemoryEstimate | None] = field(default_factory=list)
    curves: list[ThroughputCurve | None] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> list[int]:
        return self.groups[i]

    def report(self) -> str:
        """Human-readable summary: groups, fleet sizes, memory and curves."""
        lines = []
        for g, members in enumerate(self.groups):
            mem = self.memory[g] if g < len(self.memory) else None
            lines.append(
                f"group {g}: {len(members)} trials, {len(self.fleets[g])} fleet(s) of "
                f"{self.fleet_size[g]}"
                + (f"; ~{mem.per_trial_bytes / 2**20:.2f} MiB/trial" if mem else "")
                + (f"; {self.reasons[g]}" if g < len(self.reasons) else "")
            )
            curve = self.curves[g] if g < len(self.curves) else None
            if curve is not None:
                lines.append(curve.table())
        return "\n".join(lines)


def split_even(members: list[int], size: int) -> list[list[int]]:
    """Cut ``members`` into ``ceil(len / size)`` fleets of near-equal size."""
    n_fleets = max(1, -(-len(members) // max(1, size)))
    return [[int(i) for i in chunk] for chunk in np.array_split(np.asarray(members), n_fleets)]


def measure_throughput(
    fns: Any,
    start: Any,
    x: Any,
    y: Any,
    batch_size: int,
    max_size: int,
    steps: int = 8,
    repeats: int = 3,
    min_gain: float = 0.05,
) -> ThroughputCurve:
    """Time the group's real training program at fleet sizes 1, 2, 4, ... ``max_size``.

    Doubling stops once it raises throughput by less than ``min_gain``.

    Args:
        fns: The group's ``GroupFunctions``.
        start: One trial's ``TrialStart`` (replicated to each size).
        x: Training inputs on the device.
        y: Training targets on the device.
        batch_size: Batch size.
        max_size: Largest fleet size to try.
        steps: Batches per timed call.
        repeats: Timed calls per size (the fastest counts).
        min_gain: Relative throughput gain below which probing stops.
    """
    import time

    from tunefleet.fleet.train import FleetState, stack, to_device

    n_samples = int(x.shape[0])
    index = np.arange(steps * batch_size) % n_samples
    batches = to_device(index.reshape(steps, batch_size), np.int32)
    weights = to_device(np.ones((steps, batch_size), np.float32))
    sizes: list[int] = []
    seconds: list[float] = []
    compiles: list[float] = []
    n = 1
    while n <= max_size:
        state = FleetState(
            stack([start.params] * n), stack([start.nontrain] * n), stack([start.opt] * n)
        )
        hp = stack([start.hp] * n)
        t0 = time.perf_counter()
        exe = fns.train_epoch.lower(state, hp, x, y, batches, weights).compile()
        compiles.append(time.perf_counter() - t0)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(exe(state, hp, x, y, batches, weights))
            best = min(best, time.perf_counter() - t0)
        sizes.append(n)
        seconds.append(best / steps)
        if len(sizes) >= 2:
            gain = (sizes[-1] / seconds[-1]) / (sizes[-2] / seconds[-2]) - 1.0
            if gain < min_gain:
                break
        if n == max_size:
            break
        n = min(2 * n, max_size)
    return ThroughputCurve(sizes=sizes, step_seconds=seconds, compile_seconds=compiles)
