"""The Pareto front of a multi-objective study on two of its objectives."""

from __future__ import annotations

import numpy as np
import optuna
import plotly.graph_objects as go

from tunefleet.records import StudyData, as_study_data
from tunefleet.report.figures.style import (
    COLORS,
    HOVER_PARAMS_MAX_TRIALS,
    apply_layout,
    hover_text,
    scatter_type,
)


def pareto_front_figure(
    data: StudyData | optuna.Study, *, objectives: tuple[int, int] = (0, 1)
) -> go.Figure | None:
    """Complete trials of a multi-objective study on two objectives, the Pareto front
    (over all objectives) highlighted.

    Args:
        data: the study.
        objectives: the two objectives on the axes.

    Returns:
        The figure, or ``None`` for single-objective studies or without complete trials.

    Example:

    >>> import optuna
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> for accuracy, size in [(0.9, 100), (0.8, 10), (0.7, 50)]:  # the last is dominated
    ...     study.add_trial(optuna.trial.create_trial(values=[accuracy, size]))
    >>> fig = pareto_front_figure(study)
    >>> fig.layout.title.text, [trace.name for trace in fig.data]
    ('Pareto front: objective 0 vs objective 1', ['dominated', 'Pareto front (2)'])
    >>> list(fig.data[0].hovertext)
    ['trial 2']
    """
    data = as_study_data(data)
    if not data.multi_objective or not data.complete:
        return None
    i, j = objectives
    front = data.best_trials
    numbers = {t.number for t in front}
    others = [t for t in data.complete if t.number not in numbers]
    with_params = len(data.trials) <= HOVER_PARAMS_MAX_TRIALS
    trace = scatter_type(len(data.complete))
    fig = go.Figure()
    fig.add_trace(
        trace(
            x=np.asarray([t.values[i] for t in others], dtype=float),
            y=np.asarray([t.values[j] for t in others], dtype=float),
            mode="markers",
            name="dominated",
            marker={"color": COLORS["complete"], "opacity": 0.45, "size": 6},
            hovertext=[hover_text(t, with_params) for t in others],
            hovertemplate="%{hovertext}<br>(%{x:.4g}, %{y:.4g})<extra></extra>",
        )
    )
    ordered = sorted(front, key=lambda t: t.values[i])
    fig.add_trace(
        go.Scatter(
            x=[t.values[i] for t in ordered],
            y=[t.values[j] for t in ordered],
            mode="lines+markers",
            name=f"Pareto front ({len(front)})",
            line={
                "color": COLORS["front"],
                "shape": "hv" if len(data.directions) == 2 else "linear",
            },
            marker={"color": COLORS["front"], "size": 9},
            hovertext=[hover_text(t, True) for t in ordered],
            hovertemplate="%{hovertext}<br>(%{x:.4g}, %{y:.4g})<extra></extra>",
        )
    )
    names = data.objective_names
    fig.update_xaxes(title_text=f"{names[i]} ({data.directions[i]})")
    fig.update_yaxes(title_text=f"{names[j]} ({data.directions[j]})")
    return apply_layout(fig, f"Pareto front: {names[i]} vs {names[j]}")
