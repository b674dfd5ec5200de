"""What every figure of the report shares: colors, sizes, labels, hover text, layout."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from tunefleet.records import StudyData, TrialRecord

WEBGL_THRESHOLD = 1000
"""Above this many points, scatter traces are drawn with WebGL."""

COLORS = {
    "complete": "#1f77b4",
    "best": "#d62728",
    "pruned": "#7f7f7f",
    "failed": "#ff7f0e",
    "front": "#d62728",
}
"""Trace colors by role."""
EVALUATOR_LABELS = {
    "fanova": "fANOVA",
    "mean_decrease_impurity": "Mean decrease in impurity",
    "ped_anova": "PED-ANOVA",
}
"""Display names of Optuna's importance evaluators."""
PALETTE = [
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#ff7f0e",
    "#d62728",
    "#393b79",
]
"""Colors of traces drawn in turn (evaluators, ranked trials)."""
HEIGHT = 440
"""Default figure height in pixels."""
HOVER_PARAMS_MAX_TRIALS = 2000
"""Up to this many trials, hovering a point shows the trial's parameters."""
MAX_LABEL = 24
"""Longest axis label, in characters, before it is cut with an ellipsis."""


def apply_layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    """Give ``fig`` the report's look (title, template, height, margins, legend)."""
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        height=kwargs.pop("height", HEIGHT),
        margin={"l": 60, "r": 30, "t": 60, "b": 55},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
        **kwargs,
    )
    return fig


def scatter_type(n_points: int) -> type:
    """``go.Scattergl`` (WebGL) above :data:`WEBGL_THRESHOLD` points, else ``go.Scatter``."""
    return go.Scattergl if n_points > WEBGL_THRESHOLD else go.Scatter


def short_label(text: Any, limit: int = MAX_LABEL) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_value(value: Any) -> str:
    """A parameter value for hover text: floats to 6 significant digits, others cut."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return short_label(value, 60)


def hover_text(trial: TrialRecord, with_params: bool) -> str:
    """``trial N``, then one ``name=value`` line per parameter when ``with_params``."""
    text = f"trial {trial.number}"
    if with_params and trial.params:
        text += "<br>" + "<br>".join(f"{k}={format_value(v)}" for k, v in trial.params.items())
    return text


def ranked_params(data: StudyData, importances: dict[str, dict[str, float]] | None) -> list[str]:
    """Parameter names, most important first (stored order when importances are unknown)."""
    names = [p.name for p in data.params]
    if importances:
        first = next(iter(importances.values()))
        ranked = [n for n in first if n in names]
        return ranked + [n for n in names if n not in ranked]
    return names
