"""The optimization history: score per trial and the best so far, per objective."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tunefleet.records import StudyData, as_study_data
from tunefleet.report.figures.style import (
    COLORS,
    HEIGHT,
    HOVER_PARAMS_MAX_TRIALS,
    apply_layout,
    hover_text,
    scatter_type,
)


def history_figure(data: StudyData | optuna.Study) -> go.Figure | None:
    """Score per trial, the best-so-far line, and pruned trials at their last reported value.

    One panel per objective for multi-objective studies (each with its own best-so-far).

    Args:
        data: the study (a :class:`StudyData` or an ``optuna.Study``).

    Returns:
        The figure, or ``None`` when no trial completed or was pruned with a value.

    Example:

    >>> import optuna
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> def objective(trial):
    ...     return trial.suggest_float("x", -1, 1) ** 2 + trial.suggest_float("y", 0, 1)
    >>> study.optimize(objective, n_trials=12)
    >>> fig = history_figure(study)  # in a notebook: fig.show()
    >>> fig.layout.title.text, [trace.name for trace in fig.data]
    ('Optimization history', ['complete', 'best so far'])
    """
    data = as_study_data(data)
    complete = data.complete
    pruned = [t for t in data.pruned if t.intermediate]
    if not complete and not pruned:
        return None
    n_obj = len(data.directions)
    fig = make_subplots(
        rows=n_obj,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=data.objective_names if n_obj > 1 else None,
    )
    with_params = len(data.trials) <= HOVER_PARAMS_MAX_TRIALS
    trace = scatter_type(len(complete) + len(pruned))
    for k in range(n_obj):
        row = k + 1
        first = k == 0
        xs = [t.number for t in complete]
        ys = [t.values[k] for t in complete]
        hover: dict[str, Any] = {"hovertemplate": "trial %{x}<br>value=%{y:.6g}<extra></extra>"}
        if with_params:
            hover = {
                "hovertext": [hover_text(t, True) for t in complete],
                "hovertemplate": "%{hovertext}<br>value=%{y:.6g}<extra></extra>",
            }
        fig.add_trace(
            trace(
                x=np.asarray(xs, dtype=np.int64),
                y=np.asarray(ys, dtype=float),
                mode="markers",
                name="complete",
                legendgroup="complete",
                showlegend=first,
                marker={"color": COLORS["complete"], "size": 6, "opacity": 0.75},
                **hover,
            ),
            row=row,
            col=1,
        )
        best_x, best_y = [], []
        best: float | None = None
        for x, y in zip(xs, ys, strict=True):
            if best is None or data.better(y, best, k):
                best = y
            best_x.append(x)
            best_y.append(best)
        if best_x:
            fig.add_trace(
                trace(
                    x=np.asarray(best_x, dtype=np.int64),
                    y=np.asarray(best_y, dtype=float),
                    mode="lines",
                    line={"color": COLORS["best"], "width": 2, "shape": "hv"},
                    name="best so far",
                    legendgroup="best",
                    showlegend=first,
                    hovertemplate="best so far=%{y:.6g}<extra></extra>",
                ),
                row=row,
                col=1,
            )
        if k == 0 and pruned and not data.multi_objective:
            last = [max(t.intermediate) for t in pruned]
            fig.add_trace(
                trace(
                    x=np.asarray([t.number for t in pruned], dtype=np.int64),
                    y=np.asarray(
                        [t.intermediate[s] for t, s in zip(pruned, last, strict=True)], dtype=float
                    ),
                    customdata=np.asarray(last, dtype=np.int64),
                    mode="markers",
                    name="pruned (last reported value)",
                    marker={"color": COLORS["pruned"], "symbol": "x", "size": 7, "opacity": 0.7},
                    hovertemplate=(
                        "trial %{x} pruned at step %{customdata}<br>value=%{y:.6g}<extra></extra>"
                    ),
                ),
                row=1,
                col=1,
            )
        fig.update_yaxes(title_text=data.objective_names[k], row=row, col=1)
    fig.update_xaxes(title_text="trial", row=n_obj, col=1)
    n_failed = len(data.failed)
    note = f" ({n_failed} failed trial{'s' * (n_failed != 1)} without a score)" if n_failed else ""
    return apply_layout(
        fig, f"Optimization history{note}", height=HEIGHT if n_obj == 1 else 260 * n_obj
    )
