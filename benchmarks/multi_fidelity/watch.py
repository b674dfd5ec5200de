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
"""

from __future__ import annotations

import contextlib
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
    reached: tuple[int, float] | None = None  # (epochs, seconds)

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.overhead

    def epoch_done(self, model: Any) -> None:
        began = time.perf_counter()
        predicted = np.asarray(model.predict(self.x_val, verbose=0, batch_size=2048))
        accuracy = float(np.mean(predicted.argmax(-1) == self.y_val))
        self.overhead += time.perf_counter() - began
        self.reports_done([accuracy])

    def reports_done(self, accuracies: list[float]) -> None:
        """Count one epoch per accuracy; stop the run if one reaches the target."""
        self.epochs += len(accuracies)
        self.best = max([self.best, *accuracies])
        if self.best >= self.target and self.reached is None:
            self.reached = (self.epochs, self.seconds())
            raise TargetReached


#: The watch of the run in progress (one run per process).
WATCH: Watch | None = None


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
