"""Zero-padding of a narrow trial's weights into its group's widest model, and back.

A group's *template* has, per width layer, the largest width of the group. Each
trial's true-width weights are zero-padded into the template's shapes and its
activations are multiplied by a 0/1 mask after every layer whose channels were
padded, so that padded units never influence the trial's outputs or gradients.

The last axis of a layer's output is described by a *layout*: the tuple of sizes
it is made of. Usually that is one size, ``(channels,)``; after ``Flatten`` of a
``(h, w, c)`` map it is ``(h, w, c)``, so a following Dense kernel's rows are
padded per channel, not at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tunefleet.fleet.introspect import CHANNELWISE_LAYERS

Layout = tuple[int, ...]

_LAYOUT_PRESERVING = CHANNELWISE_LAYERS | {"LayerNormalization", "Softmax"}


@dataclass(frozen=True)
class Recipe:
    """How one variable's true shape sits inside its padded shape.

    Args:
        axes: Per axis of the variable, ``(true_parts, full_parts)``: the sizes that
            axis is made of in the trial and in the template (same length).
    """

    axes: tuple[tuple[Layout, Layout], ...]

    @property
    def true_shape(self) -> tuple[int, ...]:
        return tuple(int(np.prod(t)) for t, _ in self.axes)

    @property
    def full_shape(self) -> tuple[int, ...]:
        return tuple(int(np.prod(f)) for _, f in self.axes)

    @property
    def is_identity(self) -> bool:
        return all(t == f for t, f in self.axes)


def chain_layouts(layers: list, input_shape: tuple) -> list[tuple[Layout, Layout]]:
    """Return ``(input_layout, output_layout)`` for every layer of a chain.

    Args:
        layers: The chain's layers in call order.
        input_shape: The model input shape, batch axis included (``None``).
    """
    shape = tuple(input_shape)
    layout: Layout = (int(shape[-1]),) if len(shape) > 1 else (1,)
    out: list[tuple[Layout, Layout]] = []
    for layer in layers:
        name = type(layer).__name__
        new_shape = tuple(layer.compute_output_shape(shape))
        if name == "Flatten":
            new_layout = tuple(int(d) for d in shape[1:-1]) + layout
        elif name in _LAYOUT_PRESERVING and new_shape[-1] == shape[-1]:
            new_layout = layout
        else:
            new_layout = (int(new_shape[-1]),)
        out.append((layout, new_layout))
        shape, layout = new_shape, new_layout
    return out


def carried_layers(layers: list, input_shape: tuple, sources: Sequence[int]) -> frozenset[int]:
    """Layers whose output layout follows a width of ``sources`` (the sources included).

    The same walk as :func:`chain_layouts`: a layer that keeps its input's channel
    layout (Dropout, BatchNormalization, Flatten, ...) carries the width it was given on;
    one that sets its own (Dense, a convolution, the output) ends it.

    Example:

    >>> import keras
    >>> layers = [keras.layers.Dense(8), keras.layers.Dropout(0.1), keras.layers.Dense(3)]
    >>> sorted(carried_layers(layers, (None, 4), [0]))
    [0, 1]
    """
    shape = tuple(input_shape)
    carried: set[int] = set()
    carrying = False
    for k, layer in enumerate(layers):
        name = type(layer).__name__
        new_shape = tuple(layer.compute_output_shape(shape))
        keeps = name == "Flatten" or (name in _LAYOUT_PRESERVING and new_shape[-1] == shape[-1])
        carrying = k in sources or (carrying and keeps)
        if carrying:
            carried.add(k)
        shape = new_shape
    return frozenset(carried)


def _axis_parts(
    size: int, full: int, candidates: list[tuple[Layout, Layout]]
) -> tuple[Layout, Layout]:
    if size == full:
        return (size,), (full,)
    for true_parts, full_parts in candidates:
        if int(np.prod(true_parts)) == size and int(np.prod(full_parts)) == full:
            return true_parts, full_parts
    raise ValueError(f"cannot place an axis of size {size} inside {full}")


def variable_recipe(
    true_shape: tuple[int, ...],
    full_shape: tuple[int, ...],
    layouts: tuple[Layout, Layout],
    full_layouts: tuple[Layout, Layout],
) -> Recipe:
    """Recipe for a layer variable: last axis follows the output, the one before the input.

    Args:
        true_shape: The variable's shape in the trial's own model.
        full_shape: Its shape in the template.
        layouts: The trial layer's ``(input_layout, output_layout)``.
        full_layouts: The template layer's ``(input_layout, output_layout)``.
    """
    ndim = len(true_shape)
    axes = []
    for a, (size, full) in enumerate(zip(true_shape, full_shape, strict=True)):
        if a == ndim - 1:
            candidates = [(layouts[1], full_layouts[1])]
        elif a == ndim - 2:
            candidates = [(layouts[0], full_layouts[0])]
        else:
            candidates = []
        axes.append(_axis_parts(int(size), int(full), candidates))
    return Recipe(tuple(axes))


def pad(array: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Zero-pad a trial's array into the template shape."""
    if recipe.is_identity:
        return np.asarray(array)
    parts = [d for t, _ in recipe.axes for d in t]
    widths = [(0, f_d - t_d) for t, f in recipe.axes for t_d, f_d in zip(t, f, strict=True)]
    expanded = np.pad(np.asarray(array).reshape(parts), widths)
    return expanded.reshape(recipe.full_shape)


def unpad(array: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Cut a trial's true-shaped array out of a template-shaped one."""
    if recipe.is_identity:
        return np.asarray(array)
    parts = [d for _, f in recipe.axes for d in f]
    index = tuple(slice(0, t_d) for t, _ in recipe.axes for t_d in t)
    return np.asarray(array).reshape(parts)[index].reshape(recipe.true_shape)


def layout_mask(true_layout: Layout, full_layout: Layout) -> np.ndarray:
    """0/1 float mask over the template's last axis marking the trial's real units."""
    ones = np.ones(true_layout, dtype=np.float32)
    widths = [(0, f - t) for t, f in zip(true_layout, full_layout, strict=True)]
    return np.pad(ones, widths).reshape(-1)
