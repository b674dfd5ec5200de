"""`CompressionReport`: what a compression step changed, and a table of several."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import keras

from tunefleet.keras.compression.measure import (
    count_params,
    evaluate_metrics,
    gzip_size,
    keras_file_bytes,
    latency_batch,
    measure_latency,
)

__all__ = ["CompressionReport", "compression_table"]


@dataclass
class CompressionReport:
    """Sizes, scores and latency of a model before and after one compression step.

    Bytes are those of the ``.keras`` file without optimizer state
    (`model_size_bytes`); gzip bytes the same file compressed (`compressed_size_bytes`).
    Metrics are ``model.evaluate`` on the data given to the compression function
    (empty when none was given); latency the median seconds to predict one batch of
    up to 32 of those samples (None without data).

    Args:
        method: What was done, e.g. ``"quantize:int8"``, ``"prune:0.80"``, ``"distill"``.
        params_before: `count_params` of the original model.
        params_after: `count_params` of the new model.
        bytes_before: `model_size_bytes` of the original model.
        bytes_after: `model_size_bytes` of the new model.
        gzip_bytes_before: `compressed_size_bytes` of the original model.
        gzip_bytes_after: `compressed_size_bytes` of the new model.
        metrics_before: ``evaluate`` results of the original (teacher) model.
        metrics_after: ``evaluate`` results of the new model.
        latency_before: Seconds per batch of the original model.
        latency_after: Seconds per batch of the new model.
        sparsity: Share of exactly-zero entries in the pruned kernels (pruning only).
        details: Method-specific extras (per-layer sparsity, skipped layers,
            baseline scores...).

    Example:

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> from tunefleet.keras import build_mlp, quantize
    >>> model = build_mlp((4,), "multiclass:3", n_neurons=256)
    >>> new_model, report = quantize(model, "int8", X, y)
    >>> report.method, report.bytes_after < report.bytes_before, sorted(report.metrics_after)
    ('quantize:int8', True, ['accuracy', 'loss'])
    """

    method: str
    params_before: int
    params_after: int
    bytes_before: int
    bytes_after: int
    gzip_bytes_before: int
    gzip_bytes_after: int
    metrics_before: dict[str, float] = field(default_factory=dict)
    metrics_after: dict[str, float] = field(default_factory=dict)
    latency_before: float | None = None
    latency_after: float | None = None
    sparsity: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy_before(self) -> float | None:
        """The original model's ``accuracy`` metric, if it has one."""
        return self.metrics_before.get("accuracy")

    @property
    def accuracy_after(self) -> float | None:
        """The new model's ``accuracy`` metric, if it has one."""
        return self.metrics_after.get("accuracy")

    @property
    def loss_before(self) -> float | None:
        """The original model's loss on the data."""
        return self.metrics_before.get("loss")

    @property
    def loss_after(self) -> float | None:
        """The new model's loss on the data."""
        return self.metrics_after.get("loss")

    @property
    def size_ratio(self) -> float:
        """``bytes_after / bytes_before``."""
        return self.bytes_after / self.bytes_before

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dict (JSON-ready).

        Returns:
            The fields, plus ``size_ratio``.
        """
        out = asdict(self)
        out["size_ratio"] = self.size_ratio
        return out

    def __str__(self) -> str:
        parts = [
            f"{self.method}: {self.params_before} -> {self.params_after} params",
            f"{self.bytes_before} -> {self.bytes_after} bytes ({self.size_ratio:.2f}x)",
            f"gzip {self.gzip_bytes_before} -> {self.gzip_bytes_after} bytes",
        ]
        name = _score_name(self.metrics_after)
        if name is not None and name in self.metrics_before:
            parts.append(
                f"{name} {self.metrics_before[name]:.4f} -> {self.metrics_after[name]:.4f}"
            )
        if self.sparsity is not None:
            parts.append(f"sparsity {self.sparsity:.3f}")
        return ", ".join(parts)


def _score_name(metrics: dict[str, float]) -> str | None:
    for name in ("accuracy", "compile_metrics"):
        if name in metrics:
            return name
    others = [k for k in metrics if k != "loss"]
    if others:
        return others[0]
    return "loss" if "loss" in metrics else None


def measure_model(model: keras.Model, x: Any, y: Any, batch_size: int) -> dict[str, Any]:
    """Everything a report records about one model.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> sorted(measure_model(model, None, None, batch_size=128))
    ['bytes', 'gzip_bytes', 'latency', 'metrics', 'params']
    """
    batch = latency_batch(x)
    saved = keras_file_bytes(model, include_optimizer=False)
    return {
        "params": count_params(model),
        "bytes": len(saved),
        "gzip_bytes": gzip_size(saved),
        "metrics": evaluate_metrics(model, x, y, batch_size),
        "latency": None if batch is None else measure_latency(model, batch, repeats=10),
    }


def make_report(
    method: str,
    before: dict[str, Any],
    after: dict[str, Any],
    sparsity: float | None = None,
    details: dict[str, Any] | None = None,
) -> CompressionReport:
    """The `CompressionReport` of one step from the measurements before and after it.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> before = measure_model(model, None, None, batch_size=128)
    >>> report = make_report("identity", before, before)
    >>> report.method, report.params_before == report.params_after == 15
    ('identity', True)
    """
    return CompressionReport(
        method=method,
        params_before=before["params"],
        params_after=after["params"],
        bytes_before=before["bytes"],
        bytes_after=after["bytes"],
        gzip_bytes_before=before["gzip_bytes"],
        gzip_bytes_after=after["gzip_bytes"],
        metrics_before=before["metrics"],
        metrics_after=after["metrics"],
        latency_before=before["latency"],
        latency_after=after["latency"],
        sparsity=sparsity,
        details=dict(details or {}),
    )


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def compression_table(reports: Sequence[CompressionReport], original: str = "original") -> str:
    """A plain-text table: the original model, then the result of each report.

    The first row comes from the first report's "before" figures; every report
    adds a row with its "after" figures. Reports measured on different data are
    not comparable; give every compression function the same evaluation data.

    Args:
        reports: Reports from `quantize`, `prune`, `distill`.
        original: Label of the first row.

    Returns:
        The table as a string (columns: model, params, sparsity, bytes, gzip bytes,
        accuracy or else the first metric, loss, latency in ms).

    Example:

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> from tunefleet.keras import build_mlp, compression_table, quantize
    >>> model = build_mlp((4,), "multiclass:3", n_neurons=256)
    >>> table = compression_table([quantize(model, "int8", X, y)[1], quantize(model, "int4", X, y)[1]])
    >>> table.splitlines()[0].split()[:3]
    ['model', 'params', 'sparsity']
    >>> [row.split()[0] for row in table.splitlines()[2:]]
    ['original', 'quantize:int8', 'quantize:int4']
    """
    if not reports:
        raise ValueError("compression_table: reports is empty.")
    first = reports[0]
    score = _score_name(first.metrics_before) or _score_name(first.metrics_after) or "score"
    rows = [
        (
            original,
            first.params_before,
            None,
            first.bytes_before,
            first.gzip_bytes_before,
            first.metrics_before.get(score),
            first.metrics_before.get("loss"),
            first.latency_before,
        )
    ]
    for r in reports:
        rows.append(
            (
                r.method,
                r.params_after,
                r.sparsity,
                r.bytes_after,
                r.gzip_bytes_after,
                r.metrics_after.get(score),
                r.metrics_after.get("loss"),
                r.latency_after,
            )
        )
    header = ("model", "params", "sparsity", "bytes", "gzip bytes", score, "loss", "latency ms")
    cells = [header] + [
        (
            name,
            _fmt(params, "d"),
            _fmt(sparsity, ".2f"),
            _fmt(size, ",d"),
            _fmt(gz, ",d"),
            _fmt(sc, ".4f"),
            _fmt(loss, ".4f"),
            _fmt(None if lat is None else lat * 1000, ".2f"),
        )
        for name, params, sparsity, size, gz, sc, loss, lat in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
