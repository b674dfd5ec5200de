"""Size and speed measurements of Keras models: parameters, bytes on disk, latency."""

from __future__ import annotations

import gzip
import os
import statistics
import tempfile
import time
import warnings
from typing import Any

import keras
import numpy as np

__all__ = ["compressed_size_bytes", "count_params", "measure_latency", "model_size_bytes"]


def require_built_model(model: Any, where: str) -> keras.Model:
    """``model`` itself if it is a built ``keras.Model``; else an error naming ``where``.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> require_built_model(model, "prune") is model
    True
    >>> require_built_model("model.keras", "prune")
    Traceback (most recent call last):
    ...
    TypeError: prune: expected a keras.Model, got str.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"{where}: expected a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"{where}: the model {model.name!r} is not built; build it (call it on data or "
            "give it an Input) first."
        )
    return model


def count_params(model: keras.Model, nonzero: bool = False) -> int:
    """Count the scalars stored in a model's weights (trainable and not).

    As Keras counts them: after ``int8``/``int4`` quantization, the stored integer
    values (``int4`` packs two per byte) and their scales. With ``nonzero=True``,
    only the entries that are not exactly zero (the figure that matters after
    pruning).

    Args:
        model: A built ``keras.Model``.
        nonzero: Count only nonzero entries.

    Returns:
        The number of weight entries.

    Example:

    >>> import keras
    >>> from tunefleet.keras import count_params
    >>> count_params(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    8
    """
    model = require_built_model(model, "count_params")
    if not nonzero:
        return int(sum(int(np.prod(v.shape)) for v in model.weights))
    return int(
        sum(int(np.count_nonzero(keras.ops.convert_to_numpy(v.value))) for v in model.weights)
    )


def keras_file_bytes(model: keras.Model, include_optimizer: bool) -> bytes:
    """The bytes of the model saved as a ``.keras`` file (optionally without its optimizer).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> keras_file_bytes(model, include_optimizer=False)[:2]  # a zip archive
    b'PK'
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        optimizer = getattr(model, "optimizer", None)
        detach = not include_optimizer and optimizer is not None
        if detach:
            model.optimizer = None
        try:
            model.save(path)
        finally:
            if detach:
                model.optimizer = optimizer
        with open(path, "rb") as f:
            return f.read()


def model_size_bytes(model: keras.Model, include_optimizer: bool = False) -> int:
    """Size in bytes of the model saved as a ``.keras`` file.

    By default without the optimizer's state (Adam's moments alone weigh twice the
    model), which is what a deployed model carries. The ``.keras`` archive is not
    compressed; see `compressed_size_bytes` for the size after gzip.

    Args:
        model: A built ``keras.Model``.
        include_optimizer: Count the optimizer's state too (the file ``model.save``
            writes).

    Returns:
        The file size in bytes.

    Example:

    >>> import keras
    >>> from tunefleet.keras import model_size_bytes
    >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    >>> model_size_bytes(model) > 64 * 10 * 4
    True
    """
    model = require_built_model(model, "model_size_bytes")
    return len(keras_file_bytes(model, include_optimizer))


def compressed_size_bytes(model: keras.Model) -> int:
    """Size in bytes of the model's ``.keras`` file (without optimizer) after gzip.

    Zeroed (pruned) and low-precision weights compress well; this is the size to
    compare for pruning, which does not change the shapes of the weights.

    Args:
        model: A built ``keras.Model``.

    Returns:
        The gzip-compressed size in bytes (compression level 6).

    Example:

    >>> import keras
    >>> from tunefleet.keras import compressed_size_bytes, model_size_bytes
    >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    >>> compressed_size_bytes(model) < model_size_bytes(model)
    True
    """
    model = require_built_model(model, "compressed_size_bytes")
    return gzip_size(keras_file_bytes(model, False))


def gzip_size(data: bytes) -> int:
    """The length of ``data`` once gzip-compressed (level 6, no timestamp: reproducible).

    Example:

    >>> gzip_size(bytes(10_000)) < 100
    True
    """
    return len(gzip.compress(data, compresslevel=6, mtime=0))


def measure_latency(model: keras.Model, x: Any, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall-clock seconds to predict one batch on the current backend.

    Calls ``model.predict_on_batch(x)`` (the compiled predict function, results
    copied back to the host) ``warmup`` times untimed, then ``repeats`` times timed.

    Args:
        model: A ``keras.Model``.
        x: One batch of inputs (its whole first axis is one batch).
        repeats: Timed calls (>= 1).
        warmup: Untimed calls first (compilation, caches).

    Returns:
        The median time per batch, in seconds.

    Example:

    >>> import keras, numpy as np
    >>> from tunefleet.keras import measure_latency
    >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    >>> measure_latency(model, np.zeros((32, 64)), repeats=5) < 1.0
    True
    """
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"measure_latency: repeats must be an integer >= 1, got {repeats!r}.")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"measure_latency: warmup must be an integer >= 0, got {warmup!r}.")
    if not isinstance(model, keras.Model):
        raise TypeError(f"measure_latency: expected a keras.Model, got {type(model).__name__}.")
    x = keras.tree.map_structure(np.asarray, x)
    for _ in range(int(warmup)):
        model.predict_on_batch(x)
    times = []
    for _ in range(int(repeats)):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))


def copy_model(model: keras.Model) -> keras.Model:
    """An independent copy with the same weights and compile state (optimizer included).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> twin = copy_model(model)
    >>> twin is model, all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model.get_weights()))
    (False, True)
    """
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # optimizer-variable notices
                return keras.models.load_model(path)
    except Exception as exc:
        try:
            copy = keras.models.clone_model(model)
            copy.set_weights(model.get_weights())
            if getattr(model, "compiled", False):
                copy.compile_from_config(model.get_compile_config())
            return copy
        except Exception:
            raise TypeError(
                f"Could not copy the model {model.name!r} (saving it failed with: {exc}); "
                "register its custom objects with keras.saving.register_keras_serializable."
            ) from exc


def evaluate_metrics(model: keras.Model, x: Any, y: Any, batch_size: int = 128) -> dict[str, float]:
    """``model.evaluate`` as a dict of floats; empty without data or compile state.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile(loss="mse")
    >>> sorted(evaluate_metrics(model, np.zeros((8, 4)), np.zeros((8, 3))))
    ['loss']
    >>> evaluate_metrics(model, None, None)
    {}
    """
    if x is None or not getattr(model, "compiled", False):
        return {}
    result = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    return {k: float(v) for k, v in result.items()}


def latency_batch(x: Any, size: int = 32) -> Any:
    """The first ``size`` samples of ``x`` (a structure of arrays): the batch latency is timed on.

    Example:

    >>> import numpy as np
    >>> latency_batch(np.zeros((100, 4))).shape
    (32, 4)
    """
    if x is None:
        return None
    return keras.tree.map_structure(lambda a: np.asarray(a)[:size], x)
