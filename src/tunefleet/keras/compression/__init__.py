"""Model compression for Keras 3: quantization, pruning, distillation, and size trade-offs.

Each compression function works on a copy (or, for distillation, a new student)
and returns ``(new_model, report)`` with a `CompressionReport`. The measurement
helpers (`count_params`, `model_size_bytes`, `compressed_size_bytes`,
`measure_latency`) and `pick_smallest_within` serve accuracy-versus-size searches.

Example:

>>> from tunefleet.keras.compression import pick_smallest_within
>>> records = [{"accuracy": 0.97, "params": 50_000}, {"accuracy": 0.962, "params": 9_000}]
>>> pick_smallest_within(records, tolerance=0.01)  # within one point of the best
{'accuracy': 0.962, 'params': 9000}
"""

from tunefleet.keras.compression.distillation import distill
from tunefleet.keras.compression.measure import (
    compressed_size_bytes,
    count_params,
    measure_latency,
    model_size_bytes,
)
from tunefleet.keras.compression.pruning import MagnitudePruning, PolynomialSparsity, prune
from tunefleet.keras.compression.quantization import QUANTIZATION_MODES, quantize
from tunefleet.keras.compression.report import CompressionReport, compression_table
from tunefleet.tradeoff import pick_smallest_within

__all__ = [
    "QUANTIZATION_MODES",
    "CompressionReport",
    "MagnitudePruning",
    "PolynomialSparsity",
    "compressed_size_bytes",
    "compression_table",
    "count_params",
    "distill",
    "measure_latency",
    "model_size_bytes",
    "pick_smallest_within",
    "prune",
    "quantize",
]
