"""The tuners' ``cv``: ``search(x, y)`` split into folds, each validated on its held-out part.

:func:`cv_splits` checks the arguments of ``search`` and gives the folds' row indices;
:func:`take_inputs` takes a fold's rows of the model's inputs (an array, or a dict or
list of arrays for a model with several inputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import check_cv

from tunefleet.trial import take


def take_inputs(x: Any, indices: np.ndarray) -> Any:
    """Rows of model inputs: an array, or a dict / list of arrays (several inputs)."""
    if isinstance(x, dict):
        return {k: take(v, indices) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and x and all(hasattr(v, "shape") for v in x):
        return type(x)(take(v, indices) for v in x)
    return take(x, indices)


def _n_rows(x: Any) -> int:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    elif isinstance(x, (list, tuple)) and x and all(hasattr(v, "shape") for v in x):
        x = x[0]
    return len(x)


def cv_splits(
    cv: Any, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any]
) -> tuple[list[tuple[np.ndarray, np.ndarray]] | None, tuple[Any, Any] | None]:
    """``(train, test)`` row indices of each fold and the ``(x, y)`` they index.

    ``(None, None)`` when ``cv`` is ``None``. Raises for arguments that cannot be split
    (datasets, generators) or that conflict with the folds (``validation_data``).
    """
    if cv is None:
        return None, None
    for key in ("validation_data", "validation_split"):
        if fit_kwargs.get(key) not in (None, 0, 0.0):
            raise ValueError(
                f"cv={cv!r} validates each fold on its held-out part; remove {key}= from search()."
            )
    x = fit_args[0] if len(fit_args) > 0 else fit_kwargs.get("x")
    y = fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y")
    if len(fit_args) > 2 or x is None or y is None or not hasattr(y, "__len__"):
        raise ValueError(
            f"cv={cv!r} needs search(x, y, ...) with x and y as arrays (or a dict of "
            "arrays for x); datasets and generators cannot be split into folds."
        )
    if _n_rows(x) != len(y):
        raise ValueError(f"x has {_n_rows(x)} samples but y has {len(y)}.")
    splitter = check_cv(cv, np.asarray(y), classifier=True)
    rows = np.zeros((len(y), 1))
    splits = [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(rows, y)]
    return splits, (x, y)
