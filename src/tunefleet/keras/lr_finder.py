"""The learning-rate range test ("LR finder") for Keras 3 models.

Leslie Smith's range test: train for a few hundred batches while the learning rate
grows exponentially from ``start_lr`` to ``end_lr``, record the loss of every batch,
and read a good learning rate off the curve. Keras ships no LR finder; this one
works on every backend (it drives ``Model.train_on_batch`` and sets the optimizer's
learning rate between batches) and never changes the model it is given.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import optuna

from tunefleet.attrs import LR_FINDER_ATTR

__all__ = ["LRFinderResult", "lr_find"]

_LOG = logging.getLogger("tunefleet")

#: Suggestion rules, see `lr_find`.
SUGGESTION_METHODS = ("min/10", "steepest")


@dataclass
class LRFinderResult:
    """The outcome of `lr_find`: the loss curve against the learning rate, and a suggestion.

    Args:
        learning_rates: Learning rate of each recorded batch (increasing).
        losses: Training loss of each recorded batch, as returned by Keras.
        smoothed_losses: ``losses`` without noise and lag (a running median of 5
            batches, then an exponential moving average run forward and backward),
            NaN where the loss had blown up; the suggestion is read from it.
        suggestion: The suggested learning rate (by ``method``).
        method: The rule that chose ``suggestion`` (``"min/10"`` or ``"steepest"``).
        suggestions: The learning rate suggested by every rule.
        diverged: Whether the range test stopped early because the loss blew up.

    Example:

    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> from tunefleet.keras import build_mlp, lr_find
    >>> X, y = load_iris(return_X_y=True)
    >>> result = lr_find(build_mlp, X, y, num_steps=20, batch_size=16,
    ...                  build_kwargs={"input_shape": (4,), "output": "multiclass:3"})
    >>> type(result).__name__, result.method, sorted(result.suggestions)
    ('LRFinderResult', 'min/10', ['min/10', 'steepest'])
    >>> len(result.learning_rates) == len(result.losses)
    True
    >>> path = os.path.join(tempfile.mkdtemp(), "lr_find.png")
    >>> _ = result.plot(path=path)
    >>> os.path.exists(path)
    True
    """

    learning_rates: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    suggestion: float
    method: str
    suggestions: dict[str, float] = field(default_factory=dict)
    diverged: bool = False

    @property
    def min_loss_learning_rate(self) -> float:
        """The learning rate at which the smoothed loss was lowest."""
        return self.learning_rates[int(np.nanargmin(self.smoothed_losses))]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python values (for JSON or a CLI).

        Returns:
            A dict with the fields of the result and ``min_loss_learning_rate``.
        """
        return {
            "suggestion": self.suggestion,
            "method": self.method,
            "suggestions": dict(self.suggestions),
            "min_loss_learning_rate": self.min_loss_learning_rate,
            "diverged": self.diverged,
            "learning_rates": list(self.learning_rates),
            "losses": list(self.losses),
            "smoothed_losses": [v if math.isfinite(v) else None for v in self.smoothed_losses],
        }

    def save_to_study(self, study: optuna.Study) -> None:
        """Store the run in an Optuna study, where the HTML report shows it.

        Sets the study user attribute ``tunefleet:lr_finder`` to ``{"lrs": [...],
        "losses": [...], "suggestion": x, "method": ..., "suggestions": {...}}``
        (replacing an earlier run's). ``tunefleet report`` and ``search.report(...)``
        then draw the loss curve with its suggestion.

        Args:
            study: An ``optuna.Study`` (e.g. ``search.study_``, or one loaded from a
                storage with ``optuna.load_study``).

        Example:

        >>> import optuna
        >>> from sklearn.datasets import load_iris
        >>> from tunefleet.keras import build_mlp, lr_find
        >>> X, y = load_iris(return_X_y=True)
        >>> result = lr_find(build_mlp, X, y, num_steps=20, batch_size=16,
        ...                  build_kwargs={"input_shape": (4,), "output": "multiclass:3"})
        >>> study = optuna.create_study()
        >>> result.save_to_study(study)
        >>> sorted(study.user_attrs["tunefleet:lr_finder"])
        ['losses', 'lrs', 'method', 'suggestion', 'suggestions']
        """
        if not isinstance(study, optuna.Study):
            raise TypeError(
                f"save_to_study: study must be an optuna.Study, got {type(study).__name__}."
            )
        study.set_user_attr(
            LR_FINDER_ATTR,
            {
                "lrs": list(self.learning_rates),
                "losses": list(self.losses),
                "suggestion": self.suggestion,
                "method": self.method,
                "suggestions": dict(self.suggestions),
            },
        )

    def __str__(self) -> str:
        others = ", ".join(f"{k}: {v:.3g}" for k, v in self.suggestions.items())
        stopped = ", stopped when the loss diverged" if self.diverged else ""
        return (
            f"suggested learning rate {self.suggestion:.3g} ({self.method}; {others}); "
            f"lowest loss at {self.min_loss_learning_rate:.3g}; {len(self.losses)} batches{stopped}"
        )

    def plot(self, ax: Any = None, path: str | None = None, smoothed: bool = True) -> Any:
        """Plot the loss against the learning rate (log scale), marking the suggestion.

        Needs matplotlib.

        Args:
            ax: A matplotlib ``Axes`` to draw on; a new figure when None.
            path: If given, save the figure to this file (png, svg, pdf...).
            smoothed: Plot the smoothed loss (and the raw loss faintly) if True,
                else the raw loss only.

        Returns:
            The matplotlib ``Axes``.
        """
        import matplotlib

        if ax is None and path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.learning_rates, self.losses, alpha=0.3 if smoothed else 1.0, label="loss")
        if smoothed:
            ax.plot(self.learning_rates, self.smoothed_losses, label="smoothed loss")
        ax.axvline(self.suggestion, color="tab:red", linestyle="--", label=f"{self.method}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        finite = [v for v in self.smoothed_losses if math.isfinite(v)]
        if finite:
            low, first = min(finite), finite[0]
            ax.set_ylim(low - 0.1 * abs(low), max(first, low) * 1.5 + 1e-12)
        ax.set_title(f"LR range test: suggestion {self.suggestion:.3g}")
        ax.legend()
        if path is not None:
            ax.figure.savefig(path, bbox_inches="tight")
        return ax


def _check_positive_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"lr_find: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _n_samples(x: Any) -> int:
    lengths = {len(a) for a in keras.tree.flatten(x)}
    if len(lengths) != 1:
        raise ValueError(f"lr_find: the arrays in x have different lengths {sorted(lengths)}.")
    return lengths.pop()


def _working_model(
    model: keras.Model | Callable[..., keras.Model],
    build_kwargs: Mapping[str, Any] | None,
    start_lr: float,
) -> keras.Model:
    """A compiled model to run the test on: never the caller's model itself."""
    if isinstance(model, keras.Model):
        if build_kwargs:
            raise ValueError("lr_find: build_kwargs is only used with a build function.")
        source = model
        if not getattr(source, "compiled", False):
            raise TypeError(
                "lr_find: the model is not compiled; compile it (the test needs its loss) "
                "or pass a function that builds and compiles it."
            )
        try:
            work = keras.models.clone_model(source)
            work.set_weights(source.get_weights())
        except Exception as exc:
            raise TypeError(
                f"lr_find: could not copy the model ({exc}); pass the function that builds "
                "and compiles it instead."
            ) from exc
    elif callable(model):
        source = work = model(**dict(build_kwargs or {}))
        if not isinstance(work, keras.Model) or not getattr(work, "compiled", False):
            raise TypeError(
                "lr_find: the build function must return a compiled keras.Model, got "
                f"{type(work).__name__}."
            )
    else:
        raise TypeError(
            "lr_find: model must be a compiled keras.Model or a function that builds and "
            f"compiles one, got {type(model).__name__}."
        )
    optimizer = source.optimizer
    config = optimizer.get_config()
    config["learning_rate"] = float(start_lr)
    fresh = type(optimizer).from_config(config)
    work.compile(optimizer=fresh, loss=source.loss)
    return work


def _ema(values: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average."""
    out = np.empty_like(values)
    average = 0.0
    for i, value in enumerate(values):
        average = beta * average + (1 - beta) * value
        out[i] = average / (1 - beta ** (i + 1))
    return out


def _rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    return np.array(
        [np.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]
    )


def _smooth_curve(losses: list[float], beta: float, threshold: float) -> list[float]:
    """The loss curve without noise, lag or blown-up tail (NaN there).

    A centered running median of 5 batches removes single-batch spikes. The curve is
    cut where that median first exceeds ``threshold`` times its lowest value so far
    (the loss has blown up; those batches become NaN). What is left is smoothed by the
    moving average run forward and then backward: a trailing average lags about
    ``beta / (1 - beta)`` batches behind the loss, and since the learning rate grows
    every batch, that lag would move the curve's minimum to a higher rate, by an amount
    that depends on ``num_steps``.
    """
    values = np.asarray(losses, dtype="float64")
    median = _rolling_median(values, 5)
    lowest = np.minimum.accumulate(median)
    blown = np.nonzero(median > threshold * lowest)[0]
    cut = int(blown[0]) if blown.size else len(values)
    cut = max(cut, min(3, len(values)))
    smooth = _ema(_ema(median[:cut], beta)[::-1], beta)[::-1]
    return [float(v) for v in smooth] + [math.nan] * (len(values) - cut)


def _suggest(
    learning_rates: np.ndarray, smoothed: np.ndarray, method: str
) -> tuple[float, dict[str, float]]:
    best = int(np.argmin(smoothed))
    suggestions = {"min/10": float(learning_rates[best] / 10.0)}
    # steepest descent of the smoothed loss against log(lr), before the minimum; the
    # first batches are skipped (the moving average is still settling there)
    skip = max(3, len(smoothed) // 20)
    if best - skip >= 2:
        slope = np.gradient(smoothed, np.log(learning_rates))
        suggestions["steepest"] = float(learning_rates[skip + int(np.argmin(slope[skip:best]))])
    else:
        suggestions["steepest"] = suggestions["min/10"]
        if method == "steepest":
            warnings.warn(
                "lr_find: the loss was lowest within the first batches, so there is no "
                "descent to measure; suggesting the 'min/10' rate instead.",
                RuntimeWarning,
                stacklevel=3,
            )
    return suggestions[method], suggestions


def lr_find(
    model: keras.Model | Callable[..., keras.Model],
    x: Any,
    y: Any = None,
    *,
    build_kwargs: Mapping[str, Any] | None = None,
    start_lr: float = 1e-5,
    end_lr: float = 10.0,
    num_steps: int = 200,
    batch_size: int = 32,
    max_passes: int = 10,
    smoothing: float = 0.9,
    diverge_threshold: float = 4.0,
    method: str = "min/10",
    seed: int | None = 0,
    verbose: int = 0,
) -> LRFinderResult:
    """Run the learning-rate range test and suggest a learning rate.

    Trains a copy of the model for ``num_steps`` batches while the learning rate grows
    geometrically from ``start_lr`` to ``end_lr``, records each batch's loss and stops
    early once the loss's moving average exceeds ``diverge_threshold`` times its
    minimum (or the loss becomes NaN). The suggestion is read from the losses smoothed
    without lag (a running median, then the average run forward and backward; see
    ``smoothed_losses``), up to where the loss blew up.

    The model passed in is never trained: a compiled model is cloned (weights
    copied) and recompiled with a fresh optimizer of the same class and
    configuration; a build function is called to make a new model. The loss is the
    model's own compiled loss (regularization losses included).

    Suggestion rules (``method``):

    - ``"min/10"`` (default): one tenth of the learning rate at which the smoothed
      loss was lowest; the rule of Smith (2017) and fastai's ``lr_min``. Robust.
    - ``"steepest"``: the learning rate at which the smoothed loss falls fastest
      (most negative slope against ``log(lr)``) after the first 5% of the
      batches (at least 3, skipped while the average settles) and before the
      minimum; more aggressive, noisier.

    Both are in ``result.suggestions``.

    Args:
        model: A compiled ``keras.Model``, or a function returning a compiled model
            (called as ``model(**build_kwargs)``).
        x: Training inputs: an array, or a list/dict of arrays of the same length.
        y: Training targets (an array or structure of arrays), or None for models
            that need none.
        build_kwargs: Keyword arguments for the build function.
        start_lr: First learning rate (> 0).
        end_lr: Last learning rate (> start_lr).
        num_steps: Number of batches (>= 10). About 33 per decade of learning rate
            (the default) make the curve's minimum, and so the suggestion, stable;
            with fewer, the loss has less time to fall at each rate and the minimum
            drifts to higher rates.
        batch_size: Samples per batch.
        max_passes: How many times the test may go through the data; the data must
            hold at least ``num_steps * batch_size / max_passes`` samples.
        smoothing: Weight of the past in the exponential moving average of the loss,
            in [0, 1) (0 for no smoothing).
        diverge_threshold: Stop when the smoothed loss exceeds this multiple of its
            minimum (> 1).
        method: ``"min/10"`` or ``"steepest"``, see above.
        seed: Seed for the order of the batches (and Keras' global seed when
            building from a function); None for no seeding.
        verbose: 1 to log progress through the ``tunefleet`` logger.

    Returns:
        An `LRFinderResult` (``suggestion``, ``suggestions``, the curves, ``plot()``).

    Raises:
        ValueError: If ``start_lr >= end_lr``, the data is too small for
            ``num_steps`` batches, or another argument is out of range.
        TypeError: If ``model`` is neither a compiled model nor a build function.

    Example:

    >>> from sklearn.datasets import load_digits
    >>> from tunefleet.keras import build_mlp, lr_find
    >>> X, y = load_digits(return_X_y=True)
    >>> result = lr_find(build_mlp, X / 16, y,
    ...                  build_kwargs={"input_shape": (64,), "output": "multiclass:10"})
    >>> result.method, 1e-5 <= result.suggestion <= 10.0
    ('min/10', True)
    """
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise TypeError(f"lr_find: {name} must be a number, got {value!r}.")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"lr_find: {name} must be a positive number, got {value!r}.")
    if start_lr >= end_lr:
        raise ValueError(
            f"lr_find: start_lr ({start_lr!r}) must be smaller than end_lr ({end_lr!r}); "
            "the test sweeps the learning rate upward."
        )
    num_steps = _check_positive_int("num_steps", num_steps, 10)
    batch_size = _check_positive_int("batch_size", batch_size, 1)
    max_passes = _check_positive_int("max_passes", max_passes, 1)
    if not 0 <= smoothing < 1:
        raise ValueError(f"lr_find: smoothing must be in [0, 1), got {smoothing!r}.")
    if not diverge_threshold > 1:
        raise ValueError(f"lr_find: diverge_threshold must be > 1, got {diverge_threshold!r}.")
    if method not in SUGGESTION_METHODS:
        raise ValueError(
            f"lr_find: method={method!r} is not a suggestion rule; use one of "
            f"{', '.join(map(repr, SUGGESTION_METHODS))}."
        )

    x = keras.tree.map_structure(np.asarray, x)
    if y is not None:
        y = keras.tree.map_structure(np.asarray, y)
    n = _n_samples(x)
    if y is not None and _n_samples(y) != n:
        raise ValueError(f"lr_find: x has {n} samples but y has {_n_samples(y)}.")
    batches_per_pass = n // batch_size
    if batches_per_pass * max_passes < num_steps:
        raise ValueError(
            f"lr_find: the data is too small for num_steps={num_steps} batches of "
            f"batch_size={batch_size}: {n} samples give {batches_per_pass} full batch(es) "
            f"per pass, {batches_per_pass * max_passes} in max_passes={max_passes} passes. "
            "Lower num_steps or batch_size, raise max_passes, or pass more data."
        )

    if seed is not None and not isinstance(model, keras.Model):
        keras.utils.set_random_seed(int(seed))
    work = _working_model(model, build_kwargs, start_lr)
    rng = np.random.default_rng(seed)
    schedule = np.geomspace(start_lr, end_lr, num_steps)

    lrs: list[float] = []
    losses: list[float] = []
    average = 0.0
    best = math.inf
    diverged = False
    order = rng.permutation(n)
    for step, lr in enumerate(schedule):
        position = step % batches_per_pass
        if position == 0 and step > 0:
            order = rng.permutation(n)
        idx = order[position * batch_size : (position + 1) * batch_size]
        xb = keras.tree.map_structure(lambda a, idx=idx: a[idx], x)
        yb = None if y is None else keras.tree.map_structure(lambda a, idx=idx: a[idx], y)
        work.optimizer.learning_rate = float(lr)
        logs = work.train_on_batch(xb, yb, return_dict=True)
        loss = float(logs["loss"])
        lrs.append(float(lr))
        losses.append(loss)
        if not math.isfinite(loss):
            diverged = True
            losses.pop()
            lrs.pop()
            break
        average = smoothing * average + (1 - smoothing) * loss
        value = average / (1 - smoothing ** (step + 1))  # online, for the stop rule
        best = min(best, value)
        if verbose:
            _LOG.info("lr_find: step %d lr %.3g loss %.4g", step, lr, loss)
        if step >= 5 and value > diverge_threshold * best:
            diverged = True
            break
    del work

    if len(losses) < 3:
        raise ValueError(
            f"lr_find: the loss diverged after {len(losses)} batch(es), at learning rate "
            f"{schedule[len(losses)]:.3g}; lower start_lr (now {start_lr!r})."
        )
    smoothed = _smooth_curve(losses, smoothing, diverge_threshold)
    kept = sum(math.isfinite(v) for v in smoothed)
    lr_array, smooth_array = np.asarray(lrs[:kept]), np.asarray(smoothed[:kept])
    suggestion, suggestions = _suggest(lr_array, smooth_array, method)
    lowest = int(np.argmin(smooth_array))
    if lowest >= len(smooth_array) - 2 and not diverged and kept == len(smoothed):
        warnings.warn(
            f"lr_find: the loss was still falling at end_lr={end_lr!r}; the range test "
            "did not find where it rises. Raise end_lr (or num_steps).",
            RuntimeWarning,
            stacklevel=2,
        )
    return LRFinderResult(
        learning_rates=lrs,
        losses=losses,
        smoothed_losses=smoothed,
        suggestion=suggestion,
        method=method,
        suggestions=suggestions,
        diverged=diverged,
    )
