"""The ``tunefleet`` commands (Typer); see :mod:`tunefleet.cli` for what each does."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, NoReturn

import optuna
import typer
from rich.console import Console

from tunefleet.attrs import WORKER_ATTR
from tunefleet.cli.output import (
    Format,
    console,
    fail,
    print_best,
    print_error,
    print_rows,
    print_studies,
    trial_rows,
)
from tunefleet.cli.script import (
    call_script,
    configure_search_cv,
    configure_tuner,
    is_tuner,
    load_script,
    script_objects,
    takes_only_hp,
)
from tunefleet.compilation_cache import cache_directory, enable_compilation_cache
from tunefleet.dispatch import BACKENDS
from tunefleet.experiment import RESUME_MODES
from tunefleet.records import study_data
from tunefleet.storage import UNAVAILABLE_EXIT, StorageUnavailable, open_storage
from tunefleet.strategies import SAMPLERS
from tunefleet.urls import mask_url

DEFAULT_STORAGE = "sqlite:///tunefleet.db"

app = typer.Typer(
    name="tunefleet",
    help="Tune Keras and scikit-learn models; read and manage the studies they leave.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
CompilationCacheOpt = Annotated[
    str | None,
    typer.Option(
        "--compilation-cache",
        envvar="TUNEFLEET_COMPILATION_CACHE",
        help="Folder where JAX keeps compiled programs for later runs and worker processes; "
        "'off' for none. Default: ~/.cache/tunefleet/jax, unless JAX_COMPILATION_CACHE_DIR "
        "is set.",
        show_default=False,
    ),
]


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
            fail(f"no storage at {mask_url(path)!r}: the file does not exist.")
    try:
        return open_storage(url)
    except ValueError as exc:
        fail(str(exc))


def _study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def _load(storage: optuna.storages.BaseStorage, url: str, study: str | None) -> optuna.Study:
    names = _study_names(storage)
    if study is None:
        if len(names) != 1:
            listed = ", ".join(repr(n) for n in names) or "none"
            fail(
                f"{mask_url(storage_url(url))} holds {len(names)} studies ({listed}); "
                "choose one with --study NAME.",
                code=2,
            )
        study = names[0]
    elif study not in names:
        listed = ", ".join(repr(n) for n in names) or "none"
        fail(f"no study {study!r} in {mask_url(storage_url(url))}; it holds: {listed}.")
    return optuna.load_study(study_name=study, storage=storage)


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
    print_studies(rows, fmt, f"studies in {mask_url(storage_url(storage))}")


@app.command()
def trials(
    storage: StorageArg = DEFAULT_STORAGE,
    study: StudyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show every trial of a study: state, value, duration, parameters, errors."""
    store = _existing_storage(storage)
    loaded = _load(store, storage, study)
    print_rows(trial_rows(loaded), fmt, f"trials of {loaded.study_name!r}")


@app.command()
def best(
    storage: StorageArg = DEFAULT_STORAGE,
    study: StudyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show the best trial of a study and its parameters."""
    store = _existing_storage(storage)
    print_best(study_data(_load(store, storage, study)), fmt)


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
    console().print(f"Deleted study {study!r} ({n} trials) from {where}.")


# -- tune -------------------------------------------------------------------------------
def _check_output(path: Path, option: str = "--output") -> None:
    """Fail (exit code 2) before any work when ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        fail(f"{option} {str(path)!r} is a folder; expected a file path.", code=2)
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        fail(f"{option} {str(path)!r} cannot be written: {str(parent)!r} {what}.", code=2)
    if not os.access(parent, os.W_OK):
        fail(f"{option} {str(path)!r} cannot be written: no permission in {str(parent)!r}.", 2)


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
    compilation_cache: CompilationCacheOpt = None,
) -> None:
    """Run (or resume) the search a script defines; options override the script's settings.

    The script defines `search` (a tunefleet tuner, e.g. RandomSearch, or a *SearchCV) and `data()` returning (X, y) or (x, y, fit_kwargs). It is imported as a module, so code under `if __name__ == "__main__":` does not run.

    Ctrl-C keeps every completed trial: run the same command again to resume.
    """
    if strategy is not None and strategy not in SAMPLERS:
        fail(
            f"--strategy {strategy!r} is not a known strategy; expected one of {list(SAMPLERS)}.", 2
        )
    if backend is not None and backend not in BACKENDS:
        fail(f"--backend {backend!r} is not a backend; expected one of {list(BACKENDS)}.", 2)
    if resume is not None and resume not in RESUME_MODES:
        fail(f"--resume {resume!r} is not a resume mode; expected one of {list(RESUME_MODES)}.", 2)
    module = load_script(script)
    _use_compilation_cache(compilation_cache)
    search, xy, fit_kwargs = script_objects(module, script)
    tuner = is_tuner(search)
    # a tuner's own storage is its project's study.db unless it names one
    own = search._storage_arg() if tuner else search.get_params(deep=False).get("storage")
    url = storage_url(storage) if storage is not None or own is None else None
    if tuner:
        configure_tuner(search, trials, url, study, jobs, strategy, resume, backend, ray_address)
    else:
        configure_search_cv(
            search, trials, url, study, jobs, strategy, resume, backend, ray_address
        )
    result = _run_search(search, xy, fit_kwargs)
    if result is None:
        fail("the search stored no study.")
    data = study_data(result)
    print_rows(trial_rows(data, counted_only=True), Format.table, f"trials of {data.study_name!r}")
    if data.best_trial is not None:
        print_best(data)


def _use_compilation_cache(value: str | None) -> None:
    """Turn JAX's compilation cache on (once the script is imported: it may set its own)."""
    if value == "off":
        return
    if value is None and cache_directory() is not None:
        return  # the user's own cache (JAX_COMPILATION_CACHE_DIR, or set in the script)
    try:
        enable_compilation_cache(value)
    except ValueError as exc:
        fail(f"--compilation-cache: {exc}", code=2)


def _run_search(search: Any, xy: tuple[Any, Any], fit_kwargs: dict[str, Any]) -> Any:
    """Run a configured search or tuner; its study, or a clean exit on Ctrl-C and errors."""
    try:
        if is_tuner(search):
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
        fail(str(exc), code=UNAVAILABLE_EXIT)
    except (ValueError, TypeError, RuntimeError) as exc:
        _user_error(exc)


def _user_error(exc: Exception) -> NoReturn:
    """Fail with the message of an error in the user's settings or script (no traceback)."""
    if os.environ.get("TUNEFLEET_TRACEBACK"):
        raise exc
    fail(f"{exc}\n(set TUNEFLEET_TRACEBACK=1 to see the traceback)")


@app.command()
def worker(
    storage: Annotated[str, typer.Argument(help="The running study's storage URL or SQLite file.")],
    script: Annotated[Path, typer.Argument(help="The Python file that defines the search.")],
    study: Annotated[str, typer.Option("--study", "-s", help="The study to join.")],
    trials: Annotated[
        int | None,
        typer.Option("--trials", "-n", min=1, help="Trials in all, if the study's run set it."),
    ] = None,
    compilation_cache: CompilationCacheOpt = None,
) -> None:
    """Join a running study from any machine and run its trials until its budget is spent.

    For clusters without Ray (Slurm job arrays, SSH): start the search once (`tunefleet tune SCRIPT.py --storage URL --study NAME`), then run `tunefleet worker URL SCRIPT.py --study NAME` on as many machines as you like. Each asks trials within the study's budget, runs them and tells them; a worker does not refit the best model (the `tune` run, or a later one, does). The study must exist; a worker that dies mid-trial leaves its trial to be run again.
    """
    url = storage_url(storage)
    _load(_existing_storage(storage), url, study)  # it must exist: a worker joins
    module = load_script(script)
    _use_compilation_cache(compilation_cache)
    search, xy, fit_kwargs = script_objects(module, script)
    if is_tuner(search):
        configure_tuner(search, trials, url, study, None, None)
    else:
        configure_search_cv(search, trials, url, study, None, None)
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
        fail(f"--output {str(output)!r} cannot be written: {exc.strerror or exc}.", code=2)
    console().print(f"Wrote {path} ({path.stat().st_size / 2**20:.1f} MiB).")


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
        fail("--study needs --storage: the storage that holds the study.", code=2)
    _check_output(output)
    target_study = None
    if storage is not None:  # before the test runs: a wrong name fails at once
        target_study = _load(_existing_storage(storage), storage, study)
    module = load_script(script)
    target = getattr(module, "build_model", None) or getattr(module, "model", None)
    data = getattr(module, "data", None)
    if target is None or not callable(data):
        fail(
            f"{script} must define data() (returning x, y) and build_model (a function returning "
            "a compiled Keras model) or model.",
            code=2,
        )
    loaded = call_script(data, script, "data()")
    if takes_only_hp(target):  # a tuner's build function: its hyperparameters' defaults
        from tunefleet.tuners import HyperParameters

        target = target(HyperParameters())
        console().print("build_model(hp): each hyperparameter at its default value.")
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
        fail(f"--output {str(output)!r} cannot be written: {exc.strerror or exc}.", code=2)
    console().print(
        f"suggested learning rate: {result.suggestion:.3g} ({result.method}); plot: {output}"
    )
    if target_study is not None:
        result.save_to_study(target_study)
        console().print(f"stored in study {target_study.study_name!r}; see `tunefleet report`.")


def main() -> None:
    """Entry point of the ``tunefleet`` console script."""
    try:
        app(prog_name="tunefleet")
    except StorageUnavailable as exc:  # a reading command whose database went away
        print_error(str(exc))
        sys.exit(UNAVAILABLE_EXIT)
