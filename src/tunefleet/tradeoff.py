"""Choosing among models by accuracy and size: the smallest one that is nearly the best.

`pick_smallest_within` is the rule, on any records (dicts, Optuna trials);
`smallest_within` applies it to a search's ``cv_results_`` as a ``refit=`` callable.
Nothing here imports Keras.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SmallestWithin", "pick_smallest_within", "smallest_within"]

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


@dataclass(frozen=True)
class SmallestWithin:
    """A ``refit=`` callable: the smallest trial within ``points`` of the best score.

    Made by `smallest_within`, which checks its arguments. Called with a search's
    ``cv_results_``, it returns the index of the chosen row (scikit-learn's refit
    protocol), by the rule of `pick_smallest_within` on the columns
    ``mean_test_<metric>`` and ``mean_test_<cost>``.

    Args:
        points: How much lower than the best mean score a trial may be (>= 0).
        cost: The objective to minimize among the eligible trials.
        metric: The scorer whose mean test score is compared.

    Example:

    >>> from tunefleet.tradeoff import SmallestWithin
    >>> refit = SmallestWithin(points=0.01, cost="n_params")
    >>> refit({"mean_test_score": [0.97, 0.962, 0.90],
    ...        "mean_test_n_params": [50_000, 9_000, 1_000]})   # index of the chosen row
    1
    """

    points: float
    cost: str = "n_params"
    metric: str = "score"

    def __call__(self, cv_results: Mapping[str, Any]) -> int:
        columns = {}
        for role, name in (("metric", self.metric), ("cost", self.cost)):
            key = f"mean_test_{name}"
            if key not in cv_results:
                present = sorted(
                    k.removeprefix("mean_test_") for k in cv_results if k.startswith("mean_test_")
                )
                raise ValueError(
                    f"smallest_within: {role}={name!r} has no column {key!r} in cv_results_; "
                    f"the columns there are for {present} (costs come from the search's "
                    "objectives=)."
                )
            columns[role] = cv_results[key]
        records = [
            {"index": index, "score": score, "cost": cost}
            for index, (score, cost) in enumerate(
                zip(columns["metric"], columns["cost"], strict=True)
            )
        ]
        return int(pick_smallest_within(records, self.points, metric="score", size="cost")["index"])


def smallest_within(
    points: float, cost: str = "n_params", *, metric: str = "score"
) -> SmallestWithin:
    """Refit the smallest model whose score is within ``points`` of the best one.

    Returns a callable for the ``refit=`` argument of tunefleet's searches (or any
    scikit-learn search whose ``cv_results_`` has the columns): among the trials whose
    mean test score is at least ``best - points``, it picks the one with the smallest
    mean ``cost``; ties go to the higher score, then to the earlier trial. ``points``
    is absolute, in the score's units: ``0.01`` is one point of accuracy. Failed and
    pruned trials (NaN) are skipped. The costs are the search's ``objectives``
    (``"n_params"``, ``"size_bytes"``, ``"latency"`` or a callable's name), whose fold
    means are the ``mean_test_<cost>`` columns of ``cv_results_``.

    As with any refit callable, ``best_score_`` is not set; ``best_index_``,
    ``best_params_`` and ``best_estimator_`` are the chosen trial's.

    Args:
        points: The tolerance below the best mean score (a finite number >= 0).
        cost: The objective to minimize among the eligible trials.
        metric: The scorer compared: ``"score"`` for a single ``scoring``, else one of
            the names of a multi-metric ``scoring``.

    Returns:
        A `SmallestWithin` callable.

    Raises:
        ValueError: If ``points`` is negative or not a finite number, or ``cost`` /
            ``metric`` is not a non-empty string. A search raises before any trial when
            ``cost`` is not among its objectives.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> import tunefleet
    >>> X, y = load_iris(return_X_y=True)
    >>> grid = {"max_depth": [1, 2, 3, 4, 8]}
    >>> tree = DecisionTreeClassifier(random_state=0)
    >>> tunefleet.GridSearchCV(tree, grid).fit(X, y).best_params_   # the best score
    {'max_depth': 4}
    >>> search = tunefleet.GridSearchCV(
    ...     tree, grid, objectives=["n_params"], refit=tunefleet.smallest_within(0.01, "n_params"),
    ... ).fit(X, y)
    >>> search.best_params_   # the smallest tree within one point of the best accuracy
    {'max_depth': 3}

    With a Keras model (``tunefleet.keras.KerasClassifier``), ``"n_params"`` counts
    its weights.
    """
    value = _number(points)
    if value is None or value < 0:
        raise ValueError(
            f"smallest_within: points must be a finite number >= 0 (0.01 is one point of "
            f"accuracy), got {points!r}."
        )
    for name, given in (("cost", cost), ("metric", metric)):
        if not isinstance(given, str) or not given:
            raise ValueError(f"smallest_within: {name} must be a non-empty string, got {given!r}.")
    return SmallestWithin(value, cost, metric)
