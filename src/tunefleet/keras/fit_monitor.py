"""The callback every wrapper fit adds: stop on a non-finite loss, report each epoch."""

from __future__ import annotations

import math
from typing import Any

import keras

from tunefleet._hooks import EpochObserver

__all__ = ["FitMonitor"]


class FitMonitor(keras.callbacks.Callback):
    """Raises on a non-finite training loss and reports epochs to the trial's observer.

    Args:
        observer: Called with ``(epoch, epochs)`` after every epoch, or None.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(loss="mse")
    >>> seen = []
    >>> monitor = FitMonitor(lambda epoch, epochs: seen.append((epoch, epochs)))
    >>> _ = model.fit(np.zeros((4, 2)), np.zeros(4), epochs=2, verbose=0, callbacks=[monitor])
    >>> seen
    [(0, 2), (1, 2)]
    """

    def __init__(self, observer: EpochObserver | None) -> None:
        super().__init__()
        self.observer = observer

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise FloatingPointError(
                f"The training loss became {float(loss)} at epoch {epoch} (counting from "
                "0); training was stopped. Lower the learning rate or check the data."
            )
        if self.observer is not None:
            self.observer(epoch, self.params["epochs"])
