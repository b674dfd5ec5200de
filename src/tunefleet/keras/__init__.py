"""Keras 3 faces of tunefleet: scikit-learn wrappers around Keras model-building functions.

Also the training and compression techniques: the LR finder (`lr_find`),
learning-rate schedules, searchable build functions (`build_mlp`, `build_cnn`),
quantization, pruning, distillation and the size measurements they report.
"""

from tunefleet.keras.compression import (
    QUANTIZATION_MODES,
    CompressionReport,
    MagnitudePruning,
    PolynomialSparsity,
    compressed_size_bytes,
    compression_table,
    count_params,
    distill,
    measure_latency,
    model_size_bytes,
    pick_smallest_within,
    prune,
    quantize,
)
from tunefleet.keras.hypermodels import SCHEDULES, build_cnn, build_mlp
from tunefleet.keras.initializer_draws import shared_draw_programs
from tunefleet.keras.lr_finder import LRFinderResult, lr_find
from tunefleet.keras.schedules import OneCycle, StepDecay, Warmup, WarmupCosine
from tunefleet.keras.wrappers import KerasClassifier, KerasRegressor

__all__ = [
    "QUANTIZATION_MODES",
    "SCHEDULES",
    "CompressionReport",
    "KerasClassifier",
    "KerasRegressor",
    "LRFinderResult",
    "MagnitudePruning",
    "OneCycle",
    "PolynomialSparsity",
    "StepDecay",
    "Warmup",
    "WarmupCosine",
    "build_cnn",
    "build_mlp",
    "compressed_size_bytes",
    "compression_table",
    "count_params",
    "distill",
    "lr_find",
    "measure_latency",
    "model_size_bytes",
    "pick_smallest_within",
    "prune",
    "quantize",
    "shared_draw_programs",
]
