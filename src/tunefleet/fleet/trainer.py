"""``FleetTrainer``: train many Keras configurations at once, one vmapped program per group."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax
import keras
import numpy as np

from tunefleet.fleet.cost import (
    COMPILE_SECONDS_GUESS,
    default_cost_model,
    split_by_width,
    trial_flops,
)
from tunefleet.fleet.export import build_trial
from tunefleet.fleet.group import GroupProgram
from tunefleet.fleet.introspect import TrialSpec, UnsupportedModelError, read_trial
from tunefleet.fleet.loop import Callback, CompactPolicy, EpochOrder, Fleet, run_fleets
from tunefleet.fleet.plan import (
    FleetPlan,
    MemoryEstimate,
    cache_fleet_size,
    device_budget,
    estimate_trial_bytes,
    group_trials,
    measure_throughput,
    split_even,
    state_bytes,
)
from tunefleet.fleet.refill import Refill, Refiller
from tunefleet.fleet.result import FleetResult, as_trial_list
from tunefleet.fleet.train import FleetState, GroupFunctions, stack, to_device
from tunefleet.keras.memory import register_program_keeper, release_compiled_programs

BuildFn = Callable[..., keras.Model]

#: Group programs (and their compilations) a trainer keeps for later fits, most recently
#: used first; a search over many depths and width buckets would otherwise keep all.
MAX_KEPT_PROGRAMS = 16


def _config_key(config: Mapping[str, Any], seed: int) -> str:
    return json.dumps([sorted(config.items()), seed], default=repr)


class FleetTrainer:
    """Train many configurations of one Keras model builder as vmapped fleets on JAX.

    Trials whose models differ only in learning rate (a float, or the numbers of a
    known learning-rate schedule), other float optimizer hyperparameters, Dropout
    rates, Dense/Conv/Embedding widths, L1/L2 strengths and seeds share one compiled
    program; the rest split into groups.

    Args:
        build_fn: ``build_fn(**config)`` returns a compiled ``keras.Model``
            (Sequential or a functional chain, JAX backend).
        seed: Global seed set (``keras.utils.set_random_seed``) before building
            each trial's model, and the seed of the per-epoch data order. A trial
            then starts from the same weights as a solo ``model.fit`` after
            ``keras.utils.set_random_seed(seed)``.
        max_fleet_size: Upper bound on trials per fleet (default: memory bound).
        memory_fraction: Share of free device memory fleets may use.
        measure_throughput: Measure the throughput curve of each group to pick
            fleet sizes: ``True``, ``False``, or ``"auto"`` (on accelerators only;
            on CPU each probed size costs a compile that the run rarely earns
            back, and fleets are instead sized so that their weights and optimizer
            state fit in the last-level cache, where the measured CPU curve peaks).
        compact: Whether to drop stopped trials' rows from a fleet (a recompile):
            ``"auto"`` when the saved compute outweighs the compile time,
            ``"always"`` or ``"never"`` (stopped rows are then just ignored).
        eval_batch_size: Validation samples evaluated at once.
        split_widths: Cut a group into width buckets when the compute saved on
            zero padding outweighs compiling more programs (see
            :mod:`tunefleet.fleet.cost`); ``"auto"``: on CPU only.

    Example:

    >>> from functools import partial
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from tunefleet.fleet import FleetTrainer
    >>> from tunefleet.keras import build_mlp
    >>> x, y = load_iris(return_X_y=True)
    >>> build_fn = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)
    >>> configs = [{"n_neurons": n, "learning_rate": lr} for n in (8, 16) for lr in (1e-2, 1e-3)]
    >>> trainer = FleetTrainer(build_fn, seed=0)
    >>> result = trainer.fit(configs, x, y, epochs=2, validation_split=0.2)
    >>> sorted(result.history[0])
    ['accuracy', 'loss', 'val_accuracy', 'val_loss']
    >>> best = int(np.nanargmin(result.final("val_loss")))
    >>> model = result.export(best)          # a compiled keras.Model, ready to save
    >>> model.predict(x[:5], verbose=0).shape
    (5, 3)
    """

    def __init__(
        self,
        build_fn: BuildFn,
        seed: int = 0,
        *,
        max_fleet_size: int | None = None,
        memory_fraction: float = 0.5,
        measure_throughput: bool | Literal["auto"] = "auto",
        compact: CompactPolicy = "auto",
        eval_batch_size: int = 2048,
        split_widths: bool | Literal["auto"] = "auto",
    ) -> None:
        self.build_fn = build_fn
        self.seed = int(seed)
        self.max_fleet_size = max_fleet_size
        self.memory_fraction = memory_fraction
        self.measure_throughput = measure_throughput
        self.compact: CompactPolicy = compact
        self.eval_batch_size = eval_batch_size
        self.split_widths = split_widths
        self._specs: dict[str, TrialSpec] = {}
        # Programs and their compilations, reused by later fits of equal groups (at most
        # MAX_KEPT_PROGRAMS, least recently used dropped first, and all of them whenever
        # tunefleet.keras.memory releases JAX's compiled programs: they count against the
        # same RSS budget).
        self._programs: dict[tuple, tuple[GroupProgram, GroupFunctions]] = {}
        self._dropped_compile_seconds = 0.0
        register_program_keeper(self)
        self.last_plan: FleetPlan | None = None

    # ------------------------------------------------------------------ reading
    def _read_one(self, config: Mapping[str, Any], seed: int) -> TrialSpec:
        """The reading of ``(config, seed)``: adopted, kept from earlier, or built now."""
        key = _config_key(config, seed)
        spec = self._specs.get(key)
        if spec is None:
            # Building compiles Keras's eager programs for this trial's shapes: keep JAX's
            # caches within their budget (the fleets' own programs are compiled ahead of
            # time and held by their GroupFunctions, so they are not affected).
            release_compiled_programs()
            spec = self._specs[key] = read_trial(build_trial(self.build_fn, config, seed))
        return spec

    def _read(self, configs: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> list[TrialSpec]:
        specs = []
        for i, (config, seed) in enumerate(zip(configs, seeds, strict=True)):
            try:
                specs.append(self._read_one(config, seed))
            except UnsupportedModelError as err:
                raise UnsupportedModelError(f"config {i}: {err}") from None
        return specs

    def _release(self, config: Mapping[str, Any], seed: int) -> None:
        """Forget the model kept for ``(config, seed)``."""
        self._specs.pop(_config_key(config, seed), None)

    def support(self, configs: Sequence[Mapping[str, Any]], seeds: Sequence[int] | None = None):
        """``None`` if every config can be trained in a fleet, else why not.

        Models built here are kept for a following :meth:`plan` or :meth:`fit`.

        Args:
            configs: The configurations.
            seeds: Optional per-trial build seeds (default: the trainer's seed).

        Returns:
            ``None`` or a message naming the unsupported layer or feature.
        """
        seeds = as_trial_list(self.seed if seeds is None else seeds, len(configs), "seeds")
        try:
            self._read(configs, seeds)
        except UnsupportedModelError as err:
            return str(err)
        return None

    def adopt(self, config: Mapping[str, Any], seed: int, model: keras.Model) -> None:
        """Use ``model`` for ``(config, seed)`` instead of building it again.

        For callers that had to build the model anyway (a define-by-run tuner samples
        a trial's hyperparameters by building it). ``model`` must be what
        ``build_fn(**config)`` returns after ``keras.utils.set_random_seed(seed)``.

        Raises:
            UnsupportedModelError: naming what fleet training does not support.
        """
        self._specs[_config_key(config, seed)] = read_trial(model)

    # ------------------------------------------------------------------ planning
    def plan(
        self,
        configs: Sequence[Mapping[str, Any]],
        *,
        batch_size: int | Sequence[int] = 32,
        x: Any = None,
        y: Any = None,
        seeds: Sequence[int] | None = None,
        n_val: int = 0,
        epochs: int | None = None,
    ) -> FleetPlan:
        """Group configs into compile groups and size their fleets.

        Args:
            configs: The configurations.
            batch_size: Training batch size (one, or one per config).
            x: Optional training inputs; with ``y``, allows measuring throughput.
            y: Optional training targets.
            seeds: Optional per-trial build seeds.
            n_val: Number of validation samples (for the memory estimate).
            epochs: Planned epochs; with ``x``, lets the plan cut groups by width
                where the saved compute outweighs the extra compile.

        Returns:
            A :class:`FleetPlan`; iterate it for the groups' config indices.
        """
        n = len(configs)
        seeds = as_trial_list(self.seed if seeds is None else seeds, n, "seeds")
        batch_sizes = as_trial_list(batch_size, n, "batch_size")
        specs = self._read(configs, seeds)
        n_samples = None if x is None else len(x)
        plan, _ = self._plan(specs, batch_sizes, x, y, n_val, epochs, n_samples)
        return plan

    @property
    def compile_seconds(self) -> float:
        """Seconds this trainer has spent compiling, over all its fits."""
        kept = sum(f.compile_seconds for _, f in self._programs.values())
        return float(self._dropped_compile_seconds + kept)

    def _keep_program(self, key: tuple, entry: tuple[GroupProgram, GroupFunctions]) -> None:
        """Keep ``entry`` under ``key`` as the most recently used; drop the oldest beyond the cap."""
        self._programs.pop(key, None)
        self._programs[key] = entry
        while len(self._programs) > MAX_KEPT_PROGRAMS:
            oldest = next(iter(self._programs))
            _, fns = self._programs.pop(oldest)
            self._dropped_compile_seconds += fns.compile_seconds

    def drop_kept_programs(self) -> None:
        """Forget every kept group program (called when JAX's compiled programs are released).

        Fleets training now keep theirs until they finish; later fits compile again.
        """
        while self._programs:
            _, (_, fns) = self._programs.popitem()
            self._dropped_compile_seconds += fns.compile_seconds

    def _compile_seconds_seen(self, default: float = COMPILE_SECONDS_GUESS) -> float:
        """Mean seconds this trainer spent compiling one group so far (else ``default``)."""
        seen = [f.compile_seconds for _, f in self._programs.values()]
        seen = [t for t in seen if t > 0]
        return float(np.mean(seen)) if seen else default

    def _plan(
        self,
        specs: list[TrialSpec],
        batch_sizes: list[int],
        x: Any,
        y: Any,
        n_val: int,
        epochs: int | None = None,
        n_samples: int | None = None,
    ) -> tuple[FleetPlan, list[tuple[GroupProgram, GroupFunctions]]]:
        groups = group_trials(specs, batch_sizes)
        accelerator = jax.devices()[0].platform != "cpu"
        split = self.split_widths
        if split == "auto":
            split = not accelerator
        if split and epochs and n_samples:
            cost = default_cost_model(self._compile_seconds_seen())
            groups = [
                bucket
                for members in groups
                for bucket in split_by_width(
                    specs,
                    members,
                    epochs=epochs,
                    samples=n_samples,
                    batch_size=batch_sizes[members[0]],
                    cost=cost,
                )
            ]
        budget = device_budget(self.memory_fraction)
        plan = FleetPlan(groups=groups, fleets=[], fleet_size=[])
        programs = []
        for members in groups:
            group_specs = [specs[i] for i in members]
            bs = batch_sizes[members[0]]
            key = GroupProgram.key_of(group_specs)
            reused = None
            if key not in self._programs and epochs and n_samples:
                reused = self._reusable_key(group_specs, key[1], bs, epochs * n_samples)
                key = reused or key
            if key not in self._programs:
                program = GroupProgram(group_specs)
                self._keep_program(key, (program, GroupFunctions(program, self.eval_batch_size)))
            else:
                self._keep_program(key, self._programs[key])
            program, fns = self._programs[key]
            programs.append((program, fns))
            memory = MemoryEstimate(
                estimate_trial_bytes(program, bs, n_val, self.eval_batch_size),
                budget,
            )
            cap = min(len(members), memory.max_trials, self.max_fleet_size or len(members))
            reason = f"memory allows {memory.max_trials}"
            curve = None
            measure = self.measure_throughput
            if measure == "auto":
                measure = accelerator and cap > 1
            if measure and x is not None and y is not None and cap > 1:
                program.prepare_metrics(np.asarray(x[:2]), np.asarray(y[:2]))
                curve = measure_throughput(
                    fns,
                    program.trial_start(specs[members[0]]),
                    to_device(x),
                    to_device(y),
                    bs,
                    cap,
                )
                fns.curve = curve
                size = curve.best_size(cap)
                reason += f"; throughput saturates at {size}"
            elif not accelerator:
                size = min(cap, cache_fleet_size(state_bytes(program)))
                reason += f"; {size} trials' weights and optimizer state fit the CPU cache"
            else:
                size = cap
            if reused:
                reason += "; in the compiled program of an earlier, wider group"
            fleets = split_even(members, size)
            rows = max(len(f) for f in fleets)
            if epochs and n_samples:
                compiled = self._reusable_rows(
                    program, fns, specs[members[0]], rows, len(fleets), bs, epochs * n_samples
                )
                if compiled != rows:
                    rows = compiled
                    reason += f"; reusing the compiled program for fleets of {rows}"
            plan.fleets.append(fleets)
            plan.fleet_size.append(rows)
            plan.memory.append(memory)
            plan.curves.append(curve)
            plan.reasons.append(reason)
        self.last_plan = plan
        return plan, programs

    def _reusable_key(
        self,
        specs: list[TrialSpec],
        own_widths: tuple[int | None, ...],
        batch_size: int,
        sample_steps: int,
    ) -> tuple | None:
        """The key of an earlier, wider program to train ``specs`` in, if cheaper than a compile.

        Successive fits (Hyperband rounds, refits of survivors) often hold a subset of
        an earlier fit's trials: the earlier template admits them
        (:meth:`GroupProgram.admits`) and its compilations are ready. The padded
        compute it adds over the group's own template (``own_widths``), priced by the
        width cost model over ``sample_steps`` (epochs x samples), must stay below
        the seconds of one more compile.
        """
        own = sum(trial_flops(s, own_widths, batch_size) for s in specs)
        extra = {  # padded FLOPs per sample step, for each earlier program that admits them
            key: sum(trial_flops(s, program.full_widths, batch_size) for s in specs) - own
            for key, (program, _) in self._programs.items()
            if all(program.admits(s) for s in specs)
        }
        if not extra:
            return None
        cost = default_cost_model(self._compile_seconds_seen())
        key = min(extra, key=extra.__getitem__)
        seconds = extra[key] * sample_steps * cost.seconds_per_flop
        return key if seconds < cost.compile_seconds else None

    def _reusable_rows(
        self,
        program: GroupProgram,
        fns: GroupFunctions,
        spec: TrialSpec,
        rows: int,
        n_fleets: int,
        batch_size: int,
        sample_steps: int,
    ) -> int:
        """Rows per fleet: a larger compiled size when its ignored rows cost less than a compile."""
        larger = [m for m in fns.compiled_sizes() if m > rows]
        if not larger:
            return rows
        cost = default_cost_model(fns.compile_seconds_estimate() or self._compile_seconds_seen())
        per_row = trial_flops(spec, program.full_widths, batch_size) * sample_steps
        extra = (min(larger) - rows) * n_fleets * per_row * cost.seconds_per_flop
        return min(larger) if extra < cost.compile_seconds else rows

    # ------------------------------------------------------------------ training
    def fit(
        self,
        configs: Sequence[Mapping[str, Any]],
        x: Any,
        y: Any,
        *,
        epochs: int = 1,
        batch_size: int | Sequence[int] = 32,
        validation_data: tuple[Any, Any] | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        on_epoch_end: Callback | None = None,
        seeds: Sequence[int] | None = None,
        refill: Refill | None = None,
    ) -> FleetResult:
        """Train every config for ``epochs`` epochs (fewer if the callback stops it).

        Args:
            configs: The configurations, ``build_fn(**config)`` each.
            x: Training inputs (one array).
            y: Training targets (one array).
            epochs: Number of epochs.
            batch_size: Training batch size (one, or one per config).
            validation_data: ``(x_val, y_val)``, evaluated after every epoch.
            validation_split: Fraction of the *last* samples of ``x``/``y`` held
                out for validation, as in ``model.fit``.
            shuffle: Shuffle the training samples every epoch (the order is
                the one ``model.fit`` would draw after the same seed).
            on_epoch_end: ``callback(epoch, logs)``; ``logs`` is an
                :class:`EpochLogs` of per-trial arrays. It may return a boolean
                array over all trials; ``False`` stops that trial now.
            seeds: Optional per-trial build seeds (default: the trainer's seed).
            refill: ``refill(epoch, free) -> [config | NewTrial, ...]``, called
                after the callback of every epoch at which ``free > 0`` rows are
                held by trials it stopped before their last epoch. Each new
                trial gets the next trial index (after ``configs`` and earlier
                refills; logs and results cover it) and starts from its own
                epoch 0 in a free row of a fleet that can train it (same compile
                group and batch size, widths within the template), for its own
                ``epochs`` (the fit runs until no trial has epochs left), from
                the next epoch's sample order on. One that fits no free row is
                not started (``result.not_started``), and ``refill`` is not
                called again in this fit.

        Returns:
            A :class:`FleetResult`.
        """
        t_start = time.perf_counter()
        n = len(configs)
        seeds_list = as_trial_list(self.seed if seeds is None else seeds, n, "seeds")
        batch_sizes = as_trial_list(batch_size, n, "batch_size")
        x = np.asarray(x)
        y = np.asarray(y)
        if validation_data is None and validation_split:
            split = int(len(x) * (1.0 - validation_split))
            x, y, validation_data = x[:split], y[:split], (x[split:], y[split:])
        n_val = 0 if validation_data is None else len(validation_data[0])
        specs = self._read(configs, seeds_list)
        t_read = time.perf_counter()
        plan, programs = self._plan(specs, batch_sizes, x, y, n_val, epochs, len(x))
        fleets = _build_fleets(plan, programs, specs, batch_sizes, x, y)
        for config, seed in zip(configs, seeds_list, strict=True):
            self._release(config, seed)
        t_setup = time.perf_counter()
        validation = None
        if validation_data is not None:
            validation = (np.asarray(validation_data[0]), np.asarray(validation_data[1]))
        all_configs = [dict(c) for c in configs]
        groups = [list(g) for g in plan.groups]
        hook = None
        if refill is not None:
            hook = Refiller(
                refill,
                self._read_one,
                self._release,
                seed=self.seed,
                batch_size=batch_size if isinstance(batch_size, (int, np.integer)) else None,
                epochs=epochs,
                configs=all_configs,
                seeds=seeds_list,
                groups=groups,
            )
        trials, stats = run_fleets(
            fleets,
            n_trials=n,
            x=to_device(x),
            y=to_device(y),
            validation=validation,
            epochs=epochs,
            order=EpochOrder(len(x), shuffle, self.seed),
            on_epoch_end=on_epoch_end,
            compact=self.compact,
            eval_batch_size=self.eval_batch_size,
            refill=hook,
        )
        fns_list = [fns for _, fns in programs]
        stats.update(
            read_seconds=t_read - t_start,
            setup_seconds=t_setup - t_read,
            train_seconds=time.perf_counter() - t_setup,
            total_seconds=time.perf_counter() - t_start,
            compile_seconds=sum(f.compile_seconds for f in fns_list),
            traces=[dict(f.traces) for f in fns_list],
            plan=plan,
        )
        return FleetResult(
            history=trials.history,
            stopped_at=trials.stopped_at,
            configs=all_configs,
            seeds=seeds_list,
            groups=groups,
            stats=stats,
            not_started=trials.not_started,
            build_fn=self.build_fn,
            _weights=trials.weights,
        )


def _build_fleets(
    plan: FleetPlan,
    programs: list[tuple[GroupProgram, GroupFunctions]],
    specs: list[TrialSpec],
    batch_sizes: list[int],
    x: np.ndarray,
    y: np.ndarray,
) -> list[Fleet]:
    """Every planned fleet with its trials' padded starting state stacked (padding rows
    repeat a real trial's start and are ignored)."""
    fleets: list[Fleet] = []
    for g, members in enumerate(plan.groups):
        program, fns = programs[g]
        program.prepare_metrics(x[:2], y[:2])
        starts = {i: program.trial_start(specs[i]) for i in members}
        for chunk in plan.fleets[g]:
            rows = chunk + [-1] * (plan.fleet_size[g] - len(chunk))
            row_starts = [starts[i] if i >= 0 else starts[chunk[0]] for i in rows]
            fleets.append(
                Fleet(
                    group=g,
                    fns=fns,
                    rows=np.asarray(rows),
                    state=FleetState(
                        params=stack([s.params for s in row_starts]),
                        nontrain=stack([s.nontrain for s in row_starts]),
                        opt=stack([s.opt for s in row_starts]),
                    ),
                    hp=stack([s.hp for s in row_starts]),
                    batch_size=batch_sizes[members[0]],
                    recipes={i: starts[i].recipes for i in chunk},
                )
            )
    return fleets


def fleet_support(build_fn: BuildFn, configs: Sequence[Mapping[str, Any]]) -> str | None:
    """``None`` if all configs can be trained as fleets, else a message saying why not.

    Args:
        build_fn: ``build_fn(**config)`` returns a compiled ``keras.Model``.
        configs: The configurations to check (each model is built once).

    Example:

    >>> import keras
    >>> from tunefleet.fleet import fleet_support
    >>> def build_fn(units, recurrent=False):
    ...     hidden = keras.layers.LSTM(units) if recurrent else keras.layers.Flatten()
    ...     model = keras.Sequential([keras.Input((5, 2)), hidden, keras.layers.Dense(1)])
    ...     model.compile(optimizer="adam", loss="mse")
    ...     return model
    >>> print(fleet_support(build_fn, [{"units": 4}]))
    None
    >>> print(fleet_support(build_fn, [{"units": 4, "recurrent": True}]))  # doctest: +ELLIPSIS
    config 0: layer 'lstm...' of type LSTM is not supported by fleet training (supported: ...)
    """
    return FleetTrainer(build_fn).support(configs)
