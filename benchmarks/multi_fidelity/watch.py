"""When a search first reaches its target: watched epoch by epoch, or read from its study.

A method that trains one model at a time gets a :class:`WatchCallback` in every fit. After
each epoch it scores the model on the task's validation set; once the accuracy reaches the
target it records the epochs trained so far (by every fit of the run) and the seconds since
the run started, less the watch's own time (its predictions), and stops the run by raising
:class:`TargetReached` (a ``KeyboardInterrupt``, which every method lets through: they
catch ``Exception`` from a failing trial and go on).

Fleets take no Keras callbacks, so a fleet run goes to the end of its budget and is read
from its Optuna study afterwards (:func:`reach_from_trials`). Optuna keeps no time per
epoch, only a trial's start and end, so the point is taken where it is certain: the end of
the first trial that reached the target (its model exists then at the latest; the Hyperband
tuner trains a trial in rounds, between which its fleet-mates train, so an epoch's time
cannot be placed within its trial). The epochs are all those of trials ended by then, and
of trials still running then, their share placed evenly over their time (fleet-mates
trained beside it count). These are upper bounds; the watch's own cost (a prediction per
epoch) is not paid there.
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


def _epoch_ends(trial: Any) -> list[tuple[Any, float]]:
    """``(when, score)`` of each epoch a finished trial trained, spread evenly over its time."""
    scores = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
    span = trial.datetime_complete - trial.datetime_start
    return [
        (trial.datetime_start + span * (i + 1) / len(scores), score)
        for i, score in enumerate(scores)
    ]


def reach_from_trials(
    trials: list[Any], target: float, start: Any
) -> tuple[tuple[int, float] | None, int, float]:
    """``(reached, epochs, best)`` of a run read from its stored Optuna trials.

    ``reached`` is ``(epochs, seconds)`` or ``None``: the end of the first trial whose
    validation score reached ``target``, the epochs trained by then (see the module
    docstring), and the seconds since ``start`` (when the run started, a datetime).
    ``epochs`` counts every epoch the run trained (one intermediate value per epoch),
    ``best`` is the best score.
    """
    ends = [
        end
        for t in trials
        if t.datetime_start is not None and t.datetime_complete is not None
        for end in _epoch_ends(t)
    ]
    trained = sum(len(t.intermediate_values) for t in trials)
    best = max((score for _, score in ends), default=0.0)
    hits = [
        t.datetime_complete
        for t in trials
        if t.datetime_complete is not None
        and max(t.intermediate_values.values(), default=0.0) >= target
    ]
    if not hits:
        return None, trained, float(best)
    until = min(hits)
    epochs = sum(1 for when, _ in ends if when <= until)
    return (epochs, (until - start).total_seconds()), trained, float(best)
