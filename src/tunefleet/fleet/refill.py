"""Refilling freed fleet rows with new trials during a fit (ask/tell inside a fleet).

When the epoch callback stops trials before their last epoch (early stopping,
successive halving, a pruner), their rows are free. ``FleetTrainer.fit(refill=...)``
then asks the caller for new configurations and starts each one in a free row of a
fleet whose compiled program can train it: its own weights, optimizer state
(iteration counter 0), BatchNormalization statistics and dropout seeds, exactly as
if it had been in the fit from the start, replace the row's. No new compilation is
needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tunefleet.fleet.group import TrialStart
from tunefleet.fleet.introspect import TrialSpec, UnsupportedModelError
from tunefleet.fleet.loop import Fleet


@dataclass(frozen=True)
class NewTrial:
    """A configuration to start in a freed row of a running fit.

    Args:
        config: The configuration, ``build_fn(**config)``.
        seed: Its build seed (default: the trainer's ``seed``).
        batch_size: Its training batch size (default: the fit's ``batch_size``,
            which must then be a single int).
        epochs: Its epoch budget, counted from its own start (default: the
            fit's ``epochs``).

    Example:

    >>> from tunefleet.fleet import NewTrial
    >>> NewTrial({"n_neurons": 32}, seed=1, epochs=3)   # a plain config takes the defaults
    NewTrial(config={'n_neurons': 32}, seed=1, batch_size=None, epochs=3)

    See :class:`Refill` for one started during a fit.
    """

    config: Mapping[str, Any]
    seed: int | None = None
    batch_size: int | None = None
    epochs: int | None = None


class Refill(Protocol):
    """``refill(epoch, free) -> new trials``, the ``refill`` argument of ``FleetTrainer.fit``.

    Any callable of this signature (a function, a lambda) is one. It is called after
    the callback of fit epoch ``epoch`` when ``free > 0`` rows are free, and returns
    up to ``free`` configs or :class:`NewTrial` s (an empty sequence starts nothing).
    After it returned one that no free row could take, it is not called again in
    that fit.

    Example:

    >>> from functools import partial
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from tunefleet.fleet import FleetTrainer, NewTrial
    >>> from tunefleet.keras import build_mlp
    >>> x, y = load_iris(return_X_y=True)
    >>> build_fn = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)
    >>> def keep_best(epoch, logs):           # stops the others after the first epoch
    ...     return logs["val_loss"] <= np.nanmin(logs["val_loss"])
    >>> def refill(epoch, free):
    ...     print(f"after epoch {epoch}: {free} free row(s)")
    ...     return [NewTrial({"learning_rate": 0.05}, epochs=1)]
    >>> configs = [{"learning_rate": 0.1}, {"learning_rate": 1e-4}]
    >>> result = FleetTrainer(build_fn).fit(configs, x, y, epochs=2, validation_split=0.2,
    ...                                     on_epoch_end=keep_best, refill=refill)
    after epoch 0: 1 free row(s)
    >>> result.configs[2], len(result.history[2]["loss"])   # the new trial, its one epoch
    ({'learning_rate': 0.05}, 1)
    """

    def __call__(self, epoch: int, free: int, /) -> Sequence[Mapping[str, Any] | NewTrial]: ...


class Refiller:
    """The loop's refill hook: reads the caller's new trials and writes them into free rows.

    A new trial goes into the first free row of a fleet with its batch size whose
    program admits it (:meth:`GroupProgram.admits`); one that fits none is not
    started. Every new trial, started or not, gets the next trial index. Once one was
    not started, the caller is not asked again during the fit: rows still free stay
    idle rather than queue trial after trial for fits of their own (a search would
    spend its budget on configurations that wait).

    Args:
        refill: The caller's :class:`Refill`.
        read: ``read(config, seed) -> TrialSpec``, the trainer's reading (the
            model built or adopted for ``(config, seed)``).
        release: ``release(config, seed)``: forget a started trial's model (its
            state is copied into the fleet); a trial not started keeps it for a
            later fit.
        seed: Default build seed.
        batch_size: Default batch size (``None``: each new trial must give one).
        epochs: Default epoch budget.
        configs: The fit's configs, extended with every new trial's.
        seeds: The fit's seeds, extended likewise.
        groups: The fit's compile groups, extended with the started trials.
    """

    def __init__(
        self,
        refill: Refill,
        read: Callable[[Mapping[str, Any], int], TrialSpec],
        release: Callable[[Mapping[str, Any], int], None],
        *,
        seed: int,
        batch_size: int | None,
        epochs: int,
        configs: list[dict[str, Any]],
        seeds: list[int],
        groups: list[list[int]],
    ) -> None:
        self.refill = refill
        self.read = read
        self.release = release
        self.defaults = NewTrial({}, seed=seed, batch_size=batch_size, epochs=epochs)
        self.configs = configs
        self.seeds = seeds
        self.groups = groups
        self.waiting = False  # a trial returned earlier was not started: ask no more

    def _complete(self, item: Mapping[str, Any] | NewTrial) -> NewTrial:
        """``item`` as a :class:`NewTrial` with every default filled in."""
        new = item if isinstance(item, NewTrial) else NewTrial(item)
        d = self.defaults
        batch_size = d.batch_size if new.batch_size is None else new.batch_size
        if batch_size is None:
            raise ValueError(
                "refill: a new trial needs NewTrial(batch_size=...) when fit(batch_size=) "
                "is given per trial"
            )
        epochs = int(d.epochs if new.epochs is None else new.epochs)
        if epochs < 1:
            raise ValueError(f"refill: NewTrial.epochs must be >= 1, got {epochs}")
        seed = d.seed if new.seed is None else int(new.seed)
        return NewTrial(dict(new.config), seed, int(batch_size), epochs)

    def __call__(
        self, epoch: int, free: list[tuple[Fleet, int]], n_trials: int
    ) -> list[int | None]:
        """Start the caller's new trials in ``free`` rows; per new trial, its budget or ``None``."""
        if self.waiting:
            return []
        free = list(free)
        placed: dict[int, tuple[Fleet, list[int], list[int], list[TrialStart]]] = {}
        budgets: list[int | None] = []
        for j, item in enumerate(self.refill(epoch, len(free))):
            new = self._complete(item)
            assert new.seed is not None
            try:
                spec = self.read(new.config, new.seed)
            except UnsupportedModelError as err:
                raise UnsupportedModelError(
                    f"refill after epoch {epoch}, config {j}: {err}"
                ) from None
            trial = n_trials + j
            self.configs.append(dict(new.config))
            self.seeds.append(new.seed)
            k = _first_slot(free, new, spec)
            if k is None:
                budgets.append(None)
                self.waiting = True
                continue
            fleet, row = free.pop(k)
            _, rows, trials, starts = placed.setdefault(id(fleet), (fleet, [], [], []))
            rows.append(row)
            trials.append(trial)
            starts.append(fleet.fns.program.trial_start(spec))
            self.release(new.config, new.seed)
            self.groups[fleet.group].append(trial)
            budgets.append(new.epochs)
        for fleet, rows, trials, starts in placed.values():
            fleet.put(rows, trials, starts)
        return budgets


def _first_slot(free: list[tuple[Fleet, int]], new: NewTrial, spec: TrialSpec) -> int | None:
    """Index in ``free`` of the first row whose fleet can train ``new``, else ``None``."""
    fits: dict[int, bool] = {}
    for k, (fleet, _) in enumerate(free):
        if id(fleet) not in fits:
            fits[id(fleet)] = fleet.batch_size == new.batch_size and fleet.fns.program.admits(spec)
        if fits[id(fleet)]:
            return k
    return None
