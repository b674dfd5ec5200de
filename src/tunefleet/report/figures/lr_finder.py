"""The LR finder curve stored with a study: loss against learning rate, and the suggestion."""

from __future__ import annotations

import math

import numpy as np
import optuna
import plotly.graph_objects as go

from tunefleet.records import StudyData, as_study_data
from tunefleet.report.figures.style import COLORS, apply_layout


def lr_finder_figure(data: StudyData | optuna.Study) -> go.Figure | None:
    """The loss against the learning rate of an LR finder run, with its suggestion.

    Read from the study user attribute ``tunefleet:lr_finder``
    (``{"lrs": [...], "losses": [...], "suggestion": float}``).

    Args:
        data: the study.

    Returns:
        The figure, or ``None`` when no LR finder run is stored.

    Example:

    >>> import optuna
    >>> from tunefleet.attrs import LR_FINDER_ATTR
    >>> study = optuna.create_study()
    >>> study.set_user_attr(LR_FINDER_ATTR, {"lrs": [1e-4, 1e-3, 1e-2, 1e-1],
    ...                                      "losses": [1.0, 0.6, 0.4, 2.0],
    ...                                      "suggestion": 1e-3})
    >>> fig = lr_finder_figure(study)
    >>> fig.layout.title.text, fig.data[1].name
    ('LR finder', 'suggested lr = 0.001')
    """
    data = as_study_data(data)
    run = data.lr_finder
    if not run:
        return None
    points = [
        (lr, loss)
        for lr, loss in zip(run["lrs"], run["losses"], strict=True)
        if lr > 0 and math.isfinite(lr) and math.isfinite(loss)
    ]
    if not points:
        return None
    lrs, losses = zip(*points, strict=True)
    fig = go.Figure(
        go.Scatter(
            x=list(lrs),
            y=list(losses),
            mode="lines",
            name="loss",
            line={"color": COLORS["complete"], "width": 2},
            hovertemplate="lr=%{x:.3g}<br>loss=%{y:.4g}<extra></extra>",
        )
    )
    suggestion = run.get("suggestion")
    if suggestion is not None and suggestion > 0:
        loss_at = float(np.interp(np.log10(suggestion), np.log10(lrs), losses))
        low, high = min(losses), max(losses)
        fig.add_trace(
            go.Scatter(
                x=[suggestion, suggestion],
                y=[low, high],
                mode="lines",
                line={"color": COLORS["best"], "dash": "dash"},
                name=f"suggested lr = {suggestion:.3g}",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[suggestion],
                y=[loss_at],
                mode="markers",
                marker={"color": COLORS["best"], "size": 10},
                showlegend=False,
                hovertemplate="suggested lr=%{x:.3g}<extra></extra>",
            )
        )
    fig.update_xaxes(type="log", title_text="learning rate")
    fig.update_yaxes(title_text="loss")
    return apply_layout(fig, "LR finder")
