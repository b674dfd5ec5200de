"""Turn one fleet trial back into an ordinary Keras model of its true widths."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tunefleet.fleet.introspect import layer_chain
from tunefleet.fleet.padding import Recipe, unpad
from tunefleet.keras.initializer_draws import shared_draw_programs


@dataclass
class TrialWeights:
    """A trial's trained state in template shapes, on the host.

    Args:
        params: Per layer, trainable arrays (template shapes).
        nontrain: Per layer, non-trainable arrays (template shapes).
        recipes: Per layer, ``(trainable_recipes, nontrainable_recipes)``.
        dropout_layers: Layers whose only state is a dropout seed.
        opt: Optimizer variables (template shapes), if kept.
        opt_reference: Per optimizer variable, the flat trainable index it shadows.
    """

    params: list[list[np.ndarray]]
    nontrain: list[list[np.ndarray]]
    recipes: list[tuple[list[Recipe], list[Recipe]]]
    dropout_layers: frozenset[int]
    opt: list[np.ndarray] | None = None
    opt_reference: list[int | None] | None = None


def build_trial(build_fn: Callable[..., keras.Model], config: Mapping[str, Any], seed: int):
    """Build a trial's model exactly as the fleet did (same global seeds)."""
    keras.utils.set_random_seed(seed)
    with shared_draw_programs():
        return build_fn(**config)


def export_trial(
    build_fn: Callable[..., keras.Model],
    config: Mapping[str, Any],
    seed: int,
    weights: TrialWeights,
    model: keras.Model | None = None,
) -> keras.Model:
    """Rebuild a trial's own model and load its trained weights into it.

    Args:
        build_fn: The user's model builder.
        config: The trial's config (``build_fn(**config)``).
        seed: The seed the fleet built the trial with.
        weights: The trial's trained state.
        model: A model ``build_fn(**config)`` returned and nobody trained, to load
            into instead of building again (all its state is overwritten).

    Returns:
        A compiled ``keras.Model`` of the trial's true widths with the trained
        weights, BatchNormalization statistics and optimizer state.

    Example:

    >>> import os, tempfile
    >>> from functools import partial
    >>> from sklearn.datasets import load_iris
    >>> from tunefleet.fleet import FleetTrainer
    >>> from tunefleet.fleet.export import export_trial
    >>> from tunefleet.keras import build_mlp
    >>> x, y = load_iris(return_X_y=True)
    >>> build_fn = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)
    >>> result = FleetTrainer(build_fn, seed=0).fit([{"n_neurons": 8}, {"n_neurons": 16}], x, y)
    >>> model = export_trial(build_fn, {"n_neurons": 16}, 0, result.weights(1))
    >>> model.layers[1].units, model.predict(x[:2], verbose=0).shape
    (16, (2, 3))
    >>> model.save(os.path.join(tempfile.mkdtemp(), "best.keras"))
    """
    if model is None:
        model = build_trial(build_fn, config, seed)
    for k, layer in enumerate(layer_chain(model)):
        if k in weights.dropout_layers:
            generator = getattr(layer, "seed_generator", None)
            if generator is not None:
                generator.state.assign(weights.nontrain[k][0])
            continue
        trainable_recipes, nontrain_recipes = weights.recipes[k]
        for variable, array, recipe in zip(
            layer.trainable_variables, weights.params[k], trainable_recipes, strict=True
        ):
            variable.assign(unpad(array, recipe))
        for variable, array, recipe in zip(
            layer.non_trainable_variables, weights.nontrain[k], nontrain_recipes, strict=True
        ):
            variable.assign(unpad(array, recipe))
    _load_optimizer(model, weights)
    return model


def _load_optimizer(model: keras.Model, weights: TrialWeights) -> None:
    """Build the model's optimizer and load the trial's optimizer state into it."""
    if weights.opt is None or weights.opt_reference is None:
        return
    chain = layer_chain(model)
    trainables = [v for layer in chain for v in layer.trainable_variables]
    recipes = [r for k in range(len(chain)) for r in weights.recipes[k][0]]
    optimizer = model.optimizer
    optimizer.build(trainables)
    if len(optimizer.variables) != len(weights.opt):
        return  # unexpected layout: keep a fresh optimizer rather than guess
    values = []
    for variable, array, ref in zip(
        optimizer.variables, weights.opt, weights.opt_reference, strict=True
    ):
        value = np.asarray(array) if ref is None else unpad(array, recipes[ref])
        if tuple(value.shape) != tuple(variable.shape):
            return
        values.append(value)
    for variable, value in zip(optimizer.variables, values, strict=True):
        variable.assign(value)
