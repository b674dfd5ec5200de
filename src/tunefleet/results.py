"""Results from a study: scikit-learn's ``cv_results_`` built from stored trials.

The keys, dtypes and ranking rules are scikit-learn's (``mean_fit_time``, ``param_*``
masked arrays, ``split{k}_test_{metric}``, ``rank_test_{metric}`` with failed candidates
ranked last...), plus ``trial_number`` and ``state`` so every row can be traced to its
Optuna trial. Multi-objective searches add, per cost, ``split{k}_test_{cost}``,
``mean_test_{cost}`` and ``std_test_{cost}`` (no rank: lower is better), and
``pareto_optimal``; their Pareto front is a list of :class:`ParetoTrial`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import rankdata

from tunefleet.attrs import CV_ATTR, RESOURCE_ATTR
from tunefleet.space import SearchSpace
from tunefleet.study import counts

logger = logging.getLogger("tunefleet")

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def finished_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that belong in results: finished and counted, by trial number."""
    return sorted((t for t in trials if t.state in FINISHED and counts(t)), key=lambda t: t.number)


def _record(trial: FrozenTrial, metrics: Sequence[str], n_splits: int, error_score: float) -> dict:
    record = trial.user_attrs.get(CV_ATTR)
    if record is not None:
        return record
    fill = float(error_score) if trial.state == TrialState.FAIL else math.nan
    scores = {m: [fill] * n_splits for m in metrics}
    return {
        "test": scores,
        "train": scores,
        "fit_time": [math.nan] * n_splits,
        "score_time": [math.nan] * n_splits,
    }


def _masked_params(candidate_params: Sequence[dict[str, Any]]) -> dict[str, np.ma.MaskedArray]:
    n = len(candidate_params)
    by_name: dict[str, dict[int, Any]] = defaultdict(dict)
    for index, params in enumerate(candidate_params):
        for name, value in params.items():
            by_name[f"param_{name}"][index] = value
    out = {}
    for key, values in by_name.items():
        try:
            arr = np.array(list(values.values()))
        except ValueError:
            dtype = np.dtype(object)
        else:
            dtype = arr.dtype if arr.dtype.kind != "U" and arr.ndim == 1 else np.dtype(object)
        masked = np.ma.MaskedArray(np.empty(n, dtype=dtype), mask=True)
        for index, value in values.items():
            masked[index] = value
        out[key] = masked
    return out


def _rank(means: np.ndarray) -> np.ndarray:
    if np.isnan(means).all():
        return np.ones_like(means, dtype=np.int32)
    filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
    return rankdata(-filled, method="min").astype(np.int32, copy=False)


def _fold_counts(record: dict[str, Any]) -> set[int]:
    lists = [record.get("fit_time", []), record.get("score_time", [])]
    for group in ("test", "train", "cost"):
        lists += list(record.get(group, {}).values())
    return {len(v) for v in lists if isinstance(v, list)}


def _check_fold_counts(
    trials: Sequence[FrozenTrial], records: Sequence[dict[str, Any]], n_splits: int
) -> int:
    """The number of ``split<k>`` columns: ``n_splits``, or more if stored trials have more.

    A study resumed with another ``cv`` (``resume="force"``) holds trials scored on
    different numbers of folds: each keeps its own folds (missing ones are NaN) and its
    mean is over its own folds; a warning names the trials.
    """
    found = {t.number: _fold_counts(r) for t, r in zip(trials, records, strict=True)}
    other = {number: sorted(c) for number, c in found.items() if c - {n_splits}}
    if not other:
        return n_splits
    logger.warning(
        "%d stored trial(s) were scored on another number of cv folds than this search's "
        "%d (trial: folds %s); each one's mean is over its own folds, missing split "
        "columns are NaN.",
        len(other),
        n_splits,
        dict(list(other.items())[:10]),
    )
    return max([n_splits, *(max(c) for c in other.values())])


def _fold_table(rows: Sequence[Any], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(split values padded with NaN to width, means, stds)``, each row over its own folds."""
    array = np.full((len(rows), width), np.nan, dtype=np.float64)
    means = np.full(len(rows), np.nan, dtype=np.float64)
    stds = np.full(len(rows), np.nan, dtype=np.float64)
    for i, row in enumerate(rows):
        values = np.asarray(row, dtype=np.float64).ravel()
        array[i, : len(values)] = values[:width]
        if len(values):
            means[i] = values.mean()
            stds[i] = np.sqrt(((values - means[i]) ** 2).mean())
    return array, means, stds


def cv_results(
    trials: Sequence[FrozenTrial],
    space: SearchSpace,
    *,
    metrics: Sequence[str],
    n_splits: int,
    return_train_score: bool,
    error_score: float | str,
    with_resource: bool = False,
    costs: Sequence[str] = (),
) -> dict[str, Any]:
    """Build ``cv_results_`` from finished trials (see :func:`finished_trials`).

    ``costs`` names the extra objectives of a multi-objective search, whose per-fold
    values are stored like test scores, without a rank.
    """
    fill = math.nan if error_score == "raise" else float(error_score)
    records = [_record(t, metrics, n_splits, fill) for t in trials]
    candidate_params = [space.decode(t.params) for t in trials]
    results: dict[str, Any] = {}
    width = _check_fold_counts(trials, records, n_splits)

    def store(
        key: str, rows: list[list[float]], *, splits: bool = False, rank: bool = False
    ) -> None:
        array, means, stds = _fold_table(rows, width)
        if splits:
            for k in range(width):
                results[f"split{k}_{key}"] = array[:, k]
        results[f"mean_{key}"] = means
        results[f"std_{key}"] = stds
        if rank:
            results[f"rank_{key}"] = _rank(means)

    store("fit_time", [r["fit_time"] for r in records])
    store("score_time", [r["score_time"] for r in records])
    results.update(_masked_params(candidate_params))
    results["params"] = candidate_params
    # a metric missing from a record (a callable's dict of scores, known from the trials
    # that scored): error_score for a failed trial, as scikit-learn fills it, else NaN
    missing = [[fill if t.state == TrialState.FAIL else math.nan] * n_splits for t in trials]
    for m in metrics:
        rows = [r["test"].get(m, gap) for r, gap in zip(records, missing, strict=True)]
        store(f"test_{m}", rows, splits=True, rank=True)
        if return_train_score:
            rows = [r.get("train", {}).get(m, gap) for r, gap in zip(records, missing, strict=True)]
            store(f"train_{m}", rows, splits=True)
    for name in costs:
        rows = [r.get("cost", {}).get(name, [math.nan] * n_splits) for r in records]
        store(f"test_{name}", rows, splits=True)
    results["trial_number"] = np.array([t.number for t in trials], dtype=np.int64)
    results["state"] = np.array([t.state.name for t in trials], dtype=object)
    if with_resource:
        results["n_resources"] = np.array(
            [t.user_attrs.get(RESOURCE_ATTR, -1) for t in trials], dtype=np.int64
        )
    return results


@dataclass(frozen=True)
class ParetoTrial:
    """One Pareto-optimal trial of a multi-objective search (see ``best_trials_``).

    No other completed trial has a score at least as high and every cost at least as
    low, with one of them strictly better.

    Attributes:
        index: its row in ``cv_results_``.
        number: its Optuna trial number.
        params: its parameters, as in ``cv_results_["params"]``.
        score: its mean test score (the primary metric).
        costs: its mean cost per objective, in the order of ``objectives``.
    """

    index: int
    number: int
    params: dict[str, Any]
    score: float
    costs: dict[str, float]

    @property
    def values(self) -> tuple[float, ...]:
        """``(score, *costs)``: the values stored in the Optuna trial."""
        return (self.score, *self.costs.values())


def pareto_trials(
    results: dict[str, Any], front: Sequence[FrozenTrial], *, primary: str, costs: Sequence[str]
) -> list[ParetoTrial]:
    """The Pareto front as :class:`ParetoTrial` rows, best score first; marks
    ``results["pareto_optimal"]``.

    ``front`` is the study's ``best_trials`` (Optuna's non-dominated complete trials).
    """
    numbers = {t.number for t in front}
    results["pareto_optimal"] = np.isin(results["trial_number"], list(numbers))
    rows = [
        ParetoTrial(
            index=int(i),
            number=int(results["trial_number"][i]),
            params=results["params"][i],
            score=float(results[f"mean_test_{primary}"][i]),
            costs={c: float(results[f"mean_test_{c}"][i]) for c in costs},
        )
        for i in np.flatnonzero(results["pareto_optimal"])
    ]
    return sorted(rows, key=lambda t: (-t.score, *t.costs.values(), t.number))
