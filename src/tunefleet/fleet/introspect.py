"""Read one built Keras model: its layer chain and the values a fleet may vary per trial.

A trial's model is built by the user's ``build_fn`` and then only *read* here. The
reading splits what the model is into two parts:

* a **signature**: everything that decides the compiled program (layer classes and
  their configs, input shape, loss, metrics, optimizer class and structural
  options, a learning-rate schedule's class and structural options). Trials with
  equal signatures can share one compiled program;
* **per-trial values**: learning rate (a float, or a known schedule's numbers) and
  float optimizer hyperparameters, dropout rates, Dense/Conv/Embedding widths, L1/L2
  regularizer strengths and seeds. These become arrays with a leading trial axis.

Nothing here knows about Optuna, scikit-learn or fleets; it is a pure reading.

Example:

>>> from tunefleet.fleet import SUPPORTED_LAYERS
>>> "Dense" in SUPPORTED_LAYERS, "LSTM" in SUPPORTED_LAYERS
(True, False)
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

#: Layers the fleet forward pass understands, by class name (Keras's own classes).
SUPPORTED_LAYERS: frozenset[str] = frozenset(
    {
        "InputLayer",
        "Dense",
        "Dropout",
        "BatchNormalization",
        "LayerNormalization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "Softmax",
        "Flatten",
        "Reshape",
        "Conv1D",
        "Conv2D",
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "Embedding",
        "GaussianNoise",
    }
)

#: Layers whose output width may differ between the trials of one group.
WIDTH_KEYS: dict[str, str] = {
    "Dense": "units",
    "Conv1D": "filters",
    "Conv2D": "filters",
    "Embedding": "output_dim",
}

#: Layers that leave the last (channel) axis alone, channel by channel.
CHANNELWISE_LAYERS: frozenset[str] = frozenset(
    {
        "Dropout",
        "BatchNormalization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GaussianNoise",
    }
)

#: Activations applied element by element (zero-padded units stay independent).
ELEMENTWISE_ACTIVATIONS: frozenset[str] = frozenset(
    {
        "linear",
        "relu",
        "relu6",
        "leaky_relu",
        "elu",
        "selu",
        "celu",
        "gelu",
        "silu",
        "swish",
        "hard_silu",
        "hard_swish",
        "mish",
        "sigmoid",
        "hard_sigmoid",
        "log_sigmoid",
        "tanh",
        "hard_tanh",
        "tanh_shrink",
        "soft_shrink",
        "hard_shrink",
        "softplus",
        "softsign",
        "sparse_plus",
        "squareplus",
        "exponential",
    }
)

#: Optimizer float attributes that are plain arithmetic in ``update_step`` and so may
#: be traced per trial. Anything else in an optimizer's config is structural.
TRACEABLE_OPTIMIZER_FLOATS: dict[str, frozenset[str]] = {
    "Adam": frozenset({"beta_1", "beta_2", "epsilon"}),
    "AdamW": frozenset({"beta_1", "beta_2", "epsilon"}),
    "Adamax": frozenset({"beta_1", "beta_2", "epsilon"}),
    "Lion": frozenset({"beta_1", "beta_2"}),
    "RMSprop": frozenset({"rho", "epsilon"}),
    "Adagrad": frozenset({"epsilon"}),
}

#: Learning-rate schedule parameters that may be traced per trial, by class name.
#: Each listed schedule's ``__call__`` reads these attributes at call time through
#: ``keras.ops`` arithmetic (no Python branching on their values), so a traced
#: value per trial computes each trial's own rate. Only Keras's own classes and
#: tunefleet's (by module and class name, see :func:`_schedule_keys`) are trusted;
#: any other schedule, and anything not listed (``staircase``, ``cycle``,
#: ``CosineDecayRestarts``'s ``t_mul``/``m_mul`` kept as private attributes,
#: ``PiecewiseConstantDecay``'s lists, ``None``), stays structural.
TRACEABLE_SCHEDULE_FLOATS: dict[str, frozenset[str]] = {
    "ExponentialDecay": frozenset({"initial_learning_rate", "decay_steps", "decay_rate"}),
    "InverseTimeDecay": frozenset({"initial_learning_rate", "decay_steps", "decay_rate"}),
    "PolynomialDecay": frozenset(
        {"initial_learning_rate", "decay_steps", "end_learning_rate", "power"}
    ),
    # ``warmup_target`` is tested against ``None`` only: a number may be traced.
    "CosineDecay": frozenset(
        {"initial_learning_rate", "decay_steps", "alpha", "warmup_target", "warmup_steps"}
    ),
    "CosineDecayRestarts": frozenset({"initial_learning_rate", "first_decay_steps", "alpha"}),
    "StepDecay": frozenset({"initial_learning_rate", "drop", "every"}),
    # ``schedule``: a number (constant rate), or a schedule read recursively.
    "Warmup": frozenset({"schedule", "warmup_steps", "start_learning_rate"}),
    "WarmupCosine": frozenset({"learning_rate", "total_steps", "warmup_steps", "alpha"}),
    "OneCycle": frozenset(
        {"max_learning_rate", "total_steps", "pct_start", "div_factor", "final_div_factor"}
    ),
}

#: Value that replaces a per-trial parameter in a signature.
PER_TRIAL = "per-trial"

_TUNEFLEET_SCHEDULES_MODULE = "tunefleet.keras.schedules"
_LINEAR_REGULARIZERS = frozenset({"L1", "L2", "L1L2"})
_RANDOM_LAYERS = frozenset({"Dropout", "GaussianNoise"})


class UnsupportedModelError(ValueError):
    """Raised when a model cannot be trained in a fleet; the message says why.

    Example:

    >>> import keras
    >>> from tunefleet.fleet import FleetTrainer, UnsupportedModelError
    >>> def build_fn():
    ...     return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])  # not compiled
    >>> try:
    ...     FleetTrainer(build_fn).adopt({}, 0, build_fn())
    ... except UnsupportedModelError as error:
    ...     print(error)
    build_fn must return a compiled model (optimizer and loss)
    """


@dataclass
class TrialSpec:
    """What one config's model is, read from the built model.

    Args:
        model: The built, compiled Keras model.
        layers: The model's layers in call order, without ``InputLayer``.
        signature: Hashable description of everything structural.
        widths: Per layer, its output width if it is a width layer, else ``None``.
        keep: Per Dropout layer index, the keep probability ``1 - rate``.
        regularizers: Per ``(layer, variable)`` index, ``(l1, l2)`` strengths.
        learning_rate: The float learning rate, or ``None`` for a schedule.
        optimizer_floats: Traced optimizer hyperparameters, name -> value.
        schedule_floats: Traced learning-rate schedule parameters, path -> value
            (``"decay_steps"``; ``"schedule.decay_steps"`` inside a wrapping
            schedule such as ``Warmup``).
    """

    model: keras.Model
    layers: list[keras.layers.Layer]
    signature: tuple[str, ...]
    widths: tuple[int | None, ...]
    keep: dict[int, float] = field(default_factory=dict)
    regularizers: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)
    learning_rate: float | None = None
    optimizer_floats: dict[str, float] = field(default_factory=dict)
    schedule_floats: dict[str, float] = field(default_factory=dict)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=repr)


def _is_keras_class(layer: Any) -> bool:
    return type(layer).__module__.startswith("keras.")


def layer_chain(model: keras.Model) -> list[keras.layers.Layer]:
    """Return the model's layers in call order, checking that they form a chain.

    Args:
        model: A built ``keras.Sequential`` or functional ``keras.Model``.

    Returns:
        The layers, ``InputLayer`` excluded.

    Raises:
        UnsupportedModelError: for subclassed models, several inputs/outputs,
            branches, nested models or layers the fleet does not know.
    """
    if keras.backend.backend() != "jax":
        raise UnsupportedModelError(
            f"fleet training needs the JAX backend (KERAS_BACKEND=jax); "
            f"Keras is using {keras.backend.backend()!r}"
        )
    if not isinstance(model, keras.Model):
        raise UnsupportedModelError(f"build_fn returned {type(model).__name__}, not a keras.Model")
    is_sequential = isinstance(model, keras.Sequential)
    is_functional = type(model).__name__ == "Functional"
    if not (is_sequential or is_functional):
        raise UnsupportedModelError(
            f"subclassed model {type(model).__name__} is not supported by fleet training; "
            "use keras.Sequential or a functional chain"
        )
    if not model.built:
        raise UnsupportedModelError("the model is not built; give it an Input shape")
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    for layer in layers:
        name = type(layer).__name__
        if isinstance(layer, keras.Model):
            raise UnsupportedModelError(
                f"nested model {layer.name!r} ({name}) is not supported by fleet training"
            )
        if name not in SUPPORTED_LAYERS or not _is_keras_class(layer):
            raise UnsupportedModelError(
                f"layer {layer.name!r} of type {name} is not supported by fleet training "
                f"(supported: {', '.join(sorted(SUPPORTED_LAYERS - {'InputLayer'}))})"
            )
    if is_functional:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise UnsupportedModelError(
                "fleet training supports models with one input and one output"
            )
        previous = model.inputs[0]
        for layer in layers:
            nodes = layer._inbound_nodes
            if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
                raise UnsupportedModelError(
                    f"layer {layer.name!r} is shared or has several inputs; "
                    "fleet training supports simple chains"
                )
            if nodes[0].input_tensors[0] is not previous:
                raise UnsupportedModelError(
                    f"layer {layer.name!r} does not take the previous layer's output; "
                    "fleet training supports simple chains (no branches or skips)"
                )
            previous = nodes[0].output_tensors[0]
        if previous is not model.outputs[0]:
            raise UnsupportedModelError("the model output is not the last layer's output")
    return layers


def _check_layer(layer: keras.layers.Layer) -> None:
    name = type(layer).__name__
    config = layer.get_config()
    dtype = layer.dtype_policy.name
    if dtype != "float32":
        raise UnsupportedModelError(
            f"layer {layer.name!r} uses dtype policy {dtype!r}; fleet training supports float32"
        )
    if config.get("activity_regularizer") is not None:
        raise UnsupportedModelError(
            f"layer {layer.name!r} has an activity_regularizer, not supported by fleet training"
        )
    if name == "Embedding" and config.get("mask_zero"):
        raise UnsupportedModelError(
            f"Embedding {layer.name!r} uses mask_zero=True; masks are not supported"
        )
    if getattr(layer, "lora_enabled", False):
        raise UnsupportedModelError(f"layer {layer.name!r} uses LoRA, not supported")
    if name == "BatchNormalization" and (config.get("renorm") or config.get("synchronized")):
        raise UnsupportedModelError(
            f"BatchNormalization {layer.name!r} uses renorm/synchronized, not supported"
        )


def _sanitize_layer_config(layer: keras.layers.Layer) -> tuple[dict[str, Any], dict]:
    """Split a layer config into its structural part and its regularizer strengths."""
    name = type(layer).__name__
    config = dict(layer.get_config())
    config.pop("name", None)
    config.pop("seed", None)
    if name in WIDTH_KEYS:
        config.pop(WIDTH_KEYS[name], None)
    if name == "Dropout":
        config.pop("rate", None)
    strengths: dict[str, tuple[float, float]] = {}
    for key in list(config):
        if key.endswith("_initializer"):
            # Initial weights come from the trial's own model: any initializer works.
            config.pop(key)
        elif key.endswith("_regularizer") and key != "activity_regularizer":
            reg = config[key]
            if reg is None:
                # No penalty is an L1/L2 penalty of strength 0: it groups with them.
                config[key] = "linear-regularizer"
            elif reg.get("class_name") in _LINEAR_REGULARIZERS and reg.get("module", "").startswith(
                "keras"
            ):
                inner = reg.get("config", {})
                strengths[key] = (float(inner.get("l1", 0.0)), float(inner.get("l2", 0.0)))
                config[key] = "linear-regularizer"
    return config, strengths


def _regularized_variables(layer: keras.layers.Layer) -> dict[int, str]:
    """Map the index of each regularized trainable variable to its config key."""
    out: dict[int, str] = {}
    attribute_of_key = {
        "kernel_regularizer": ("kernel",),
        "bias_regularizer": ("bias",),
        "embeddings_regularizer": ("embeddings",),
        "gamma_regularizer": ("gamma",),
        "beta_regularizer": ("beta",),
    }
    for index, variable in enumerate(layer.trainable_variables):
        if getattr(variable, "regularizer", None) is None:
            continue
        for key, attrs in attribute_of_key.items():
            if any(getattr(layer, a, None) is variable for a in attrs):
                out[index] = key
                break
        else:
            out[index] = "?"
    return out


def activation_name(layer: keras.layers.Layer) -> str | None:
    """Name of a layer's activation function, or ``None`` if it has none."""
    name = type(layer).__name__
    if name in ("ReLU", "LeakyReLU", "ELU"):
        return "relu"  # elementwise
    if name == "Softmax":
        return "softmax"
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    return getattr(fn, "__name__", repr(fn))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _schedule_keys(schedule: Any) -> frozenset[str]:
    """The parameters of ``schedule`` that may be traced per trial (see the table)."""
    cls = type(schedule)
    trusted = cls.__module__.startswith("keras.") or cls.__module__ == _TUNEFLEET_SCHEDULES_MODULE
    return TRACEABLE_SCHEDULE_FLOATS.get(cls.__name__, frozenset()) if trusted else frozenset()


def schedule_parts(schedule: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """Split a learning-rate schedule into its structure and its per-trial floats.

    A traceable parameter (:data:`TRACEABLE_SCHEDULE_FLOATS`) whose config value is
    a number equal to the schedule's attribute of that name becomes a per-trial
    float; a parameter whose attribute is itself a schedule (``Warmup(schedule=...)``)
    is split recursively, its floats keyed ``"<name>.<inner name>"``. Everything
    else (class, bools, lists, ``None``, unknown schedules' numbers) is structure.

    Args:
        schedule: A ``keras.optimizers.schedules.LearningRateSchedule``.

    Returns:
        ``(structure, floats)``: a JSON-ready description in which per-trial values
        read ``"per-trial"``, and the per-trial floats by path.

    Example:

    >>> import keras
    >>> from tunefleet.fleet.introspect import schedule_parts
    >>> schedule_parts(keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9))[1]
    {'decay_rate': 0.9, 'decay_steps': 100.0, 'initial_learning_rate': 0.001}
    """
    config = dict(schedule.get_config())
    floats: dict[str, float] = {}
    for key in sorted(_schedule_keys(schedule) & config.keys()):
        value, attribute = config[key], getattr(schedule, key, None)
        if isinstance(attribute, keras.optimizers.schedules.LearningRateSchedule):
            config[key], inner = schedule_parts(attribute)
            floats.update({f"{key}.{name}": v for name, v in inner.items()})
        elif _is_number(value) and _is_number(attribute) and attribute == value:
            floats[key] = float(value)
            config[key] = PER_TRIAL
    cls = type(schedule)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "config": config}, floats


def _learning_rate_parts(
    optimizer: Any, config: dict[str, Any]
) -> tuple[float | None, dict[str, float]]:
    """Take the learning rate out of an optimizer ``config`` (edited in place).

    Returns:
        ``(learning_rate, schedule_floats)``: the float rate (popped from
        ``config``) or, for a schedule, ``None`` and its per-trial floats (its
        structure replaces the config entry).
    """
    lr = config.get("learning_rate")
    if isinstance(lr, (int, float)):
        config.pop("learning_rate")
        return float(np.asarray(optimizer.learning_rate.value)), {}
    schedule = optimizer._learning_rate
    if not isinstance(lr, dict) or not isinstance(
        schedule, keras.optimizers.schedules.LearningRateSchedule
    ):
        raise UnsupportedModelError(f"learning rate {lr!r} is neither a float nor a schedule")
    config["learning_rate"], floats = schedule_parts(schedule)
    return None, floats


@dataclass
class OptimizerParts:
    """An optimizer split into structure and per-trial values (see :func:`_optimizer_parts`).

    Args:
        signature: The structural description.
        learning_rate: The float learning rate, or ``None`` for a schedule.
        floats: Traced optimizer hyperparameters, name -> value.
        schedule_floats: Traced schedule parameters, path -> value.
    """

    signature: str
    learning_rate: float | None
    floats: dict[str, float]
    schedule_floats: dict[str, float]


def _optimizer_parts(optimizer: Any) -> OptimizerParts:
    """Split an optimizer into a structural signature, learning rate and traced floats."""
    if optimizer is None:
        raise UnsupportedModelError("the model is not compiled (no optimizer)")
    cls = type(optimizer).__name__
    if not type(optimizer).__module__.startswith("keras."):
        raise UnsupportedModelError(
            f"optimizer {cls} is not a Keras optimizer; fleet training supports Keras optimizers"
        )
    if cls == "LossScaleOptimizer":
        raise UnsupportedModelError("LossScaleOptimizer (mixed precision) is not supported")
    config = dict(optimizer.get_config())
    config.pop("name", None)
    learning_rate, schedule_floats = _learning_rate_parts(optimizer, config)
    if config.get("use_ema"):
        raise UnsupportedModelError("optimizer use_ema=True is not supported by fleet training")
    if config.get("gradient_accumulation_steps"):
        raise UnsupportedModelError("gradient_accumulation_steps is not supported")
    floats: dict[str, float] = {}
    for key in TRACEABLE_OPTIMIZER_FLOATS.get(cls, frozenset()):
        value = config.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            floats[key] = float(value)
            config.pop(key)
    wd = config.get("weight_decay")
    if isinstance(wd, (int, float)) and wd is not None:
        floats["weight_decay"] = float(wd)
        config["weight_decay"] = PER_TRIAL
    return OptimizerParts(
        signature=_dumps({"class": cls, "config": config}),
        learning_rate=learning_rate,
        floats=floats,
        schedule_floats=schedule_floats,
    )


def read_trial(model: keras.Model) -> TrialSpec:
    """Read a built, compiled model into a :class:`TrialSpec`.

    Args:
        model: What ``build_fn(**config)`` returned.

    Returns:
        The model's signature and per-trial values.

    Raises:
        UnsupportedModelError: with a message naming what is not supported.

    Example:

    >>> from tunefleet.fleet.introspect import read_trial
    >>> from tunefleet.keras import build_mlp
    >>> spec = read_trial(build_mlp((4,), "multiclass:3", n_hidden=1, n_neurons=32))
    >>> spec.widths                  # Dense(32), its activation, Dense(3)
    (32, None, 3)
    """
    layers = layer_chain(model)
    if getattr(model, "optimizer", None) is None or getattr(model, "_compile_loss", None) is None:
        raise UnsupportedModelError("build_fn must return a compiled model (optimizer and loss)")
    reduction = getattr(model.loss, "reduction", "sum_over_batch_size")
    if reduction in (None, "none"):
        raise UnsupportedModelError("losses with reduction=None are not supported")
    compile_config = model.get_compile_config() or {}
    if compile_config.get("loss_weights") is not None:
        raise UnsupportedModelError("loss_weights are not supported by fleet training")
    if compile_config.get("weighted_metrics"):
        raise UnsupportedModelError("weighted_metrics are not supported by fleet training")
    parts = [
        _dumps({"input_shape": list(model.inputs[0].shape[1:]) if model.inputs else None}),
        _dumps({"input_dtype": str(model.inputs[0].dtype) if model.inputs else None}),
        _dumps(
            {
                "loss": compile_config.get("loss"),
                "metrics": compile_config.get("metrics"),
            }
        ),
    ]
    optimizer = _optimizer_parts(model.optimizer)
    parts.append(optimizer.signature)
    widths: list[int | None] = []
    keep: dict[int, float] = {}
    regs: dict[tuple[int, int], tuple[float, float]] = {}
    for k, layer in enumerate(layers):
        _check_layer(layer)
        name = type(layer).__name__
        config, strengths = _sanitize_layer_config(layer)
        if name in _RANDOM_LAYERS:
            config["training_arg"] = "training" in inspect.signature(layer.call).parameters
        parts.append(_dumps({"class": name, "config": config}))
        widths.append(int(layer.get_config()[WIDTH_KEYS[name]]) if name in WIDTH_KEYS else None)
        if name == "Dropout":
            keep[k] = 1.0 - float(layer.rate)
        for j, key in _regularized_variables(layer).items():
            if key in strengths:
                regs[(k, j)] = strengths[key]
    return TrialSpec(
        model=model,
        layers=layers,
        signature=tuple(parts),
        widths=tuple(widths),
        keep=keep,
        regularizers=regs,
        learning_rate=optimizer.learning_rate,
        optimizer_floats=optimizer.floats,
        schedule_floats=optimizer.schedule_floats,
    )
