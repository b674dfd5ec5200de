"""Stable, complete identities of Python objects: for space labels and experiment records.

A search stores what it searched and how in its study, and a later process (another
machine, another day) must recognise the same thing again. ``repr()`` cannot do that: a
function's holds its memory address, and a long one says nothing about what it leaves out.
:func:`describe_value` describes an object by what defines it instead, as JSON-able data
that is equal in every process for equal objects:

* functions, classes and methods by ``module:qualname``;
* scikit-learn estimators (anything with ``get_params``) by class and every parameter,
  nested estimators described the same way;
* Keras objects (anything with ``get_config``) by class and config;
* arrays by shape, dtype and a hash of their bytes; containers element by element.

:func:`stable_hash` turns such a description into a short hex digest.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_DEPTH = 12


class _Searched:
    """Marks a parameter the search sets itself (not part of the experiment's identity)."""

    def __repr__(self) -> str:
        return "<searched>"


SEARCHED = _Searched()
"""Placeholder value of a searched parameter in a described estimator."""


def qualified_name(obj: Any) -> str:
    """``module:qualname`` of a function, class or method (stable across processes).

    Example:

    >>> import json
    >>> from collections.abc import Mapping
    >>> from tunefleet.identity import qualified_name
    >>> qualified_name(json.dumps), qualified_name(Mapping)
    ('json:dumps', 'collections.abc:Mapping')
    """
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if name is None:
        return qualified_name(type(obj))
    return f"{module}:{name}"


def has_address(text: str) -> bool:
    """Whether ``text`` (a ``repr``) holds a memory address, which changes between processes."""
    return _ADDRESS.search(text) is not None


def describe_value(value: Any, _depth: int = 0) -> Any:
    """A JSON-able description of ``value``, equal in every process for equal values.

    Example:

    >>> from tunefleet.identity import describe_value
    >>> from sklearn.svm import SVC
    >>> describe_value(SVC(C=2.0))["estimator"]
    'sklearn.svm._classes:SVC'
    """
    if _depth > _MAX_DEPTH:
        return {"object": qualified_name(type(value))}
    deeper = _depth + 1
    if value is SEARCHED:
        return "<searched>"
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # JSON has no NaN/inf
    if isinstance(value, bytes):
        return {"bytes": hashlib.sha256(value).hexdigest()[:16]}
    if isinstance(value, np.ndarray):
        return describe_array(value)
    if isinstance(value, type) or inspect.isroutine(value):
        return {"callable": qualified_name(value)}
    if isinstance(value, functools.partial):
        return {
            "partial": describe_value(value.func, deeper),
            "args": [describe_value(a, deeper) for a in value.args],
            "keywords": {str(k): describe_value(v, deeper) for k, v in value.keywords.items()},
        }
    if _is_estimator(value):
        params = value.get_params(deep=False)
        return {
            "estimator": qualified_name(type(value)),
            "params": {str(k): describe_value(v, deeper) for k, v in sorted(params.items())},
        }
    if isinstance(value, Mapping):
        return {"dict": {str(k): describe_value(v, deeper) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        items = [describe_value(v, deeper) for v in value]
        return items if type(value) is list else {"tuple": items}
    if isinstance(value, (set, frozenset)):
        items = [describe_value(v, deeper) for v in value]
        return {"set": sorted(items, key=canonical)}
    if hasattr(value, "dist") and hasattr(value, "ppf") and hasattr(value, "args"):
        return {
            "scipy": getattr(value.dist, "name", qualified_name(type(value.dist))),
            "args": [describe_value(a, deeper) for a in value.args],
            "kwds": {str(k): describe_value(v, deeper) for k, v in sorted(value.kwds.items())},
        }
    get_config = getattr(value, "get_config", None)
    if callable(get_config) and not isinstance(value, type):
        try:
            config = get_config()
        except Exception:  # a Keras object that cannot describe itself yet
            config = None
        if isinstance(config, Mapping):
            return {"object": qualified_name(type(value)), "config": describe_value(config, deeper)}
    text = " ".join(repr(value).split())
    if not has_address(text):
        return {"object": qualified_name(type(value)), "repr": text}
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return {"object": qualified_name(type(value)), "attrs": describe_value(attrs, deeper)}
    return {"object": qualified_name(type(value)), "repr": _ADDRESS.sub("", text)}


def describe_array(array: np.ndarray) -> dict[str, Any]:
    """Shape, dtype and a hash of the contents of ``array``."""
    if array.dtype.kind == "O":
        digest = stable_hash([describe_value(v) for v in array.ravel().tolist()])
    else:
        digest = hashlib.sha256(np.ascontiguousarray(array).view(np.uint8).data).hexdigest()[:16]
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": digest}


def canonical(description: Any) -> str:
    """The canonical JSON text of a description (sorted keys)."""
    return json.dumps(description, sort_keys=True, default=str)


def stable_hash(description: Any, length: int = 16) -> str:
    """A hex digest of a description (see :func:`describe_value`)."""
    return hashlib.sha256(canonical(description).encode()).hexdigest()[:length]


def _is_estimator(value: Any) -> bool:
    get_params = getattr(value, "get_params", None)
    if not callable(get_params) or isinstance(value, type):
        return False
    try:
        inspect.signature(get_params).bind(deep=False)
    except (TypeError, ValueError):
        return False
    return True
