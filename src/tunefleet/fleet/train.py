"""The jitted, trial-vmapped training epoch and evaluation of one compile group.

One trial's step is written once (forward, loss, ``jax.value_and_grad``, Keras
``optimizer.stateless_apply``, compiled metrics) and ``jax.vmap``-ed over the
leading trial axis of the state and of the per-trial hyperparameters; the batch is
shared by all trials. An epoch is one ``jax.jit`` program, a ``lax.scan`` over the
epoch's batches. The partial last batch of ``model.fit`` is padded to full size
with 0-weight rows, so that one step program serves every batch (compiling a
second step for the last batch would double the compile time): its loss and
metrics count the real rows only, BatchNormalization gets the row mask, and
dropout draws the same bits for the real rows as an unpadded draw would
(threefry is partitionable).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from keras import ops

from tunefleet.fleet.group import GroupProgram

Array = Any


@dataclass
class FleetState:
    """Stacked state of a fleet; every leaf has a leading trial axis.

    Args:
        params: Per layer, trainable arrays.
        nontrain: Per layer, non-trainable arrays.
        opt: Optimizer variables.
    """

    params: list[list[Array]]
    nontrain: list[list[Array]]
    opt: list[Array]


jax.tree_util.register_dataclass(
    FleetState, data_fields=["params", "nontrain", "opt"], meta_fields=[]
)


@contextlib.contextmanager
def traced_attributes(obj: Any, values: dict[str, Array]) -> Iterator[None]:
    """Temporarily set float attributes (e.g. ``beta_1``) to traced per-trial values."""
    saved = {name: getattr(obj, name) for name in values}
    try:
        for name, value in values.items():
            object.__setattr__(obj, name, value)
        yield
    finally:
        for name, value in saved.items():
            object.__setattr__(obj, name, value)


@contextlib.contextmanager
def traced_schedule(schedule: Any, values: dict[str, Array]) -> Iterator[None]:
    """Temporarily set a schedule's parameters to traced per-trial values.

    Args:
        schedule: The optimizer's learning-rate schedule (``optimizer._learning_rate``).
        values: Parameter path -> value; ``"schedule.decay_steps"`` is the
            ``decay_steps`` of the schedule held in ``schedule.schedule``.
    """
    owners: dict[str, dict[str, Array]] = {}
    for path, value in values.items():
        owner, _, name = path.rpartition(".")
        owners.setdefault(owner, {})[name] = value
    with contextlib.ExitStack() as stack:
        for owner, attributes in owners.items():
            obj = schedule
            for part in filter(None, owner.split(".")):
                obj = getattr(obj, part)
            stack.enter_context(traced_attributes(obj, attributes))
        yield


class GroupFunctions:
    """Jitted epoch and evaluation functions for one :class:`GroupProgram`.

    Args:
        program: The group.
        eval_batch_size: Largest number of validation samples run at once.

    Example:

    >>> from tunefleet.fleet.group import GroupProgram
    >>> from tunefleet.fleet.introspect import read_trial
    >>> from tunefleet.fleet.train import GroupFunctions
    >>> from tunefleet.keras import build_mlp
    >>> program = GroupProgram([read_trial(build_mlp((4,), "multiclass:3", n_hidden=1, n_neurons=n))
    ...                         for n in (16, 64)])
    >>> fns = GroupFunctions(program)
    >>> fns.compiled_sizes(), fns.traces   # compiled on first use, per fleet size
    ([], {'train': 0, 'eval': 0})

    ``FleetTrainer.fit`` runs a fleet's epochs with
    ``fns.run_epoch(state, hp, x, y, batches, weights, val_chunks)``.
    """

    def __init__(self, program: GroupProgram, eval_batch_size: int = 2048) -> None:
        self.program = program
        self.eval_batch_size = eval_batch_size
        self.traces = {"train": 0, "eval": 0}
        self.compile_seconds = 0.0  # spent compiling this group's programs
        self.curve: Any = None  # optional ThroughputCurve, used to price compaction
        self.train_epoch = jax.jit(self._train_epoch)
        self.train_and_evaluate = jax.jit(self._train_and_evaluate)
        self._compiled: dict[tuple, Any] = {}

    # ----------------------------------------------------------- compiled calls
    def _executable(self, fn: Any, args: tuple) -> Any:
        """``fn`` compiled for ``args``: per function, data shapes and fleet size."""
        shapes = (getattr(a, "shape", None) for a in jax.tree_util.tree_leaves(args[2:]))
        key = (fn, *shapes, args[0].opt[0].shape[0])
        exe = self._compiled.get(key)
        if exe is None:
            start = time.perf_counter()
            exe = fn.lower(*args).compile()
            self.compile_seconds += time.perf_counter() - start
            self._compiled[key] = exe
        return exe

    def run_epoch(
        self,
        state: FleetState,
        hp: dict,
        x: Array,
        y: Array,
        batches: Array,
        weights: Array,
        val_chunks: tuple[Array, Array, Array] | None = None,
    ) -> tuple[FleetState, dict[str, Array], dict[str, Array] | None, Array | None]:
        """One training epoch of the fleet, then its validation on ``val_chunks``.

        Returns the new state, the training logs, and the validation logs and (padded)
        predictions (``None`` without ``val_chunks``; see ``chunk_rows``). Training and
        validation are one program, compiled once per fleet size and data shapes: two
        would each pay XLA's fixed cost of a compilation.
        """
        if val_chunks is None:
            args: tuple = (state, hp, x, y, batches, weights)
            return (*self._executable(self.train_epoch, args)(*args), None, None)
        args = (state, hp, x, y, batches, weights, *val_chunks)
        return self._executable(self.train_and_evaluate, args)(*args)

    def has_compiled(self, n: int) -> bool:
        """Whether a training program for fleets of ``n`` trials exists already."""
        return n in self.compiled_sizes()

    def compiled_sizes(self) -> list[int]:
        """Fleet sizes that have a compiled training program."""
        return sorted({k[-1] for k in self._compiled})

    def compile_seconds_estimate(self) -> float:
        """Average seconds to compile the programs of one fleet size."""
        return self.compile_seconds / max(1, len(self.compiled_sizes()))

    def relative_cost(self, m: int, n: int) -> float:
        """Epoch time of ``m`` trials relative to ``n`` (throughput curve, else linear)."""
        if self.curve is not None:
            return self.curve.seconds_per_step(m) / self.curve.seconds_per_step(n)
        return m / n

    # ----------------------------------------------------------------- one trial
    def _data_loss(self, y: Array, y_pred: Array, w: Array) -> Array:
        """The compiled loss over the real (weight 1) rows of a padded batch."""
        loss = self.program.compile_loss(y, y_pred, w)
        if self.program.loss_divides_by_batch:
            loss = loss * (w.shape[0] / jnp.sum(w))
        return loss

    def _with_regularization(self, data: Array, params: Any, hp: dict) -> Array:
        extra = self.program.forward.regularization(params, hp)
        if not extra:
            return data
        return ops.sum([data, *extra])

    def _update_metrics(self, metrics: list[Array], y: Array, y_pred: Array, w: Array) -> list:
        if self.program.compile_metrics is None:
            return metrics
        return update_metrics(self.program.compile_metrics, metrics, y, y_pred, w)

    def _trial_step(self, carry: tuple, hp: dict, x: Array, y: Array, w: Array) -> tuple:
        params, nontrain, opt, metrics, total, count = carry
        program = self.program

        def loss_fn(p: Any) -> tuple[Array, tuple]:
            y_pred, new_nt = program.forward(p, nontrain, hp, x, training=True, sample_mask=w)
            loss = self._with_regularization(self._data_loss(y, y_pred, w), p, hp)
            return loss, (y_pred, new_nt)

        (loss, (y_pred, new_nt)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        flat_params = [v for layer in params for v in layer]
        flat_grads = [g for layer in grads for g in layer]
        optimizer = program.optimizer
        with (
            traced_attributes(optimizer, hp["opt"]),
            traced_schedule(optimizer._learning_rate, hp["sched"]),
        ):
            new_flat, opt = optimizer.stateless_apply(opt, flat_grads, flat_params)
        it = iter(new_flat)
        params = [[next(it) for _ in layer] for layer in params]
        metrics = self._update_metrics(metrics, y, y_pred, w)
        rows = jnp.sum(w)
        return params, new_nt, opt, metrics, total + loss * rows, count + rows

    def _results(self, metrics: list[Array]) -> dict[str, Array]:
        if self.program.compile_metrics is None:
            return {}
        return dict(self.program.compile_metrics.stateless_result(metrics))

    def _vresults(self, metrics: list[Array]) -> dict[str, Array]:
        """Per-trial metric results of stacked metric variables."""
        if not metrics:
            return {}
        return jax.vmap(self._results)(metrics)

    # ----------------------------------------------------------------- fleets
    def _start_metrics(self, n: int) -> list[Array]:
        return [jnp.broadcast_to(jnp.asarray(v), (n, *v.shape)) for v in self.program.metric_start]

    def _train_epoch(
        self,
        state: FleetState,
        hp: dict,
        x: Array,
        y: Array,
        batches: Array,
        weights: Array,
    ) -> tuple[FleetState, dict[str, Array]]:
        """One epoch: ``batches`` ``(n_batches, batch_size)`` sample indices, ``weights``
        0/1 of the same shape (0 pads the partial last batch)."""
        self.traces["train"] += 1
        n = state.opt[0].shape[0]
        step = jax.vmap(self._trial_step, in_axes=(0, 0, None, None, None))
        zeros = jnp.zeros((n,), jnp.float32)
        carry = (state.params, state.nontrain, state.opt, self._start_metrics(n), zeros, zeros)

        def body(c: tuple, batch: tuple[Array, Array]) -> tuple[tuple, None]:
            idx, w = batch
            return step(c, hp, x[idx], y[idx], w), None

        carry, _ = jax.lax.scan(body, carry, (batches, weights))
        params, nontrain, opt, metrics, total, count = carry
        logs = {"loss": total / count, **self._vresults(metrics)}
        return FleetState(params, nontrain, opt), logs

    def _train_and_evaluate(
        self,
        state: FleetState,
        hp: dict,
        x: Array,
        y: Array,
        batches: Array,
        weights: Array,
        val_x: Array,
        val_y: Array,
        val_weights: Array,
    ) -> tuple[FleetState, dict[str, Array], dict[str, Array], Array]:
        """One epoch (:meth:`_train_epoch`), then validation (:meth:`_evaluate`)."""
        state, logs = self._train_epoch(state, hp, x, y, batches, weights)
        return (state, logs, *self._evaluate(state, hp, val_x, val_y, val_weights))

    def _evaluate(
        self, state: FleetState, hp: dict, x: Array, y: Array, weights: Array
    ) -> tuple[dict[str, Array], Array]:
        """Validation logs per trial and predictions ``(n_trials, n_chunks * chunk, ...)``.

        ``x``/``y`` are chunked ``(n_chunks, chunk, ...)``; ``weights`` marks real rows.
        """
        self.traces["eval"] += 1
        program = self.program
        n = state.opt[0].shape[0]

        def predict(params: Any, nontrain: Any, hp_: dict, xc: Array) -> Array:
            return program.forward(params, nontrain, hp_, xc, training=False)[0]

        vpredict = jax.vmap(predict, in_axes=(0, 0, 0, None))

        def body(carry: tuple, chunk: tuple) -> tuple[tuple, Array]:
            metrics, total, count = carry
            xc, yc, wc = chunk
            y_pred = vpredict(state.params, state.nontrain, hp, xc)

            def trial(yp: Array, m: list[Array]) -> tuple[Array, list[Array]]:
                return self._data_loss(yc, yp, wc), self._update_metrics(m, yc, yp, wc)

            loss, metrics = jax.vmap(trial)(y_pred, metrics)
            rows = jnp.sum(wc)
            return (metrics, total + loss * rows, count + rows), y_pred

        zeros = jnp.zeros((n,), jnp.float32)
        carry = (self._start_metrics(n), zeros, zeros)
        (metrics, total, count), preds = jax.lax.scan(body, carry, (x, y, weights))
        preds = jnp.moveaxis(preds, 1, 0)
        preds = preds.reshape(n, preds.shape[1] * preds.shape[2], *preds.shape[3:])
        data = total / count
        loss = jax.vmap(self._with_regularization)(data, state.params, hp)
        logs = {"loss": loss, **self._vresults(metrics)}
        return logs, preds


def update_metrics(
    compile_metrics: Any, variables: list[Array], y: Array, y_pred: Array, w: Array
) -> list[Array]:
    """Stateless update of compiled metrics with sample weights (0 = padding row).

    ``CompileMetrics.update_state`` passes sample weights only to *weighted*
    metrics, so the update goes to each output's metric list directly.
    """
    from keras.src.backend import StatelessScope

    mapping = list(zip(compile_metrics.variables, variables, strict=True))
    with StatelessScope(state_mapping=mapping) as scope:
        for metric_list in compile_metrics._flat_metrics:
            if metric_list:
                metric_list.update_state(y, y_pred, sample_weight=w)
    out = []
    for v, old in zip(compile_metrics.variables, variables, strict=True):
        new = scope.get_current_value(v)
        out.append(old if new is None else new)
    return out


def to_device(a: Any, dtype: Any = None) -> jax.Array:
    """A host array on the device, as ``jnp.asarray`` but without compiling anything.

    ``jnp.asarray`` of a NumPy array compiles a small program per shape and dtype
    (5-50 ms each on a CPU); ``jax.device_put`` copies.
    """
    if isinstance(a, jax.Array) and dtype is None:
        return a
    return jax.device_put(np.asarray(a, dtype=dtype))


def stack(rows: list[Any]) -> Any:
    """Stack per-trial pytrees (numpy leaves) into one pytree with a trial axis."""
    return jax.tree_util.tree_map(lambda *leaves: to_device(np.stack(leaves)), *rows)


def take(tree: Any, rows: np.ndarray) -> Any:
    """Select trial rows of a stacked pytree (on the host: no gather programs to compile)."""
    host = jax.device_get(tree)
    return jax.tree_util.tree_map(lambda a: to_device(np.asarray(a)[rows]), host)


def take_host(tree: Any, rows: np.ndarray) -> Any:
    """Select trial rows of a stacked pytree and keep them on the host as NumPy."""
    host = jax.device_get(tree)
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[rows], host)


def put(tree: Any, rows: np.ndarray, values: list[Any]) -> Any:
    """Replace trial rows of a stacked pytree by per-row pytrees (on the host, as ``take``)."""
    host = jax.device_get(tree)
    new = jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *values)

    def write(a: Any, v: np.ndarray) -> jax.Array:
        out = np.array(a)
        out[rows] = v
        return to_device(out)

    return jax.tree_util.tree_map(write, host, new)


def batch_rows(order: np.ndarray, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """An epoch's ``(n_batches, batch_size)`` sample indices and 0/1 row weights.

    The partial last batch is padded with its own first indices at weight 0.
    """
    n = len(order)
    n_batches = -(-n // batch_size)
    pad = n_batches * batch_size - n
    padded = np.concatenate([order, np.full(pad, order[0], dtype=order.dtype)])
    weights = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    return (
        to_device(padded.reshape(n_batches, batch_size), np.int32),
        to_device(weights.reshape(n_batches, batch_size)),
    )


def chunk_rows(x: np.ndarray, y: np.ndarray, chunk: int) -> tuple[jax.Array, ...]:
    """Validation data as ``(n_chunks, chunk, ...)`` arrays (zero padded) and row weights."""
    n = len(x)
    chunk = max(1, min(chunk, n))
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n

    def shape(a: np.ndarray) -> jax.Array:
        a = np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) if pad else a
        return to_device(a.reshape(n_chunks, chunk, *a.shape[1:]))

    weights = np.zeros(n_chunks * chunk, dtype=np.float32)
    weights[:n] = 1.0
    return shape(np.asarray(x)), shape(np.asarray(y)), to_device(weights.reshape(n_chunks, chunk))
