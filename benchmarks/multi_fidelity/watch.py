"""When a search first reaches its target: watched epoch by epoch, or read from its study.

A method that trains one model at a time gets a :class:`WatchCallback` in every fit. After
each epoch it scores the model on the task's validation set; once the accuracy reaches the
target it records the epochs trained so far (by every fit of the run) and the seconds since
the run started, less the watch's own time (its predictions), and stops the run by raising
:class:`TargetReached` (a ``KeyboardInterrupt``, which every method lets through: they
catch ``Exception`` from a failing trial and go on).

Fleets take no Keras callbacks, so a fleet run goes to the end of its budget and is read
from its Optuna study afterwards (:func:`reach_from_trials`): trials in the order they
finished; the first whose validation score reached the target marks the point; the epochs
are those of every trial started before it finished (trials trained beside it in its
fleet included), the seconds those from the search's start to that trial's end.
"""

from __future__ import annotations

import time
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
        self.epochs += 1
        predicted = np.asarray(model.predict(self.x_val, verbose=0, batch_size=2048))
        accuracy = float(np.mean(predicted.argmax(-1) == self.y_val))
        self.best = max(self.best, accuracy)
        self.overhead += time.perf_counter() - began
        if accuracy >= self.target and self.reached is None:
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


def reach_from_trials(
    trials: list[Any], target: float, start: Any
) -> tuple[tuple[int, float] | None, int, float]:
    """``(reached, epochs, best)`` of a run read from its stored Optuna trials.

    ``reached`` is ``(epochs, seconds)`` or ``None``; ``epochs`` counts every epoch the
    run trained (one intermediate value per epoch), ``best`` is the best score seen.
    ``start``: when the run started (a datetime).
    """
    finished = [t for t in trials if t.datetime_complete is not None]
    finished.sort(key=lambda t: t.datetime_complete)
    trained = sum(len(t.intermediate_values) for t in trials)
    best = max((max(t.intermediate_values.values(), default=0.0) for t in trials), default=0.0)
    for trial in finished:
        if max(trial.intermediate_values.values(), default=0.0) >= target:
            until = trial.datetime_complete
            epochs = sum(
                len(t.intermediate_values)
                for t in trials
                if t.datetime_start is not None and t.datetime_start <= until
            )
            return (epochs, (until - start).total_seconds()), trained, float(best)
    return None, trained, float(best)
