"""Plotly figures of a stored study: history, parameters, importances, learning curves, fronts.

Each function takes a :class:`~tunefleet.records.StudyData` (or an ``optuna.Study``)
and returns a ``plotly.graph_objects.Figure``, or ``None`` when the study holds nothing
to draw (no complete trial, no parameter, no intermediate value, a single objective for
the Pareto front, no LR finder run). The same figures go into the HTML report and, via
:mod:`tunefleet.report.static`, into PNG/SVG/PDF files; in a notebook ``fig.show()``.

Large studies stay light: above 1,000 points scatter plots use WebGL (``Scattergl``),
learning curves show the top trials and a sample of pruned ones, and the contour view
averages scores over a grid of bins instead of interpolating every trial.

One module per figure family: :mod:`~tunefleet.report.figures.history`,
:mod:`~tunefleet.report.figures.parallel`, :mod:`~tunefleet.report.figures.importance`,
:mod:`~tunefleet.report.figures.slice` (slice and contour),
:mod:`~tunefleet.report.figures.learning_curves`, :mod:`~tunefleet.report.figures.pareto`,
:mod:`~tunefleet.report.figures.lr_finder`; what they share is in
:mod:`~tunefleet.report.figures.style`. :data:`FIGURES` names them in the report's order:

Example:

>>> from tunefleet.report import FIGURES
>>> for name in FIGURES:
...     print(name)
history
parallel_coordinates
importances
slice
contour
learning_curves
pareto_front
lr_finder
"""

from __future__ import annotations

import optuna
import plotly.graph_objects as go

from tunefleet.records import StudyData, as_study_data
from tunefleet.report.figures.history import history_figure
from tunefleet.report.figures.importance import importance_figure
from tunefleet.report.figures.learning_curves import learning_curves_figure
from tunefleet.report.figures.lr_finder import lr_finder_figure
from tunefleet.report.figures.parallel import parallel_coordinates_figure
from tunefleet.report.figures.pareto import pareto_front_figure
from tunefleet.report.figures.slice import contour_figure, slice_figure
from tunefleet.report.figures.style import COLORS, EVALUATOR_LABELS, WEBGL_THRESHOLD, ranked_params
from tunefleet.report.importances import param_importances

__all__ = [
    "COLORS",
    "EVALUATOR_LABELS",
    "FIGURES",
    "WEBGL_THRESHOLD",
    "build_figures",
    "contour_figure",
    "history_figure",
    "importance_figure",
    "learning_curves_figure",
    "lr_finder_figure",
    "parallel_coordinates_figure",
    "pareto_front_figure",
    "ranked_params",
    "slice_figure",
]

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

    >>> import optuna
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> def objective(trial):
    ...     return trial.suggest_float("x", -1, 1) ** 2 + trial.suggest_float("y", 0, 1)
    >>> study.optimize(objective, n_trials=12)
    >>> figures = build_figures(study)
    >>> sorted(figures)  # no learning curves, Pareto front or LR finder run to draw
    ['contour', 'history', 'importances', 'parallel_coordinates', 'slice']
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
