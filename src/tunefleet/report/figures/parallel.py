"""Parallel coordinates: the parameters of complete trials, one line each, colored by score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go

from tunefleet.records import ParamInfo, StudyData, TrialRecord, as_study_data
from tunefleet.report.figures.style import apply_layout, ranked_params, short_label


def _shared_params(data: StudyData, trials: Sequence[TrialRecord]) -> list[ParamInfo]:
    common = [p for p in data.params if all(p.name in t.params for t in trials)]
    if common:
        return common
    keysets: dict[frozenset[str], int] = {}
    for t in trials:
        key = frozenset(t.params)
        keysets[key] = keysets.get(key, 0) + 1
    if not keysets:
        return []
    chosen = max(keysets.items(), key=lambda kv: kv[1])[0]
    return [p for p in data.params if p.name in chosen]


def _axis_values(param: ParamInfo, values: Sequence[Any]) -> dict[str, Any]:
    """A parcoords dimension (values, ticks) for a parameter."""
    if param.kind == "categorical":
        labels = list(param.choices or ())
        for v in values:
            if str(v) not in labels:
                labels.append(str(v))
        index = {label: i for i, label in enumerate(labels)}
        return {
            "label": short_label(param.name),
            "values": [index[str(v)] for v in values],
            "tickvals": list(range(len(labels))),
            "ticktext": [short_label(label, 16) for label in labels],
            "range": [0, max(len(labels) - 1, 1)],
        }
    numbers = np.asarray(values, dtype=float)
    if param.log and numbers.size and (numbers > 0).all():
        logs = np.log10(numbers)
        lo, hi = math.floor(logs.min()), math.ceil(logs.max())
        ticks = list(range(lo, hi + 1))
        return {
            "label": f"{short_label(param.name)} (log)",
            "values": logs,
            "tickvals": ticks,
            "ticktext": [f"1e{t}" for t in ticks],
        }
    return {"label": short_label(param.name), "values": numbers}


def parallel_coordinates_figure(
    data: StudyData | optuna.Study,
    *,
    params: Sequence[str] | None = None,
    importances: dict[str, dict[str, float]] | None = None,
    max_trials: int | None = 1000,
) -> go.Figure | None:
    """Parallel coordinates over the parameters of complete trials, colored by score.

    Above ``max_trials`` complete trials, the best half of that number and a seeded
    random sample of the others are drawn (the title says so): tens of thousands of
    lines neither read well nor draw fast.

    Args:
        data: the study.
        params: the parameters to show, in order (default: all, most important first
            when ``importances`` are given). Trials that lack one of them are left out.
        importances: as returned by :func:`~tunefleet.report.importances.param_importances`,
            to order the axes.
        max_trials: the most lines to draw (``None``: all).

    Returns:
        The figure, or ``None`` when no complete trial has parameters.

    Example:

    >>> import optuna
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> def objective(trial):
    ...     return trial.suggest_float("x", -1, 1) ** 2 + trial.suggest_float("y", 0, 1)
    >>> study.optimize(objective, n_trials=12)
    >>> fig = parallel_coordinates_figure(study, params=["x", "y"])
    >>> fig.layout.title.text, [d.label for d in fig.data[0].dimensions]
    ('Parallel coordinates (12 complete trials)', ['score', 'x', 'y'])
    """
    data = as_study_data(data)
    complete = data.complete
    if not complete or not data.params:
        return None
    shown = _shared_params(data, complete)
    if params is not None:
        by_name = {p.name: p for p in data.params}
        shown = [by_name[n] for n in params if n in by_name]
    else:
        order = ranked_params(data, importances)
        shown = sorted(shown, key=lambda p: order.index(p.name))
    if not shown:
        return None
    trials = [t for t in complete if all(p.name in t.params for p in shown)]
    n_all = len(trials)
    sampled = ""
    if max_trials is not None and n_all > max_trials:
        trials = _best_and_sample(data, trials, max_trials)
        sampled = f"{len(trials)} of {n_all} complete trials: the best {max_trials // 2} and a random sample"
    scores = np.asarray([t.values[0] for t in trials], dtype=float)
    dimensions = [{"label": short_label(data.objective_names[0]), "values": scores}]
    dimensions += [_axis_values(p, [t.params[p.name] for t in trials]) for p in shown]
    maximize = data.directions[0] == "maximize"
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": scores,
                "colorscale": "Viridis",
                "reversescale": not maximize,
                "showscale": True,
                "colorbar": {"title": {"text": short_label(data.objective_names[0], 12)}},
            },
            dimensions=dimensions,
        )
    )
    return apply_layout(fig, f"Parallel coordinates ({sampled or f'{n_all} complete trials'})")


def _best_and_sample(
    data: StudyData, trials: Sequence[TrialRecord], n: int, seed: int = 0
) -> list[TrialRecord]:
    """The best ``n // 2`` trials and a seeded random sample of the others, by number."""
    import random

    sign = -1.0 if data.directions[0] == "maximize" else 1.0
    ranked = sorted(trials, key=lambda t: sign * t.values[0])
    best = ranked[: n // 2]
    rest = random.Random(seed).sample(ranked[n // 2 :], n - len(best))
    return sorted([*best, *rest], key=lambda t: t.number)
