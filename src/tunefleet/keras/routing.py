"""How the Keras wrappers' parameters reach the build function and ``Model.fit``.

A wrapper's constructor takes its own parameters (``build_fn``/``model``, the fit
parameters such as ``epochs``, ``random_state``) and, as further keyword arguments,
the build function's arguments, also under scikeras' ``model__``/``build_fn__``
prefixes. `ParameterRouting` sorts them, checks every name against the build
function's signature, and exposes them all to ``get_params``/``set_params`` so that
scikit-learn's searches, ``clone`` and pipelines see one flat set of parameters.

Example:

>>> from tunefleet.keras.routing import META_ARG, ROUTING_PREFIXES
>>> ROUTING_PREFIXES
('model__', 'build_fn__')
>>> META_ARG
'meta'
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import keras
import numpy as np
from sklearn.base import BaseEstimator

#: Prefixes accepted as aliases of a build-function argument (scikeras routing).
ROUTING_PREFIXES = ("model__", "build_fn__")

#: A build-function argument with this name receives a dict describing the data.
META_ARG = "meta"


class InvalidParameterError(ValueError, TypeError):
    """A parameter name the estimator does not know (both a ValueError and a TypeError).

    Example:

    >>> issubclass(InvalidParameterError, ValueError), issubclass(InvalidParameterError, TypeError)
    (True, True)
    """


def to_python(value: Any) -> Any:
    """Convert numpy scalars and 0-d arrays (also inside lists/tuples/dicts) to Python values.

    Example:

    >>> import numpy as np
    >>> to_python({"units": np.int64(8), "rates": [np.float32(0.5), np.array(2)]})
    {'units': 8, 'rates': [0.5, 2]}
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if type(value) is list:
        return [to_python(v) for v in value]
    if type(value) is tuple:
        return tuple(to_python(v) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(to_python(v) for v in value))
    if type(value) is dict:
        return {k: to_python(v) for k, v in value.items()}
    return value


def fresh_keras_objects(value: Any) -> Any:
    """Re-create Keras optimizers and metrics (also inside lists/tuples/dicts) from config.

    A model's optimizer and metrics hold variables sized for that model; an instance
    given as a parameter must not be shared by the models of successive fits.

    Example:

    >>> import keras
    >>> adam = keras.optimizers.Adam(1e-3)
    >>> copy = fresh_keras_objects({"optimizer": adam})["optimizer"]
    >>> type(copy).__name__, copy is adam
    ('Adam', False)
    """
    if isinstance(value, (keras.optimizers.Optimizer, keras.metrics.Metric)):
        try:
            return type(value).from_config(value.get_config())
        except Exception:
            return copy.deepcopy(value)
    if type(value) is list:
        return [fresh_keras_objects(v) for v in value]
    if type(value) is tuple:
        return tuple(fresh_keras_objects(v) for v in value)
    if type(value) is dict:
        return {k: fresh_keras_objects(v) for k, v in value.items()}
    return value


def callable_name(fn: Callable[..., Any]) -> str:
    """The name of a function for error messages (its qualified name where it has one).

    Example:

    >>> def build_model():
    ...     pass
    >>> callable_name(build_model)
    'build_model'
    """
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


class ParameterRouting(BaseEstimator):
    """The parameters of a Keras wrapper: its own, the fit parameters, the build function's.

    The base of `tunefleet.keras.KerasClassifier` and `tunefleet.keras.KerasRegressor`.
    Build-function arguments are given as keyword arguments (``units=8``) or with a
    routing prefix (``model__units=8``); a name that is neither a wrapper parameter
    nor an argument of the build function is refused (`InvalidParameterError`).

    Example:

    >>> import keras
    >>> from tunefleet.keras import KerasRegressor
    >>> def build_model(units=16):
    ...     model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units),
    ...                               keras.layers.Dense(1)])
    ...     model.compile(loss="mse")
    ...     return model
    >>> reg = KerasRegressor(build_model, model__units=4, epochs=2)
    >>> reg.get_params()["units"], reg.set_params(units=8).units
    (4, 8)
    >>> reg.set_params(depth=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tunefleet.keras.routing.InvalidParameterError: Invalid parameter 'depth' ...
    """

    #: Parameters passed on to ``keras.Model.fit`` (overridable per ``fit`` call).
    _fit_param_names: ClassVar[tuple[str, ...]] = (
        "epochs",
        "batch_size",
        "verbose",
        "callbacks",
        "validation_split",
        "validation_data",
        "shuffle",
    )
    #: Fit parameters that are plain values (numpy scalars converted to Python).
    _scalar_fit_params: ClassVar[frozenset[str]] = frozenset(
        {"epochs", "batch_size", "verbose", "validation_split", "shuffle"}
    )

    # ----------------------------------------------------------------- parameters

    def _init_params(
        self,
        build_fn: Callable[..., keras.Model] | None,
        model: Callable[..., keras.Model] | None,
        random_state: Any,
        fit_params: dict[str, Any],
        build_kwargs: dict[str, Any],
    ) -> None:
        self.build_fn = build_fn
        self._model_arg = model
        for name, value in fit_params.items():
            setattr(self, name, value)
        self.random_state = random_state
        self._build_kwargs: dict[str, Any] = {}
        # Values are stored unchecked (scikit-learn's rule: ``fit`` validates them). Only
        # names that cannot be sorted into parameters are refused here, like Python
        # refuses an unexpected keyword argument; that needs a build function to read.
        fn = self._build_fn_or_none(build_fn, model)
        if fn is None:
            self._build_kwargs.update(self._strip_prefixes(build_kwargs))
            return
        self._check_build_arg_names(fn)
        canonical = self._canonical_build_kwargs(fn, build_kwargs, where="__init__")
        self._build_kwargs.update(canonical)

    @property
    def model(self) -> Any:
        """The ``model=`` argument if one was given, else the fitted Keras model (or None).

        tf.keras' wrappers exposed the fitted Keras model as ``.model``; this keeps
        ``search.best_estimator_.model`` working. ``model_`` is the fitted model.
        """
        if self._model_arg is not None:
            return self._model_arg
        return self.__dict__.get("model_")

    @model.setter
    def model(self, value: Any) -> None:
        self._model_arg = value

    @staticmethod
    def _check_build_fn_choice(build_fn: Any, model: Any) -> Callable[..., keras.Model]:
        for name, value in (("build_fn", build_fn), ("model", model)):
            if isinstance(value, keras.Model):
                raise InvalidParameterError(
                    f"{name}= got a keras.Model instance; pass a function that builds and "
                    "compiles the model instead (it is called anew for every fit), e.g. "
                    "def build_model(): ...; return model"
                )
        given = [value for value in (build_fn, model) if value is not None]
        if len(given) != 1 or not callable(given[0]):
            raise InvalidParameterError(
                "Pass exactly one of build_fn= or model= (its scikeras name): a function "
                "that builds and returns a compiled keras.Model; got "
                f"build_fn={build_fn!r}, model={model!r}."
            )
        return given[0]

    @classmethod
    def _build_fn_or_none(cls, build_fn: Any, model: Any) -> Callable[..., keras.Model] | None:
        """The build function if ``build_fn``/``model`` name exactly one, else None."""
        try:
            return cls._check_build_fn_choice(build_fn, model)
        except InvalidParameterError:
            return None

    @property
    def _build_callable(self) -> Callable[..., keras.Model]:
        return self._check_build_fn_choice(self.build_fn, self._model_arg)

    def _check_routing(self) -> Callable[..., keras.Model]:
        """Validate what the constructor and ``set_params`` stored; return the build function.

        Called by ``fit`` (and ``check_build``): a missing or invalid ``build_fn``/``model``,
        a build-function argument named like a wrapper parameter, or a stored argument the
        build function does not take is reported here, naming the parameter.
        """
        fn = self._build_callable
        self._check_build_arg_names(fn)
        self._canonical_build_kwargs(fn, self._build_kwargs, where="fit")
        return fn

    @staticmethod
    def _strip_prefixes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Build-function arguments without ``model__``/``build_fn__`` (names unchecked)."""
        out: dict[str, Any] = {}
        for name, value in kwargs.items():
            key = next((name[len(p) :] for p in ROUTING_PREFIXES if name.startswith(p)), name)
            if key in out:
                raise InvalidParameterError(
                    f"Parameter {key!r} given twice (also as a model__/build_fn__ alias)."
                )
            out[key] = value
        return out

    def _own_param_names(self) -> list[str]:
        return ["build_fn", "model", *self._fit_param_names, "random_state"]

    @staticmethod
    def _signature(fn: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], bool]:
        """Keyword-passable parameters of ``fn`` and whether it takes ``**kwargs``."""
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return {}, True
        params = {}
        var_kw = False
        for name, p in sig.parameters.items():
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                var_kw = True
            elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                params[name] = p
        return params, var_kw

    def _check_build_arg_names(self, fn: Callable[..., Any]) -> None:
        """Refuse a build-function argument named like one of the wrapper's own parameters.

        ``KerasClassifier(build, epochs=5)`` cannot say whether 5 is the number of training
        epochs or the build function's ``epochs`` argument, so such a function is refused
        (``ValueError``) rather than one of the two being silently shadowed.
        """
        params, _ = self._signature(fn)
        own = self._own_param_names()
        clashes = [name for name in params if name in own]
        if not clashes:
            return
        name = clashes[0]
        kind = "fit parameter" if name in self._fit_param_names else "parameter"
        wrapper = type(self).__name__
        raise ValueError(
            f"The build function {callable_name(fn)}() has an argument named {name!r}, "
            f"which is also a {wrapper} {kind}: {wrapper}({callable_name(fn)}, {name}=...) "
            f"could not tell which one is meant. Rename the argument (e.g. 'model_{name}') "
            f"and pass it as {wrapper}({callable_name(fn)}, model_{name}=...)."
            + (f" Other clashing arguments: {clashes[1:]}." if len(clashes) > 1 else "")
        )

    def _build_arg_names(self, fn: Callable[..., Any]) -> list[str]:
        """Build-function arguments that are estimator parameters of their own."""
        params, _ = self._signature(fn)
        own = set(self._own_param_names())
        return [n for n in params if n not in own and n != META_ARG]

    def _canonical_build_kwargs(
        self, fn: Callable[..., Any], kwargs: Mapping[str, Any], where: str
    ) -> dict[str, Any]:
        """Strip ``model__``/``build_fn__`` prefixes and check names against ``fn``."""
        _, var_kw = self._signature(fn)
        accepted = set(self._build_arg_names(fn))
        out: dict[str, Any] = {}
        for name, value in kwargs.items():
            key = name
            for prefix in ROUTING_PREFIXES:
                if key.startswith(prefix):
                    key = key[len(prefix) :]
                    break
            if key in self._own_param_names() and key != name:
                raise self._invalid_param(name, fn, where)
            if key not in accepted and not (var_kw and key not in self._own_param_names()):
                raise self._invalid_param(name, fn, where)
            if key in out:
                raise InvalidParameterError(
                    f"Parameter {key!r} given twice (also as a model__/build_fn__ alias)."
                )
            out[key] = value
        return out

    def _valid_param_names(self, fn: Callable[..., Any] | None = None) -> list[str]:
        if fn is None:
            fn = self._build_callable
        return [*self._own_param_names(), *self._build_arg_names(fn)]

    def _invalid_param(self, name: str, fn: Callable[..., Any], where: str) -> Exception:
        valid = self._valid_param_names(fn)
        _, var_kw = self._signature(fn)
        if where == "__init__":
            return InvalidParameterError(
                f"{type(self).__name__}() got an unexpected keyword argument {name!r}: it "
                f"is neither a fit parameter nor an argument of the build function "
                f"{callable_name(fn)}(). Valid parameters are: {valid!r}."
            )
        extra = "" if not var_kw else " (the build function takes **kwargs)"
        return InvalidParameterError(
            f"Invalid parameter {name!r} for estimator {type(self).__name__}(build_fn="
            f"{callable_name(fn)}){extra}. Valid parameters are: {valid!r}."
        )

    def _build_params(self) -> dict[str, Any]:
        """Build-function arguments: given values, else the function's defaults.

        Without a valid build function (``fit`` will say so), the given values only.
        """
        fn = self._build_fn_or_none(self.build_fn, self._model_arg)
        if fn is None:
            return dict(self._build_kwargs)
        params, var_kw = self._signature(fn)
        own = set(self._own_param_names())
        out: dict[str, Any] = {}
        for name, p in params.items():
            if name in own or name == META_ARG:
                continue
            if name in self._build_kwargs:
                out[name] = self._build_kwargs[name]
            elif p.default is not inspect.Parameter.empty:
                out[name] = p.default
        if var_kw:
            for name, value in self._build_kwargs.items():
                if name not in out and name not in own:
                    out[name] = value
        return out

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get the estimator's parameters, including the build function's arguments.

        Args:
            deep: Unused (there are no nested estimators); kept for scikit-learn.

        Returns:
            Dict of parameter name to value. Build-function arguments appear with the
            value given to the constructor or ``set_params``, else the function's
            default; arguments without default that were not given are left out.
        """
        params: dict[str, Any] = {"build_fn": self.build_fn, "model": self._model_arg}
        for name in self._fit_param_names:
            params[name] = getattr(self, name)
        params["random_state"] = self.random_state
        params.update(self._build_params())
        return params

    def set_params(self, **params: Any) -> ParameterRouting:
        """Set parameters, including build-function arguments (``units=`` or ``model__units=``).

        Args:
            **params: Parameter names and values.

        Returns:
            The estimator.

        Raises:
            ValueError: For a name that is neither a fit parameter nor an argument of
                the build function.
        """
        if not params:
            return self
        build_fn = params.get("build_fn", self.build_fn)
        model_arg = params.get("model", self._model_arg)
        old_fn = self._build_fn_or_none(self.build_fn, self._model_arg)
        fn = self._build_fn_or_none(build_fn, model_arg)
        own = set(self._own_param_names())
        given = {k: v for k, v in params.items() if k not in own}
        if fn is None:  # no valid build function to check names against: fit will
            build_updates = self._strip_prefixes(given)
        else:
            build_updates = self._canonical_build_kwargs(fn, given, where="set_params")
        for name in ("build_fn", "model"):
            if name in params:
                setattr(self, "_model_arg" if name == "model" else name, params[name])
        for name, value in params.items():
            if name in own and name not in ("build_fn", "model"):
                setattr(self, name, value)
        if fn is not None and old_fn is not None and ("build_fn" in params or "model" in params):
            # keep only the arguments the (possibly new) build function accepts
            params_fn, var_kw = self._signature(fn)
            if not var_kw:
                self._build_kwargs = {k: v for k, v in self._build_kwargs.items() if k in params_fn}
        self._build_kwargs.update(build_updates)
        return self

    def __getattr__(self, name: str) -> Any:
        # Build-function arguments read as attributes (``est.units``), like other params.
        if (
            name.startswith("_")
            or name.endswith("_")
            or name in ("build_fn", "model", "random_state", *self._fit_param_names)
        ):
            raise AttributeError(name)
        try:
            build_kwargs = object.__getattribute__(self, "_build_kwargs")
        except AttributeError:
            raise AttributeError(name) from None
        if name in build_kwargs:
            return build_kwargs[name]
        try:
            params = self._build_params()
        except Exception:
            params = {}
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _build_kwargs_for_call(
        self, meta: dict[str, Any] | None, fit_params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        fn = self._check_routing()  # also for a build_fn set after __init__
        params, _ = self._signature(fn)
        kwargs = {k: fresh_keras_objects(to_python(v)) for k, v in self._build_params().items()}
        if META_ARG in params:
            if meta is None:
                raise ValueError(
                    f"The build function {callable_name(fn)}() takes `meta`, which "
                    "describes the training data; pass X and y to check_build()."
                )
            kwargs[META_ARG] = meta
        missing = [
            name
            for name, p in params.items()
            if p.default is inspect.Parameter.empty and name not in kwargs
        ]
        if missing:
            raise TypeError(
                f"The build function {callable_name(fn)}() is missing required "
                f"argument(s) {', '.join(map(repr, missing))}: pass them to "
                f"{type(self).__name__}(...) or set_params(...)."
            )
        return kwargs

    def _resolve_fit_params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = [k for k in overrides if k not in self._fit_param_names]
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.fit() got unexpected keyword argument(s) "
                f"{', '.join(map(repr, unknown))}; valid ones are sample_weight and "
                f"{', '.join(self._fit_param_names)}."
            )
        params = {name: getattr(self, name) for name in self._fit_param_names}
        params.update(overrides)
        for name in self._scalar_fit_params:
            params[name] = to_python(params[name])
        return params
