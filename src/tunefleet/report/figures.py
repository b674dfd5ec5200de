"""Plotly figures of a stored study: history, parameters, importances, learning curves, fronts.

Each function takes a :class:`~tunefleet.report.data.StudyData` (or an ``optuna.Study``)
and returns a ``plotly.graph_objects.Figure``, or ``None`` when the study holds nothing
to draw (no complete trial, no parameter, no intermediate value, a single objective for
the Pareto front, no LR finder run). The same figures go into the HTML report and, via
:mod:`tunefleet.report.static`, into PNG/SVG/PDF files; in a notebook ``fig.show()``.

Large studies stay light: above 1,000 points scatter plots use WebGL (``Scattergl``),
learning curves show the top trials and a sample of pruned ones, and the contour view
averages scores over a grid of bins instead of interpolating every trial.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tunefleet.report.data import (
    ParamInfo,
    StudyData,
    TrialRecord,
    as_study_data,
    param_importances,
)

WEBGL_THRESHOLD = 1000
"""Above this many points, scatter traces are drawn with WebGL."""

COLORS = {
    "complete": "#1f77b4",
    "best": "#d62728",
    "pruned": "#7f7f7f",
    "failed": "#ff7f0e",
    "front": "#d62728",
}
EVALUATOR_LABELS = {
    "fanova": "fANOVA",
    "mean_decrease_impurity": "Mean decrease in impurity",
    "ped_anova": "PED-ANOVA",
}
_PALETTE = [
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
_HEIGHT = 440
_HOVER_PARAMS_MAX_TRIALS = 2000
_MAX_LABEL = 24


def _layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        height=kwargs.pop("height", _HEIGHT),
        margin={"l": 60, "r": 30, "t": 60, "b": 55},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
        **kwargs,
    )
    return fig


def _scatter(n_points: int) -> type:
    return go.Scattergl if n_points > WEBGL_THRESHOLD else go.Scatter


def _short(text: Any, limit: int = _MAX_LABEL) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return _short(value, 60)


def _hover(trial: TrialRecord, with_params: bool) -> str:
    text = f"trial {trial.number}"
    if with_params and trial.params:
        text += "<br>" + "<br>".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    return text


def ranked_params(data: StudyData, importances: dict[str, dict[str, float]] | None) -> list[str]:
    """Parameter names, most important first (stored order when importances are unknown)."""
    names = [p.name for p in data.params]
    if importances:
        first = next(iter(importances.values()))
        ranked = [n for n in first if n in names]
        return ranked + [n for n in names if n not in ranked]
    return names


# -- optimization history -------------------------------------------------------------------
def history_figure(data: StudyData | optuna.Study) -> go.Figure | None:
    """Score per trial, the best-so-far line, and pruned trials at their last reported value.

    One panel per objective for multi-objective studies (each with its own best-so-far).

    Args:
        data: the study (a :class:`StudyData` or an ``optuna.Study``).

    Returns:
        The figure, or ``None`` when no trial completed or was pruned with a value.

    Example:

    >>> fig = history_figure(search.study_)  # doctest: +SKIP
    >>> fig.show()  # doctest: +SKIP
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
    with_params = len(data.trials) <= _HOVER_PARAMS_MAX_TRIALS
    trace = _scatter(len(complete) + len(pruned))
    for k in range(n_obj):
        row = k + 1
        first = k == 0
        xs = [t.number for t in complete]
        ys = [t.values[k] for t in complete]
        hover: dict[str, Any] = {"hovertemplate": "trial %{x}<br>value=%{y:.6g}<extra></extra>"}
        if with_params:
            hover = {
                "hovertext": [_hover(t, True) for t in complete],
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
    return _layout(
        fig, f"Optimization history{note}", height=_HEIGHT if n_obj == 1 else 260 * n_obj
    )


# -- parallel coordinates --------------------------------------------------------------------
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
            "label": _short(param.name),
            "values": [index[str(v)] for v in values],
            "tickvals": list(range(len(labels))),
            "ticktext": [_short(label, 16) for label in labels],
            "range": [0, max(len(labels) - 1, 1)],
        }
    numbers = np.asarray(values, dtype=float)
    if param.log and numbers.size and (numbers > 0).all():
        logs = np.log10(numbers)
        lo, hi = math.floor(logs.min()), math.ceil(logs.max())
        ticks = list(range(lo, hi + 1))
        return {
            "label": f"{_short(param.name)} (log)",
            "values": logs,
            "tickvals": ticks,
            "ticktext": [f"1e{t}" for t in ticks],
        }
    return {"label": _short(param.name), "values": numbers}


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
        importances: as returned by :func:`~tunefleet.report.data.param_importances`,
            to order the axes.
        max_trials: the most lines to draw (``None``: all).

    Returns:
        The figure, or ``None`` when no complete trial has parameters.

    Example:

    >>> parallel_coordinates_figure(search.study_).show()  # doctest: +SKIP
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
    dimensions = [{"label": _short(data.objective_names[0]), "values": scores}]
    dimensions += [_axis_values(p, [t.params[p.name] for t in trials]) for p in shown]
    maximize = data.directions[0] == "maximize"
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": scores,
                "colorscale": "Viridis",
                "reversescale": not maximize,
                "showscale": True,
                "colorbar": {"title": {"text": _short(data.objective_names[0], 12)}},
            },
            dimensions=dimensions,
        )
    )
    return _layout(fig, f"Parallel coordinates ({sampled or f'{n_all} complete trials'})")


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


# -- importances ------------------------------------------------------------------------------
def importance_figure(
    data: StudyData | optuna.Study,
    *,
    importances: dict[str, dict[str, float]] | None = None,
) -> go.Figure | None:
    """Parameter importances by Optuna's evaluators, one bar per parameter and evaluator.

    Args:
        data: the study.
        importances: precomputed (default: :func:`~tunefleet.report.data.param_importances`).

    Returns:
        The figure, or ``None`` when importances cannot be computed (fewer than two
        complete trials, or no parameter that varies in all of them).

    Example:

    >>> importance_figure(search.study_).show()  # doctest: +SKIP
    """
    data = as_study_data(data)
    if importances is None:
        importances = param_importances(data)
    if not importances:
        return None
    order = ranked_params(data, importances)
    names = [n for n in order if any(n in imp for imp in importances.values())]
    fig = go.Figure()
    for k, (evaluator, values) in enumerate(importances.items()):
        fig.add_trace(
            go.Bar(
                y=names[::-1],
                x=[values.get(n, 0.0) for n in names[::-1]],
                orientation="h",
                name=EVALUATOR_LABELS.get(evaluator, evaluator),
                marker={"color": _PALETTE[k % len(_PALETTE)]},
                hovertemplate="%{y}: %{x:.3f}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(title_text="importance (sums to 1 per evaluator)", rangemode="tozero")
    height = max(_HEIGHT, 120 + 28 * len(names) * max(1, len(importances)))
    objective = f" on {data.objective_names[0]}" if data.multi_objective else ""
    return _layout(fig, f"Parameter importances{objective}", height=min(height, 1400))


# -- slice and contour --------------------------------------------------------------------
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

    >>> slice_figure(search.study_, params=["C", "gamma"]).show()  # doctest: +SKIP
    """
    data = as_study_data(data)
    complete = data.complete
    by_name = {p.name: p for p in data.params}
    names = list(params) if params is not None else ranked_params(data, importances)[:max_params]
    names = [n for n in names if n in by_name and any(n in t.params for t in complete)]
    if not complete or not names:
        return None
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.04)
    trace = _scatter(len(complete))
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
        axis: dict[str, Any] = {"title_text": _short(name)}
        if param.log:
            axis["type"] = "log"
        elif not param.numeric:
            axis["type"] = "category"
            if param.choices:
                axis["categoryorder"] = "array"
                axis["categoryarray"] = list(param.choices)
        fig.update_xaxes(row=1, col=col, **axis)
    fig.update_yaxes(title_text=data.objective_names[0], row=1, col=1)
    return _layout(fig, "Slice: score against the top parameters")


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

    >>> contour_figure(search.study_, params=["C", "gamma"]).show()  # doctest: +SKIP
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
            colorbar={"title": {"text": _short(data.objective_names[0], 12)}},
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
            colorbar={"title": {"text": _short(data.objective_names[0], 12)}},
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
        _scatter(len(trials))(
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
        settings: dict[str, Any] = {"title_text": _short(param.name)}
        if param.log:
            settings["type"] = "log"
        elif labels:
            settings["type"] = "category"
            settings["categoryorder"] = "array"
            settings["categoryarray"] = labels
        (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**settings)
    return _layout(fig, f"Contour: mean score over {px.name} and {py.name}")


# -- learning curves ------------------------------------------------------------------------
def _spread(items: Sequence[Any], n: int) -> list[Any]:
    if len(items) <= n:
        return list(items)
    picks = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def learning_curves_figure(
    data: StudyData | optuna.Study, *, top: int = 10, pruned: int = 30
) -> go.Figure | None:
    """Values reported during training (per epoch, fold or budget) of the best complete
    trials against pruned ones.

    Steps are as reported: ``fold * epochs + epoch`` for Keras models, the fold for
    cross-validated scikit-learn estimators with a pruner, the budget for Hyperband.

    Args:
        data: the study.
        top: how many of the best complete trials to draw.
        pruned: how many pruned trials to draw at most (an even sample by trial number);
            a cross marks where each was stopped.

    Returns:
        The figure, or ``None`` when no trial reported intermediate values.

    Example:

    >>> learning_curves_figure(search.study_, top=5).show()  # doctest: +SKIP
    """
    data = as_study_data(data)
    if data.multi_objective:
        return None
    best_first = sorted(
        (t for t in data.complete if t.intermediate),
        key=lambda t: -t.values[0] if data.directions[0] == "maximize" else t.values[0],
    )[:top]
    stopped = _spread([t for t in data.pruned if t.intermediate], pruned)
    if not best_first and not stopped:
        return None
    fig = go.Figure()
    for i, t in enumerate(stopped):
        steps = list(t.intermediate)
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=list(t.intermediate.values()),
                mode="lines+markers",
                line={"color": COLORS["pruned"], "width": 1},
                marker={"size": 3},
                opacity=0.55,
                name="pruned",
                legendgroup="pruned",
                showlegend=i == 0,
                hovertemplate=f"trial {t.number} (pruned)<br>step %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
    if stopped:
        ends = [max(t.intermediate) for t in stopped]
        fig.add_trace(
            go.Scatter(
                x=ends,
                y=[t.intermediate[s] for t, s in zip(stopped, ends, strict=True)],
                mode="markers",
                marker={"symbol": "x", "color": COLORS["pruned"], "size": 8},
                name="pruned here",
                legendgroup="pruned",
                hovertemplate="pruned at step %{x}<extra></extra>",
            )
        )
    many_steps = any(len(t.intermediate) > 40 for t in best_first)
    for i, t in enumerate(reversed(best_first)):
        rank = len(best_first) - i
        fig.add_trace(
            go.Scatter(
                x=list(t.intermediate),
                y=list(t.intermediate.values()),
                mode="lines" if many_steps else "lines+markers",
                line={
                    "color": _PALETTE[(rank - 1) % len(_PALETTE)],
                    "width": 3 if rank == 1 else 2,
                },
                marker={"size": 5},
                name=f"#{rank}: trial {t.number} ({t.values[0]:.4g})",
                hovertemplate=f"trial {t.number}<br>step %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
    hyperband = any(t.resource is not None for t in data.trials)
    epochs = data.epochs_per_fold()
    if hyperband:
        fig.update_xaxes(title_text="budget (resource)")
    elif epochs == 1:
        fig.update_xaxes(title_text="fold (0-based): mean score of the folds so far", dtick=1)
    elif epochs is not None:
        # per epoch of each fold in turn: mark where each fold starts
        last = max(max(t.intermediate) for t in [*best_first, *stopped])
        for fold in range(1, math.ceil((last + 1) / epochs)):
            x = fold * epochs - 0.5
            fig.add_vline(x=x, line={"color": "#999", "dash": "dot", "width": 1})
            fig.add_annotation(
                x=x,
                y=1,
                yref="paper",
                text=f"fold {fold + 1}",
                showarrow=False,
                xanchor="left",
                yanchor="bottom",
                font={"size": 11, "color": "#666"},
            )
        fig.update_xaxes(title_text=f"step = fold * {epochs} + epoch")
    else:
        fig.update_xaxes(title_text="step (as reported: fold, epoch or rung)")
    fig.update_yaxes(title_text=f"reported {data.objective_names[0]}")
    title = f"Learning curves: top {len(best_first)} trials"
    if stopped:
        title += f" vs {len(stopped)} of {len(data.pruned)} pruned"
    fig = _layout(fig, title, height=_HEIGHT + 60)
    fig.update_layout(
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.2, "yanchor": "top"},
        margin={"b": 120},
    )
    return fig


# -- Pareto front ---------------------------------------------------------------------------
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

    >>> pareto_front_figure(search.study_).show()  # doctest: +SKIP
    """
    data = as_study_data(data)
    if not data.multi_objective or not data.complete:
        return None
    i, j = objectives
    front = data.best_trials
    numbers = {t.number for t in front}
    others = [t for t in data.complete if t.number not in numbers]
    with_params = len(data.trials) <= _HOVER_PARAMS_MAX_TRIALS
    trace = _scatter(len(data.complete))
    fig = go.Figure()
    fig.add_trace(
        trace(
            x=np.asarray([t.values[i] for t in others], dtype=float),
            y=np.asarray([t.values[j] for t in others], dtype=float),
            mode="markers",
            name="dominated",
            marker={"color": COLORS["complete"], "opacity": 0.45, "size": 6},
            hovertext=[_hover(t, with_params) for t in others],
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
            hovertext=[_hover(t, True) for t in ordered],
            hovertemplate="%{hovertext}<br>(%{x:.4g}, %{y:.4g})<extra></extra>",
        )
    )
    names = data.objective_names
    fig.update_xaxes(title_text=f"{names[i]} ({data.directions[i]})")
    fig.update_yaxes(title_text=f"{names[j]} ({data.directions[j]})")
    return _layout(fig, f"Pareto front: {names[i]} vs {names[j]}")


# -- LR finder -------------------------------------------------------------------------------
def lr_finder_figure(data: StudyData | optuna.Study) -> go.Figure | None:
    """The loss against the learning rate of an LR finder run, with its suggestion.

    Read from the study user attribute ``tunefleet:lr_finder``
    (``{"lrs": [...], "losses": [...], "suggestion": float}``).

    Args:
        data: the study.

    Returns:
        The figure, or ``None`` when no LR finder run is stored.

    Example:

    >>> lr_finder_figure(search.study_).show()  # doctest: +SKIP
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
    return _layout(fig, "LR finder")


# -- all of them --------------------------------------------------------------------------
FIGURES = (
    "history",
    "parallel_coordinates",
    "importances",
    "slice",
    "contour",
    "learning_curves",
    "pareto_front",
    "lr_finder",
)
"""Names of the report's figures, in the report's order."""


def build_figures(
    data: StudyData | optuna.Study,
    *,
    importances: dict[str, dict[str, float]] | None = None,
) -> dict[str, go.Figure]:
    """Every figure that applies to the study, by name (see :data:`FIGURES`).

    Args:
        data: the study.
        importances: precomputed importances (default: computed once here).

    Returns:
        name -> figure, leaving out the figures that do not apply.

    Example:

    >>> figures = build_figures(search.study_)  # doctest: +SKIP
    >>> sorted(figures)  # doctest: +SKIP
    ['contour', 'history', 'importances', 'learning_curves', 'parallel_coordinates', 'slice']
    """
    data = as_study_data(data)
    if importances is None:
        importances = param_importances(data)
    made = {
        "history": history_figure(data),
        "parallel_coordinates": parallel_coordinates_figure(data, importances=importances),
        "importances": importance_figure(data, importances=importances),
        "slice": slice_figure(data, importances=importances),
        "contour": contour_figure(data, importances=importances),
        "learning_curves": learning_curves_figure(data),
        "pareto_front": pareto_front_figure(data),
        "lr_finder": lr_finder_figure(data),
    }
    return {name: fig for name, fig in made.items() if fig is not None}
