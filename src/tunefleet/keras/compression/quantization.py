"""Post-training weight quantization through Keras 3's own ``Model.quantize``.

Example:

>>> from tunefleet.keras import QUANTIZATION_MODES
>>> QUANTIZATION_MODES  # the modes quantize() and searches' compress= accept
('int8', 'int4', 'float8')
"""

from __future__ import annotations

import warnings
from typing import Any

import keras

from tunefleet.keras.compression.measure import copy_model, require_built_model
from tunefleet.keras.compression.report import CompressionReport, make_report, measure_model

__all__ = ["QUANTIZATION_MODES", "quantize"]

#: Modes `quantize` accepts (Keras' ``gptq``/``awq`` need a calibration config: call
#: ``model.quantize`` directly for those).
QUANTIZATION_MODES = ("int8", "int4", "float8")

#: Names of the weights Keras quantizes (Dense/EinsumDense kernels, Embedding tables).
_QUANTIZABLE_WEIGHTS = ("kernel", "embeddings", "depthwise_kernel", "pointwise_kernel")

#: Warnings Keras emits while quantizing that `quantize` reports in its own words.
_KERAS_NOISE = (
    r".*does not have a `quantize` method implemented.*",
    r".*__array__ implementation doesn't accept a copy keyword.*",
    r"Invalid quantization mode.*",  # a layer that does not support the mode
)


def _leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if len(list(layer._flatten_layers())) == 1
    ]


def _candidates(model: keras.Model) -> list[keras.layers.Layer]:
    """Leaf layers holding a weight matrix that quantization would shrink."""
    return [
        layer
        for layer in _leaf_layers(model)
        if any(v.name in _QUANTIZABLE_WEIGHTS for v in layer.weights)
    ]


def quantize(
    model: keras.Model,
    mode: str = "int8",
    x: Any = None,
    y: Any = None,
    *,
    strict: bool = False,
    batch_size: int = 128,
) -> tuple[keras.Model, CompressionReport]:
    """Quantize a copy of a trained model's weights with ``keras.Model.quantize``.

    The model is copied (through a ``.keras`` round trip) and the copy quantized,
    so the original stays as it was. What Keras 3.15 does per mode:

    - ``"int8"``: Dense/EinsumDense kernels and Embedding tables stored as int8 with
      per-channel float scales (about 4x smaller weights);
    - ``"int4"``: the same with 4-bit values packed two per byte (about 8x);
    - ``"float8"``: float8 (E4M3/E5M2) matmuls with delayed scaling for Dense and
      EinsumDense; the float32 kernel is kept, so the file does *not* shrink (it
      gains scale variables). It is for speed on float8 hardware, not for size.

    Other layer types (``Conv2D``, recurrent layers...) are not quantized by Keras.
    They are listed in the report's ``details["skipped_layers"]`` and named in a
    warning (or an error with ``strict=True``). The quantized model is for
    inference: predict, evaluate, save and load work (it is recompiled with a fresh
    optimizer of the same configuration, the old state belonging to float weights);
    it is not meant to be trained further.

    Args:
        model: A built, trained ``keras.Model`` (compiled, to be evaluated).
        mode: ``"int8"``, ``"int4"`` or ``"float8"``.
        x: Optional evaluation inputs: the report then holds ``evaluate`` results
            before and after, and the latency of one batch of up to 32 samples.
        y: Evaluation targets.
        strict: Raise instead of warning when some layers with weights cannot be
            quantized in ``mode``.
        batch_size: Batch size for evaluation.

    Returns:
        ``(quantized_model, report)``: a new ``keras.Model`` and a `CompressionReport`.

    Raises:
        ValueError: For an unknown mode, an unbuilt model, or a model none of whose
            layers (or, with ``strict=True``, not all of whose layers) can be
            quantized in ``mode``; the message names the layers.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> from tunefleet.keras import build_mlp, quantize
    >>> model = build_mlp((4,), "multiclass:3", n_neurons=256)
    >>> small, report = quantize(model, "int8", X, y)
    >>> report.bytes_after < report.bytes_before, small is model
    (True, False)
    """
    qmodel, details = quantized_copy(model, mode, strict=strict)
    before = measure_model(model, x, y, batch_size)
    after = measure_model(qmodel, x, y, batch_size)
    return qmodel, make_report(f"quantize:{mode}", before, after, details=details)


def quantized_copy(
    model: keras.Model, mode: str, *, strict: bool = False
) -> tuple[keras.Model, dict[str, Any]]:
    """Check, copy and quantize ``model``: ``(quantized copy, report details)``.

    The work of `quantize` without measurements (also what searches' ``compress=`` does
    to each fold's model); raises and warns as `quantize` documents.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> qmodel, details = quantized_copy(model, "int8")
    >>> qmodel is model, qmodel.layers[0].kernel.dtype
    (False, 'int8')
    """
    if mode not in QUANTIZATION_MODES:
        extra = ""
        if mode in ("gptq", "awq"):
            extra = (
                f" Mode {mode!r} needs calibration data and a config "
                "(keras.quantizers.GPTQConfig / AWQConfig): call model.quantize(config=...) "
                "directly."
            )
        raise ValueError(
            f"quantize: mode={mode!r} is not supported; expected one of {QUANTIZATION_MODES}."
            + extra
        )
    model = require_built_model(model, "quantize")
    candidates = _candidates(model)
    if not candidates:
        raise ValueError(
            f"quantize: the model {model.name!r} has no layer with a weight matrix "
            "(Dense, EinsumDense, Embedding) to quantize."
        )
    qmodel = copy_model(model)
    try:
        with warnings.catch_warnings():
            for pattern in _KERAS_NOISE:
                warnings.filterwarnings("ignore", message=pattern)
            qmodel.quantize(mode)
    except (ValueError, NotImplementedError, TypeError) as exc:
        raise ValueError(
            f"quantize: Keras could not quantize the model {model.name!r} in mode "
            f"{mode!r} on the {keras.backend.backend()} backend: {exc}"
        ) from exc
    # the optimizer's state belongs to the float weights: start a fresh one (same config)
    config = qmodel.get_compile_config() if getattr(qmodel, "compiled", False) else None
    if config:
        qmodel.compile_from_config(config)
    # the copy has the same layers in the same order
    twins = dict(zip(map(id, _leaf_layers(model)), _leaf_layers(qmodel), strict=True))
    skipped = [
        f"{type(layer).__name__} {layer.name!r}"
        for layer in candidates
        if getattr(twins[id(layer)], "quantization_mode", None) != mode
    ]
    if len(skipped) == len(candidates):
        raise ValueError(
            f"quantize: no layer of the model {model.name!r} can be quantized in mode "
            f"{mode!r}: {', '.join(skipped)}. Keras {keras.__version__} quantizes Dense, "
            "EinsumDense and Embedding layers (float8: Dense and EinsumDense only)."
        )
    if skipped:
        message = (
            f"quantize: {len(skipped)} layer(s) cannot be quantized in mode {mode!r} and "
            f"keep float weights: {', '.join(skipped)}."
        )
        if strict:
            raise ValueError(message + " (strict=True)")
        warnings.warn(message, UserWarning, stacklevel=3)
    details = {
        "mode": mode,
        "quantized_layers": [
            f"{type(layer).__name__} {layer.name!r}"
            for layer in candidates
            if f"{type(layer).__name__} {layer.name!r}" not in skipped
        ],
        "skipped_layers": skipped,
        "backend": keras.backend.backend(),
    }
    return qmodel, details
