"""Learning curves: values reported during training, best trials against pruned ones."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go

from tunefleet.records import StudyData, as_study_data
from tunefleet.report.figures.style import COLORS, HEIGHT, PALETTE, apply_layout


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

    >>> import optuna
    >>> def objective(trial):
    ...     x = trial.suggest_float("x", 0, 1)
    ...     for epoch in range(3):
    ...         trial.report(x * (epoch + 1) / 3, step=epoch)
    ...     return x
    >>> study = optuna.create_study(direction="maximize",
    ...                             sampler=optuna.samplers.RandomSampler(seed=0))
    >>> study.optimize(objective, n_trials=5)
    >>> fig = learning_curves_figure(study, top=2)
    >>> fig.layout.title.text, [list(trace.x) for trace in fig.data]
    ('Learning curves: top 2 trials', [[0, 1, 2], [0, 1, 2]])
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
                    "color": PALETTE[(rank - 1) % len(PALETTE)],
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
    fig = apply_layout(fig, title, height=HEIGHT + 60)
    fig.update_layout(
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.2, "yanchor": "top"},
        margin={"b": 120},
    )
    return fig
