"""A user's script for ``tunefleet tune``, ``worker`` and ``lr-find``.

Importing it (as a module, never as ``__main__``), finding its ``search`` and ``data()``,
and applying a command's options to the search it defines.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from tunefleet.cli.output import fail

SCRIPT_CONVENTION = (
    "A script for `tunefleet tune` defines `search` (a tunefleet tuner such as "
    "RandomSearch, or a *SearchCV such as RandomizedSearchCV; or a function returning "
    "one) and `data()` (a function returning (X, y) or (x, y, fit_kwargs))."
)


def load_script(path: Path) -> Any:
    """Import ``path`` as a module (not as ``__main__``), its folder first on ``sys.path``.

    The module is registered under its file's stem when that name is free, so worker
    processes (``--jobs``) can import it again to unpickle the build functions.
    """
    if not path.is_file():
        fail(f"no such script: {str(path)!r}.", code=2)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    if not name.isidentifier() or name in sys.modules:
        name = f"_tunefleet_script_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        fail(f"{str(path)!r} cannot be imported as a Python module.", code=2)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        where = f"{exc.filename or path}:{exc.lineno}" if exc.lineno else str(exc.filename or path)
        fail(f"{where}: SyntaxError: {exc.msg}; {str(path)!r} cannot be imported.", code=2)
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
    fail(
        f"{where}: {message} (raised while {doing} {str(path)!r}; set TUNEFLEET_TRACEBACK=1 "
        "to see the traceback)",
        code=2,
    )


def call_script(function: Any, path: Path, what: str) -> Any:
    """Call ``function`` of the script; an exception it raises fails as :func:`_script_error`."""
    try:
        return function()
    except Exception as exc:
        _script_error(exc, path, f"calling {what} of")


def takes_only_hp(function: Any) -> bool:
    """Whether ``function`` is a Keras Tuner-style build function: ``build_model(hp)``."""
    try:
        parameters = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == ["hp"]


def is_tuner(obj: Any) -> bool:
    """Whether ``obj`` is a tunefleet tuner (without importing the tuners)."""
    module = sys.modules.get("tunefleet.tuners.base_tuner")
    return module is not None and isinstance(obj, module.BaseTuner)


def _is_search_cv(obj: Any) -> bool:
    """Whether ``obj`` is one of tunefleet's ``*SearchCV``."""
    from tunefleet.sklearn.search import BaseSearchCV

    return isinstance(obj, BaseSearchCV)


def script_objects(module: Any, path: Path) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """The script's search, ``(X, y)`` and fit arguments; fails naming what is missing."""
    missing = [n for n in ("search", "data") if not hasattr(module, n)]
    if missing:
        fail(f"{str(path)!r} does not define {' and '.join(missing)}. {SCRIPT_CONVENTION}", 2)
    search = module.search
    if callable(search) and not (is_tuner(search) or _is_search_cv(search)):
        search = call_script(search, path, "search()")
    if not (is_tuner(search) or _is_search_cv(search)):
        fail(
            f"`search` in {str(path)!r} is a {type(search).__name__}, not a tunefleet tuner "
            f"or *SearchCV. {SCRIPT_CONVENTION}",
            2,
        )
    if not callable(module.data):
        fail(f"`data` in {str(path)!r} must be a function. {SCRIPT_CONVENTION}", 2)
    data = call_script(module.data, path, "data()")
    if (
        not isinstance(data, tuple)
        or len(data) not in (2, 3)
        or (len(data) == 3 and not isinstance(data[2], dict))
    ):
        fail(
            f"data() in {str(path)!r} returned {type(data).__name__}; expected (X, y) or "
            f"(x, y, fit_kwargs) with fit_kwargs a dict. {SCRIPT_CONVENTION}",
            2,
        )
    fit_kwargs = dict(data[2]) if len(data) == 3 else {}
    return search, (data[0], data[1]), fit_kwargs


def configure_tuner(
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
    """Apply a command's options (those not ``None``) to a tuner; fails on a bad one."""
    if resume is not None:
        tuner.resume = resume
    if backend is not None:
        tuner.backend = backend
    if ray_address is not None:
        tuner.ray_address = ray_address
    if trials is not None:
        if tuner._plans_trials:
            fail(
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
        fail(str(exc), 2)


_OWN_STRATEGY = {"GridSearchCV": "grid", "RandomizedSearchCV": "random"}


def configure_search_cv(
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
    """Apply a command's options (those not ``None``) to a ``*SearchCV``."""
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
            fail(f"--trials does not apply to {name}: it runs every point of its grid.", 2)
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
            fail(
                f"--strategy {strategy} does not apply to {name}; use BayesSearchCV (any "
                "sampler) or a tunefleet tuner, or leave --strategy out.",
                2,
            )
    search.set_params(**updates)
