"""When a search first reaches its target, watched epoch by epoch.

A method that trains one model at a time gets a :class:`WatchCallback` in every fit. After
each epoch it scores the model on the task's validation set; once the accuracy reaches the
target it records the epochs trained so far (by every fit of the run) and the seconds since
the run started, less the watch's own time (its predictions), and stops the run by raising
:class:`TargetReached` (a ``KeyboardInterrupt``, which every method lets through: they
catch ``Exception`` from a failing trial and go on).

Fleets take no Keras callbacks. A fleet run is watched where it reports instead
(:func:`watch_fleet_reports`): after each fleet epoch, tunefleet writes every trained
trial's validation score for that epoch in one call; the watch counts those epochs and
stops the run at the first call holding a score at or above the target. The scores are the
search's own (accuracy on the same validation rows), so the watch pays no predictions.

The watch also counts the seconds a run spends compiling (:meth:`Watch.compile_span`):
tracing to a jaxpr, lowering and XLA's compilation, each as JAX reports it, counted once
where they nest (a ``jit`` traced inside another's trace), and not counting the watch's
own predictions.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class TargetReached(KeyboardInterrupt):
    """Raised in a fit when the target is reached: the run stops there."""


@dataclass
class Watch:
    """The state of one run: epochs trained, best accuracy, and the point of reaching."""

    target: float
    x_val: np.ndarray
    y_val: np.ndarray
    start: float = field(default_factory=time.perf_counter)
    overhead: float = 0.0  # seconds spent scoring in the watch itself
    epochs: int = 0
    best: float = 0.0
    reached: tuple[int, float, float] | None = None  # (epochs, seconds, seconds compiling)
    began: float = field(default_factory=time.time)  # the start, on JAX's event clock
    spans: list[tuple[float, float]] = field(default_factory=list)  # compiling
    scoring: bool = False

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.overhead

    def compile_span(self, event: str, start: float, end: float, **_: Any) -> None:
        """A JAX event time span (``jax.monitoring``): kept if it is compiling for the run."""
        if event not in COMPILE_EVENTS or self.scoring or end <= self.began:
            return
        self.spans.append((max(start, self.began), end))

    def compile_seconds(self) -> float:
        """The length of the union of the spans: one nested in another counts once."""
        total, reach = 0.0, -math.inf
        for start, end in sorted(self.spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total

    def epoch_done(self, model: Any) -> None:
        began = time.perf_counter()
        self.scoring = True
        try:
            predicted = np.asarray(model.predict(self.x_val, verbose=0, batch_size=2048))
        finally:
            self.scoring = False
        accuracy = float(np.mean(predicted.argmax(-1) == self.y_val))
        self.overhead += time.perf_counter() - began
        self.reports_done([accuracy])

    def reports_done(self, accuracies: list[float]) -> None:
        """Count one epoch per accuracy; stop the run if one reaches the target."""
        self.epochs += len(accuracies)
        self.best = max([self.best, *accuracies])
        if self.best >= self.target and self.reached is None:
            self.reached = (self.epochs, self.seconds(), self.compile_seconds())
            raise TargetReached


#: JAX's events of compiling: tracing, lowering to MLIR, XLA's compilation.
COMPILE_EVENTS = frozenset(
    f"/jax/core/compile/{name}_duration"
    for name in ("jaxpr_trace", "jaxpr_to_mlir_module", "backend_compile")
)

#: The watch of the run in progress (one run per process).
WATCH: Watch | None = None


def _compile_span(event: str, start: float, end: float, **kwargs: Any) -> None:
    if WATCH is not None:
        WATCH.compile_span(event, start, end, **kwargs)


_LISTENING = False


def watch_compiling() -> None:
    """Send JAX's compile events to :data:`WATCH` (once a process, however often called)."""
    global _LISTENING
    import jax

    if not _LISTENING:
        jax.monitoring.register_event_time_span_listener(_compile_span)
        _LISTENING = True


def watch_callback() -> Any:
    """A Keras callback that reports every epoch to :data:`WATCH` (copies share it)."""
    import keras

    class WatchCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            assert WATCH is not None
            WATCH.epoch_done(self.model)

    return WatchCallback()


@contextlib.contextmanager
def watch_fleet_reports() -> Iterator[None]:
    """Watch the per-epoch reports of tunefleet's fleets (see the module docstring)."""
    from tunefleet import fleet_batch

    report_many = fleet_batch.report_many

    def watched(study: Any, reports: Any) -> None:
        report_many(study, reports)
        assert WATCH is not None
        WATCH.reports_done([value for _, _, value in reports])

    fleet_batch.report_many = watched
    try:
        yield
    finally:
        fleet_batch.report_many = report_many
