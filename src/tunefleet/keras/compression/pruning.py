"""Magnitude pruning for Keras 3 on every backend: a sparsity schedule and a callback."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from tunefleet.keras.compression.measure import copy_model, count_params, require_built_model
from tunefleet.keras.compression.report import CompressionReport, make_report, measure_model

__all__ = ["MagnitudePruning", "PolynomialSparsity", "prune"]

#: Weights that pruning zeroes (Dense/EinsumDense/Conv kernels); biases, batch
#: normalization and embeddings are left dense.
_PRUNABLE_WEIGHTS = ("kernel", "depthwise_kernel", "pointwise_kernel")

#: Fine-tuning steps (batches) `prune` runs by default: about 200 to ramp the sparsity up
#: and 100 at the target. On a digits MLP (2 x 128, batch normalization, dropout) pruned to
#: 0.8, 86 steps (2 epochs) lost 1.8 to 4.0 points of accuracy, 300 steps 0 to 0.4.
DEFAULT_FINE_TUNE_STEPS = 300


def _check_sparsity(name: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a number in [0, 1), got {value!r}.")
    value = float(value)
    if not (0.0 <= value < 1.0):
        raise ValueError(
            f"{where}: {name} must be in [0, 1) (the share of weights set to zero), got {value!r}."
        )
    return value


class PolynomialSparsity:
    """The sparsity schedule of Zhu & Gupta (2017): fast pruning first, slower near the target.

    ``s(step) = target + (initial - target) * (1 - p) ** power`` with
    ``p = clip((step - begin_step) / (end_step - begin_step), 0, 1)``: ``initial``
    before ``begin_step``, ``target`` from ``end_step`` on. The same schedule as
    TensorFlow Model Optimization's ``PolynomialDecay``, as a pure function of the
    step.

    Args:
        target_sparsity: Final share of zero weights, in [0, 1).
        begin_step: Step at which pruning starts (>= 0).
        end_step: Step at which ``target_sparsity`` is reached (> begin_step).
        initial_sparsity: Sparsity at ``begin_step``, in [0, target_sparsity].
        power: Exponent of the decay (3 in the paper).

    Example:

    >>> from tunefleet.keras import PolynomialSparsity
    >>> schedule = PolynomialSparsity(0.8, begin_step=0, end_step=100)
    >>> [round(schedule(step), 3) for step in (0, 50, 100, 200)]
    [0.0, 0.7, 0.8, 0.8]
    """

    def __init__(
        self,
        target_sparsity: float,
        begin_step: int,
        end_step: int,
        initial_sparsity: float = 0.0,
        power: float = 3.0,
    ) -> None:
        where = type(self).__name__
        self.target_sparsity = _check_sparsity("target_sparsity", target_sparsity, where)
        self.initial_sparsity = _check_sparsity("initial_sparsity", initial_sparsity, where)
        if self.initial_sparsity > self.target_sparsity:
            raise ValueError(
                f"{where}: initial_sparsity ({initial_sparsity!r}) must not exceed "
                f"target_sparsity ({target_sparsity!r})."
            )
        if not isinstance(begin_step, numbers.Integral) or begin_step < 0:
            raise ValueError(f"{where}: begin_step must be an integer >= 0, got {begin_step!r}.")
        if not isinstance(end_step, numbers.Integral) or end_step <= begin_step:
            raise ValueError(
                f"{where}: end_step must be an integer > begin_step ({begin_step}), "
                f"got {end_step!r}."
            )
        if not isinstance(power, numbers.Real) or power <= 0:
            raise ValueError(f"{where}: power must be > 0, got {power!r}.")
        self.begin_step = int(begin_step)
        self.end_step = int(end_step)
        self.power = float(power)

    def __call__(self, step: int) -> float:
        progress = min(max((step - self.begin_step) / (self.end_step - self.begin_step), 0.0), 1.0)
        decay = (1.0 - progress) ** self.power
        return self.target_sparsity + (self.initial_sparsity - self.target_sparsity) * decay

    def get_config(self) -> dict[str, Any]:
        """The schedule's parameters.

        Returns:
            A dict that ``PolynomialSparsity(**config)`` accepts.
        """
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "initial_sparsity": self.initial_sparsity,
            "power": self.power,
        }


def _magnitude_mask(weight: Any, sparsity: float) -> Any:
    """1 for the weights kept, 0 for the ``round(sparsity * size)`` smallest in magnitude."""
    size = int(np.prod(weight.shape))
    k = round(sparsity * size)
    if k <= 0:
        return ops.ones(weight.shape, dtype=weight.dtype)
    order = ops.argsort(ops.reshape(ops.abs(weight), (-1,)))
    ranks = ops.argsort(order)  # rank of each entry by magnitude; ties broken by position
    return ops.reshape(ops.cast(ranks >= k, weight.dtype), weight.shape)


class MagnitudePruning(keras.callbacks.Callback):
    """A callback that zeroes the smallest-magnitude kernel weights and keeps them at zero.

    At the start of training and every ``frequency`` batches it recomputes, for each
    prunable kernel separately, a mask that zeroes the ``sparsity(step)`` share of
    entries with the smallest magnitude; after every batch it multiplies the kernels
    by their masks, so weights the optimizer moved come back to zero. Kernels of
    Dense, EinsumDense and convolution layers are pruned; biases, normalization
    layers and embeddings are not. Works on every backend (``keras.ops``; on JAX the
    callback syncs the training state, as any callback reading weights does).
    The step counter is the callback's own (batches seen since ``on_train_begin``).

    Args:
        sparsity: A float in [0, 1) (constant: prune at once, then keep the mask)
            or a callable ``step -> sparsity`` such as `PolynomialSparsity`.
        frequency: Batches between mask updates (masks are applied after every batch).
        exclude: Names of layers not to prune (e.g. the output layer).

    Example:

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> from tunefleet.keras import MagnitudePruning, build_mlp
    >>> model = build_mlp((4,), "multiclass:3", n_neurons=32)
    >>> pruning = MagnitudePruning(0.5)
    >>> _ = model.fit(X, y, epochs=1, verbose=0, callbacks=[pruning])
    >>> pruning.sparsity_by_layer()
    {'dense_0/kernel': 0.5, 'dense_1/kernel': 0.5, 'output/kernel': 0.5}
    """

    def __init__(
        self,
        sparsity: float | Callable[[int], float],
        frequency: int = 10,
        exclude: Sequence[str] = (),
    ) -> None:
        super().__init__()
        if not callable(sparsity):
            sparsity = _check_sparsity("sparsity", sparsity, type(self).__name__)
        if (
            isinstance(frequency, bool)
            or not isinstance(frequency, numbers.Integral)
            or frequency < 1
        ):
            raise ValueError(
                f"MagnitudePruning: frequency must be an integer >= 1, got {frequency!r}."
            )
        if isinstance(exclude, str):
            exclude = (exclude,)
        self.sparsity = sparsity
        self.frequency = int(frequency)
        self.exclude = tuple(exclude)
        self._targets: list[tuple[str, Any]] = []
        self._masks: list[Any] = []
        self._step = 0
        self._current = 0.0

    def _sparsity_at(self, step: int) -> float:
        value = self.sparsity(step) if callable(self.sparsity) else self.sparsity
        return _check_sparsity("sparsity(step)", value, type(self).__name__)

    def _collect(self, model: keras.Model) -> None:
        layers = [
            layer
            for layer in model._flatten_layers(include_self=False)
            if len(list(layer._flatten_layers())) == 1
        ]
        unknown = set(self.exclude) - {layer.name for layer in layers}
        if unknown:
            raise ValueError(
                f"MagnitudePruning: exclude names layer(s) {sorted(unknown)} that the model "
                f"{model.name!r} does not have."
            )
        self._targets = [
            (f"{layer.name}/{v.name}", v)
            for layer in layers
            if layer.name not in self.exclude
            for v in layer.trainable_weights
            if v.name in _PRUNABLE_WEIGHTS
        ]
        if not self._targets:
            raise ValueError(
                f"MagnitudePruning: the model {model.name!r} has no kernel to prune "
                "(Dense, EinsumDense or convolution layers not excluded)."
            )

    def _update_masks(self, sparsity: float) -> None:
        self._masks = [
            _magnitude_mask(ops.convert_to_tensor(v), sparsity) for _, v in self._targets
        ]
        self._current = sparsity

    def _apply_masks(self) -> None:
        for (_, variable), mask in zip(self._targets, self._masks, strict=True):
            variable.assign(ops.multiply(ops.convert_to_tensor(variable), mask))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        model = self.model
        self._collect(model)
        self._step = 0
        self._update_masks(self._sparsity_at(0))
        self._apply_masks()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        _ = self.model  # on JAX, reading .model syncs the training state into the variables
        self._step += 1
        target = self._sparsity_at(self._step)
        final = self._final()
        reached = final is not None and target >= final > self._current
        if self._step % self.frequency == 0 or reached:
            self._update_masks(target)
        self._apply_masks()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        _ = self.model
        self._apply_masks()

    def _final(self) -> float | None:
        """The schedule's final sparsity, if known (updated as soon as it is reached)."""
        if not callable(self.sparsity):
            return self.sparsity
        return getattr(self.sparsity, "target_sparsity", None)

    def prune_now(self, model: keras.Model, sparsity: float | None = None) -> None:
        """Prune ``model`` at once, without training (one-shot magnitude pruning).

        Args:
            model: The model to prune in place.
            sparsity: Share of zeros; defaults to the schedule's value at the
                current step.
        """
        self._collect(model)
        value = self._sparsity_at(self._step) if sparsity is None else sparsity
        self._update_masks(_check_sparsity("sparsity", value, "prune_now"))
        self._apply_masks()

    def sparsity_by_layer(self) -> dict[str, float]:
        """The actual share of exactly-zero entries in each pruned kernel.

        Returns:
            Dict of ``"layer/weight"`` name to sparsity.
        """
        out = {}
        for name, variable in self._targets:
            values = keras.ops.convert_to_numpy(variable.value)
            out[name] = float(np.mean(values == 0))
        return out

    def overall_sparsity(self) -> float:
        """The share of exactly-zero entries over all pruned kernels together.

        Returns:
            A float in [0, 1].
        """
        zeros = total = 0
        for _, variable in self._targets:
            values = keras.ops.convert_to_numpy(variable.value)
            zeros += int(np.sum(values == 0))
            total += values.size
        return zeros / total if total else 0.0


def _fine_tune_optimizer(
    current: keras.optimizers.Optimizer | None,
    optimizer: str | keras.optimizers.Optimizer | None,
    learning_rate: float | None,
) -> keras.optimizers.Optimizer:
    """The optimizer `prune` fine-tunes with (see its ``optimizer`` and ``learning_rate``)."""
    if optimizer is not None:
        chosen = keras.optimizers.get(optimizer)
        if learning_rate is not None:
            chosen.learning_rate = float(learning_rate)
        return chosen
    if current is None:
        raise ValueError("prune: the model has no optimizer; pass optimizer=.")
    if learning_rate is None:
        schedule = current._learning_rate
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            steps = np.linspace(0, max(int(current.iterations), 1000), 128)
            learning_rate = max(float(schedule(int(s))) for s in steps)
        else:
            learning_rate = float(keras.ops.convert_to_numpy(current.learning_rate))
    if not (isinstance(learning_rate, numbers.Real) and learning_rate > 0):
        raise ValueError(f"prune: learning_rate must be > 0, got {learning_rate!r}.")
    config = current.get_config()
    config["learning_rate"] = float(learning_rate)
    return type(current).from_config(config)


def _n_samples(x: Any) -> int:
    return len(keras.tree.flatten(x)[0])


def prune(
    model: keras.Model,
    x: Any,
    y: Any,
    target_sparsity: float,
    *,
    schedule: str = "polynomial",
    fine_tune_epochs: int | None = None,
    batch_size: int = 32,
    validation_data: tuple[Any, Any] | None = None,
    frequency: int | None = None,
    exclude: Sequence[str] = (),
    optimizer: str | keras.optimizers.Optimizer | None = None,
    learning_rate: float | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
) -> tuple[keras.Model, CompressionReport]:
    """Magnitude-prune a copy of a trained model to ``target_sparsity``, fine-tuning as it goes.

    The model is copied (the original stays as it was) and fine-tuned on ``(x, y)``
    for ``fine_tune_epochs`` (by default, the fewest epochs that make
    ``DEFAULT_FINE_TUNE_STEPS`` = 300 batches) with a `MagnitudePruning` callback:

    - ``schedule="polynomial"``: the sparsity follows `PolynomialSparsity` from 0 at
      the first step to ``target_sparsity`` at two thirds of the fine-tuning steps;
      the last third trains at the target (masks fixed). Needs ``fine_tune_epochs >= 1``.
    - ``schedule="constant"``: prune to the target at once, then fine-tune with the
      mask fixed (``fine_tune_epochs=0``: one-shot pruning, no training).

    Each kernel (Dense/convolution) is pruned to the target separately, so every
    pruned kernel ends with exactly ``round(target_sparsity * size)`` zeros (more if
    it had zeros already); biases and normalization weights stay dense. The weights
    keep their shapes: the saved file has the same size, the gzip-compressed size
    (``report.gzip_bytes_after``) shrinks. ``report.sparsity`` is the measured share
    of zeros over the pruned kernels, ``details["sparsity_by_layer"]`` per kernel,
    ``details["nonzero_params"]`` the nonzero weights of the whole model.

    Args:
        model: A built, compiled, trained ``keras.Model``.
        x: Fine-tuning inputs.
        y: Fine-tuning targets.
        target_sparsity: Share of each kernel's weights set to zero, in [0, 1).
        schedule: ``"polynomial"`` or ``"constant"``.
        fine_tune_epochs: Epochs of fine-tuning (>= 0). None: the fewest epochs that
            give at least 300 fine-tuning steps (batches), so the sparsity ramps up over
            about 200 steps and the model recovers at the target for about 100, whatever
            the size of ``x``. Shorter fine-tuning loses accuracy (see
            ``docs/techniques.md``).
        batch_size: Fine-tuning batch size.
        validation_data: ``(x_val, y_val)`` to evaluate before and after (and to
            time); defaults to ``(x, y)``.
        frequency: Batches between mask updates; defaults to 1/16 of the pruning
            ramp.
        exclude: Names of layers not to prune (e.g. ``("output",)``).
        optimizer: Optimizer for fine-tuning (name or instance; the model's loss and
            metrics are kept). None: a fresh optimizer of the model's optimizer
            class and configuration, at a constant ``learning_rate``.
        learning_rate: Constant learning rate of that fresh optimizer. None: the
            model's learning rate if it is constant, else the highest value its
            schedule reached (a schedule that has run its course would leave almost
            nothing to fine-tune with; a tenth of the peak recovered less accuracy
            in our digits runs).
        callbacks: More callbacks for the fine-tuning ``fit``.
        verbose: Verbosity of ``fit``.

    Returns:
        ``(pruned_model, report)``: a new ``keras.Model`` and a `CompressionReport`.

    Raises:
        ValueError: If ``target_sparsity`` is outside [0, 1), ``schedule`` is unknown,
            or ``fine_tune_epochs`` is too small for the schedule.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> from tunefleet.keras import build_mlp, prune
    >>> model = build_mlp((4,), "multiclass:3", n_neurons=64)
    >>> sparse, report = prune(model, X, y, 0.5, schedule="constant", fine_tune_epochs=1,
    ...                        validation_data=(X, y))
    >>> report.method, report.sparsity
    ('prune:0.50', 0.5)
    """
    target = _check_sparsity("target_sparsity", target_sparsity, "prune")
    if schedule not in ("polynomial", "constant"):
        raise ValueError(
            f"prune: schedule={schedule!r} is not valid; expected 'polynomial' or 'constant'."
        )
    if fine_tune_epochs is not None and (
        isinstance(fine_tune_epochs, bool) or not isinstance(fine_tune_epochs, numbers.Integral)
    ):
        raise ValueError(
            f"prune: fine_tune_epochs must be an integer or None, got {fine_tune_epochs!r}."
        )
    minimum = 1 if schedule == "polynomial" else 0
    if fine_tune_epochs is not None and fine_tune_epochs < minimum:
        raise ValueError(
            f"prune: fine_tune_epochs must be >= {minimum} with schedule={schedule!r}, got "
            f"{fine_tune_epochs!r}"
            + (
                " (use schedule='constant' for one-shot pruning)."
                if schedule == "polynomial"
                else "."
            )
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"prune: batch_size must be an integer >= 1, got {batch_size!r}.")
    model = require_built_model(model, "prune")
    if not getattr(model, "compiled", False):
        raise ValueError("prune: the model must be compiled (fine-tuning needs its loss).")
    x_eval, y_eval = validation_data if validation_data is not None else (x, y)

    steps_per_epoch = math.ceil(_n_samples(x) / batch_size)
    if fine_tune_epochs is None:
        fine_tune_epochs = max(1, math.ceil(DEFAULT_FINE_TUNE_STEPS / steps_per_epoch))
    total_steps = int(fine_tune_epochs) * steps_per_epoch
    if schedule == "polynomial":
        end_step = max(1, round(total_steps * 2 / 3))
        sparsity: float | PolynomialSparsity = PolynomialSparsity(target, 0, end_step)
        default_frequency = max(1, end_step // 16)
    else:
        sparsity = target
        default_frequency = max(1, steps_per_epoch)
    pruning = MagnitudePruning(
        sparsity, frequency=default_frequency if frequency is None else frequency, exclude=exclude
    )

    before = measure_model(model, x_eval, y_eval, 128)
    pruned = copy_model(model)
    fine_tuner = _fine_tune_optimizer(model.optimizer, optimizer, learning_rate)
    config = pruned.get_compile_config()
    config["optimizer"] = keras.optimizers.serialize(fine_tuner)
    pruned.compile_from_config(config)
    if fine_tune_epochs > 0:
        pruned.fit(
            x,
            y,
            epochs=int(fine_tune_epochs),
            batch_size=int(batch_size),
            callbacks=[pruning, *callbacks],
            verbose=verbose,
        )
    if fine_tune_epochs == 0 or pruning._current < target:
        pruning.prune_now(pruned, target)  # one-shot, or a ramp cut short by a callback
    after = measure_model(pruned, x_eval, y_eval, 128)
    details = {
        "target_sparsity": target,
        "schedule": schedule,
        "fine_tune_epochs": int(fine_tune_epochs),
        "fine_tune_steps": total_steps,
        "sparsity_by_layer": pruning.sparsity_by_layer(),
        "nonzero_params": count_params(pruned, nonzero=True),
        "pruned_weights": [name for name, _ in pruning._targets],
    }
    return pruned, make_report(
        f"prune:{target:.2f}", before, after, sparsity=pruning.overall_sparsity(), details=details
    )
