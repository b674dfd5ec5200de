"""One compile group: its widest template model and every trial's padded starting state.

A group is a set of trials with equal signatures. ``GroupProgram`` holds what they
share (the template layers, an optimizer built on the template's variables, the
compiled loss and metrics); ``TrialStart`` holds one trial's zero-padded initial
weights, optimizer state and per-trial hyperparameter arrays. Both are plain data:
the trainer stacks ``TrialStart``s along a leading trial axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import keras
import numpy as np

from tunefleet.fleet.forward import ForwardProgram, conv_as_matmul_ok
from tunefleet.fleet.introspect import WIDTH_KEYS, TrialSpec, layer_chain
from tunefleet.fleet.padding import (
    Recipe,
    carried_layers,
    chain_layouts,
    layout_mask,
    pad,
    variable_recipe,
)
from tunefleet.fleet.plan import maskable_width_layers
from tunefleet.keras.initializer_draws import shared_draw_programs


@dataclass
class TrialStart:
    """One trial's initial state, zero-padded to the group template.

    Args:
        params: Per layer, trainable arrays.
        nontrain: Per layer, non-trainable arrays.
        opt: Optimizer variable values (iterations, learning rate, slots).
        hp: Per-trial hyperparameter arrays used by the forward pass/optimizer
            (``"sched"``: the learning-rate schedule's parameters by path).
        recipes: Per layer, ``(trainable_recipes, nontrainable_recipes)``.
    """

    params: list[list[np.ndarray]]
    nontrain: list[list[np.ndarray]]
    opt: list[np.ndarray]
    hp: dict[str, Any]
    recipes: list[tuple[list[Recipe], list[Recipe]]]


class GroupProgram:
    """What the trials of one compile group share.

    Args:
        specs: The group's trials (equal signatures). The first trial's compiled
            loss and metrics are used for the whole group.

    Example:

    >>> from tunefleet.fleet.group import GroupProgram
    >>> from tunefleet.fleet.introspect import read_trial
    >>> from tunefleet.keras import build_mlp
    >>> program = GroupProgram([read_trial(build_mlp((4,), "multiclass:3", n_hidden=1, n_neurons=n))
    ...                         for n in (16, 64)])
    >>> program.template.layers[1].units   # the template has the widest widths
    64
    """

    @staticmethod
    def key_of(specs: list[TrialSpec]) -> tuple:
        """What decides a program: signature, the largest widths, the L1/L2 it takes.

        Groups with equal keys can reuse one another's program and compilations.
        """
        first = specs[0]
        widths = [s.widths for s in specs]
        full = tuple(
            None if w is None else max(ws[k] for ws in widths) for k, w in enumerate(first.widths)
        )
        regularized = tuple(sorted({key for s in specs for key in s.regularizers}))
        return (first.signature, full, regularized)

    def __init__(self, specs: list[TrialSpec]) -> None:
        first = specs[0]
        self.signature = first.signature
        n_layers = len(first.layers)
        self.full_widths = tuple(
            None if first.widths[k] is None else max(s.widths[k] for s in specs)
            for k in range(n_layers)
        )
        self.template = self._widest_model(specs)
        self.layers = layer_chain(self.template)
        input_shape = (None, *self.template.inputs[0].shape[1:])
        self.input_shape = input_shape
        self.full_layouts = chain_layouts(self.layers, input_shape)
        # Every layer a maskable width reaches is masked, also where this group's trials
        # agree: the program then admits narrower trials later (refills, later fits).
        mask_layers = carried_layers(self.layers, input_shape, maskable_width_layers(self.layers))
        dropout_layers = frozenset(
            k for k, layer in enumerate(self.layers) if type(layer).__name__ == "Dropout"
        )
        linear = tuple(sorted({key for s in specs for key in s.regularizers}))
        fixed = tuple(
            (k, j)
            for k, layer in enumerate(self.layers)
            for j, v in enumerate(layer.trainable_variables)
            if getattr(v, "regularizer", None) is not None and (k, j) not in linear
        )
        patch_convs = frozenset()
        if jax.devices()[0].platform == "cpu":
            patch_convs = frozenset(
                k for k, layer in enumerate(self.layers) if conv_as_matmul_ok(layer)
            )
        self.forward = ForwardProgram(
            layers=self.layers,
            patch_convs=patch_convs,
            dropout_layers=dropout_layers,
            mask_layers=mask_layers,
            linear_regularized=linear,
            fixed_regularized=fixed,
        )
        self.flat_trainables = [v for layer in self.layers for v in layer.trainable_variables]
        with shared_draw_programs():  # its slots' zeros, filled on the host
            self.optimizer = optimizer_like(first.model.optimizer)
            self.optimizer.build(self.flat_trainables)
        self.opt_reference = optimizer_references(self.optimizer, self.flat_trainables)
        lr = self.optimizer.learning_rate
        self.lr_index = next((i for i, v in enumerate(self.optimizer.variables) if v is lr), None)
        self.optimizer_floats = tuple(sorted(first.optimizer_floats))
        self.schedule_floats = tuple(sorted(first.schedule_floats))
        self.compile_loss = first.model._compile_loss
        self.loss_divides_by_batch = loss_reduction(first.model.loss) in (
            "sum_over_batch_size",
            "mean",
        )
        self.compile_metrics = first.model._compile_metrics
        self.metric_names: list[str] = []
        self._metric_start: list[np.ndarray] = []
        self._built_for: tuple | None = None

    def _widest_model(self, specs: list[TrialSpec]) -> keras.Model:
        """The first trial's model, or a clone of it with the group's largest widths."""
        first = specs[0]
        if all(s.widths == first.widths for s in specs):
            return first.model
        widen = {
            layer.name: full
            for layer, full in zip(first.layers, self.full_widths, strict=True)
            if full is not None
        }

        def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
            config = layer.get_config()
            if layer.name in widen:
                config[WIDTH_KEYS[type(layer).__name__]] = widen[layer.name]
            return type(layer).from_config(config)

        with shared_draw_programs():  # its initial weights are never used
            return keras.models.clone_model(first.model, clone_function=clone)

    def prepare_metrics(self, x_sample: np.ndarray, y_sample: np.ndarray) -> None:
        """Build the compiled loss and metrics for the data's shapes (once).

        Symbolically, as ``model.fit`` builds them (``compute_output_spec``): run
        eagerly, every op of the template would compile a small program of its own.
        """
        from keras.src.backend import compute_output_spec

        key = (x_sample.shape[1:], y_sample.shape[1:], str(y_sample.dtype))
        if self._built_for == key:
            return
        y_pred = compute_output_spec(self.template, x_sample[:2], training=False)
        y_true = keras.KerasTensor(y_sample[:2].shape, str(y_sample.dtype))

        def build(y_true: Any, y_pred: Any) -> None:
            if not self.compile_loss.built:
                self.compile_loss.build(y_true, y_pred)
            if self.compile_metrics is not None and not self.compile_metrics.built:
                self.compile_metrics.build(y_true, y_pred)

        compute_output_spec(build, y_true, y_pred)
        if self.compile_metrics is not None:
            self.compile_metrics.reset_state()
            self.metric_names = list(compute_output_spec(self.compile_metrics.result))
            self._metric_start = [np.asarray(v.value) for v in self.compile_metrics.variables]
        self._built_for = key

    @property
    def metric_start(self) -> list[np.ndarray]:
        """Initial (reset) values of the compiled metrics' variables."""
        return self._metric_start

    def admits(self, spec: TrialSpec) -> bool:
        """Whether ``spec`` can train in this program's fleets (e.g. in a freed row).

        It needs the same signature, no width above the template's, a narrower
        output only where the program masks, and only L1/L2 penalties whose
        strengths the program takes per trial.
        """
        if spec.signature != self.signature:
            return False
        if not set(spec.regularizers) <= set(self.forward.linear_regularized):
            return False
        widths = zip(spec.widths, self.full_widths, strict=True)
        if any(w is not None and full is not None and w > full for w, full in widths):
            return False
        layouts = chain_layouts(spec.layers, self.input_shape)
        return all(
            k in self.forward.mask_layers or mine[1] == full[1]
            for k, (mine, full) in enumerate(zip(layouts, self.full_layouts, strict=True))
        )

    def trial_start(self, spec: TrialSpec) -> TrialStart:
        """Zero-pad one trial's initial state into the template's shapes."""
        trial_layouts = chain_layouts(spec.layers, self.input_shape)
        params, nontrain, recipes = [], [], []
        for k, (layer, full_layer) in enumerate(zip(spec.layers, self.layers, strict=True)):
            layer_recipes: tuple[list[Recipe], list[Recipe]] = ([], [])
            if k in self.forward.dropout_layers:
                # A rate-0 Dropout has no seed generator; its seed is never used.
                params.append([])
                nontrain.append([dropout_seed(layer)])
                recipes.append(layer_recipes)
                continue
            for variables, full_variables, out, slot in (
                (layer.trainable_variables, full_layer.trainable_variables, params, 0),
                (layer.non_trainable_variables, full_layer.non_trainable_variables, nontrain, 1),
            ):
                arrays = []
                for v, fv in zip(variables, full_variables, strict=True):
                    recipe = variable_recipe(
                        tuple(v.shape), tuple(fv.shape), trial_layouts[k], self.full_layouts[k]
                    )
                    layer_recipes[slot].append(recipe)
                    arrays.append(pad(np.asarray(v.value), recipe))
                out.append(arrays)
            recipes.append(layer_recipes)
        opt = self._carried_optimizer(spec, recipes)
        if opt is None:
            opt = [np.asarray(v.value) for v in self.optimizer.variables]
        if self.lr_index is not None:
            opt[self.lr_index] = np.asarray(spec.learning_rate, dtype=opt[self.lr_index].dtype)
        hp: dict[str, Any] = {
            "keep": {str(k): np.float32(p) for k, p in spec.keep.items()},
            "mask": {
                str(k): layout_mask(trial_layouts[k][1], self.full_layouts[k][1])
                for k in sorted(self.forward.mask_layers)
            },
            "reg": {
                f"{k}/{j}": tuple(np.float32(v) for v in spec.regularizers.get((k, j), (0.0, 0.0)))
                for (k, j) in self.forward.linear_regularized
            },
            "opt": {
                name: np.float32(spec.optimizer_floats[name]) for name in self.optimizer_floats
            },
            "sched": {
                name: np.float32(spec.schedule_floats[name]) for name in self.schedule_floats
            },
        }
        return TrialStart(params=params, nontrain=nontrain, opt=opt, hp=hp, recipes=recipes)

    def _carried_optimizer(
        self, spec: TrialSpec, recipes: list[tuple[list[Recipe], list[Recipe]]]
    ) -> list[np.ndarray] | None:
        """The optimizer state of a trial's model that has trained (a model loaded to
        be continued), padded into the template's shapes; ``None`` for a fresh one."""
        source = spec.model.optimizer
        if int(np.asarray(source.iterations.value)) == 0:
            return None
        trainables = [v for layer in spec.layers for v in layer.trainable_variables]
        flat_recipes = [r for trainable, _ in recipes for r in trainable]
        if len(source.variables) != len(self.optimizer.variables) or optimizer_references(
            source, trainables
        ) != list(self.opt_reference):
            return None  # another layout: start the optimizer afresh
        opt = []
        for v, template, ref in zip(
            source.variables, self.optimizer.variables, self.opt_reference, strict=True
        ):
            value = np.asarray(v.value)
            if ref is not None:
                value = pad(value, flat_recipes[ref])
            if value.shape != tuple(template.shape):
                return None
            opt.append(value.astype(np.asarray(template.value).dtype))
        return opt


def optimizer_like(source: Any) -> Any:
    """A fresh, unbuilt optimizer of ``source``'s class and config.

    A learning-rate schedule is shared with ``source`` rather than rebuilt from its
    config, so schedules not registered as Keras serializable work too (the train
    step only swaps its per-trial parameters in while tracing).
    """
    config = source.get_config()
    if isinstance(source._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        config["learning_rate"] = source._learning_rate
    return type(source).from_config(config)


def dropout_seed(layer: keras.layers.Layer) -> np.ndarray:
    """The seed state of a Dropout layer (``[0, 0]`` when it has none)."""
    generator = getattr(layer, "seed_generator", None)
    if generator is None:
        return np.zeros((2,), dtype=np.uint32)
    return np.asarray(generator.state.value)


def loss_reduction(loss: Any) -> str:
    """The reduction of a compiled ``loss`` (strings and functions reduce by batch size)."""
    reduction = getattr(loss, "reduction", None)
    return "sum_over_batch_size" if reduction is None else str(reduction)


def optimizer_references(optimizer: Any, trainables: list) -> list[int | None]:
    """For each optimizer variable, the index of the trainable variable it shadows.

    Keras names slot variables ``{variable.path with / as _}_{slot}``; iteration
    counters and learning rates shadow nothing (``None``).
    """
    names = [v.path.replace("/", "_") for v in trainables]
    out: list[int | None] = []
    for v in optimizer.variables:
        matches = [
            (len(name), j)
            for j, name in enumerate(names)
            if v.name.startswith(name + "_") and tuple(v.shape) == tuple(trainables[j].shape)
        ]
        out.append(max(matches)[1] if matches else None)
    return out
