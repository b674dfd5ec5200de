"""Stateless forward pass of one trial through a group's template layer chain.

Every layer runs its own Keras ``call`` through ``Layer.stateless_call`` (so the
numerics are Keras's), with three per-trial additions that Keras keeps as Python
floats and so cannot vary under ``jax.vmap``:

* Dropout is re-implemented here with the trial's keep probability as an array,
  drawing its mask exactly as ``keras.random.dropout`` does on JAX (same seed
  state, same increment), so a fleet trial sees the masks its solo fit would;
* outputs of width-padded layers are multiplied by the trial's 0/1 unit mask;
* L1/L2 weight penalties use the trial's strengths.

All functions here act on a single trial; the trainer ``jax.vmap``s them.
"""

from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import keras
from keras import ops

from tunefleet.fleet import dropout

Array = Any
LayerState = list[list[Array]]


@dataclass
class ForwardProgram:
    """A group's template chain plus which layers get per-trial treatment.

    Args:
        layers: The template's layers in call order.
        dropout_layers: Indices of Dropout layers (per-trial keep probability).
        mask_layers: Indices of layers whose output is multiplied by a unit mask.
        linear_regularized: ``(layer, variable)`` indices with per-trial L1/L2.
        fixed_regularized: ``(layer, variable)`` indices with another regularizer,
            identical across the group and applied as is.
        patch_convs: Conv layers run as patches @ kernel (see ``conv_as_matmul``).
    """

    layers: list[keras.layers.Layer]
    dropout_layers: frozenset[int] = frozenset()
    mask_layers: frozenset[int] = frozenset()
    linear_regularized: tuple[tuple[int, int], ...] = ()
    fixed_regularized: tuple[tuple[int, int], ...] = ()
    patch_convs: frozenset[int] = frozenset()
    _training_arg: list[bool] = field(default_factory=list)
    _batch_norm: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        self._training_arg = [
            "training" in inspect.signature(layer.call).parameters for layer in self.layers
        ]
        self._batch_norm = frozenset(
            k for k, layer in enumerate(self.layers) if type(layer).__name__ == "BatchNormalization"
        )

    def __call__(
        self,
        params: LayerState,
        nontrain: LayerState,
        hp: dict[str, Any],
        x: Array,
        training: bool,
        sample_mask: Array | None = None,
    ) -> tuple[Array, LayerState]:
        """Run one trial's forward pass.

        Args:
            params: Per layer, the trial's trainable values (template shapes).
            nontrain: Per layer, its non-trainable values (BN statistics, seeds).
            hp: The trial's per-trial values (``"keep"``, ``"mask"``, ...).
            x: A batch of inputs, shared by all trials.
            training: Whether to run in training mode.
            sample_mask: Optional 0/1 weight per batch row; 0 rows (padding) are
                left out of BatchNormalization's batch statistics.

        Returns:
            ``(y_pred, new_nontrain)``.
        """
        draws = self._dropout_draws(nontrain, hp, x) if training else {}
        h = x
        new_nontrain: LayerState = []
        for k, layer in enumerate(self.layers):
            if k in self.dropout_layers:
                state = list(nontrain[k])
                if training:
                    h = dropout.apply(h, draws[k], hp["keep"][str(k)])
                    state[0] = dropout.advance(state[0])
                new_nontrain.append(state)
            else:
                kwargs: dict[str, Any] = {"training": training} if self._training_arg[k] else {}
                if sample_mask is not None and k in self._batch_norm:
                    mask = sample_mask.reshape(sample_mask.shape + (1,) * (h.ndim - 2)) > 0
                    kwargs["mask"] = jnp.broadcast_to(mask, h.shape[:-1])
                if k in self.patch_convs:
                    h, updated = _conv_as_matmul(layer, params[k], h), nontrain[k]
                else:
                    h, updated = layer.stateless_call(params[k], nontrain[k], h, **kwargs)
                new_nontrain.append(list(updated))
            if k in self.mask_layers:
                h = h * hp["mask"][str(k)].astype(h.dtype)
        return h, new_nontrain

    def _dropout_draws(self, nontrain: LayerState, hp: dict[str, Any], x: Array) -> dict:
        """Uniform draws of every Dropout layer of this step, in one threefry call."""
        if not self.dropout_layers:
            return {}
        shape = tuple(x.shape)
        requests, order = [], []
        for k, layer in enumerate(self.layers):
            if k in self.dropout_layers:
                if layer.noise_shape is None:
                    units = hp["mask"][str(k)] if k in self.mask_layers else None
                    draw_shape = shape
                else:  # broadcast noise: drawn at the padded noise shape
                    units = None
                    draw_shape = tuple(
                        shape[i] if d is None else d for i, d in enumerate(layer.noise_shape)
                    )
                requests.append((nontrain[k][0], dropout.counters(draw_shape, units)))
                order.append(k)
            shape = tuple(layer.compute_output_shape(shape))
        return dict(zip(order, dropout.uniforms(requests), strict=True))

    def regularization(self, params: LayerState, hp: dict[str, Any]) -> list[Array]:
        """Weight penalties of one trial, one scalar per regularized variable."""
        losses = []
        for k, j in sorted(self.linear_regularized + self.fixed_regularized):
            value = params[k][j]
            if (k, j) in self.linear_regularized:
                l1, l2 = hp["reg"][f"{k}/{j}"]
                losses.append(l1 * ops.sum(ops.absolute(value)) + l2 * ops.sum(ops.square(value)))
            else:
                regularizer = self.layers[k].trainable_variables[j].regularizer
                losses.append(ops.sum(regularizer(value)))
        return losses


def conv_as_matmul_ok(layer: keras.layers.Layer) -> bool:
    """Whether a Conv layer can run as extract-patches + matmul (same result as Keras)."""
    return (
        type(layer).__name__ in ("Conv1D", "Conv2D")
        and layer.data_format == "channels_last"
        and layer.padding in ("same", "valid")
        and getattr(layer, "groups", 1) == 1
        and not getattr(layer, "lora_enabled", False)
    )


def _conv_as_matmul(layer: keras.layers.Layer, params: list[Array], x: Array) -> Array:
    """A Keras Conv layer's ``call`` as shifted-window patches @ kernel.

    Under ``jax.vmap`` over trials, a convolution whose input and kernel both carry
    the trial axis becomes a grouped convolution, which XLA runs slowly on CPU; as
    patches @ kernel it is a batched matrix product. The patches are gathered by
    slicing the padded input once per kernel offset (data movement only; the
    identity-kernel convolution of ``lax.conv_general_dilated_patches`` would cost
    ``kernel_size * in_channels`` times more FLOPs than the layer itself).
    """
    kernel = params[0]
    rank = kernel.ndim - 2
    sizes = tuple(kernel.shape[:rank])
    strides = tuple(layer.strides)
    dilation = tuple(layer.dilation_rate)
    spatial = tuple(x.shape[1 : 1 + rank])
    window = tuple((k - 1) * d + 1 for k, d in zip(sizes, dilation, strict=True))
    pads = jax.lax.padtype_to_pads(spatial, window, strides, layer.padding.upper())
    padded = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    out_sizes = tuple(
        (n + lo + hi - w) // s + 1
        for n, (lo, hi), w, s in zip(spatial, pads, window, strides, strict=True)
    )
    windows = []
    for offset in itertools.product(*(range(k) for k in sizes)):
        start = (0, *(o * d for o, d in zip(offset, dilation, strict=True)), 0)
        limit = (
            padded.shape[0],
            *(
                st + (n - 1) * s + 1
                for st, n, s in zip(start[1:-1], out_sizes, strides, strict=True)
            ),
            padded.shape[-1],
        )
        windows.append(jax.lax.slice(padded, start, limit, (1, *strides, 1)))
    patches = jnp.stack(windows, axis=-2)  # (..., prod(kernel_size), in_channels)
    patches = patches.reshape(*patches.shape[:-2], -1)
    out = jnp.einsum("...p,pc->...c", patches, kernel.reshape(-1, kernel.shape[-1]))
    if layer.use_bias:
        out = out + params[1]
    if layer.activation is not None:
        out = layer.activation(out)
    return out
