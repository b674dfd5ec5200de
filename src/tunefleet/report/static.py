"""The report's figures as image files (PNG, SVG, PDF, JPEG, WebP) or standalone HTML.

Images are rendered by Kaleido, plotly's exporter, which drives a local Chrome or
Chromium (found on ``PATH``, or named by the ``BROWSER_PATH`` environment variable;
Debian/Ubuntu: ``apt-get install chromium``; anywhere with internet: ``plotly_get_chrome``).
The figures are the very ones of the HTML report, so a paper's figure and the report
agree. A path ending in ``.html`` needs no browser: it writes an interactive,
self-contained page of that one figure.

Starting the browser takes a few seconds; :func:`write_images` writes every figure
with one browser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
import plotly.io as pio

from tunefleet.records import StudyData, as_study_data
from tunefleet.report import figures
from tunefleet.space import SearchSpace

IMAGE_FORMATS = ("png", "svg", "pdf", "jpeg", "jpg", "webp")
"""File suffixes written through Kaleido; ``.html`` is written by plotly directly."""

_DEFAULT_SIZE = (1000, 520)


def _format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "html" or suffix in IMAGE_FORMATS:
        return "jpeg" if suffix == "jpg" else suffix
    raise ValueError(
        f"path={str(path)!r}: the suffix {path.suffix or '(none)'!r} is not a known format; "
        f"expected one of {['.' + f for f in (*IMAGE_FORMATS, 'html')]}."
    )


def _browser_error(exc: BaseException) -> RuntimeError | None:
    if type(exc).__name__ in ("ChromeNotFoundError", "BrowserFailedError", "BrowserDepsError"):
        return RuntimeError(
            "Writing images needs Chrome or Chromium for Kaleido, and none could be started "
            f"({type(exc).__name__}: {exc}). Install one (Debian/Ubuntu: 'apt-get install "
            "chromium'), point the BROWSER_PATH environment variable at it, or run "
            "'plotly_get_chrome'. A path ending in '.html' needs no browser."
        )
    return None


def save_figure(
    fig: go.Figure,
    path: str | Path,
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = 2.0,
) -> Path:
    """Write one plotly figure as an image (by the path's suffix) or a standalone page.

    Args:
        fig: the figure.
        path: where to write: ``.png``, ``.svg``, ``.pdf``, ``.jpeg``/``.jpg``,
            ``.webp`` or ``.html``.
        width: image width in CSS pixels (default 1000).
        height: image height (default: the figure's own height).
        scale: pixel density of raster images (2 = sharp on high-DPI screens and in print).

    Returns:
        The path written.

    Example:

    >>> import os, tempfile, optuna
    >>> from tunefleet.report import history_figure, save_figure
    >>> study = optuna.create_study()
    >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
    >>> path = os.path.join(tempfile.mkdtemp(), "history.html")  # .svg: needs Chrome
    >>> save_figure(history_figure(study), path).name
    'history.html'
    """
    return write_figures([fig], [path], width=width, height=height, scale=scale)[0]


def write_figures(
    figs: Sequence[go.Figure],
    paths: Sequence[str | Path],
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = 2.0,
) -> list[Path]:
    """Write several figures with one browser (see :func:`save_figure`)."""
    if len(figs) != len(paths):
        raise ValueError(f"got {len(figs)} figures but {len(paths)} paths.")
    out = [Path(p) for p in paths]
    formats = [_format(p) for p in out]
    for p in out:
        p.parent.mkdir(parents=True, exist_ok=True)
    images: list[tuple[go.Figure, Path, str]] = []
    for fig, path, fmt in zip(figs, out, formats, strict=True):
        if fmt == "html":
            fig.write_html(path, include_plotlyjs=True, full_html=True)
        else:
            images.append((fig, path, fmt))
    if images:
        try:
            pio.write_images(
                [f for f, _, _ in images],
                [p for _, p, _ in images],
                format=[fmt for _, _, fmt in images],
                width=width or _DEFAULT_SIZE[0],
                height=[height or int(f.layout.height or _DEFAULT_SIZE[1]) for f, _, _ in images],
                scale=scale,
            )
        except Exception as exc:
            error = _browser_error(exc)
            if error is not None:
                raise error from exc
            raise
    return out


def _plot(builder: Callable[..., go.Figure | None], what: str) -> Callable[..., Path]:
    def plot(
        study: optuna.Study | StudyData,
        path: str | Path,
        *,
        space: SearchSpace | None = None,
        width: int | None = None,
        height: int | None = None,
        scale: float = 2.0,
        **options: Any,
    ) -> Path:
        data = as_study_data(study, space=space)
        fig = builder(data, **options)
        if fig is None:
            raise ValueError(
                f"study {data.study_name!r} has nothing to draw for the {what}: "
                f"{_why(builder, data)}"
            )
        return save_figure(fig, path, width=width, height=height, scale=scale)

    return plot


def _why(builder: Callable[..., Any], data: StudyData) -> str:
    name = builder.__name__
    if name == "pareto_front_figure":
        return "it has a single objective."
    if name == "lr_finder_figure":
        return "no LR finder run is stored (study user attribute 'tunefleet:lr_finder')."
    if name == "learning_curves_figure":
        return "no trial reported intermediate values."
    if name == "contour_figure":
        return "it needs two parameters and at least three complete trials."
    if name == "importance_figure":
        return "it needs at least two complete trials with a varying parameter."
    return f"it holds {len(data.complete)} complete trials."


_DOC = """Write the {what} of a study to ``path`` (PNG, SVG, PDF, JPEG, WebP or HTML).

    Args:
        study: the study (``search.study_``, any ``optuna.Study``) or a
            :class:`~tunefleet.records.StudyData`.
        path: the file; its suffix picks the format.
        space: the search's space, to decode parameters exactly (default: stored).
        width: image width in pixels (default 1000).
        height: image height (default: the figure's).
        scale: pixel density of raster images.
        **options: passed to :func:`tunefleet.report.figures.{builder}`.

    Returns:
        The path written.

    Raises:
        ValueError: when the study has nothing to draw for this figure.
        RuntimeError: when no Chrome/Chromium can be started for an image format.

    Example:

    >>> import os, tempfile, optuna
    >>> from tunefleet.report import {name}
{study}
    >>> path = os.path.join(tempfile.mkdtemp(), "{stem}.html")  # "{file}" needs Chrome
    >>> {name}(study, path).name
    '{stem}.html'
    """

# the studies of the examples: one objective with a reported value and an LR finder run,
# and two objectives
_EXAMPLE_STUDY = """\
    >>> from tunefleet.attrs import LR_FINDER_ATTR
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> study.set_user_attr(LR_FINDER_ATTR, {"lrs": [1e-4, 1e-2], "losses": [1.0, 0.5]})
    >>> def objective(trial):
    ...     x, y = trial.suggest_float("x", -1, 1), trial.suggest_float("y", 0, 1)
    ...     trial.report(x**2, step=0)
    ...     return x**2 + y
    >>> study.optimize(objective, n_trials=8)"""
_EXAMPLE_FRONT = """\
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> for accuracy, size in [(0.9, 100), (0.8, 10), (0.7, 50)]:
    ...     study.add_trial(optuna.trial.create_trial(values=[accuracy, size]))"""


def _make(
    name: str, builder: Callable[..., Any], what: str, file: str, study: str = _EXAMPLE_STUDY
) -> Callable[..., Path]:
    fn = _plot(builder, what)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = _DOC.format(
        what=what,
        builder=builder.__name__,
        name=name,
        file=file,
        stem=Path(file).stem,
        study=study,
    )
    return fn


plot_history = _make("plot_history", figures.history_figure, "optimization history", "history.png")
plot_parallel_coordinates = _make(
    "plot_parallel_coordinates",
    figures.parallel_coordinates_figure,
    "parallel coordinates",
    "parallel.svg",
)
plot_importances = _make(
    "plot_importances", figures.importance_figure, "parameter importances", "importances.pdf"
)
plot_slice = _make("plot_slice", figures.slice_figure, "slice view", "slice.png")
plot_contour = _make("plot_contour", figures.contour_figure, "contour view", "contour.png")
plot_learning_curves = _make(
    "plot_learning_curves", figures.learning_curves_figure, "learning curves", "curves.png"
)
plot_pareto_front = _make(
    "plot_pareto_front", figures.pareto_front_figure, "Pareto front", "pareto.svg", _EXAMPLE_FRONT
)
plot_lr_finder = _make("plot_lr_finder", figures.lr_finder_figure, "LR finder curve", "lr.png")


def write_images(
    study: optuna.Study | StudyData,
    directory: str | Path,
    *,
    format: str = "png",
    space: SearchSpace | None = None,
    width: int | None = None,
    scale: float = 2.0,
) -> dict[str, Path]:
    """Write every figure that applies to the study into ``directory``, one browser start.

    Files are named after the figures: ``history.png``, ``parallel_coordinates.png``,
    ``importances.png``, ``slice.png``, ``contour.png``, ``learning_curves.png``,
    ``pareto_front.png``, ``lr_finder.png`` (those that apply).

    Args:
        study: the study or a :class:`~tunefleet.records.StudyData`.
        directory: the folder (created if needed).
        format: ``"png"``, ``"svg"``, ``"pdf"``, ``"jpeg"``, ``"webp"`` or ``"html"``.
        space: the search's space (default: stored).
        width: image width in pixels.
        scale: pixel density of raster images.

    Returns:
        figure name -> path written.

    Example:

    >>> import tempfile, optuna
    >>> from tunefleet.report import write_images
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
    >>> written = write_images(study, tempfile.mkdtemp(), format="html")  # "svg": Chrome
    >>> [path.name for path in written.values()]
    ['history.html', 'parallel_coordinates.html', 'importances.html', 'slice.html']
    """
    fmt = format.lower().lstrip(".")
    if fmt not in (*IMAGE_FORMATS, "html"):
        raise ValueError(
            f"format={format!r} is not known; expected one of {[*IMAGE_FORMATS, 'html']}."
        )
    data = as_study_data(study, space=space)
    made = figures.build_figures(data)
    folder = Path(directory)
    paths = [folder / f"{name}.{fmt}" for name in made]
    written = write_figures(list(made.values()), paths, width=width, scale=scale)
    return dict(zip(made, written, strict=True))
