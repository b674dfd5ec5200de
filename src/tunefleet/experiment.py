"""What defines an experiment, so a resumed study is only ever continued by the same one.

A study's trials are only comparable when they were scored the same way: the same
estimator (class and fixed parameters), scoring, cross-validation and data (for the
tuners: the same hypermodel, objective, folds and data). :func:`sklearn_experiment` and
:func:`tuner_experiment` describe that as JSON-able data, stored with the study
(``tunefleet:experiment``); :func:`differences` names what differs on a resume, which
:func:`tunefleet.study.open_study` then refuses unless ``resume="force"``.

The data is identified by shape, dtype and a cheap content hash: the whole array when it
is small (up to 8 MiB), else 1024 evenly spaced rows (and the shape), so a large ``X``
costs milliseconds.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tunefleet.identity import SEARCHED, canonical, describe_value, qualified_name

RESUME_MODES = ("auto", "force")
"""Values of the faces' ``resume`` parameter."""

_FULL_HASH_BYTES = 8 * 2**20
_SAMPLED_ROWS = 1024
_TAGS = frozenset({"params", "dict", "tuple", "config", "attrs", "set"})
_KINDS = ("estimator", "object", "splitter")
_SHOWN_CHARS = 160


def check_resume(resume: Any) -> str:
    """Validate a face's ``resume`` argument (``"auto"`` or ``"force"``)."""
    if not isinstance(resume, str) or resume not in RESUME_MODES:
        raise ValueError(
            f"resume must be 'auto' (refuse a stored study of another experiment) or 'force' "
            f"(continue it anyway), got {resume!r}."
        )
    return resume


def sklearn_experiment(
    estimator: Any,
    *,
    searched: Iterable[str],
    scoring: Any,
    cv: Any,
    n_splits: int,
    X: Any,
    y: Any,
    groups: Any = None,
) -> dict[str, Any]:
    """The identity of a scikit-learn face's search (``cv`` as resolved by ``check_cv``)."""
    return {
        "estimator": describe_estimator(estimator, searched),
        "scoring": describe_value(scoring),
        "cv": describe_cv(cv, n_splits),
        "data": {
            "X": fingerprint_data(X),
            "y": fingerprint_data(y),
            **({"groups": fingerprint_data(groups)} if groups is not None else {}),
        },
    }


def tuner_experiment(
    hypermodel: Any,
    *,
    objective: tuple[str, str],
    cv: Any,
    n_splits: int | None,
    data: Mapping[str, Any],
    compile_kwargs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The identity of a tuner's search: hypermodel, objective, folds, data, compile overrides.

    ``hypermodel`` is the build function (or the :class:`~tunefleet.HyperModel`);
    ``objective`` is ``(name, direction)``; ``data`` maps the ``search()`` arguments
    holding data (``x``, ``y``, ``validation_data``...) to their values.
    """
    return {
        "hypermodel": describe_value(hypermodel),
        "objective": {"name": objective[0], "direction": objective[1]},
        "cv": None if cv is None else describe_cv(cv, n_splits),
        "data": {k: fingerprint_data(v) for k, v in data.items()},
        "compile": describe_value(dict(compile_kwargs or {})),
    }


def describe_estimator(estimator: Any, searched: Iterable[str]) -> Any:
    """The estimator with every searched parameter replaced by ``"<searched>"``, deep."""
    names = set(searched)
    # a parameter below a searched one ("clf__C" under "clf") is decided by the latter
    top = {n for n in names if not any(n.startswith(f"{o}__") for o in names if o != n)}
    try:
        from sklearn.base import clone

        described = clone(estimator)
        described.set_params(**dict.fromkeys(sorted(top), SEARCHED))
    except Exception:  # not an estimator scikit-learn can clone: describe it as given
        described = estimator
    return describe_value(described)


def describe_cv(cv: Any, n_splits: int | None) -> dict[str, Any]:
    """A splitter by class and the settings of its constructor (explicit folds by hash).

    An integer (or ``None``) is described by ``n_splits``, the number of folds it makes.
    """
    if cv is None or isinstance(cv, (int, np.integer)):
        return {"splitter": None, "n_splits": n_splits if n_splits is not None else cv}
    settings: dict[str, Any] = {}
    try:
        parameters = inspect.signature(type(cv).__init__).parameters
    except (TypeError, ValueError):
        parameters = {}
    for name, p in parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        settings[name] = describe_value(getattr(cv, name, None))
    return {"splitter": qualified_name(type(cv)), "settings": settings}


def fingerprint_data(data: Any) -> Any:
    """Shapes, dtypes and a cheap content hash of training data (``None`` for ``None``)."""
    if data is None:
        return None
    if isinstance(data, Mapping):
        return {"dict": {str(k): fingerprint_data(v) for k, v in data.items()}}
    if isinstance(data, (list, tuple)) and data and all(getattr(v, "ndim", 0) for v in data):
        return [fingerprint_data(v) for v in data]
    if hasattr(data, "tocsr") and hasattr(data, "nnz"):  # scipy.sparse
        csr = data.tocsr()
        parts = [_array_hash(a) for a in (csr.data, csr.indices, csr.indptr)]
        return {
            "sparse": list(csr.shape),
            "dtype": str(csr.dtype),
            "nnz": int(csr.nnz),
            "content": _digest(parts),
        }
    if hasattr(data, "to_numpy") and hasattr(data, "dtypes"):  # pandas
        return _pandas(data)
    try:
        array = np.asarray(data)
    except Exception:
        return {"type": qualified_name(type(data))}
    if array.dtype.kind == "O" and array.ndim == 0:  # a dataset, generator...
        return {"type": qualified_name(type(data))}
    return {"shape": list(array.shape), "dtype": str(array.dtype), "content": _array_hash(array)}


def _sample_rows(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, _SAMPLED_ROWS).astype(np.int64))


def _array_hash(array: np.ndarray) -> str:
    if array.ndim > 0 and array.nbytes > _FULL_HASH_BYTES:
        array = array[_sample_rows(len(array))]
    if array.dtype.kind == "O":
        return _digest([describe_value(v) for v in array.ravel().tolist()])
    return hashlib.sha256(np.ascontiguousarray(array).view(np.uint8).data).hexdigest()[:16]


def _pandas(frame: Any) -> dict[str, Any]:
    import pandas as pd

    # a Series's memory_usage is an int, a DataFrame's a Series of columns
    size = int(np.sum(frame.memory_usage(deep=False)))
    sample = frame if size <= _FULL_HASH_BYTES else None
    if sample is None:
        sample = frame.iloc[_sample_rows(len(frame))]
    hashed = pd.util.hash_pandas_object(sample, index=False).to_numpy()
    columns = [str(c) for c in frame.columns] if hasattr(frame, "columns") else [str(frame.name)]
    return {
        "shape": list(frame.shape),
        "columns": columns,
        "dtypes": [str(d) for d in np.atleast_1d(frame.dtypes)],
        "content": _array_hash(hashed),
    }


def _digest(parts: Any) -> str:
    return hashlib.sha256(canonical(parts).encode()).hexdigest()[:16]


def differences(stored: Any, given: Any, path: str = "") -> list[tuple[str, str, str]]:
    """``(where, stored, given)`` for every leaf of two experiment descriptions that differs.

    Example:

    >>> from tunefleet.experiment import differences
    >>> differences({"scoring": "accuracy", "cv": 5}, {"scoring": "f1", "cv": 5})
    [('scoring', "'accuracy'", "'f1'")]
    """
    if canonical(stored) == canonical(given):
        return []
    if isinstance(stored, dict) and isinstance(given, dict):
        for tag in _KINDS:  # another class altogether: that is the one difference to name
            kinds = (stored.get(tag), given.get(tag))
            if all(isinstance(k, str) for k in kinds) and kinds[0] != kinds[1]:
                return [(path or "(all)", str(stored[tag]), str(given[tag]))]
        out: list[tuple[str, str, str]] = []
        for key in sorted(set(stored) | set(given), key=str):
            where = path if key in _TAGS else f"{path}.{key}" if path else str(key)
            if key not in stored:
                out.append((where, "(not recorded)", show(given[key])))
            elif key not in given:
                out.append((where, show(stored[key]), "(none)"))
            else:
                out += differences(stored[key], given[key], where)
        return out
    if isinstance(stored, list) and isinstance(given, list) and len(stored) == len(given):
        out = []
        for i, (a, b) in enumerate(zip(stored, given, strict=True)):
            out += differences(a, b, f"{path}[{i}]")
        return out
    return [(path or "(all)", show(stored), show(given))]


def show(description: Any) -> str:
    """A description as short text for messages (only for display: never an identity)."""
    if isinstance(description, dict) and set(description) == {"callable"}:
        return str(description["callable"])
    if not isinstance(description, (dict, list)):
        return repr(description)
    text = json.dumps(description, sort_keys=True, separators=(", ", ": "), default=str)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def format_differences(found: list[tuple[str, str, str]], limit: int = 8) -> str:
    """One ``  where: stored …, given …`` line per difference (the first ``limit``)."""
    lines = [f"  {where}: stored {a}, given {b}" for where, a, b in found[:limit]]
    if len(found) > limit:
        lines.append(f"  ... and {len(found) - limit} more")
    return "\n".join(lines)
