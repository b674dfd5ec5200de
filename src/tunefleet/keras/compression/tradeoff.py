"""Choosing among models by accuracy and size: the smallest one that is nearly the best."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["pick_smallest_within"]

_MISSING = object()


def _lookup(record: Any, key: str) -> Any:
    """``record[key]`` for a mapping; for an Optuna trial its user attribute, param or value."""
    if isinstance(record, Mapping):
        return record.get(key, _MISSING)
    user_attrs = getattr(record, "user_attrs", None)
    if isinstance(user_attrs, Mapping) and key in user_attrs:
        return user_attrs[key]
    params = getattr(record, "params", None)
    if isinstance(params, Mapping) and key in params:
        return params[key]
    try:  # e.g. FrozenTrial.value, which raises for multi-objective trials
        return getattr(record, key, _MISSING)
    except Exception:
        return _MISSING


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def pick_smallest_within(
    records: Iterable[Any],
    tolerance: float,
    *,
    metric: str = "accuracy",
    size: str = "params",
    higher_is_better: bool = True,
) -> Any:
    """Return the smallest model whose score is within ``tolerance`` of the best score.

    The rule: let ``best`` be the best ``metric`` over the records (the highest, or
    the lowest with ``higher_is_better=False``). The eligible records are those
    whose metric is at least ``best - tolerance`` (at most ``best + tolerance``).
    Among them, the one with the smallest ``size`` wins; ties go to the better
    metric, then to the earlier record. ``tolerance`` is in the metric's own units:
    for an accuracy in [0, 1], ``0.01`` means one percentage point. Records whose
    metric or size is missing, None or not finite (failed trials) are ignored.

    Args:
        records: Dicts such as ``{"accuracy": 0.97, "params": 12810, ...}``, or
            Optuna ``FrozenTrial`` objects (keys looked up in ``user_attrs``, then
            ``params``; ``"value"`` is the trial's value).
        tolerance: How much worse than the best an eligible record may be (>= 0).
        metric: Key of the score.
        size: Key of the size (parameters, bytes, latency...).
        higher_is_better: Whether a higher ``metric`` is better.

    Returns:
        The chosen record itself.

    Raises:
        ValueError: If ``tolerance`` is negative or no record has both a finite
            ``metric`` and a finite ``size``.

    Example:

    >>> from tunefleet.keras import pick_smallest_within
    >>> records = [{"accuracy": 0.97, "params": 50_000}, {"accuracy": 0.962, "params": 9_000},
    ...            {"accuracy": 0.90, "params": 1_000}]
    >>> pick_smallest_within(records, tolerance=0.01)
    {'accuracy': 0.962, 'params': 9000}
    """
    tol = _number(tolerance)
    if tol is None or tol < 0:
        raise ValueError(
            f"pick_smallest_within: tolerance must be a finite number >= 0, got {tolerance!r}."
        )
    usable: list[tuple[int, float, float, Any]] = []
    for position, record in enumerate(records):
        score = _number(_lookup(record, metric))
        footprint = _number(_lookup(record, size))
        if score is not None and footprint is not None:
            usable.append((position, score, footprint, record))
    if not usable:
        raise ValueError(
            f"pick_smallest_within: no record has both a finite {metric!r} and a finite {size!r}."
        )
    sign = 1.0 if higher_is_better else -1.0
    best = max(sign * score for _, score, _, _ in usable)
    slack = tol + 1e-12 * max(1.0, abs(best))  # so that 0.97 - 0.01 admits 0.96
    eligible = [entry for entry in usable if sign * entry[1] >= best - slack]
    chosen = min(eligible, key=lambda e: (e[2], -sign * e[1], e[0]))
    return chosen[3]
