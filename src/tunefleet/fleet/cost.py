"""When does cutting a compile group by width pay for the extra compilation?

Every trial of a group computes at the group's largest widths. When widths vary a
lot, most of that work multiplies zeros; cutting the group into width buckets
removes it but compiles one more program per bucket. This module prices both
sides with a small model,

    seconds(bucket) = compile_seconds + epochs * samples * n_trials * flops(max widths) * s_per_flop

and merges buckets greedily (cheapest merge first) while merging lowers the total.
``flops`` counts forward, backward and optimizer work per training sample from the
trial's own layer shapes; ``s_per_flop`` comes from a quick matmul probe scaled by
the efficiency measured for fleet programs (about half of a batched matmul's
FLOP rate on CPU: 0.57 for the digits MLP and 0.47 for the digits CNN of
``benchmarks/throughput.py``, idle 2-core EPYC, session 4).

By default only CPU groups are cut: on an accelerator a wider template costs little
until the device saturates.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from tunefleet.fleet.introspect import WIDTH_KEYS, TrialSpec

#: Fleet programs reach about this share of a plain batched matmul's FLOP rate.
PROGRAM_EFFICIENCY = 0.5
#: Optimizer FLOPs per weight per step (an Adam update is ~15 elementwise ops).
OPTIMIZER_FLOPS = 15.0
#: Seconds to compile one group's programs (training and validation) before this
#: trainer has measured any: 1.1-1.7 s for the digits MLP, 2.2-3.4 s for the digits
#: CNN (idle 2-core EPYC, session 5). Too high a guess keeps wasteful padding: at 5 s
#: the CNN was cut into 4 buckets and trained in 85 s, at 2.5 s into 7 in 71-75 s.
COMPILE_SECONDS_GUESS = 2.5


@dataclass
class CostModel:
    """Prices of compiling a group and of one FLOP of fleet training.

    Args:
        seconds_per_flop: Effective seconds per training FLOP.
        compile_seconds: Seconds to compile one group's programs.
    """

    seconds_per_flop: float
    compile_seconds: float


@functools.lru_cache(maxsize=1)
def probe_flop_rate() -> float:
    """FLOP/s of a small batched matmul on the default device (measured once)."""
    a = jax.device_put(np.ones((8, 32, 128), np.float32))  # no fill program to compile
    b = jax.device_put(np.ones((8, 128, 128), np.float32))
    exe = jax.jit(lambda p, q: jnp.einsum("nij,njk->nik", p, q)).lower(a, b).compile()
    jax.block_until_ready(exe(a, b))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(20):
            out = exe(a, b)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / 20)
    return 2 * 8 * 32 * 128 * 128 / best


def default_cost_model(compile_seconds: float = COMPILE_SECONDS_GUESS) -> CostModel:
    """A cost model from the matmul probe and a compile-time guess (or measurement)."""
    return CostModel(1.0 / (PROGRAM_EFFICIENCY * probe_flop_rate()), compile_seconds)


def _layer_terms(spec: TrialSpec) -> list[tuple[int, int | None, float, float]]:
    """Per width layer: ``(k, previous width layer, forward FLOPs, weights)`` at true widths."""
    shape = (None, *spec.model.inputs[0].shape[1:])
    terms = []
    previous: int | None = None
    for k, layer in enumerate(spec.layers):
        out = tuple(layer.compute_output_shape(shape))
        if type(layer).__name__ in WIDTH_KEYS:
            weights = float(sum(np.prod(v.shape) for v in layer.trainable_variables))
            kernel = float(np.prod(layer.trainable_variables[0].shape))
            positions = float(np.prod([d for d in out[1:-1] if d is not None] or [1]))
            flops = 0.0 if type(layer).__name__ == "Embedding" else 2.0 * kernel * positions
            scaled_by = None if type(layer).__name__ == "Embedding" else previous
            terms.append((k, scaled_by, flops, weights))
            previous = k
        shape = out
    return terms


def trial_flops(spec: TrialSpec, widths: tuple[int | None, ...], batch_size: int) -> float:
    """Training FLOPs per sample of ``spec``'s structure at the given widths.

    Args:
        spec: A trial of the group (its own widths are the reference).
        widths: Per layer, the width to price (``None`` for non-width layers).
        batch_size: Training batch size (spreads the optimizer's per-step work).
    """
    total = 0.0
    for k, previous, flops, weights in _layer_terms(spec):
        ratio = widths[k] / spec.widths[k]
        if previous is not None:
            ratio *= widths[previous] / spec.widths[previous]
        total += ratio * (3.0 * flops + OPTIMIZER_FLOPS * weights / batch_size)
    return total


def split_by_width(
    specs: list[TrialSpec],
    members: list[int],
    *,
    epochs: int,
    samples: int,
    batch_size: int,
    cost: CostModel,
    max_buckets: int = 48,
) -> list[list[int]]:
    """Cut one compile group into width buckets where the saved compute beats compiling.

    Args:
        specs: All trials' readings (indexed by ``members``).
        members: The group's trial indices.
        epochs: Planned epochs.
        samples: Training samples per epoch.
        batch_size: Training batch size.
        cost: Compile and compute prices.
        max_buckets: Distinct width vectors are first merged down to this many.

    Returns:
        The buckets (lists of trial indices); one bucket when cutting does not pay.

    Example:

    >>> from tunefleet.fleet.cost import CostModel, split_by_width
    >>> from tunefleet.fleet.introspect import read_trial
    >>> from tunefleet.keras import build_mlp
    >>> specs = [read_trial(build_mlp((64,), "multiclass:10", n_hidden=1, n_neurons=n))
    ...          for n in (8, 8, 1024)]
    >>> work = dict(epochs=20, samples=1437, batch_size=32)
    >>> split_by_width(specs, [0, 1, 2], **work,
    ...                cost=CostModel(seconds_per_flop=1e-10, compile_seconds=100.0))
    [[0, 1, 2]]
    >>> split_by_width(specs, [0, 1, 2], **work,   # padding 8 to 1024 costs more than a compile
    ...                cost=CostModel(seconds_per_flop=1e-10, compile_seconds=1.0))
    [[0, 1], [2]]
    """
    first = specs[members[0]]
    by_widths: dict[tuple, list[int]] = {}
    for i in members:
        by_widths.setdefault(specs[i].widths, []).append(i)
    if len(by_widths) < 2:
        return [list(members)]
    scale = epochs * samples * cost.seconds_per_flop

    @functools.cache
    def flops(widths: tuple) -> float:
        return trial_flops(first, widths, batch_size)

    def widest(a: tuple, b: tuple) -> tuple:
        return tuple(x if x is None else max(x, y) for x, y in zip(a, b, strict=True))

    def price(n: int, widths: tuple) -> float:
        return cost.compile_seconds + scale * n * flops(widths)

    buckets = [(ids, w) for w, ids in by_widths.items()]
    buckets.sort(key=lambda b: flops(b[1]))
    while len(buckets) > max_buckets:  # merge neighbours in cost order first
        (a_ids, a_w), (b_ids, b_w) = buckets[0], buckets[1]
        buckets = [(a_ids + b_ids, widest(a_w, b_w)), *buckets[2:]]
        buckets.sort(key=lambda b: flops(b[1]))
    while len(buckets) > 1:
        best = None
        for i, j in itertools.combinations(range(len(buckets)), 2):
            (a_ids, a_w), (b_ids, b_w) = buckets[i], buckets[j]
            merged_w = widest(a_w, b_w)
            delta = price(len(a_ids) + len(b_ids), merged_w) - (
                price(len(a_ids), a_w) + price(len(b_ids), b_w)
            )
            if best is None or delta < best[0]:
                best = (delta, i, j, (a_ids + b_ids, merged_w))
        assert best is not None
        if best[0] > 0:
            break
        _, i, j, merged = best
        buckets = [b for n, b in enumerate(buckets) if n not in (i, j)] + [merged]
    return [sorted(ids) for ids, _ in buckets]
