"""Costs minimized next to the score in accuracy-versus-size searches, and compression.

A search's ``objectives=`` lists costs measured on each fold's fitted estimator (after
``compress=`` quantized its Keras model), averaged over the folds, and minimized by a
multi-objective Optuna study while the score is maximized. Built-in costs:

* ``"n_params"``: numbers stored in the fitted model. A tunefleet Keras wrapper counts
  its Keras model's weights (`tunefleet.keras.count_params`); any other estimator the
  entries of the numpy arrays among its fitted attributes (names ending in ``_``),
  walking into nested estimators, lists, dicts and objects such as a decision tree's
  ``tree_`` (structured arrays count one number per field); a ``Pipeline`` sums its steps.
  An estimator without any fitted array is an error (use ``"size_bytes"``).
* ``"size_bytes"``: bytes of the fitted model: a Keras wrapper's ``.keras`` file
  without optimizer state (`tunefleet.keras.model_size_bytes`: what a deployed, possibly
  quantized model weighs), anything else pickled; a ``Pipeline`` sums its steps.
* ``"latency"``: seconds per sample to predict (up to) the first 1024 samples of the
  validation fold: the median of 5 timed calls after 2 untimed ones. A Keras wrapper
  times its model's ``predict_on_batch`` (`tunefleet.keras.measure_latency`),
  anything else ``predict``. Timings are noisy on shared machines.
* a callable ``cost(estimator, X_val, y_val) -> float``, named by its ``__name__``.

Nothing here imports Keras unless a Keras estimator is measured or compressed.
"""

from __future__ import annotations

import numbers
import pickle
import statistics
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from tunefleet.trial import final_estimator, reports_epochs

#: Names of the built-in costs.
OBJECTIVES = ("n_params", "size_bytes", "latency")

CostFunction = Callable[[Any, Any, Any], float]

_LATENCY_SAMPLES = 1024
_MAX_DEPTH = 12


@dataclass(frozen=True)
class Cost:
    """One objective to minimize: a name (its ``cv_results_`` columns) and a function.

    Example:

    >>> from tunefleet.objectives import Cost, n_params
    >>> from sklearn.linear_model import LogisticRegression
    >>> Cost("n_params", n_params)(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), None, None)
    5.0
    """

    name: str
    function: CostFunction

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        value = self.function(estimator, X, y)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(
                f"objectives: the cost {self.name!r} must return a number, got "
                f"{type(value).__name__}: {value!r}"
            )
        return float(value)


def parse_objectives(objectives: Any, *, scorer_names: Collection[str] = ()) -> list[Cost]:
    """Turn a search's ``objectives=`` into costs, checking names before any trial runs.

    Args:
        objectives: ``None``, a built-in name or callable, or a sequence of them.
        scorer_names: the search's scorer names, which costs may not reuse (columns).

    Returns:
        One `Cost` per objective, in order (empty for ``None`` or an empty sequence).

    Example:

    >>> from tunefleet.objectives import parse_objectives
    >>> [c.name for c in parse_objectives(["n_params", "latency"])]
    ['n_params', 'latency']
    """
    if objectives is None:
        return []
    if isinstance(objectives, str) or callable(objectives):
        objectives = [objectives]
    if not isinstance(objectives, (list, tuple)):
        raise ValueError(
            f"objectives={objectives!r} is not valid; expected None, or a list of names from "
            f"{list(OBJECTIVES)} and callables cost(estimator, X_val, y_val) -> float."
        )
    costs = [_cost(entry) for entry in objectives]
    names = [c.name for c in costs]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"objectives={names}: {name!r} is given twice.")
        if name in scorer_names:
            raise ValueError(
                f"objectives: {name!r} is also a scorer name; its cv_results_ columns would "
                "clash. Rename the cost function."
            )
    return costs


def _cost(entry: Any) -> Cost:
    if isinstance(entry, str):
        if entry not in _BUILTIN:
            raise ValueError(
                f"objectives: {entry!r} is not a known objective; expected one of "
                f"{list(OBJECTIVES)} or a callable cost(estimator, X_val, y_val) -> float."
            )
        return Cost(entry, _BUILTIN[entry])
    if callable(entry):
        name = getattr(entry, "__name__", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"objectives: the callable {entry!r} has no usable __name__ ({name!r}) to "
                "name its cv_results_ columns; define it with def."
            )
        return Cost(name, entry)
    raise ValueError(
        f"objectives: {entry!r} is neither a name from {list(OBJECTIVES)} nor a callable "
        "cost(estimator, X_val, y_val) -> float."
    )


# -- built-in costs ---------------------------------------------------------------------
def _keras_model(estimator: Any) -> Any:
    """The fitted Keras model of a tunefleet Keras wrapper (not a Pipeline), else None."""
    if final_estimator(estimator) is estimator and reports_epochs(estimator):
        return estimator.model_
    return None


def _steps(estimator: Any) -> list[Any] | None:
    steps = getattr(estimator, "steps", None)
    if not steps:
        return None
    return [step for _, step in steps if step is not None and step != "passthrough"]


def n_params(estimator: Any, X: Any = None, y: Any = None) -> float:
    """Numbers stored in a fitted estimator (see the module docstring).

    Example (``coef_``, ``intercept_``, ``classes_`` and ``n_iter_``):

    >>> from tunefleet.objectives import n_params
    >>> from sklearn.linear_model import LogisticRegression
    >>> n_params(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    5.0
    """
    total = _n_params(estimator)
    if total == 0:
        raise ValueError(
            f"objectives: 'n_params' found no fitted numpy arrays in "
            f"{type(estimator).__name__}; use 'size_bytes' or a callable cost."
        )
    return float(total)


def _n_params(estimator: Any) -> int:
    steps = _steps(estimator)
    if steps is not None:
        return sum(_n_params(step) for step in steps)
    model = _keras_model(estimator)
    if model is not None:
        from tunefleet.keras.compression.measure import count_params

        return count_params(model)
    return _count_numbers(estimator, set(), 0)


def _count_numbers(value: Any, seen: set[int], depth: int) -> int:
    """Entries of the numpy arrays reachable from a fitted estimator's attributes."""
    if depth > _MAX_DEPTH or id(value) in seen:
        return 0
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return sum(_count_numbers(v, seen, depth + 1) for v in value.flat)
        return value.size * (len(value.dtype.names) if value.dtype.names else 1)
    if isinstance(value, (str, bytes, numbers.Number)) or value is None:
        return 0
    seen.add(id(value))
    if isinstance(value, BaseEstimator):
        items = [v for k, v in vars(value).items() if k.endswith("_") and not k.startswith("_")]
    elif isinstance(value, Mapping):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif type(value).__module__.startswith("sklearn"):
        state = value.__getstate__()  # e.g. a tree's nodes and values
        items = list(state.values()) if isinstance(state, Mapping) else []
    else:
        return 0
    return sum(_count_numbers(v, seen, depth + 1) for v in items)


def size_bytes(estimator: Any, X: Any = None, y: Any = None) -> float:
    """Bytes of a fitted estimator (see the module docstring).

    Example:

    >>> from tunefleet.objectives import size_bytes
    >>> from sklearn.linear_model import LogisticRegression
    >>> size_bytes(LogisticRegression().fit([[0.0], [1.0]], [0, 1])) > 100
    True
    """
    steps = _steps(estimator)
    if steps is not None:
        return float(sum(size_bytes(step) for step in steps))
    model = _keras_model(estimator)
    if model is not None:
        from tunefleet.keras.compression.measure import model_size_bytes

        return float(model_size_bytes(model))
    return float(len(pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)))


def latency(estimator: Any, X: Any, y: Any = None) -> float:
    """Seconds per sample to predict the validation fold (see the module docstring).

    Example:

    >>> from tunefleet.objectives import latency
    >>> from sklearn.linear_model import LogisticRegression
    >>> latency(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), [[0.5]] * 10) < 0.1
    True
    """
    X = X[:_LATENCY_SAMPLES] if not hasattr(X, "iloc") else X.iloc[:_LATENCY_SAMPLES]
    n = len(X)
    model = _keras_model(estimator)
    if model is not None:
        from tunefleet.keras.compression.measure import measure_latency

        batch = estimator._validate_X(X, reset=False)
        return measure_latency(model, batch, repeats=5, warmup=2) / n
    for _ in range(2):
        estimator.predict(X)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        estimator.predict(X)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / n


_BUILTIN: dict[str, CostFunction] = {
    "n_params": n_params,
    "size_bytes": size_bytes,
    "latency": latency,
}


# -- compression ------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantizer:
    """Quantize, in place, the Keras model of a fitted tunefleet Keras wrapper.

    What ``compress=mode`` does to each fold's estimator before it is scored, and to the
    refitted ``best_estimator_``: its ``model_`` becomes the copy that
    `tunefleet.keras.quantize` makes (Keras' ``Model.quantize``).

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from tunefleet.keras import KerasClassifier, build_mlp
    >>> from tunefleet.objectives import Quantizer
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = KerasClassifier(build_mlp, input_shape=(4,), output="multiclass:3", n_hidden=1,
    ...                       epochs=1, verbose=0).fit(X, y)
    >>> Quantizer("int8")(clf)       # what GridSearchCV(..., compress="int8") does
    >>> clf.model_.layers[1].quantization_mode, clf.predict(X[:3]).shape
    ('int8', (3,))
    """

    mode: str

    def __call__(self, estimator: Any) -> None:
        from tunefleet.keras.compression.quantization import quantized_copy

        wrapper = final_estimator(estimator)
        wrapper.model_ = quantized_copy(wrapper.model_, self.mode)[0]


def make_quantizer(estimator: Any, compress: Any) -> Quantizer | None:
    """Check a search's ``compress=`` against its estimator; ``None`` when not compressing.

    Raises ``ValueError`` naming ``compress`` for an estimator without a Keras model or a
    mode `tunefleet.keras.quantize` does not know.

    Example:

    >>> from tunefleet.objectives import make_quantizer
    >>> from sklearn.svm import SVC
    >>> make_quantizer(SVC(), None) is None
    True
    """
    if compress is None:
        return None
    if not reports_epochs(estimator):
        raise ValueError(
            f"compress={compress!r} quantizes the Keras model of a tunefleet KerasClassifier "
            f"or KerasRegressor; {type(final_estimator(estimator)).__name__} has none. Use "
            "compress=None."
        )
    from tunefleet.keras.compression.quantization import QUANTIZATION_MODES

    if compress not in QUANTIZATION_MODES:
        raise ValueError(
            f"compress={compress!r} is not a quantization mode; expected None or one of "
            f"{list(QUANTIZATION_MODES)}."
        )
    return Quantizer(compress)
