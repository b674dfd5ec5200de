"""What a fleet fit hands back: per-epoch logs for callbacks and the final result."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from tunefleet.fleet.export import TrialWeights, export_trial


class EpochLogs(Mapping[str, np.ndarray]):
    """Per-trial metrics of one epoch, as arrays over all trials of the fit.

    ``logs["loss"]``, ``logs["val_loss"]``, ``logs["accuracy"]``, ... are float
    arrays of shape ``(n_trials,)`` in config order (trials started by a refill
    follow the configs, numbered in the order the refills returned them); trials
    that did not train this epoch hold ``nan``.

    Args:
        epoch: The epoch of the fit just finished (from 0).
        values: Metric name -> per-trial array.
        active: Which trials trained this epoch.
        predict_val: Callable returning validation predictions per trial.
        capture: Callable copying given trials' current weights to the host.
        trial_epoch: Each trial's own epoch just finished (from 0 at its start;
            differs from ``epoch`` for refilled trials), ``-1`` where inactive.
            Default: ``epoch`` for active trials.

    Example:

    >>> from functools import partial
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from tunefleet.fleet import FleetTrainer
    >>> from tunefleet.keras import build_mlp
    >>> x, y = load_iris(return_X_y=True)
    >>> build_fn = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)
    >>> def on_epoch_end(epoch, logs):
    ...     print(epoch, logs["val_loss"].shape, int(logs.active.sum()))
    ...     return logs["val_loss"] <= np.nanmedian(logs["val_loss"])  # keep the better half
    >>> configs = [{"learning_rate": lr} for lr in (1e-1, 1e-2, 1e-3, 1e-4)]
    >>> trainer = FleetTrainer(build_fn, seed=0)
    >>> result = trainer.fit(configs, x, y, epochs=2, validation_split=0.2,
    ...                      on_epoch_end=on_epoch_end)
    0 (4,) 4
    1 (4,) 2
    """

    def __init__(
        self,
        epoch: int,
        values: dict[str, np.ndarray],
        active: np.ndarray,
        predict_val: Callable[[], np.ndarray] | None = None,
        capture: Callable[[Sequence[int]], dict[int, TrialWeights]] | None = None,
        trial_epoch: np.ndarray | None = None,
    ) -> None:
        self.epoch = epoch
        self._values = values
        self.active = active
        if trial_epoch is None:
            trial_epoch = np.where(active, epoch, -1)
        self.trial_epoch = trial_epoch
        self._predict_val = predict_val
        self._capture = capture

    def __getitem__(self, key: str) -> np.ndarray:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def predict_val(self) -> np.ndarray:
        """Validation predictions, shape ``(n_trials, n_val, ...)``; ``nan`` rows if inactive."""
        if self._predict_val is None:
            raise ValueError("fit() was called without validation data")
        return self._predict_val()

    def weights(self, trials: Sequence[int]) -> dict[int, TrialWeights]:
        """The current weights of the given (active) trials, copied to the host.

        Keep them to export a trial at its best epoch later:
        ``export_trial(build_fn, config, seed, logs.weights([i])[i])``.
        """
        if self._capture is None:
            raise ValueError("these logs cannot read weights")
        return self._capture(trials)

    def __repr__(self) -> str:
        keys = ", ".join(self._values)
        return f"EpochLogs(epoch={self.epoch}, active={int(self.active.sum())}, keys=[{keys}])"


@dataclass
class FleetResult:
    """Outcome of :meth:`FleetTrainer.fit`.

    Args:
        history: Per trial, metric name -> per-epoch values (like ``History.history``).
        stopped_at: Per trial, its own epoch at which the callback stopped it, else ``None``.
        configs: The configs, in the order given, then those refills started.
        seeds: The seed each trial's model was built with.
        groups: The trials of each compile group.
        stats: Timings and compile counts.
        not_started: Trials a refill returned that no free row of their group could take
            (never trained: empty history, no weights).

    Example:

    >>> import os, tempfile
    >>> from functools import partial
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from tunefleet.fleet import FleetTrainer
    >>> from tunefleet.keras import build_mlp
    >>> x, y = load_iris(return_X_y=True)
    >>> build_fn = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)
    >>> configs = [{"n_neurons": 8}, {"n_neurons": 16}]
    >>> result = FleetTrainer(build_fn).fit(configs, x, y, epochs=1, validation_split=0.2)
    >>> result.configs, result.groups, result.stopped_at
    ([{'n_neurons': 8}, {'n_neurons': 16}], [[0, 1]], [None, None])
    >>> len(result.history[1]["loss"])      # one value per epoch
    1
    >>> model = result.export(int(np.argmin(result.final("val_loss"))))
    >>> model.save(os.path.join(tempfile.mkdtemp(), "best.keras"))
    """

    history: list[dict[str, list[float]]]
    stopped_at: list[int | None]
    configs: list[dict[str, Any]]
    seeds: list[int]
    groups: list[list[int]]
    stats: dict[str, Any] = field(default_factory=dict)
    not_started: list[int] = field(default_factory=list)
    build_fn: Callable[..., keras.Model] | None = None
    _weights: list[TrialWeights | None] = field(default_factory=list)

    def final(self, metric: str) -> np.ndarray:
        """The last recorded value of ``metric`` for every trial."""
        return np.array([h[metric][-1] if h.get(metric) else np.nan for h in self.history])

    def weights(self, i: int) -> TrialWeights:
        """Trial ``i``'s trained state (template shapes) on the host."""
        w = self._weights[i]
        if w is None:
            raise ValueError(f"trial {i} has no trained weights")
        return w

    def export(self, i: int) -> keras.Model:
        """Trial ``i`` as an ordinary compiled ``keras.Model`` of its true widths.

        Args:
            i: Index of the trial in ``configs``.

        Returns:
            A model built by ``build_fn(**configs[i])`` holding the trained
            weights; it can be saved with ``model.save("x.keras")``.
        """
        assert self.build_fn is not None
        return export_trial(self.build_fn, self.configs[i], self.seeds[i], self.weights(i))

    def __len__(self) -> int:
        return len(self.history)


def as_trial_list(value: int | Sequence[int], n: int, name: str) -> list[int]:
    """Broadcast an int to ``n`` trials or check a per-trial sequence's length."""
    if isinstance(value, (int, np.integer)):
        return [int(value)] * n
    values = [int(v) for v in value]
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} configs")
    return values
