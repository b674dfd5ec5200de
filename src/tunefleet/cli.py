"""The ``tunefleet`` command: run a search from a script, and read what storages hold.

Commands:

* ``tunefleet tune SCRIPT.py``: import the script (as a module, not as ``__main__``),
  take its ``search`` (a tunefleet tuner such as ``RandomSearch``, or a ``*SearchCV``)
  and its ``data()`` (returning ``(X, y)`` or ``(x, y, fit_kwargs)``), apply the
  command's options, run the search with a progress bar and print the trials.
* ``tunefleet studies [STORAGE]``, ``tunefleet trials [STORAGE]``, ``tunefleet best
  [STORAGE]``, ``tunefleet delete STORAGE --study NAME``: read (or delete from) a
  storage only; nothing is imported from the scripts that filled it.

``STORAGE`` is a database URL (``sqlite:///tune.db``, ``postgresql://...``) or the path
of a SQLite file; the default is ``sqlite:///tunefleet.db`` in the current folder.
A search interrupted by Ctrl-C (or killed) keeps every completed trial: run the same
command again to resume it.
"""

from __future__ import annotations

import csv
import importlib.util
import inspect
import io
import json
import math
import os
import sys
import traceback
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import optuna
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunefleet.attrs import WORKER_ATTR
from tunefleet.dispatch import BACKENDS
from tunefleet.experiment import RESUME_MODES
from tunefleet.records import StudyData, TrialRecord, study_data, trials_table
from tunefleet.storage import UNAVAILABLE_EXIT, StorageUnavailable, open_storage
from tunefleet.strategies import SAMPLERS
from tunefleet.urls import mask_url

DEFAULT_STORAGE = "sqlite:///tunefleet.db"
_SCRIPT_CONVENTION = (
    "A script for `tunefleet tune` defines `search` (a tunefleet tuner such as "
    "RandomSearch, or a *SearchCV such as RandomizedSearchCV; or a function returning "
    "one) and `data()` (a function returning (X, y) or (x, y, fit_kwargs))."
)

app = typer.Typer(
    name="tunefleet",
    help="Tune Keras and scikit-learn models; read and manage the studies they leave.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(StrEnum):
    """Output formats of the reading commands."""

    table = "table"
    csv = "csv"
    json = "json"


def _out() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    return console


def _fail(message: str, code: int = 1) -> NoReturn:
    Console(stderr=True, width=200).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


# -- storages ---------------------------------------------------------------------------
StorageArg = Annotated[
    str,
    typer.Argument(
        help="Database URL (sqlite:///tune.db, postgresql://...) or SQLite file path.",
        show_default=True,
    ),
]
StudyOpt = Annotated[
    str | None,
    typer.Option("--study", "-s", help="Study name (optional when the storage holds one)."),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def storage_url(value: str | None) -> str:
    """A storage URL for ``value`` (a URL, a SQLite file path, or ``None``: the default)."""
    if value is None:
        return DEFAULT_STORAGE
    if "://" in value:
        return value
    return f"sqlite:///{value}"


def _existing_storage(value: str) -> optuna.storages.BaseStorage:
    """Open a storage for reading; a SQLite file that does not exist is an error."""
    url = storage_url(value)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:" and not os.path.exists(path):
            _fail(f"no storage at {mask_url(path)!r}: the file does not exist.")
    try:
        return open_storage(url)
    except ValueError as exc:
        _fail(str(exc))


def _study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def _load(storage: optuna.storages.BaseStorage, url: str, study: str | None) -> optuna.Study:
    names = _study_names(storage)
    if study is None:
        if len(names) != 1:
            listed = ", ".join(repr(n) for n in names) or "none"
            _fail(
                f"{mask_url(storage_url(url))} holds {len(names)} studies ({listed}); "
                "choose one with --study NAME.",
                code=2,
            )
        study = names[0]
    elif study not in names:
        listed = ", ".join(repr(n) for n in names) or "none"
        _fail(f"no study {study!r} in {mask_url(storage_url(url))}; it holds: {listed}.")
    return optuna.load_study(study_name=study, storage=storage)


# -- trials as rows ---------------------------------------------------------------------
def _note(record: TrialRecord) -> str:
    if record.status:
        return record.status
    return "" if not record.error else " ".join(record.error.split())[:120]


def _finite(value: Any) -> Any:
    """``None`` for NaN (JSON has no NaN), else ``value``."""
    return None if isinstance(value, float) and math.isnan(value) else value


def trial_rows(
    study: optuna.Study | StudyData, *, counted_only: bool = False
) -> list[dict[str, Any]]:
    """One dict per trial, read through :mod:`tunefleet.records`.

    The columns of ``trials_dataframe`` (``number``, ``state``, ``value``, a
    ``value_<name>`` per further objective, ``std``, ``duration`` in seconds, ``error``,
    ``status``), with the parameters as one dict ``params``, the per-fold test scores by
    metric as ``cv`` and a one-line ``note`` (the status, else the error's start).
    ``counted_only`` leaves out trials that do not count (interrupted, surplus).
    """
    data = study if isinstance(study, StudyData) else study_data(study)
    _, table = trials_table(data)
    rows = []
    for record, flat in zip(data.trials, table, strict=True):
        if counted_only and not record.counted:
            continue
        row = {k: _finite(v) for k, v in flat.items() if k not in ("error", "status")}
        row = {k: v for k, v in row.items() if not k.startswith("param_")}
        row["params"] = {k[len("param_") :]: v for k, v in flat.items() if k.startswith("param_")}
        row.update(cv=record.cv, error=record.error, status=record.status, note=_note(record))
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    """A table cell (rich markup in values, e.g. ``[0.1, 1]``, is shown as text)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return escape(str(value))


def _param_names(rows: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        for name in row["params"]:
            names.setdefault(name)
    return list(names)


def _write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _write_csv(rows: list[dict[str, Any]], fields: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write(buffer.getvalue())


def _print_rows(rows: list[dict[str, Any]], fmt: Format, title: str) -> None:
    if fmt is Format.json:
        _write_json(rows)
        return
    names = _param_names(rows)
    values = [k for k in (rows[0] if rows else {}) if k.startswith("value_")]
    head = ["number", "state", "value", *values, "std", "duration"]
    flat = [
        {
            **{k: r[k] for k in head},
            **{f"param_{n}": r["params"].get(n) for n in names},
            **{k: r[k] for k in ("error", "status", "note")},
        }
        for r in rows
    ]
    if fmt is Format.csv:
        _write_csv(flat, [*head, *(f"param_{n}" for n in names), "error", "status", "note"])
        return
    table = Table(title=title)
    shown = ["trial", "state", "value", *values, "std", "seconds", *names, "note"]
    for column in shown:
        table.add_column(column, justify="left" if column in ("state", "note") else "right")
    for r in flat:
        table.add_row(
            str(r["number"]),
            r["state"],
            *(_cell(r[k]) for k in head[2:]),
            *(_cell(r[f"param_{n}"]) for n in names),
            _cell(r["note"]),
        )
    _out().print(table)


def _print_best(data: StudyData, fmt: Format = Format.table) -> None:
    best = data.best_trial
    if best is None and data.multi_objective:
        _fail(
            f"study {data.study_name!r} optimizes {len(data.directions)} objectives, so it has "
            "no single best trial: `tunefleet trials` lists every trial's values and "
            "`tunefleet report` draws the Pareto front."
        )
    if best is None:
        _fail(f"study {data.study_name!r} has no completed trial yet.")
    params = best.param_values()
    if fmt is Format.json:
        _write_json(
            {"study": data.study_name, "number": best.number, "value": best.value, "params": params}
        )
        return
    if fmt is Format.csv:
        _write_csv(
            [{"parameter": k, "value": v} for k, v in params.items()], ["parameter", "value"]
        )
        return
    console = _out()
    console.print(
        f"Best trial of {data.study_name!r}: #{best.number}, value {_cell(best.value)}",
        highlight=False,
    )
    table = Table()
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for name, value in params.items():
        table.add_row(name, _cell(value))
    console.print(table)


# -- reading commands -------------------------------------------------------------------
@app.command()
def studies(
    storage: StorageArg = DEFAULT_STORAGE,
    fmt: FormatOpt = Format.table,
) -> None:
    """List the studies in STORAGE with their trial counts and best values."""
    store = _existing_storage(storage)
    rows = []
    for name in _study_names(store):
        data = study_data(optuna.load_study(study_name=name, storage=store))
        count = Counter(t.state for t in data.trials)
        best = data.best_trial
        starts = [t.start for t in data.trials if t.start is not None]
        rows.append(
            {
                "study": name,
                "direction": ",".join(data.directions),
                "trials": len(data.trials),
                "complete": count["COMPLETE"],
                "pruned": count["PRUNED"],
                "failed": count["FAIL"],
                "running": count["RUNNING"],
                "best_value": None if best is None else best.value,
                "best_trial": None if best is None else best.number,
                "started": str(min(starts)) if starts else None,
            }
        )
    if fmt is Format.json:
        _write_json(rows)
        return
    if fmt is Format.csv:
        _write_csv(rows, list(rows[0]) if rows else ["study"])
        return
    table = Table(title=f"studies in {mask_url(storage_url(storage))}")
    for column in ("study", "direction", "trials", "complete", "pruned", "failed", "running"):
        table.add_column(column, justify="left" if column in ("study", "direction") else "right")
    table.add_column("best value", justify="right")
    table.add_column("best trial", justify="right")
    for r in rows:
        table.add_row(
            r["study"],
            r["direction"],
            *(str(r[k]) for k in ("trials", "complete", "pruned", "failed", "running")),
            _cell(r["best_value"]),
            _cell(r["best_trial"]),
        )
    _out().print(table)


@app.command()
def trials(
    storage: StorageArg = DEFAULT_STORAGE,
    study: StudyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show every trial of a study: state, value, duration, parameters, errors."""
    store = _existing_storage(storage)
    loaded = _load(store, storage, study)
    _print_rows(trial_rows(loaded), fmt, f"trials of {loaded.study_name!r}")


@app.command()
def best(
    storage: StorageArg = DEFAULT_STORAGE,
    study: StudyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show the best trial of a study and its parameters."""
    store = _existing_storage(storage)
    _print_best(study_data(_load(store, storage, study)), fmt)


@app.command()
def delete(
    study: Annotated[str, typer.Option("--study", "-s", help="The study to delete.")],
    storage: StorageArg = DEFAULT_STORAGE,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a study (and all its trials) from STORAGE; asks first unless --yes."""
    store = _existing_storage(storage)
    loaded = _load(store, storage, study)
    n = len(loaded.get_trials(deepcopy=False))
    where = mask_url(storage_url(storage))
    if not yes and not typer.confirm(f"Delete study {study!r} and its {n} trials from {where}?"):
        Console(stderr=True).print("Nothing deleted.")
        raise typer.Exit(1)
    optuna.delete_study(study_name=study, storage=store)
    _out().print(f"Deleted study {study!r} ({n} trials) from {where}.")


# -- tune -------------------------------------------------------------------------------
def load_script(path: Path) -> Any:
    """Import ``path`` as a module (not as ``__main__``), its folder first on ``sys.path``.

    The module is registered under its file's stem when that name is free, so worker
    processes (``--jobs``) can import it again to unpickle the build functions.
    """
    if not path.is_file():
        _fail(f"no such script: {str(path)!r}.", code=2)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    if not name.isidentifier() or name in sys.modules:
        name = f"_tunefleet_script_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        _fail(f"{str(path)!r} cannot be imported as a Python module.", code=2)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        where = f"{exc.filename or path}:{exc.lineno}" if exc.lineno else str(exc.filename or path)
        _fail(f"{where}: SyntaxError: {exc.msg}; {str(path)!r} cannot be imported.", code=2)
    except Exception as exc:
        sys.modules.pop(name, None)
        _script_error(exc, path, "importing it")
    return module


def _script_error(exc: BaseException, path: Path, doing: str) -> NoReturn:
    """Fail with the script's file and line where ``exc`` was raised (no traceback).

    ``TUNEFLEET_TRACEBACK=1`` re-raises instead, for the full traceback.
    """
    if os.environ.get("TUNEFLEET_TRACEBACK"):
        raise exc
    script = os.path.realpath(path)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename]
    own = [f for f in frames if os.path.realpath(f.filename) == script]
    frame = own[-1] if own else (frames[-1] if frames else None)
    where = f"{frame.filename}:{frame.lineno}" if frame is not None else str(path)
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    _fail(
        f"{where}: {message} (raised while {doing} {str(path)!r}; set TUNEFLEET_TRACEBACK=1 "
        "to see the traceback)",
        code=2,
    )


def _call_script(function: Any, path: Path, what: str) -> Any:
    """Call ``function`` of the script; an exception it raises fails as :func:`_script_error`."""
    try:
        return function()
    except Exception as exc:
        _script_error(exc, path, f"calling {what} of")


def _takes_only_hp(function: Any) -> bool:
    """Whether ``function`` is a Keras Tuner-style build function: ``build_model(hp)``."""
    try:
        parameters = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == ["hp"]


def _check_output(path: Path, option: str = "--output") -> None:
    """Fail (exit code 2) before any work when ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        _fail(f"{option} {str(path)!r} is a folder; expected a file path.", code=2)
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        _fail(f"{option} {str(path)!r} cannot be written: {str(parent)!r} {what}.", code=2)
    if not os.access(parent, os.W_OK):
        _fail(f"{option} {str(path)!r} cannot be written: no permission in {str(parent)!r}.", 2)


def _is_tuner(obj: Any) -> bool:
    module = sys.modules.get("tunefleet.tuners.base_tuner")
    return module is not None and isinstance(obj, module.BaseTuner)


def _is_search_cv(obj: Any) -> bool:
    from tunefleet.sklearn.search import BaseSearchCV

    return isinstance(obj, BaseSearchCV)


def _script_objects(module: Any, path: Path) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    missing = [n for n in ("search", "data") if not hasattr(module, n)]
    if missing:
        _fail(f"{str(path)!r} does not define {' and '.join(missing)}. {_SCRIPT_CONVENTION}", 2)
    search = module.search
    if callable(search) and not (_is_tuner(search) or _is_search_cv(search)):
        search = _call_script(search, path, "search()")
    if not (_is_tuner(search) or _is_search_cv(search)):
        _fail(
            f"`search` in {str(path)!r} is a {type(search).__name__}, not a tunefleet tuner "
            f"or *SearchCV. {_SCRIPT_CONVENTION}",
            2,
        )
    if not callable(module.data):
        _fail(f"`data` in {str(path)!r} must be a function. {_SCRIPT_CONVENTION}", 2)
    data = _call_script(module.data, path, "data()")
    if (
        not isinstance(data, tuple)
        or len(data) not in (2, 3)
        or (len(data) == 3 and not isinstance(data[2], dict))
    ):
        _fail(
            f"data() in {str(path)!r} returned {type(data).__name__}; expected (X, y) or "
            f"(x, y, fit_kwargs) with fit_kwargs a dict. {_SCRIPT_CONVENTION}",
            2,
        )
    fit_kwargs = dict(data[2]) if len(data) == 3 else {}
    return search, (data[0], data[1]), fit_kwargs


def _configure_tuner(
    tuner: Any,
    trials: int | None,
    url: str | None,
    study: str | None,
    jobs: int | None,
    strategy: str | None,
    resume: str | None = None,
    backend: str | None = None,
    ray_address: str | None = None,
) -> None:
    if resume is not None:
        tuner.resume = resume
    if backend is not None:
        tuner.backend = backend
    if ray_address is not None:
        tuner.ray_address = ray_address
    if trials is not None:
        if tuner._plans_trials:
            _fail(
                f"--trials does not apply to {type(tuner).__name__}: it plans its trials from "
                "max_epochs, factor and hyperband_iterations.",
                2,
            )
        tuner.max_trials = trials
    if url is not None:
        tuner.storage = url
    if study is not None:
        tuner.study_name = study
    if jobs is not None:
        tuner.n_jobs = jobs
    if strategy is not None:
        tuner.strategy = strategy
    try:
        tuner._check_settings()
    except (TypeError, ValueError) as exc:
        _fail(str(exc), 2)


_OWN_STRATEGY = {"GridSearchCV": "grid", "RandomizedSearchCV": "random"}


def _configure_search_cv(
    search: Any,
    trials: int | None,
    url: str | None,
    study: str | None,
    jobs: int | None,
    strategy: str | None,
    resume: str | None = None,
    backend: str | None = None,
    ray_address: str | None = None,
) -> None:
    params = search.get_params(deep=False)
    name = type(search).__name__
    updates: dict[str, Any] = {}
    if resume is not None:
        updates["resume"] = resume
    if backend is not None:
        updates["backend"] = backend
    if ray_address is not None:
        updates["ray_address"] = ray_address
    if trials is not None:
        if "n_iter" not in params:
            _fail(f"--trials does not apply to {name}: it runs every point of its grid.", 2)
        updates["n_iter"] = trials
    if url is not None:
        updates["storage"] = url
    if study is not None:
        updates["study_name"] = study
    if jobs is not None:
        updates["n_jobs"] = jobs
    if strategy is not None:
        if "sampler" in params:
            updates["sampler"] = strategy
        elif "algorithm" in params and strategy in ("cmaes", "nsga2"):
            updates["algorithm"] = strategy
        elif _OWN_STRATEGY.get(name) != strategy:
            _fail(
                f"--strategy {strategy} does not apply to {name}; use BayesSearchCV (any "
                "sampler) or a tunefleet tuner, or leave --strategy out.",
                2,
            )
    search.set_params(**updates)


@app.command()
def tune(
    script: Annotated[Path, typer.Argument(help="Python file defining `search` and `data()`.")],
    trials: Annotated[
        int | None,
        typer.Option("--trials", "-n", min=1, help="Trials in all (resumed ones count)."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help=f"Storage URL or SQLite file; if left out, the search's own, else {DEFAULT_STORAGE}."
        ),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", "-s", help="Study name.")] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", help="Trials at once: worker processes, or Ray actors (-1: all)."
        ),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help=f"Sampling strategy: {', '.join(SAMPLERS)}.")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="'force': continue a stored study even if the experiment (estimator, "
            "scoring, cv, data) differs; 'auto' refuses it."
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="Where trials run: 'local' (this machine) or 'ray' (a Ray cluster)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="The Ray cluster to connect to (default: RAY_ADDRESS, else a local one)."
        ),
    ] = None,
) -> None:
    """Run (or resume) the search a script defines; options override the script's settings.

    The script defines `search` (a tunefleet tuner, e.g. RandomSearch, or a *SearchCV) and `data()` returning (X, y) or (x, y, fit_kwargs). It is imported as a module, so code under `if __name__ == "__main__":` does not run.

    Ctrl-C keeps every completed trial: run the same command again to resume.
    """
    if strategy is not None and strategy not in SAMPLERS:
        _fail(
            f"--strategy {strategy!r} is not a known strategy; expected one of {list(SAMPLERS)}.", 2
        )
    if backend is not None and backend not in BACKENDS:
        _fail(f"--backend {backend!r} is not a backend; expected one of {list(BACKENDS)}.", 2)
    if resume is not None and resume not in RESUME_MODES:
        _fail(f"--resume {resume!r} is not a resume mode; expected one of {list(RESUME_MODES)}.", 2)
    module = load_script(script)
    search, xy, fit_kwargs = _script_objects(module, script)
    tuner = _is_tuner(search)
    # a tuner's own storage is its project's study.db unless it names one
    own = search._storage_arg() if tuner else search.get_params(deep=False).get("storage")
    url = storage_url(storage) if storage is not None or own is None else None
    if tuner:
        _configure_tuner(search, trials, url, study, jobs, strategy, resume, backend, ray_address)
    else:
        _configure_search_cv(
            search, trials, url, study, jobs, strategy, resume, backend, ray_address
        )
    result = _run_search(search, xy, fit_kwargs)
    if result is None:
        _fail("the search stored no study.")
    data = study_data(result)
    _print_rows(trial_rows(data, counted_only=True), Format.table, f"trials of {data.study_name!r}")
    if data.best_trial is not None:
        _print_best(data)


def _run_search(search: Any, xy: tuple[Any, Any], fit_kwargs: dict[str, Any]) -> Any:
    """Run a configured search or tuner; its study, or a clean exit on Ctrl-C and errors."""
    try:
        if _is_tuner(search):
            search.search(*xy, **fit_kwargs)
            return search.oracle.study
        search.fit(*xy, **fit_kwargs)
        return search.study_
    except KeyboardInterrupt:
        Console(stderr=True).print(
            "\nInterrupted. Completed trials are stored; run the same command again to resume."
        )
        raise typer.Exit(130) from None
    except StorageUnavailable as exc:  # the database stayed out of reach: resume later
        _fail(str(exc), code=UNAVAILABLE_EXIT)
    except (ValueError, TypeError, RuntimeError) as exc:
        _user_error(exc)


def _user_error(exc: Exception) -> NoReturn:
    """Fail with the message of an error in the user's settings or script (no traceback)."""
    if os.environ.get("TUNEFLEET_TRACEBACK"):
        raise exc
    _fail(f"{exc}\n(set TUNEFLEET_TRACEBACK=1 to see the traceback)")


@app.command()
def worker(
    storage: Annotated[str, typer.Argument(help="The running study's storage URL or SQLite file.")],
    script: Annotated[Path, typer.Argument(help="The Python file that defines the search.")],
    study: Annotated[str, typer.Option("--study", "-s", help="The study to join.")],
    trials: Annotated[
        int | None,
        typer.Option("--trials", "-n", min=1, help="Trials in all, if the study's run set it."),
    ] = None,
) -> None:
    """Join a running study from any machine and run its trials until its budget is spent.

    For clusters without Ray (Slurm job arrays, SSH): start the search once (`tunefleet tune SCRIPT.py --storage URL --study NAME`), then run `tunefleet worker URL SCRIPT.py --study NAME` on as many machines as you like. Each asks trials within the study's budget, runs them and tells them; a worker does not refit the best model (the `tune` run, or a later one, does). The study must exist; a worker that dies mid-trial leaves its trial to be run again.
    """
    url = storage_url(storage)
    _load(_existing_storage(storage), url, study)  # it must exist: a worker joins
    module = load_script(script)
    search, xy, fit_kwargs = _script_objects(module, script)
    if _is_tuner(search):
        _configure_tuner(search, trials, url, study, None, None)
    else:
        _configure_search_cv(search, trials, url, study, None, None)
        search.set_params(refit=False)
    result = _run_search(search, xy, fit_kwargs)
    mine = [
        t
        for t in result.get_trials(deepcopy=False)
        if str(t.user_attrs.get(WORKER_ATTR, "")).split(":")[1:2] == [str(os.getpid())]
    ]
    Console().print(
        f"worker {os.getpid()}: ran {len(mine)} trial(s) of study {study!r}; its budget is spent."
    )


# -- report, dashboard, lr-find ---------------------------------------------------------
@app.command()
def report(
    storage: StorageArg = DEFAULT_STORAGE,
    study: StudyOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
) -> None:
    """Write a self-contained HTML report (plots, trials table) of a study."""
    from tunefleet.report import write_report

    _check_output(output)
    store = _existing_storage(storage)
    loaded = _load(store, storage, study)
    try:
        path = write_report(store, loaded.study_name, output)
    except OSError as exc:
        _fail(f"--output {str(output)!r} cannot be written: {exc.strerror or exc}.", code=2)
    _out().print(f"Wrote {path} ({path.stat().st_size / 2**20:.1f} MiB).")


@app.command()
def dashboard(
    storage: StorageArg = DEFAULT_STORAGE,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8080,
) -> None:
    """Serve a live dashboard (optuna-dashboard) of STORAGE until Ctrl-C."""
    from tunefleet.report import serve_dashboard

    _existing_storage(storage)
    serve_dashboard(storage_url(storage), host=host, port=port)


@app.command("lr-find")
def lr_find_command(
    script: Annotated[
        Path, typer.Argument(help="A script exposing data() and build_model (or model).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The PNG plot to write.")] = Path(
        "lr_find.png"
    ),
    start_lr: Annotated[float, typer.Option(help="First learning rate.")] = 1e-5,
    end_lr: Annotated[float, typer.Option(help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(help="Number of training batches.")] = 200,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 32,
    storage: Annotated[
        str | None,
        typer.Option(help="Store the run in a study of this storage (URL or SQLite file)."),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(
            "--study", "-s", help="The existing study to store the run in (with --storage)."
        ),
    ] = None,
) -> None:
    """Run the learning-rate range test on a script's model; print the suggestion, plot it.

    With --storage (and --study when the storage holds several studies), the run is stored
    in that existing study, and `tunefleet report` shows its curve.
    """
    from tunefleet.keras import lr_find

    if study is not None and storage is None:
        _fail("--study needs --storage: the storage that holds the study.", code=2)
    _check_output(output)
    target_study = None
    if storage is not None:  # before the test runs: a wrong name fails at once
        target_study = _load(_existing_storage(storage), storage, study)
    module = load_script(script)
    target = getattr(module, "build_model", None) or getattr(module, "model", None)
    data = getattr(module, "data", None)
    if target is None or not callable(data):
        _fail(
            f"{script} must define data() (returning x, y) and build_model (a function returning "
            "a compiled Keras model) or model.",
            code=2,
        )
    loaded = _call_script(data, script, "data()")
    if _takes_only_hp(target):  # a tuner's build function: its hyperparameters' defaults
        from tunefleet.tuners import HyperParameters

        target = target(HyperParameters())
        _out().print("build_model(hp): each hyperparameter at its default value.")
    try:
        result = lr_find(
            target,
            loaded[0],
            loaded[1],
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=steps,
            batch_size=batch_size,
        )
    except (ValueError, TypeError, RuntimeError) as exc:
        _user_error(exc)
    try:
        result.plot(path=str(output))
    except OSError as exc:
        _fail(f"--output {str(output)!r} cannot be written: {exc.strerror or exc}.", code=2)
    _out().print(
        f"suggested learning rate: {result.suggestion:.3g} ({result.method}); plot: {output}"
    )
    if target_study is not None:
        result.save_to_study(target_study)
        _out().print(f"stored in study {target_study.study_name!r}; see `tunefleet report`.")


def main() -> None:
    """Entry point of the ``tunefleet`` console script."""
    try:
        app(prog_name="tunefleet")
    except StorageUnavailable as exc:  # a reading command whose database went away
        Console(stderr=True, width=200).print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False
        )
        sys.exit(UNAVAILABLE_EXIT)
