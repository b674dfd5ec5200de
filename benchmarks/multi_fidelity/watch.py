"""When a search first reaches its target: watched epoch by epoch, or read from its study.

A method that trains one model at a time gets a :class:`WatchCallback` in every fit. After
each epoch it scores the model on the task's validation set; once the accuracy reaches the
target it records the epochs trained so far (by every fit of the run) and the seconds since
the run started, less the watch's own time (its predictions), and stops the run by raising
:class:`TargetReached` (a ``KeyboardInterrupt``, which every method lets through: they
catch ``Exception`` from a failing trial and go on).

Fleets take no Keras callbacks, so a fleet run goes to the end of its budget and is read
from its Optuna study afterwards (:func:`reach_from_trials`): the validation score of every
epoch of every trial, each epoch placed in time evenly between its trial's start and end;
the first epoch that reached the target marks the point; the epochs are those every trial
(trials trained beside it in its fleet included) had trained by then, the seconds those
from the search's start. The watch's own cost (a prediction per epoch) is not paid there.
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
    """``(when, score)`` of each epoch a finished trial trained, in order.

    Optuna stores no time per epoch, so epochs are spread evenly between the trial's start
    and end: in a fleet, the trials of a batch train their epochs in step.
    """
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

    ``reached`` is ``(epochs, seconds)`` or ``None``: the first epoch (of any trial) whose
    validation score reached ``target``, the epochs every trial had trained by then, and
    the seconds since ``start`` (when the run started, a datetime). ``epochs`` counts every
    epoch the run trained (one intermediate value per epoch), ``best`` is the best score.
    """
    ends = [
        end
        for t in trials
        if t.datetime_start is not None and t.datetime_complete is not None
        for end in _epoch_ends(t)
    ]
    trained = sum(len(t.intermediate_values) for t in trials)
    best = max((score for _, score in ends), default=0.0)
    hits = [when for when, score in ends if score >= target]
    if not hits:
        return None, trained, float(best)
    until = min(hits)
    epochs = sum(1 for when, _ in ends if when <= until)
    return (epochs, (until - start).total_seconds()), trained, float(best)
