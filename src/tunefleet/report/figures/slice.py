"""Score against the parameters: a slice view per parameter, a contour of two."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tunefleet.records import ParamInfo, StudyData, as_study_data
from tunefleet.report.figures.style import (
    WEBGL_THRESHOLD,
    apply_layout,
    ranked_params,
    scatter_type,
    short_label,
)


def slice_figure(
    data: StudyData | optuna.Study,
    *,
    params: Sequence[str] | None = None,
    importances: dict[str, dict[str, float]] | None = None,
    max_params: int = 4,
) -> go.Figure | None:
    """Score against each of the top parameters (one panel each), colored by trial number.

    Args:
        data: the study.
        params: the parameters (default: the ``max_params`` most important).
        importances: to rank the parameters.
        max_params: how many parameters by default.

    Returns:
        The figure, or ``None`` when no complete trial has parameters.

    Example:

    >>> import optuna
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> def objective(trial):
    ...     return trial.suggest_float("x", -1, 1) ** 2 + trial.suggest_float("y", 0, 1)
    >>> study.optimize(objective, n_trials=12)
    >>> fig = slice_figure(study, params=["x", "y"])
    >>> fig.layout.title.text, fig.layout.xaxis.title.text, fig.layout.xaxis2.title.text
    ('Slice: score against the top parameters', 'x', 'y')
    """
    data = as_study_data(data)
    complete = data.complete
    by_name = {p.name: p for p in data.params}
    names = list(params) if params is not None else ranked_params(data, importances)[:max_params]
    names = [n for n in names if n in by_name and any(n in t.params for t in complete)]
    if not complete or not names:
        return None
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.04)
    trace = scatter_type(len(complete))
    for col, name in enumerate(names, start=1):
        param = by_name[name]
        trials = [t for t in complete if name in t.params]
        xs: Any = (
            np.asarray([t.params[name] for t in trials], dtype=float)
            if param.numeric
            else [str(t.params[name]) for t in trials]
        )
        fig.add_trace(
            trace(
                x=xs,
                y=np.asarray([t.values[0] for t in trials], dtype=float),
                mode="markers",
                name=name,
                showlegend=False,
                marker={
                    "color": np.asarray([t.number for t in trials], dtype=np.int64),
                    "colorscale": "Blues",
                    "size": 6,
                    "line": {"width": 0.5, "color": "#444"},
                    "showscale": col == len(names),
                    "colorbar": {"title": {"text": "trial"}},
                },
                hovertemplate=f"{name}=%{{x}}<br>value=%{{y:.6g}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        axis: dict[str, Any] = {"title_text": short_label(name)}
        if param.log:
            axis["type"] = "log"
        elif not param.numeric:
            axis["type"] = "category"
            if param.choices:
                axis["categoryorder"] = "array"
                axis["categoryarray"] = list(param.choices)
        fig.update_xaxes(row=1, col=col, **axis)
    fig.update_yaxes(title_text=data.objective_names[0], row=1, col=1)
    return apply_layout(fig, "Slice: score against the top parameters")


def _bins(param: ParamInfo, values: Sequence[Any], n_bins: int) -> tuple[np.ndarray, Any, list]:
    """Bin index per value, the axis positions of the bins, and (categorical) labels."""
    if not param.numeric:
        labels = [c for c in (param.choices or ()) if c in {str(v) for v in values}]
        labels += sorted({str(v) for v in values} - set(labels))
        index = {label: i for i, label in enumerate(labels)}
        return np.asarray([index[str(v)] for v in values]), labels, labels
    x = np.asarray(values, dtype=float)
    log = param.log and (x > 0).all()
    t = np.log10(x) if log else x
    lo, hi = float(t.min()), float(t.max())
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, n_bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    index = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, n_bins - 1)
    return index, (10**centers if log else centers), []


def contour_figure(
    data: StudyData | optuna.Study,
    *,
    params: Sequence[str] | None = None,
    importances: dict[str, dict[str, float]] | None = None,
    n_bins: int | None = None,
) -> go.Figure | None:
    """The mean score over a grid of two parameters (default: the two most important).

    Numeric parameters are cut into ``n_bins`` bins (log-spaced for log parameters),
    categorical ones into their values; each cell shows the mean score of the complete
    trials that fall in it, and the trials themselves are drawn on top.

    Args:
        data: the study.
        params: two parameter names (default: the two most important).
        importances: to rank the parameters.
        n_bins: bins per numeric axis (default: the square root of the number of
            complete trials, between 3 and 20).

    Returns:
        The figure, or ``None`` with fewer than two parameters or three complete trials.

    Example:

    >>> import optuna
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> def objective(trial):
    ...     return trial.suggest_float("x", -1, 1) ** 2 + trial.suggest_float("y", 0, 1)
    >>> study.optimize(objective, n_trials=12)
    >>> fig = contour_figure(study, params=["x", "y"])
    >>> fig.layout.title.text, fig.data[0].type
    ('Contour: mean score over x and y', 'contour')
    """
    data = as_study_data(data)
    by_name = {p.name: p for p in data.params}
    names = list(params) if params is not None else ranked_params(data, importances)
    names = [n for n in names if n in by_name]
    complete = data.complete
    if len(names) < 2:
        return None
    px, py = by_name[names[0]], by_name[names[1]]
    trials = [t for t in complete if px.name in t.params and py.name in t.params]
    if len(trials) < 3:
        return None
    scores = np.asarray([t.values[0] for t in trials], dtype=float)
    if n_bins is None:
        n_bins = int(min(20, max(3, round(math.sqrt(len(trials))))))
    xi, xpos, xlabels = _bins(px, [t.params[px.name] for t in trials], n_bins)
    yi, ypos, ylabels = _bins(py, [t.params[py.name] for t in trials], n_bins)
    nx, ny = len(xpos), len(ypos)
    sums = np.zeros((ny, nx))
    counts = np.zeros((ny, nx))
    np.add.at(sums, (yi, xi), scores)
    np.add.at(counts, (yi, xi), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = np.where(counts > 0, sums / counts, np.nan)
    colorscale = "Viridis" if data.directions[0] == "maximize" else "Viridis_r"
    both_numeric = px.numeric and py.numeric
    xs = list(xpos)
    ys = list(ypos)
    z = [[None if math.isnan(v) else float(v) for v in row] for row in grid]
    if both_numeric:
        surface = go.Contour(
            x=xs,
            y=ys,
            z=z,
            connectgaps=True,
            colorscale=colorscale,
            colorbar={"title": {"text": short_label(data.objective_names[0], 12)}},
            contours={"coloring": "heatmap"},
            hovertemplate="mean score=%{z:.4g}<extra></extra>",
            name="mean score",
        )
    else:
        surface = go.Heatmap(
            x=xs,
            y=ys,
            z=z,
            colorscale=colorscale,
            colorbar={"title": {"text": short_label(data.objective_names[0], 12)}},
            hovertemplate="mean score=%{z:.4g}<extra></extra>",
            name="mean score",
        )
    fig = go.Figure(surface)
    point_x: Any = (
        np.asarray([t.params[px.name] for t in trials], dtype=float)
        if px.numeric
        else [str(t.params[px.name]) for t in trials]
    )
    point_y: Any = (
        np.asarray([t.params[py.name] for t in trials], dtype=float)
        if py.numeric
        else [str(t.params[py.name]) for t in trials]
    )
    fig.add_trace(
        scatter_type(len(trials))(
            x=point_x,
            y=point_y,
            mode="markers",
            name="trials",
            marker=(
                {"color": "rgba(255,255,255,0.8)", "size": 5, "line": {"color": "#333", "width": 1}}
                if len(trials) <= WEBGL_THRESHOLD
                else {"color": "rgba(40,40,40,0.35)", "size": 2}
            ),
            hovertemplate=f"{px.name}=%{{x}}<br>{py.name}=%{{y}}<extra></extra>",
            showlegend=False,
        )
    )
    for axis, param, labels in (("x", px, xlabels), ("y", py, ylabels)):
        settings: dict[str, Any] = {"title_text": short_label(param.name)}
        if param.log:
            settings["type"] = "log"
        elif labels:
            settings["type"] = "category"
            settings["categoryorder"] = "array"
            settings["categoryarray"] = labels
        (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**settings)
    return apply_layout(fig, f"Contour: mean score over {px.name} and {py.name}")
