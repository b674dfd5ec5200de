"""One self-contained HTML report of a study: summary, figures, and a table of every trial.

The file works offline and on its own: plotly.js, the figures' data, the stylesheet and
the table's script are all inlined (no CDN, no other file). Figures are drawn one after
another once the page has loaded, so the summary and the table show at once; the table
is sorted, filtered and paginated in the browser, so a 10,000-trial study stays usable.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import math
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import plotly
import plotly.io as pio

from tunefleet.records import StudyData, TrialRecord, as_study_data, load_study_data, study_data
from tunefleet.report.assets import CSS, JS
from tunefleet.report.figures import EVALUATOR_LABELS, build_figures
from tunefleet.report.importances import param_importances
from tunefleet.space import SearchSpace

_SECTION_TITLES = {
    "history": "Optimization history",
    "parallel_coordinates": "Parallel coordinates",
    "importances": "Parameter importances",
    "slice": "Slice",
    "contour": "Contour of the top two parameters",
    "learning_curves": "Learning curves",
    "pareto_front": "Pareto front",
    "lr_finder": "LR finder",
}
_ERROR_CHARS = 500
_FRONT_ROWS = 10


def write_report(
    storage: str | os.PathLike[str] | optuna.storages.BaseStorage,
    study_name: str | None,
    path: str | Path,
    *,
    space: SearchSpace | None = None,
    strategy: str | None = None,
    title: str | None = None,
) -> Path:
    """Write the HTML report of a stored study (what ``tunefleet report`` does).

    The report holds a summary (trials by state, best score and parameters, timings, the
    storage URL with any password masked), the optimization history, parallel
    coordinates, parameter importances, slice and contour views of the top parameters,
    learning curves from the values reported during training, the Pareto front of
    multi-objective studies, the LR finder curve when one was stored, and a sortable,
    filterable, paginated table of every trial. It reads the storage only.

    Args:
        storage: an Optuna storage URL (``"sqlite:///tune.db"``), the path of a SQLite
            or Optuna journal file, or a storage object.
        study_name: the study (``None``: the storage's only study).
        path: the HTML file to write (parent folders are created).
        space: the search's space, to decode parameters exactly as the search did
            (default: the space stored with the study).
        strategy: the search strategy to show (default: stored or inferred).
        title: the page title (default: ``"tunefleet report: <study>"``).

    Returns:
        The path written.

    Example:

    >>> import os, tempfile, optuna
    >>> from tunefleet.report import write_report
    >>> folder = tempfile.mkdtemp()
    >>> url = "sqlite:///" + os.path.join(folder, "tune.db")
    >>> study = optuna.create_study(storage=url, study_name="demo")
    >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
    >>> path = write_report(url, "demo", os.path.join(folder, "report.html"))
    >>> path.name, "tunefleet report: demo" in path.read_text()
    ('report.html', True)
    """
    data = load_study_data(storage, study_name, space=space, strategy=strategy)
    return _write(render_report(data, title=title), path)


def write_study_report(
    study: optuna.Study | StudyData,
    path: str | Path,
    *,
    space: SearchSpace | None = None,
    strategy: str | None = None,
    title: str | None = None,
) -> Path:
    """Write the HTML report of an ``optuna.Study`` (what ``search.report(path)`` does).

    Args:
        study: the study (e.g. ``search.study_``) or a :class:`StudyData`.
        path: the HTML file to write.
        space: the search's space (e.g. ``search.space_``).
        strategy: the search strategy to show.
        title: the page title.

    Returns:
        The path written.

    Example:

    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> import tunefleet
    >>> from tunefleet.report import write_study_report
    >>> X, y = load_iris(return_X_y=True)
    >>> search = tunefleet.GridSearchCV(DecisionTreeClassifier(random_state=0),
    ...                                 {"max_depth": [1, 2, 3]}, cv=2).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "report.html")
    >>> write_study_report(search.study_, path, space=search.space_).name
    'report.html'
    """
    if isinstance(study, StudyData):
        data = study
    else:
        data = study_data(study, space=space, strategy=strategy)
    return _write(render_report(data, title=title), path)


def _write(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _version() -> str:
    """tunefleet's installed version (read without importing the package's faces)."""
    try:
        return importlib.metadata.version("tunefleet")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def render_report(data: StudyData | optuna.Study, *, title: str | None = None) -> str:
    """The report's HTML as a string (see :func:`write_report`).

    Args:
        data: the study.
        title: the page title.

    Returns:
        A complete, self-contained HTML document.

    Example:

    >>> import optuna
    >>> from tunefleet.report import render_report
    >>> study = optuna.create_study(study_name="demo")
    >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
    >>> page = render_report(study, title="x squared")
    >>> page.startswith("<!DOCTYPE html>"), "<title>x squared</title>" in page
    (True, True)
    """
    data = as_study_data(data)
    started = time.perf_counter()
    importances = param_importances(data)
    figures = build_figures(data, importances=importances)
    title = title or f"tunefleet report: {data.study_name}"
    figures_json = (
        "{"
        + ",".join(
            f"{json.dumps(name)}:{pio.to_json(fig, validate=False, pretty=False)}"
            for name, fig in figures.items()
        )
        + "}"
    )
    sections = []
    for name, fig in figures.items():
        sections.append(
            f'<section class="figure" id="fig-{name}" aria-label="{html.escape(_SECTION_TITLES[name])}">'
            f'<div class="plot" data-figure="{name}" style="height:{int(fig.layout.height or 440)}px">'
            "</div></section>"
        )
    missing = [n for n in _SECTION_TITLES if n not in figures]
    missing_note = (
        '<p class="muted">Not shown (nothing to draw for this study): '
        + ", ".join(html.escape(_SECTION_TITLES[n]).lower() for n in missing)
        + ".</p>"
        if missing
        else ""
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    elapsed = time.perf_counter() - started
    version = _version()
    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (("summary", "Summary"), ("figures", "Figures"), ("trials", "Trials"))
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tunefleet {html.escape(version)}">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{html.escape(title)}</h1>
<p>{len(data.trials)} trials &middot; generated {generated} by tunefleet {html.escape(version)}
(plotly {html.escape(plotly.__version__)}) in {elapsed:.1f} s</p></header>
<nav>{nav}</nav>
<main>
<h2 id="summary">Summary</h2>
{_summary(data, importances)}
<h2 id="figures">Figures</h2>
{"".join(sections)}{missing_note}
<h2 id="trials">Trials</h2>
{_table_shell(data)}
</main>
<footer>Self-contained: this file needs no network. Trials excluded from results
(interrupted, surplus) are listed with their status but left out of counts and plots.</footer>
<script type="application/json" id="tf-trials">{_script_safe(_table_json(data))}</script>
<script type="application/json" id="tf-figures">{_script_safe(figures_json)}</script>
<script>{JS}</script>
<script>{_script_safe_js(plotly.offline.get_plotlyjs())}</script>
<script>window.tunefleetReport.drawFigures();</script>
</body>
</html>
"""


def _script_safe(text: str) -> str:
    """JSON inside ``<script>``: ``<`` only occurs in strings, where ``\\u003c`` is the same."""
    return text.replace("<", "\\u003c")


def _script_safe_js(text: str) -> str:
    return text.replace("</script", "<\\/script")


# -- summary -----------------------------------------------------------------------------------
def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    """A key/value table; values are HTML already escaped by the caller."""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _params_html(params: dict[str, Any]) -> str:
    if not params:
        return '<span class="muted">none</span>'
    return "<br>".join(
        f"<code>{html.escape(k)}</code> = {html.escape(_value(v))}" for k, v in params.items()
    )


def _summary(data: StudyData, importances: dict[str, dict[str, float]]) -> str:
    objectives = ", ".join(
        f"{d} {html.escape(n)}" for d, n in zip(data.directions, data.objective_names, strict=True)
    )
    study_rows = [
        ("study", f"<code>{html.escape(data.study_name)}</code>"),
        (
            "storage",
            html.escape(data.storage)
            if data.storage
            else '<span class="muted">not a URL (e.g. in memory)</span>',
        ),
        (
            "strategy",
            html.escape(data.strategy)
            if data.strategy
            else '<span class="muted">not recorded</span>',
        ),
        ("objective" + ("s" if data.multi_objective else ""), objectives),
    ]
    if data.space:
        study_rows.append(("search space", html.escape(data.space)))
    counts = data.state_counts()
    badges = " ".join(
        f'<span class="badge s-{html.escape(state)}">{html.escape(state.lower())}: {n}</span>'
        for state, n in counts.items()
        if n or state in ("COMPLETE", "PRUNED", "FAIL")
    )
    excluded = len(data.trials) - len(data.counted)
    trial_rows = [
        ("total", f"{len(data.trials)}" + (f" ({excluded} excluded)" if excluded else "")),
        ("by state", badges),
    ]
    timing = data.timing()
    time_rows = [
        ("total trial time", _duration(timing["total"])),
        ("wall clock", _duration(timing["wall"])),
        (
            "per trial",
            f"mean {_duration(timing['mean'])}, median {_duration(timing['median'])}, max {_duration(timing['max'])}",
        ),
    ]
    cards = [
        _card("Study", _kv(study_rows)),
        _card("Trials", _kv(trial_rows) + _kv(time_rows)),
        _card("Best" if not data.multi_objective else "Pareto front", _best_html(data)),
    ]
    if importances:
        first_name, first = next(iter(importances.items()))
        rows = [(name, f"{value:.3f}") for name, value in list(first.items())[:8]]
        cards.append(
            _card(f"Importances ({EVALUATOR_LABELS.get(first_name, first_name)})", _kv(rows))
        )
    if data.lr_finder:
        suggestion = data.lr_finder.get("suggestion")
        text = f"{suggestion:.3g}" if suggestion is not None else "none"
        cards.append(
            _card(
                "LR finder",
                _kv(
                    [("suggested learning rate", text), ("points", str(len(data.lr_finder["lrs"])))]
                ),
            )
        )
    return '<div class="cards">' + "".join(cards) + "</div>"


def _card(title: str, body: str) -> str:
    return f'<div class="card"><h3>{html.escape(title)}</h3>{body}</div>'


def _best_html(data: StudyData) -> str:
    if not data.multi_objective:
        best = data.best_trial
        if best is None:
            return '<p class="muted">No trial completed yet.</p>'
        return _kv(
            [
                (data.objective_names[0], f"<b>{html.escape(_value(best.values[0]))}</b>"),
                ("trial", str(best.number)),
                ("duration", _duration(best.duration)),
                ("parameters", _params_html(best.params)),
            ]
        )
    front = data.best_trials
    if not front:
        return '<p class="muted">No trial completed yet.</p>'
    head = "".join(
        f"<th>{html.escape(n)}</th>" for n in ["trial", *data.objective_names, "configuration"]
    )
    sign = -1.0 if data.directions[0] == "maximize" else 1.0
    front = sorted(front, key=lambda t: sign * t.values[0])
    rows = []
    for t in front[:_FRONT_ROWS]:
        cells = [str(t.number), *(html.escape(_value(v)) for v in t.values or ())]
        params = ", ".join(
            f"{html.escape(k)}={html.escape(_value(v))}" for k, v in t.params.items()
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in [*cells, params]) + "</tr>")
    more = (
        f'<p class="muted">… and {len(front) - _FRONT_ROWS} more (see the table).</p>'
        if len(front) > _FRONT_ROWS
        else ""
    )
    return (
        f"<p>{len(front)} Pareto-optimal trial{'s' * (len(front) != 1)}.</p>"
        f'<table class="kv"><tr>{head}</tr>{"".join(rows)}</table>{more}'
    )


# -- table -------------------------------------------------------------------------------------
def _table_shell(data: StudyData) -> str:
    states = [s for s, n in data.state_counts().items() if n and s.isupper()]
    options = "".join(
        f'<option value="{html.escape(s)}">{html.escape(s.lower())}</option>' for s in states
    )
    sizes = "".join(
        f'<option value="{n}"{" selected" if n == 50 else ""}>{n} per page</option>'
        for n in (25, 50, 100, 500)
    )
    return f"""<div class="controls">
<input type="search" id="trials-search" placeholder="Filter trials (any column)" aria-label="filter trials">
<select id="trials-state" aria-label="state"><option value="">all states</option>{options}</select>
<select id="trials-size" aria-label="page size">{sizes}</select>
<button id="trials-first" aria-label="first page">&laquo;</button>
<button id="trials-prev" aria-label="previous page">&lsaquo;</button>
<span id="trials-page"></span>
<button id="trials-next" aria-label="next page">&rsaquo;</button>
<button id="trials-last" aria-label="last page">&raquo;</button>
<span id="trials-info" class="muted"></span>
</div>
<div class="tablewrap"><table class="trials" id="trials-table"><thead id="trials-head"></thead>
<tbody id="trials-body"></tbody></table></div>"""


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return float(f"{value:.8g}") if math.isfinite(value) else None
    return str(value)


def _table_json(data: StudyData) -> str:
    columns: list[dict[str, str]] = [
        {"name": "trial", "type": "int"},
        {"name": "state", "type": "state"},
    ]
    columns += [{"name": n, "type": "num"} for n in data.objective_names]
    columns += [{"name": "duration (s)", "type": "num"}, {"name": "started", "type": "text"}]
    columns += [{"name": p.name, "type": "num" if p.numeric else "text"} for p in data.params]
    columns += [{"name": "steps reported", "type": "int"}, {"name": "error", "type": "text"}]
    rows = [_row(t, data) for t in data.trials]
    best = [t.number for t in data.best_trials]
    return json.dumps(
        {"columns": columns, "rows": rows, "best": best}, separators=(",", ":"), allow_nan=False
    )


def _row(t: TrialRecord, data: StudyData) -> list[Any]:
    state = t.state if t.counted else f"{t.state} ({t.status})"
    values = list(t.values) if t.values else [None] * len(data.directions)
    error = t.error
    if error is not None and len(error) > _ERROR_CHARS:
        error = error[: _ERROR_CHARS - 1] + "…"
    return [
        t.number,
        state,
        *(_cell(v) for v in values),
        _cell(round(t.duration, 3) if t.duration is not None else None),
        t.start.strftime("%Y-%m-%d %H:%M:%S") if t.start is not None else None,
        *(_cell(t.params.get(p.name)) for p in data.params),
        len(t.intermediate),
        error,
    ]
