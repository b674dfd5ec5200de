"""Learning-rate schedules missing from ``keras.optimizers.schedules``.

Keras 3 ships ``ExponentialDecay``, ``PiecewiseConstantDecay``, ``PolynomialDecay``,
``InverseTimeDecay``, ``CosineDecay`` (with an optional warmup) and
``CosineDecayRestarts``; use those directly. This module adds the schedules that
practitioners reach for and Keras lacks: `StepDecay`, `Warmup` (a linear warmup in
front of any schedule), `WarmupCosine` and `OneCycle`.

Every schedule here:

- is a ``keras.optimizers.schedules.LearningRateSchedule`` registered with
  ``keras.saving.register_keras_serializable(package="tunefleet")``, so a model
  compiled with one saves to and loads from a ``.keras`` file;
- takes plain numbers as parameters, so each can be a search dimension;
- computes its value with a pure static function ``formula(step, **params)`` built
  from ``keras.ops`` only (no Python branching on values), so it runs on every Keras
  backend, inside compiled train steps, and with array-valued parameters (one value
  per trial, as fleet training needs). ``schedule(step)`` is
  ``type(schedule).formula(step, **schedule.get_config())`` (for `Warmup`, the
  wrapped schedule is passed as a callable).

Steps are optimizer steps (batches), counted from 0, as Keras counts them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = ["OneCycle", "StepDecay", "Warmup", "WarmupCosine"]

_LearningRate = float | keras.optimizers.schedules.LearningRateSchedule


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check(name: str, value: Any, ok: Callable[[float], bool], allowed: str, cls: str) -> Any:
    """Validate a parameter given as a plain number (array values are left to the caller).

    Returns numpy scalars as Python numbers, so that ``get_config`` stays JSON-ready.
    """
    if isinstance(value, bool) or (not _is_number(value) and not hasattr(value, "shape")):
        raise TypeError(f"{cls}: {name} must be a number, got {value!r}.")
    if _is_number(value) and not (math.isfinite(value) and ok(value)):
        raise ValueError(f"{cls}: {name} must be {allowed}, got {value!r}.")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _float(x: Any) -> Any:
    return ops.cast(x, "float32")


def _cosine_anneal(start: Any, end: Any, fraction: Any) -> Any:
    """``end + (start - end) * (1 + cos(pi * fraction)) / 2`` with fraction clipped to [0, 1]."""
    fraction = ops.clip(fraction, 0.0, 1.0)
    return end + (start - end) * 0.5 * (1.0 + ops.cos(math.pi * fraction))


@keras.saving.register_keras_serializable(package="tunefleet")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Multiplies the learning rate by ``drop`` every ``every`` steps.

    ``lr(step) = initial_learning_rate * drop ** floor(step / every)``. For a decay
    every ``k`` epochs, use ``every = k * steps_per_epoch``.

    Args:
        initial_learning_rate: Learning rate at step 0 (> 0).
        drop: Factor applied at every drop, in (0, 1] (0.5 halves the rate).
        every: Number of optimizer steps between drops (> 0).

    Example:

    >>> import keras
    >>> from tunefleet.keras import StepDecay
    >>> schedule = StepDecay(0.1, drop=0.5, every=100)
    >>> round(float(schedule(250)), 6)
    0.025
    >>> optimizer = keras.optimizers.SGD(learning_rate=schedule)
    """

    def __init__(self, initial_learning_rate: float, drop: float = 0.5, every: int = 1000) -> None:
        super().__init__()
        name = type(self).__name__
        initial_learning_rate = _check(
            "initial_learning_rate", initial_learning_rate, lambda v: v > 0, "> 0", name
        )
        drop = _check("drop", drop, lambda v: 0 < v <= 1, "in (0, 1]", name)
        every = _check("every", every, lambda v: v > 0, "> 0", name)
        self.initial_learning_rate = initial_learning_rate
        self.drop = drop
        self.every = every

    @staticmethod
    def formula(step: Any, initial_learning_rate: Any, drop: Any, every: Any) -> Any:
        """The learning rate at ``step`` (pure function of its arguments, ``keras.ops`` only).

        Args:
            step: Optimizer step (scalar or array).
            initial_learning_rate: See the class.
            drop: See the class.
            every: See the class.

        Returns:
            A float32 tensor.
        """
        n_drops = ops.floor(_float(step) / _float(every))
        return _float(initial_learning_rate) * ops.power(_float(drop), n_drops)

    def __call__(self, step: Any) -> Any:
        return self.formula(step, **self.get_config())

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "drop": self.drop,
            "every": self.every,
        }


@keras.saving.register_keras_serializable(package="tunefleet")
class Warmup(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warmup over ``warmup_steps`` steps, then the wrapped schedule.

    For ``step < warmup_steps`` the rate rises linearly from ``start_learning_rate``
    to ``schedule(0)``: ``start + (schedule(0) - start) * step / warmup_steps``.
    From then on it is ``schedule(step - warmup_steps)``: the wrapped schedule starts
    after the warmup. With the default ``start_learning_rate=0`` the first step
    uses a rate of 0 (as in Keras' ``CosineDecay`` warmup).

    Args:
        schedule: The schedule to warm up into: a float (a constant rate) or any
            ``keras.optimizers.schedules.LearningRateSchedule``.
        warmup_steps: Number of warmup steps (>= 0; 0 means no warmup).
        start_learning_rate: Rate at step 0 (>= 0).

    Example:

    >>> import keras
    >>> from tunefleet.keras import Warmup
    >>> schedule = Warmup(keras.optimizers.schedules.ExponentialDecay(1e-3, 1000, 0.9), 100)
    >>> round(float(schedule(50)), 6)
    0.0005
    """

    def __init__(
        self, schedule: _LearningRate, warmup_steps: int, start_learning_rate: float = 0.0
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = _check(
                "schedule", schedule, lambda v: v > 0, "> 0 (or a LearningRateSchedule)", name
            )
        warmup_steps = _check("warmup_steps", warmup_steps, lambda v: v >= 0, ">= 0", name)
        start_learning_rate = _check(
            "start_learning_rate", start_learning_rate, lambda v: v >= 0, ">= 0", name
        )
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.start_learning_rate = start_learning_rate

    @staticmethod
    def formula(
        step: Any,
        schedule: Callable[[Any], Any] | Any,
        warmup_steps: Any,
        start_learning_rate: Any = 0.0,
    ) -> Any:
        """The learning rate at ``step`` (pure function of its arguments, ``keras.ops`` only).

        Args:
            step: Optimizer step (scalar or array).
            schedule: The wrapped schedule as a callable of the step, or a number.
            warmup_steps: See the class.
            start_learning_rate: See the class.

        Returns:
            A float32 tensor.
        """
        step = _float(step)
        warmup_steps = _float(warmup_steps)
        inner = schedule if callable(schedule) else (lambda s: schedule)
        target = _float(inner(_float(0.0)))
        after = _float(inner(ops.maximum(step - warmup_steps, 0.0)))
        start = _float(start_learning_rate)
        warm = start + (target - start) * step / ops.maximum(warmup_steps, 1.0)
        return ops.where(step < warmup_steps, warm, after)

    def __call__(self, step: Any) -> Any:
        return self.formula(step, self.schedule, self.warmup_steps, self.start_learning_rate)

    def get_config(self) -> dict[str, Any]:
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {
            "schedule": schedule,
            "warmup_steps": self.warmup_steps,
            "start_learning_rate": self.start_learning_rate,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Warmup:
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tunefleet")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warmup to ``learning_rate``, then a cosine decay to ``alpha * learning_rate``.

    Over ``[0, warmup_steps)`` the rate rises linearly from 0; over
    ``[warmup_steps, total_steps]`` it follows half a cosine down to
    ``alpha * learning_rate``, where it stays. The same curve as
    ``Warmup(CosineDecay(learning_rate, total_steps - warmup_steps, alpha), warmup_steps)``,
    parametrized by the length of the whole training run.

    Args:
        learning_rate: Peak learning rate, reached at the end of the warmup (> 0).
        total_steps: Steps of the whole schedule, warmup included (> warmup_steps);
            usually ``epochs * steps_per_epoch``.
        warmup_steps: Steps of the linear warmup (>= 0).
        alpha: Final rate as a fraction of ``learning_rate``, in [0, 1].

    Example:

    >>> from tunefleet.keras import WarmupCosine
    >>> schedule = WarmupCosine(1e-2, total_steps=1000, warmup_steps=100)
    >>> [round(float(schedule(step)), 6) for step in (50, 100, 550, 1000)]
    [0.005, 0.01, 0.005, 0.0]
    """

    def __init__(
        self,
        learning_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
        alpha: float = 0.0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        learning_rate = _check("learning_rate", learning_rate, lambda v: v > 0, "> 0", name)
        warmup_steps = _check("warmup_steps", warmup_steps, lambda v: v >= 0, ">= 0", name)
        total_steps = _check(
            "total_steps",
            total_steps,
            lambda v: not _is_number(warmup_steps) or v > warmup_steps,
            f"> warmup_steps ({warmup_steps})",
            name,
        )
        alpha = _check("alpha", alpha, lambda v: 0 <= v <= 1, "in [0, 1]", name)
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.alpha = alpha

    @staticmethod
    def formula(
        step: Any, learning_rate: Any, total_steps: Any, warmup_steps: Any = 0, alpha: Any = 0.0
    ) -> Any:
        """The learning rate at ``step`` (pure function of its arguments, ``keras.ops`` only).

        Args:
            step: Optimizer step (scalar or array).
            learning_rate: See the class.
            total_steps: See the class.
            warmup_steps: See the class.
            alpha: See the class.

        Returns:
            A float32 tensor.
        """
        step = _float(step)
        peak = _float(learning_rate)
        warmup_steps = _float(warmup_steps)
        decay_steps = ops.maximum(_float(total_steps) - warmup_steps, 1.0)
        warm = peak * step / ops.maximum(warmup_steps, 1.0)
        cosine = _cosine_anneal(peak, peak * _float(alpha), (step - warmup_steps) / decay_steps)
        return ops.where(step < warmup_steps, warm, cosine)

    def __call__(self, step: Any) -> Any:
        return self.formula(step, **self.get_config())

    def get_config(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "alpha": self.alpha,
        }


@keras.saving.register_keras_serializable(package="tunefleet")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The 1cycle policy: a cosine rise to ``max_learning_rate``, then a cosine fall far below.

    Leslie Smith's one-cycle schedule with cosine annealing, with the same
    parameters and values as PyTorch's ``OneCycleLR(anneal_strategy="cos")``: the
    rate starts at ``max_learning_rate / div_factor``, rises to
    ``max_learning_rate`` at step ``pct_start * total_steps - 1``, then falls to
    ``max_learning_rate / (div_factor * final_div_factor)`` at step
    ``total_steps - 1`` and stays there. (Momentum cycling is not included: Keras
    optimizers take a schedule for the learning rate only.)

    Args:
        max_learning_rate: Peak learning rate (> 0).
        total_steps: Steps of the whole cycle (>= 2); usually
            ``epochs * steps_per_epoch``.
        pct_start: Fraction of the cycle spent rising, in (0, 1).
        div_factor: ``max_learning_rate / initial rate`` (>= 1).
        final_div_factor: ``initial rate / final rate`` (>= 1).

    Example:

    >>> from tunefleet.keras import OneCycle
    >>> schedule = OneCycle(0.1, total_steps=1000)
    >>> round(float(schedule(0)), 6), round(float(schedule(299)), 6)
    (0.004, 0.1)
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        max_learning_rate = _check(
            "max_learning_rate", max_learning_rate, lambda v: v > 0, "> 0", name
        )
        total_steps = _check("total_steps", total_steps, lambda v: v >= 2, ">= 2", name)
        pct_start = _check("pct_start", pct_start, lambda v: 0 < v < 1, "in (0, 1)", name)
        div_factor = _check("div_factor", div_factor, lambda v: v >= 1, ">= 1", name)
        final_div_factor = _check(
            "final_div_factor", final_div_factor, lambda v: v >= 1, ">= 1", name
        )
        self.max_learning_rate = max_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor

    @staticmethod
    def formula(
        step: Any,
        max_learning_rate: Any,
        total_steps: Any,
        pct_start: Any = 0.3,
        div_factor: Any = 25.0,
        final_div_factor: Any = 1e4,
    ) -> Any:
        """The learning rate at ``step`` (pure function of its arguments, ``keras.ops`` only).

        Args:
            step: Optimizer step (scalar or array).
            max_learning_rate: See the class.
            total_steps: See the class.
            pct_start: See the class.
            div_factor: See the class.
            final_div_factor: See the class.

        Returns:
            A float32 tensor.
        """
        step = _float(step)
        peak = _float(max_learning_rate)
        initial = peak / _float(div_factor)
        final = initial / _float(final_div_factor)
        peak_step = _float(pct_start) * _float(total_steps) - 1.0
        last_step = _float(total_steps) - 1.0
        rise = _cosine_anneal(initial, peak, step / ops.maximum(peak_step, 1e-8))
        fall = _cosine_anneal(
            peak, final, (step - peak_step) / ops.maximum(last_step - peak_step, 1e-8)
        )
        return ops.where(step <= peak_step, rise, fall)

    def __call__(self, step: Any) -> Any:
        return self.formula(step, **self.get_config())

    def get_config(self) -> dict[str, Any]:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }
