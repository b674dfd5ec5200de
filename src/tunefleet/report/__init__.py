"""Look at a study: an HTML report, static figures, and a live dashboard.

Everything here reads the Optuna storage only, so it works on any study, finished or
still running, from any process:

* :func:`write_report` / :func:`write_study_report`: one self-contained HTML file
  (plotly.js inlined, works offline) with a summary, the figures and a sortable,
  paginated table of all trials;
* ``plot_history``, ``plot_importances``... : one figure as PNG/SVG/PDF (via Kaleido and
  a local Chrome/Chromium) or as a standalone HTML page; :func:`write_images` writes all;
* the figure builders of :mod:`tunefleet.report.figures` (one module per figure
  family) return plotly figures for notebooks (``history_figure(study).show()``);
* :func:`serve_dashboard` / :func:`start_dashboard`: optuna-dashboard on the storage;
* :func:`load_study_data` / :func:`study_data` / :func:`trials_dataframe`: the records
  every table, figure and the CLI read (from :mod:`tunefleet.records`).

Example:

>>> import os, tempfile, optuna
>>> from tunefleet.report import load_study_data, open_storage_for_reading, write_report
>>> folder = tempfile.mkdtemp()
>>> url = "sqlite:///" + os.path.join(folder, "tune.db")
>>> study = optuna.create_study(storage=url, study_name="demo")
>>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
>>> storage = open_storage_for_reading(url)  # what the report reads through
>>> len(load_study_data(storage, "demo").complete)
5
>>> write_report(url, "demo", os.path.join(folder, "report.html")).name
'report.html'

``plot_history(study, "history.svg")`` and the other ``plot_*`` write one figure
(an image format needs Chrome or Chromium; a ``.html`` path does not).
"""

from tunefleet.records import (
    ParamInfo,
    StudyData,
    TrialRecord,
    load_study_data,
    study_data,
    trials_dataframe,
)
from tunefleet.report.dashboard import DashboardServer, serve_dashboard, start_dashboard
from tunefleet.report.figures import (
    FIGURES,
    build_figures,
    contour_figure,
    history_figure,
    importance_figure,
    learning_curves_figure,
    lr_finder_figure,
    parallel_coordinates_figure,
    pareto_front_figure,
    slice_figure,
)
from tunefleet.report.html import render_report, write_report, write_study_report
from tunefleet.report.importances import param_importances
from tunefleet.report.static import (
    plot_contour,
    plot_history,
    plot_importances,
    plot_learning_curves,
    plot_lr_finder,
    plot_parallel_coordinates,
    plot_pareto_front,
    plot_slice,
    save_figure,
    write_images,
)
from tunefleet.storage import open_storage_for_reading

__all__ = [
    "FIGURES",
    "DashboardServer",
    "ParamInfo",
    "StudyData",
    "TrialRecord",
    "build_figures",
    "contour_figure",
    "history_figure",
    "importance_figure",
    "learning_curves_figure",
    "load_study_data",
    "lr_finder_figure",
    "open_storage_for_reading",
    "parallel_coordinates_figure",
    "param_importances",
    "pareto_front_figure",
    "plot_contour",
    "plot_history",
    "plot_importances",
    "plot_learning_curves",
    "plot_lr_finder",
    "plot_parallel_coordinates",
    "plot_pareto_front",
    "plot_slice",
    "render_report",
    "save_figure",
    "serve_dashboard",
    "slice_figure",
    "start_dashboard",
    "study_data",
    "trials_dataframe",
    "write_images",
    "write_report",
    "write_study_report",
]
