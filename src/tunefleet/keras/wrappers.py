"""scikit-learn estimators around a function that builds and compiles a Keras 3 model.

`KerasClassifier` and `KerasRegressor` replace the removed
``keras.wrappers.scikit_learn`` wrappers of tf.keras and scikeras' wrappers: the
keyword arguments of the build function become estimator parameters, so
``GridSearchCV``, ``RandomizedSearchCV``, ``Pipeline``, ``clone`` and pickling
work as with any scikit-learn estimator.

The build function must be a module-level function (not a lambda or a closure) so
that the estimator can be pickled, e.g. by scikit-learn's ``n_jobs`` workers.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import keras
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from tunefleet._hooks import EpochObserver, current_epoch_observer
from tunefleet.keras.compression.quantization import quantized_copy
from tunefleet.keras.initializer_draws import shared_draw_programs
from tunefleet.keras.memory import clear_session, release_memory
from tunefleet.keras.user_callbacks import fresh_callbacks

__all__ = ["KerasClassifier", "KerasRegressor"]

#: Prefixes accepted as aliases of a build-function argument (scikeras routing).
_ROUTING_PREFIXES = ("model__", "build_fn__")

#: A build-function argument with this name receives a dict describing the data.
_META_ARG = "meta"

_BUILD_FN_CONTRACT = (
    "build_fn must return a compiled keras.Model; call model.compile(...) inside it"
)


class _InvalidParameterError(ValueError, TypeError):
    """A parameter name the estimator does not know (both a ValueError and a TypeError)."""


def _to_python(value: Any) -> Any:
    """Convert numpy scalars and 0-d arrays (also inside lists/tuples/dicts) to Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if type(value) is list:
        return [_to_python(v) for v in value]
    if type(value) is tuple:
        return tuple(_to_python(v) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(_to_python(v) for v in value))
    if type(value) is dict:
        return {k: _to_python(v) for k, v in value.items()}
    return value


def _fresh_keras_objects(value: Any) -> Any:
    """Re-create Keras optimizers and metrics (also inside lists/tuples/dicts) from config.

    A model's optimizer and metrics hold variables sized for that model; an instance
    given as a parameter must not be shared by the models of successive fits.
    """
    if isinstance(value, (keras.optimizers.Optimizer, keras.metrics.Metric)):
        try:
            return type(value).from_config(value.get_config())
        except Exception:
            return copy.deepcopy(value)
    if type(value) is list:
        return [_fresh_keras_objects(v) for v in value]
    if type(value) is tuple:
        return tuple(_fresh_keras_objects(v) for v in value)
    if type(value) is dict:
        return {k: _fresh_keras_objects(v) for k, v in value.items()}
    return value


def _callable_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


class _FitMonitor(keras.callbacks.Callback):
    """Raises on a non-finite training loss and reports epochs to the trial's observer."""

    def __init__(self, observer: EpochObserver | None) -> None:
        super().__init__()
        self.observer = observer

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise FloatingPointError(
                f"The training loss became {float(loss)} at epoch {epoch} (counting from "
                "0); training was stopped. Lower the learning rate or check the data."
            )
        if self.observer is not None:
            self.observer(epoch, self.params["epochs"])


class _LossInfo:
    """What matters about a compiled model's loss for encoding targets."""

    def __init__(self, loss: Any) -> None:
        if isinstance(loss, (list, tuple)) and len(loss) == 1:
            loss = loss[0]
        if isinstance(loss, Mapping) and len(loss) == 1:
            loss = next(iter(loss.values()))
        if isinstance(loss, str):
            names = [loss]
        else:
            fn = getattr(loss, "fn", None)
            names = [
                str(getattr(loss, "name", "") or ""),
                type(loss).__name__,
                str(getattr(loss, "__name__", "") or ""),
                str(getattr(fn, "__name__", "") or ""),
            ]
        self.name = " ".join(n for n in names if n).lower()
        self.sparse = "sparse" in self.name
        from_logits = getattr(loss, "from_logits", None)
        if from_logits is None:
            from_logits = (getattr(loss, "_fn_kwargs", None) or {}).get("from_logits")
        self.from_logits = bool(from_logits)


def _output_shape(model: keras.Model, X: np.ndarray) -> tuple[int | None, ...]:
    """The per-sample output shape of a single-output model (built on one sample if needed)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if outputs:
        shapes = [tuple(o.shape) for o in outputs]
    else:
        result = model(X[:1])
        shapes = [tuple(np.shape(t)) for t in keras.tree.flatten(result)]
    if len(shapes) != 1:
        raise ValueError(
            f"The model has {len(shapes)} outputs; tunefleet's Keras wrappers support "
            "models with a single output."
        )
    return shapes[0][1:]


def _model_to_bytes(model: keras.Model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


class _KerasWrapperBase(BaseEstimator):
    """Shared machinery of `KerasClassifier` and `KerasRegressor`."""

    #: Trains in epochs and reports each to a trial's observer (Hyperband's resource).
    _reports_epochs: ClassVar[bool] = True

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
        fn = self._check_build_fn_choice(build_fn, model)
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
                raise _InvalidParameterError(
                    f"{name}= got a keras.Model instance; pass a function that builds and "
                    "compiles the model instead (it is called anew for every fit), e.g. "
                    "def build_model(): ...; return model"
                )
        given = [value for value in (build_fn, model) if value is not None]
        if len(given) != 1 or not callable(given[0]):
            raise _InvalidParameterError(
                "Pass exactly one of build_fn= or model= (its scikeras name): a function "
                "that builds and returns a compiled keras.Model; got "
                f"build_fn={build_fn!r}, model={model!r}."
            )
        return given[0]

    @property
    def _build_callable(self) -> Callable[..., keras.Model]:
        return self._check_build_fn_choice(self.build_fn, self._model_arg)

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
            f"The build function {_callable_name(fn)}() has an argument named {name!r}, "
            f"which is also a {wrapper} {kind}: {wrapper}({_callable_name(fn)}, {name}=...) "
            f"could not tell which one is meant. Rename the argument (e.g. 'model_{name}') "
            f"and pass it as {wrapper}({_callable_name(fn)}, model_{name}=...)."
            + (f" Other clashing arguments: {clashes[1:]}." if len(clashes) > 1 else "")
        )

    def _build_arg_names(self, fn: Callable[..., Any]) -> list[str]:
        """Build-function arguments that are estimator parameters of their own."""
        params, _ = self._signature(fn)
        own = set(self._own_param_names())
        return [n for n in params if n not in own and n != _META_ARG]

    def _canonical_build_kwargs(
        self, fn: Callable[..., Any], kwargs: Mapping[str, Any], where: str
    ) -> dict[str, Any]:
        """Strip ``model__``/``build_fn__`` prefixes and check names against ``fn``."""
        _, var_kw = self._signature(fn)
        accepted = set(self._build_arg_names(fn))
        out: dict[str, Any] = {}
        for name, value in kwargs.items():
            key = name
            for prefix in _ROUTING_PREFIXES:
                if key.startswith(prefix):
                    key = key[len(prefix) :]
                    break
            if key in self._own_param_names() and key != name:
                raise self._invalid_param(name, fn, where)
            if key not in accepted and not (var_kw and key not in self._own_param_names()):
                raise self._invalid_param(name, fn, where)
            if key in out:
                raise _InvalidParameterError(
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
            return _InvalidParameterError(
                f"{type(self).__name__}() got an unexpected keyword argument {name!r}: it "
                f"is neither a fit parameter nor an argument of the build function "
                f"{_callable_name(fn)}(). Valid parameters are: {valid!r}."
            )
        extra = "" if not var_kw else " (the build function takes **kwargs)"
        return _InvalidParameterError(
            f"Invalid parameter {name!r} for estimator {type(self).__name__}(build_fn="
            f"{_callable_name(fn)}){extra}. Valid parameters are: {valid!r}."
        )

    def _build_params(self) -> dict[str, Any]:
        """Build-function arguments: given values, else the function's defaults."""
        fn = self._build_callable
        params, var_kw = self._signature(fn)
        own = set(self._own_param_names())
        out: dict[str, Any] = {}
        for name, p in params.items():
            if name in own or name == _META_ARG:
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

    def set_params(self, **params: Any) -> _KerasWrapperBase:
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
        fn = self._check_build_fn_choice(build_fn, model_arg)
        own = set(self._own_param_names())
        build_updates = self._canonical_build_kwargs(
            fn, {k: v for k, v in params.items() if k not in own}, where="set_params"
        )
        for name in ("build_fn", "model"):
            if name in params:
                setattr(self, "_model_arg" if name == "model" else name, params[name])
        for name, value in params.items():
            if name in own and name not in ("build_fn", "model"):
                setattr(self, name, value)
        if "build_fn" in params or "model" in params:
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

    # -------------------------------------------------------------------- building

    def _meta(self, X: np.ndarray) -> dict[str, Any]:
        return {
            "n_features_in_": X.shape[1] if X.ndim > 1 else 1,
            "X_shape_": X.shape,
            "X_dtype_": X.dtype,
        }

    def _seed(self) -> None:
        rs = self.random_state
        if rs is None:
            return
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
            seed = int(rs)
        else:
            seed = int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        keras.utils.set_random_seed(seed)

    def _build_kwargs_for_call(
        self, meta: dict[str, Any] | None, fit_params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        fn = self._build_callable
        self._check_build_arg_names(fn)  # also for a build_fn set after __init__
        params, _ = self._signature(fn)
        kwargs = {k: _fresh_keras_objects(_to_python(v)) for k, v in self._build_params().items()}
        if _META_ARG in params:
            if meta is None:
                raise ValueError(
                    f"The build function {_callable_name(fn)}() takes `meta`, which "
                    "describes the training data; pass X and y to check_build()."
                )
            kwargs[_META_ARG] = meta
        missing = [
            name
            for name, p in params.items()
            if p.default is inspect.Parameter.empty and name not in kwargs
        ]
        if missing:
            raise TypeError(
                f"The build function {_callable_name(fn)}() is missing required "
                f"argument(s) {', '.join(map(repr, missing))}: pass them to "
                f"{type(self).__name__}(...) or set_params(...)."
            )
        return kwargs

    def _build(
        self,
        meta: dict[str, Any] | None,
        fit_params: Mapping[str, Any] | None = None,
        release: bool = False,
    ) -> keras.Model:
        """Clear the Keras session, seed, call the build function and check its result.

        With ``release`` (a fit: earlier fits are finished), also release what earlier
        fits compiled (`tunefleet.keras.memory.release_memory`).
        """
        kwargs = self._build_kwargs_for_call(meta, fit_params)
        if release:
            release_memory()
        else:
            clear_session()
        self._seed()
        fn = self._build_callable
        with shared_draw_programs():
            model = fn(**kwargs)
        self._check_compiled(model, fn)
        return model

    def _check_compiled(self, model: Any, fn: Callable[..., Any]) -> None:
        via = "" if self.build_fn is not None else " (the function passed as model=)"
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"{_BUILD_FN_CONTRACT}. {_callable_name(fn)}(){via} returned "
                f"{type(model).__module__}.{type(model).__qualname__}"
                + (" (a Keras 2 / tf.keras model?)" if "tf_keras" in repr(type(model)) else "")
                + "."
            )
        if not getattr(model, "compiled", False):
            raise TypeError(
                f"{_BUILD_FN_CONTRACT}. {_callable_name(fn)}(){via} returned a "
                f"keras.Model ({type(model).__name__} {model.name!r}) that is not compiled."
            )

    def check_build(self, X: Any = None, y: Any = None, *, quantize: str | None = None) -> None:
        """Build the model once with the current parameters, check it, and release it.

        Raises early what every fit would raise: missing build-function arguments, or a
        build function that does not return a compiled ``keras.Model`` (TypeError).
        With ``X`` and ``y`` it also checks that the model's output fits the targets
        (and can build functions that take ``meta``). With ``quantize`` (a mode of
        `tunefleet.keras.quantize`), it checks that Keras can quantize the built model in
        that mode (the error names the layers that cannot be). tunefleet's searches call
        it before any trial runs. Like ``fit``, it clears the Keras session first.

        Args:
            X: Optional training inputs.
            y: Optional training targets (needed when ``X`` is given).
            quantize: Optional quantization mode to check (searches' ``compress=``).
        """
        probe = self
        Xa = meta = None
        if X is not None:
            if y is None:
                raise ValueError("check_build(X, y): pass y together with X.")
            probe = clone(self)
            Xa = probe._validate_X(X, reset=True)
            meta = probe._fit_target(y, Xa)
        model = probe._build(meta)
        try:
            if Xa is not None:
                probe._configure_target(model, Xa)
            if quantize is not None and model.built:
                quantized_copy(model, quantize)
        finally:
            del model, probe
            clear_session()

    # --------------------------------------------------------------------- fitting

    def _validate_X(self, X: Any, reset: bool) -> np.ndarray:
        return validate_data(self, X, reset=reset, allow_nd=True, dtype="numeric")

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
            params[name] = _to_python(params[name])
        return params

    def _fleet_inputs(
        self, X: Any, y: Any, overrides: dict[str, Any], like: Any = None
    ) -> dict[str, Any]:
        """What fleet training needs to train this configuration like :meth:`fit` would.

        Builds the model once (to learn its target format; or takes the format of ``like``,
        another configuration of the same fleet prepared on the same data), prepares ``X``
        and the encoded targets, and returns the build function's arguments and the fit
        parameters. The estimator is then ready to score predictions computed elsewhere
        (see ``tunefleet.trial_fleet``).
        """
        params = self._resolve_fit_params(overrides)
        X = self._validate_X(X, reset=True)
        meta = self._fit_target(y, X)
        if like is None:
            model = self._build(meta, params)
            self._configure_target(model, X)
            del model
        else:
            for name in ("_target_format_", "_from_logits_"):
                if name in like.__dict__:
                    setattr(self, name, like.__dict__[name])
        return {
            "build_fn": self._build_callable,
            "config": self._build_kwargs_for_call(meta, params),
            "X": X,
            "y": self._encode_target(y),
            "params": params,
        }

    def _release(self) -> None:
        for name in ("model_", "history_"):
            self.__dict__.pop(name, None)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> Any:
        """Build a fresh model with the current parameters and train it.

        Args:
            X: Training inputs, array-like of shape ``(n_samples, n_features, ...)``.
            y: Training targets.
            sample_weight: Optional per-sample weights.
            **kwargs: Overrides of the fit parameters (``epochs``, ``batch_size``,
                ``verbose``, ``callbacks``, ``validation_split``, ``validation_data``,
                ``shuffle`` and, for classifiers, ``class_weight``) for this call.

        Returns:
            The fitted estimator.

        Raises:
            FloatingPointError: If the training loss became NaN or infinite.
        """
        params = self._resolve_fit_params(kwargs)
        self._release()
        X = self._validate_X(X, reset=True)
        meta = self._fit_target(y, X)
        model = self._build(meta, params, release=True)
        try:
            self._configure_target(model, X)
            y_fit = self._encode_target(y)
            if sample_weight is not None:
                sample_weight = np.asarray(sample_weight, dtype="float32").reshape(-1)
                if sample_weight.shape[0] != X.shape[0]:
                    raise ValueError(
                        f"sample_weight has {sample_weight.shape[0]} entries for "
                        f"{X.shape[0]} samples."
                    )
            validation_data = params.pop("validation_data")
            if validation_data is not None:
                validation_data = self._prepare_validation_data(validation_data)
            callbacks = fresh_callbacks(params.pop("callbacks"))
            callbacks += [keras.callbacks.TerminateOnNaN(), _FitMonitor(current_epoch_observer())]
            extra = self._extra_fit_kwargs(params, y_fit)
            # Fitted from the first epoch on, so an epoch observer can score the estimator.
            self.model_ = model
            history = model.fit(
                X,
                y_fit,
                sample_weight=sample_weight,
                validation_data=validation_data,
                callbacks=callbacks,
                **params,
                **extra,
            )
        except BaseException:
            self._release()
            del model
            raise
        history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        for epoch, loss in enumerate(history_.get("loss", [])):
            if not math.isfinite(loss):
                self._release()
                raise FloatingPointError(
                    f"The training loss became {loss} at epoch {epoch} (counting from 0)."
                )
        self.history_ = history_
        return self

    def _extra_fit_kwargs(self, params: dict[str, Any], y_fit: np.ndarray) -> dict[str, Any]:
        return {}

    def _prepare_validation_data(self, validation_data: Any) -> tuple[Any, ...]:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
                f"sample_weight_val); got {type(validation_data).__name__}."
            )
        Xv = self._validate_X(validation_data[0], reset=False)
        try:
            yv = self._encode_target(validation_data[1])
        except ValueError as exc:
            raise ValueError(f"validation_data: {exc}") from exc
        rest = tuple(np.asarray(w) for w in validation_data[2:])
        return (Xv, yv, *rest)

    def _predict_raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        out = self.model_.predict(X, batch_size=_to_python(self.batch_size), verbose=0)
        return np.asarray(out)

    def __sklearn_is_fitted__(self) -> bool:
        return "model_" in self.__dict__

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        return tags

    # --------------------------------------------------------- subclass interface

    def _fit_target(self, y: Any, X: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def _configure_target(self, model: keras.Model, X: np.ndarray) -> None:
        raise NotImplementedError

    def _encode_target(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    # -------------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_model_keras_bytes"] = _model_to_bytes(model)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        data = state.pop("_model_keras_bytes", None)
        super().__setstate__(state)
        if data is not None:
            self.model_ = self._model_from_bytes(data)

    def _model_from_bytes(self, data: bytes) -> keras.Model:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            with open(path, "wb") as f:
                f.write(data)
            try:
                # pickle already trusts its input; allow Lambda layers
                return keras.saving.load_model(path, safe_mode=False)
            except Exception as exc:
                # e.g. unregistered custom objects: rebuild and load the weights only
                try:
                    model = self._build_callable(**self._build_kwargs_for_call(self._meta_))
                    if not model.built:
                        model(np.zeros((1, *self._meta_["X_shape_"][1:]), dtype="float32"))
                    if model.optimizer is not None and not model.optimizer.built:
                        model.optimizer.build(model.trainable_variables)
                    model.load_weights(path)
                    return model
                except Exception:
                    raise exc from None


class KerasClassifier(ClassifierMixin, _KerasWrapperBase):
    """A scikit-learn classifier that trains a Keras model built by a function.

    The function builds and compiles a fresh ``keras.Model`` for every fit; its
    keyword arguments are estimator parameters (``get_params``/``set_params``,
    searchable by ``GridSearchCV``). Labels may be of any kind (ints, strings,
    bools) or one-hot rows. With one sigmoid output unit the model is trained on 0/1
    targets; with one unit per class on integer labels when the loss is sparse
    (``"sparse_categorical_crossentropy"``), otherwise on one-hot rows. Before each
    fit the Keras session is cleared (``keras.backend.clear_session()``) and what
    earlier fits compiled is released within a budget
    (`tunefleet.keras.memory.release_memory`), so many fits stay bounded in memory. The
    build function must be defined at module level for the estimator to be picklable.

    Args:
        build_fn: Function returning a compiled ``keras.Model`` (the tf.keras name).
        model: The same, under scikeras' name; give exactly one of the two. After
            fitting, ``.model`` returns the fitted Keras model when this is None.
        epochs: Number of epochs to train.
        batch_size: Batch size (Keras' default of 32 if None).
        verbose: Keras verbosity of ``fit``.
        callbacks: Keras callbacks; each fit uses fresh copies of them.
        validation_split: Fraction of the training data held out for validation.
        validation_data: ``(X_val, y_val)``; ``y_val`` is encoded like ``y``.
        class_weight: Dict from original label to weight, or ``"balanced"``.
        shuffle: Whether to shuffle the training data each epoch.
        random_state: Seed for ``keras.utils.set_random_seed`` before building.
        **build_kwargs: Arguments of the build function (``units=8`` or
            scikeras' ``model__units=8``); missing ones take the function's defaults.

    Attributes:
        model_: The fitted ``keras.Model``.
        history_: Dict of metric name to per-epoch values.
        classes_: The class labels.
        n_classes_: The number of classes.
        n_features_in_: The number of input features.

    Example:

    >>> import numpy as np
    >>> import keras
    >>> def build_model(units=8, optimizer="adam"):
    ...     model = keras.Sequential([
    ...         keras.Input((4,)),
    ...         keras.layers.Dense(units, activation="relu"),
    ...         keras.layers.Dense(3, activation="softmax"),
    ...     ])
    ...     model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    ...     return model
    >>> X = np.random.rand(30, 4)
    >>> y = np.array(["a", "b", "c"] * 10)
    >>> clf = KerasClassifier(build_model, units=4, epochs=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    >>> clf.get_params()["units"]
    4
    """

    _fit_param_names: ClassVar[tuple[str, ...]] = (
        *_KerasWrapperBase._fit_param_names,
        "class_weight",
    )

    def __init__(
        self,
        build_fn: Callable[..., keras.Model] | None = None,
        *,
        model: Callable[..., keras.Model] | None = None,
        epochs: int = 1,
        batch_size: int | None = None,
        verbose: int | str = 0,
        callbacks: Iterable[keras.callbacks.Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: tuple[Any, ...] | None = None,
        class_weight: Mapping[Any, float] | str | None = None,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        **build_kwargs: Any,
    ) -> None:
        self._init_params(
            build_fn,
            model,
            random_state,
            {
                "epochs": epochs,
                "batch_size": batch_size,
                "verbose": verbose,
                "callbacks": callbacks,
                "validation_split": validation_split,
                "validation_data": validation_data,
                "class_weight": class_weight,
                "shuffle": shuffle,
            },
            build_kwargs,
        )

    # targets ---------------------------------------------------------------------

    def _fit_target(self, y: Any, X: np.ndarray) -> dict[str, Any]:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            if not _is_one_hot(y):
                raise ValueError(
                    "2-D y must be one-hot rows (a single 1 per row); multilabel targets "
                    "are not supported."
                )
            self._onehot_input_ = True
            self.classes_ = np.arange(y.shape[1])
            self._label_encoder_ = None
            target_type = "multiclass-onehot"
        else:
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            self._onehot_input_ = False
            self._label_encoder_ = LabelEncoder().fit(y)
            self.classes_ = self._label_encoder_.classes_
            target_type = "binary" if len(self.classes_) <= 2 else "multiclass"
        self.n_classes_ = len(self.classes_)
        if self.n_classes_ < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; y has only "
                f"{self.classes_.tolist()!r}."
            )
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}.")
        meta = self._meta(X)
        meta.update(
            classes_=self.classes_,
            n_classes_=self.n_classes_,
            target_type_=target_type,
            n_outputs_expected_=1,
        )
        self._meta_ = meta
        return meta

    def _configure_target(self, model: keras.Model, X: np.ndarray) -> None:
        shape = _output_shape(model, X)
        if len(shape) > 1:
            raise ValueError(
                f"The model's output has per-sample shape {shape}; a classifier needs "
                "(n_classes,) or (1,)."
            )
        width = shape[0] if shape else 1
        loss = _LossInfo(getattr(model, "loss", None))
        n = self.n_classes_
        if width == 1:
            if n > 2:
                raise ValueError(
                    f"The model has a single output unit (binary classification with a "
                    f"sigmoid) but y has {n} classes; end the model with "
                    f"Dense({n}, activation='softmax')."
                )
            target_format = "binary"
        else:
            if width is not None and width != n:
                raise ValueError(
                    f"The model's output has {width} units but y has {n} classes; the "
                    f"last layer must have {n} units (or 1 sigmoid unit for 2 classes)."
                )
            target_format = "sparse" if loss.sparse else "onehot"
        self._target_format_ = target_format
        self._from_logits_ = loss.from_logits

    def _encode_target(self, y: Any) -> np.ndarray:
        y = np.asarray(y)
        if self._onehot_input_:
            if y.ndim != 2 or y.shape[1] != self.n_classes_ or not _is_one_hot(y):
                raise ValueError(
                    f"y must be one-hot rows with {self.n_classes_} columns, like the "
                    "training targets."
                )
            codes = y.argmax(axis=1)
        else:
            y = column_or_1d(y, warn=True)
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if unseen.size:
                raise ValueError(
                    f"y contains labels not seen in the training targets: "
                    f"{unseen.tolist()!r} (known: {self.classes_.tolist()!r})."
                )
            codes = self._label_encoder_.transform(y)
        if self._target_format_ == "binary":
            return codes.astype("float32").reshape(-1, 1)
        if self._target_format_ == "sparse":
            return codes.astype("int32")
        return np.eye(self.n_classes_, dtype="float32")[codes]

    def _extra_fit_kwargs(self, params: dict[str, Any], y_fit: np.ndarray) -> dict[str, Any]:
        class_weight = params.pop("class_weight", None)
        if class_weight is None:
            return {}
        if self._target_format_ == "binary":
            codes = y_fit[:, 0].astype(int)
        elif self._target_format_ == "sparse":
            codes = y_fit
        else:
            codes = y_fit.argmax(axis=1)
        return {"class_weight": self._class_weight_codes(class_weight, codes)}

    def _class_weight_codes(self, class_weight: Any, codes: np.ndarray) -> dict[int, float]:
        n = self.n_classes_
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise ValueError(
                    f"class_weight must be a dict or 'balanced', got {class_weight!r}."
                )
            weights = compute_class_weight("balanced", classes=np.arange(n), y=codes)
            return {i: float(w) for i, w in enumerate(weights)}
        class_weight = dict(class_weight)
        labels = self.classes_.tolist()
        if all(_to_python(k) in labels for k in class_weight):
            return {labels.index(_to_python(k)): float(w) for k, w in class_weight.items()}
        if all(isinstance(_to_python(k), int) and 0 <= _to_python(k) < n for k in class_weight):
            return {int(k): float(w) for k, w in class_weight.items()}
        raise ValueError(
            f"class_weight keys {list(class_weight)!r} must be class labels "
            f"{labels!r} (or their indices)."
        )

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> KerasClassifier:
        """Build a fresh model with the current parameters and train it on ``(X, y)``.

        Args:
            X: Training inputs, array-like of shape ``(n_samples, n_features, ...)``.
            y: Labels of shape ``(n_samples,)`` (any kind) or one-hot rows.
            sample_weight: Optional per-sample weights.
            **kwargs: Overrides of the fit parameters (``epochs``, ``batch_size``,
                ``verbose``, ``callbacks``, ``validation_split``, ``validation_data``,
                ``class_weight``, ``shuffle``) for this call.

        Returns:
            The fitted estimator.

        Raises:
            FloatingPointError: If the training loss became NaN or infinite.
        """
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    # prediction -------------------------------------------------------------------

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape ``(n_samples, n_classes)``, columns in ``classes_`` order.

        Args:
            X: Inputs.

        Returns:
            Probabilities; for a single sigmoid output the columns are ``[1 - p, p]``.
        """
        out = self._predict_raw(X).astype(np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if self._target_format_ == "binary":
            p = out[:, 0]
            if self._from_logits_:
                p = 1.0 / (1.0 + np.exp(-p))
            return np.column_stack([1.0 - p, p])
        if self._from_logits_:
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (one-hot rows if the training targets were one-hot).

        Args:
            X: Inputs.

        Returns:
            Array of labels from ``classes_``, or one-hot rows of shape
            ``(n_samples, n_classes)``.
        """
        idx = self.predict_proba(X).argmax(axis=1)
        if self._onehot_input_:
            return np.eye(self.n_classes_, dtype=int)[idx]
        return self.classes_[idx]


class KerasRegressor(RegressorMixin, _KerasWrapperBase):
    """A scikit-learn regressor that trains a Keras model built by a function.

    The function builds and compiles a fresh ``keras.Model`` for every fit; its
    keyword arguments are estimator parameters (``get_params``/``set_params``,
    searchable by ``RandomizedSearchCV``). Targets are ``(n_samples,)`` or
    ``(n_samples, n_outputs)``; ``predict`` returns a 1-D array for single-output
    models and ``score`` is R². Before each fit the Keras session is cleared. The
    build function must be defined at module level for the estimator to be
    picklable.

    Args:
        build_fn: Function returning a compiled ``keras.Model`` (the tf.keras name).
        model: The same, under scikeras' name; give exactly one of the two. After
            fitting, ``.model`` returns the fitted Keras model when this is None.
        epochs: Number of epochs to train.
        batch_size: Batch size (Keras' default of 32 if None).
        verbose: Keras verbosity of ``fit``.
        callbacks: Keras callbacks; each fit uses fresh copies of them.
        validation_split: Fraction of the training data held out for validation.
        validation_data: ``(X_val, y_val)``.
        shuffle: Whether to shuffle the training data each epoch.
        random_state: Seed for ``keras.utils.set_random_seed`` before building.
        **build_kwargs: Arguments of the build function (``n_hidden=2`` or
            ``model__n_hidden=2``); missing ones take the function's defaults.

    Attributes:
        model_: The fitted ``keras.Model``.
        history_: Dict of metric name to per-epoch values.
        n_outputs_: The number of target columns.
        n_features_in_: The number of input features.

    Example:

    >>> import numpy as np
    >>> import keras
    >>> def build_model(n_hidden=1, n_neurons=16, learning_rate=3e-3):
    ...     model = keras.Sequential([keras.Input((3,))])
    ...     for _ in range(n_hidden):
    ...         model.add(keras.layers.Dense(n_neurons, activation="relu"))
    ...     model.add(keras.layers.Dense(1))
    ...     model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate))
    ...     return model
    >>> X = np.random.rand(40, 3)
    >>> y = X.sum(axis=1)
    >>> reg = KerasRegressor(build_model, n_neurons=8, epochs=2, random_state=0)
    >>> reg.fit(X, y).predict(X[:5]).shape
    (5,)
    """

    def __init__(
        self,
        build_fn: Callable[..., keras.Model] | None = None,
        *,
        model: Callable[..., keras.Model] | None = None,
        epochs: int = 1,
        batch_size: int | None = None,
        verbose: int | str = 0,
        callbacks: Iterable[keras.callbacks.Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: tuple[Any, ...] | None = None,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        **build_kwargs: Any,
    ) -> None:
        self._init_params(
            build_fn,
            model,
            random_state,
            {
                "epochs": epochs,
                "batch_size": batch_size,
                "verbose": verbose,
                "callbacks": callbacks,
                "validation_split": validation_split,
                "validation_data": validation_data,
                "shuffle": shuffle,
            },
            build_kwargs,
        )

    def _fit_target(self, y: Any, X: np.ndarray) -> dict[str, Any]:
        y = self._check_y(y)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}.")
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        meta = self._meta(X)
        meta.update(n_outputs_=self.n_outputs_, y_shape_=y.shape)
        self._meta_ = meta
        return meta

    @staticmethod
    def _check_y(y: Any) -> np.ndarray:
        y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")
        if y.ndim > 2:
            raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}.")
        return y

    def _configure_target(self, model: keras.Model, X: np.ndarray) -> None:
        shape = _output_shape(model, X)
        if len(shape) > 1:
            raise ValueError(
                f"The model's output has per-sample shape {shape}; a regressor needs (n_outputs,)."
            )
        width = shape[0] if shape else 1
        if width is not None and width != self.n_outputs_:
            raise ValueError(
                f"The model's output has {width} units but y has {self.n_outputs_} "
                "target column(s)."
            )

    def _encode_target(self, y: Any) -> np.ndarray:
        y = self._check_y(y)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} columns, expected {self.n_outputs_}.")
        return y.astype("float32")

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> KerasRegressor:
        """Build a fresh model with the current parameters and train it on ``(X, y)``.

        Args:
            X: Training inputs, array-like of shape ``(n_samples, n_features, ...)``.
            y: Targets of shape ``(n_samples,)`` or ``(n_samples, n_outputs)``.
            sample_weight: Optional per-sample weights.
            **kwargs: Overrides of the fit parameters (``epochs``, ``batch_size``,
                ``verbose``, ``callbacks``, ``validation_split``, ``validation_data``,
                ``shuffle``) for this call.

        Returns:
            The fitted estimator.

        Raises:
            FloatingPointError: If the training loss became NaN or infinite.
        """
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: 1-D for single-output models, else ``(n_samples, n_outputs)``.

        Args:
            X: Inputs.

        Returns:
            Array of predictions.
        """
        out = self._predict_raw(X)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out


def _is_one_hot(y: np.ndarray) -> bool:
    try:
        values = y.astype(float)
    except (TypeError, ValueError):
        return False
    return bool(np.isin(values, (0.0, 1.0)).all() and (values.sum(axis=1) == 1).all())
