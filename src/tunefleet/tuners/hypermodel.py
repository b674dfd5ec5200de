"""``HyperModel``: how to build (and optionally how to train) a model for given ``hp``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class HyperModel:
    """Builds a compiled Keras model from ``hp``; subclass it to also customise training.

    Override :meth:`build`; override :meth:`fit` to tune how the model is trained (it
    receives the same ``hp``, so ``hp.Choice("batch_size", ...)`` works there too). A
    ``fit`` may return the Keras ``History``, a dict of metric values, or one number
    (the objective). Passing hyperparameters as ``tuner.search`` arguments
    (``batch_size=Choice("batch_size", [16, 32])``) needs no subclass.

    Args:
        name: an optional name.
        tunable: kept for Keras Tuner compatibility.

    Example:

    >>> import keras
    >>> class MyHyperModel(HyperModel):
    ...     def build(self, hp):
    ...         model = keras.Sequential([keras.Input((4,)),
    ...             keras.layers.Dense(hp.Int("units", 8, 64), activation="relu"),
    ...             keras.layers.Dense(3, activation="softmax")])
    ...         model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ...         return model
    ...
    ...     def fit(self, hp, model, *args, **kwargs):
    ...         return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)
    >>> from tunefleet.tuners import HyperParameters
    >>> MyHyperModel().build(HyperParameters()).output_shape
    (None, 3)
    """

    def __init__(self, name: str | None = None, tunable: bool = True) -> None:
        self.name = name
        self.tunable = tunable

    def build(self, hp: Any) -> Any:
        """Build and compile a model for the values of ``hp``."""
        raise NotImplementedError(f"{type(self).__name__} must implement build(hp).")

    def declare_hyperparameters(self, hp: Any) -> None:
        """Declare hyperparameters before any build (optional)."""

    def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        """Train ``model``; by default ``model.fit(*args, **kwargs)``."""
        return model.fit(*args, **kwargs)


class _FunctionHyperModel(HyperModel):
    """A ``build_model(hp)`` function as a :class:`HyperModel` (picklable when it is)."""

    def __init__(self, build_fn: Callable[[Any], Any]) -> None:
        super().__init__(name=getattr(build_fn, "__name__", None))
        self.build_fn = build_fn

    def build(self, hp: Any) -> Any:
        return self.build_fn(hp)


def as_hypermodel(hypermodel: Any) -> HyperModel:
    """A :class:`HyperModel` for the tuners' ``hypermodel`` argument."""
    if isinstance(hypermodel, HyperModel):
        return hypermodel
    if callable(getattr(hypermodel, "compile", None)):
        raise TypeError(
            "hypermodel= got a model instance; pass a function build_model(hp) that builds and "
            "compiles a new model (it is called for every trial), or a tunefleet.HyperModel."
        )
    if callable(getattr(hypermodel, "build", None)) and callable(getattr(hypermodel, "fit", None)):
        return hypermodel  # e.g. a keras_tuner.HyperModel: the same protocol
    if callable(hypermodel) and not isinstance(hypermodel, type):
        return _FunctionHyperModel(hypermodel)
    raise TypeError(
        "hypermodel must be a function build_model(hp) that returns a compiled keras.Model, "
        f"or a tunefleet.HyperModel; got {hypermodel!r}."
    )


def defining_object(hypermodel: HyperModel) -> Any:
    """What identifies a hypermodel across processes: its build function, or itself."""
    if isinstance(hypermodel, _FunctionHyperModel):
        return hypermodel.build_fn
    return hypermodel


def describe(hypermodel: HyperModel) -> str:
    """``build_model()`` or ``MyHyperModel.build()``, for messages."""
    if isinstance(hypermodel, _FunctionHyperModel):
        fn = hypermodel.build_fn
        return f"{getattr(fn, '__qualname__', None) or getattr(fn, '__name__', repr(fn))}()"
    return f"{type(hypermodel).__name__}.build()"
