"""Parameter importances by Optuna's evaluators, as grouped bars."""

from __future__ import annotations

import optuna
import plotly.graph_objects as go

from tunefleet.records import StudyData, as_study_data
from tunefleet.report.figures.style import (
    EVALUATOR_LABELS,
    HEIGHT,
    PALETTE,
    apply_layout,
    ranked_params,
)
from tunefleet.report.importances import param_importances


def importance_figure(
    data: StudyData | optuna.Study,
    *,
    importances: dict[str, dict[str, float]] | None = None,
) -> go.Figure | None:
    """Parameter importances by Optuna's evaluators, one bar per parameter and evaluator.

    Args:
        data: the study.
        importances: precomputed (default: :func:`~tunefleet.report.importances.param_importances`).

    Returns:
        The figure, or ``None`` when importances cannot be computed (fewer than two
        complete trials, or no parameter that varies in all of them).

    Example:

    >>> import optuna
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> def objective(trial):
    ...     return trial.suggest_float("x", -1, 1) ** 2 + trial.suggest_float("y", 0, 1)
    >>> study.optimize(objective, n_trials=12)
    >>> fig = importance_figure(study)
    >>> fig.layout.title.text, [trace.name for trace in fig.data]
    ('Parameter importances', ['fANOVA', 'Mean decrease in impurity', 'PED-ANOVA'])
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
                marker={"color": PALETTE[k % len(PALETTE)]},
                hovertemplate="%{y}: %{x:.3f}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(title_text="importance (sums to 1 per evaluator)", rangemode="tozero")
    height = max(HEIGHT, 120 + 28 * len(names) * max(1, len(importances)))
    objective = f" on {data.objective_names[0]}" if data.multi_objective else ""
    return apply_layout(fig, f"Parameter importances{objective}", height=min(height, 1400))
