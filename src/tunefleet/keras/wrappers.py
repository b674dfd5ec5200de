"""scikit-learn estimators around a function that builds and compiles a Keras 3 model.

`KerasClassifier` and `KerasRegressor` replace the removed
``keras.wrappers.scikit_learn`` wrappers of tf.keras and scikeras' wrappers: the
keyword arguments of the build function become estimator parameters, so
``GridSearchCV``, ``RandomizedSearchCV``, ``Pipeline``, ``clone`` and pickling
work as with any scikit-learn estimator.

The build function must be a module-level function (not a lambda or a closure) so
that the estimator can be pickled, e.g. by scikit-learn's ``n_jobs`` workers.

The routing of parameters to the build function lives in `tunefleet.keras.routing`,
the encoding of targets in `tunefleet.keras.targets`, and the callback that stops a
diverging fit in `tunefleet.keras.fit_monitor`.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import keras
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from tunefleet._hooks import current_epoch_observer
from tunefleet.keras.compression.quantization import quantized_copy
from tunefleet.keras.fit_monitor import FitMonitor
from tunefleet.keras.initializer_draws import shared_draw_programs
from tunefleet.keras.memory import clear_session, release_memory
from tunefleet.keras.routing import ParameterRouting, callable_name, to_python
from tunefleet.keras.targets import (
    ClassifierTargets,
    RegressorTargets,
    check_sample_weight,
    drop_unweighted,
)
from tunefleet.keras.user_callbacks import fresh_callbacks

__all__ = ["KerasClassifier", "KerasRegressor"]

_BUILD_FN_CONTRACT = (
    "build_fn must return a compiled keras.Model; call model.compile(...) inside it"
)


def _model_to_bytes(model: keras.Model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


class _KerasWrapperBase(ParameterRouting):
    """Shared machinery of `KerasClassifier` and `KerasRegressor`: building and fitting.

    Its parameters (`tunefleet.keras.routing.ParameterRouting`) and the encoding of
    targets (`tunefleet.keras.targets`) come from the classes it is mixed with.
    """

    #: Trains in epochs and reports each to a trial's observer (Hyperband's resource).
    _reports_epochs: ClassVar[bool] = True

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
                f"{_BUILD_FN_CONTRACT}. {callable_name(fn)}(){via} returned "
                f"{type(model).__module__}.{type(model).__qualname__}"
                + (" (a Keras 2 / tf.keras model?)" if "tf_keras" in repr(type(model)) else "")
                + "."
            )
        if not getattr(model, "compiled", False):
            raise TypeError(
                f"{_BUILD_FN_CONTRACT}. {callable_name(fn)}(){via} returned a "
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
        self._check_routing()
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

    def _validate_X(self, X: Any, reset: bool) -> Any:
        # scipy sparse rows go to Keras as they are (it makes dense batches of them)
        return validate_data(
            self, X, reset=reset, allow_nd=True, dtype="numeric", accept_sparse=("csr", "csc")
        )

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
            sample_weight: Optional non-negative per-sample weights, not all zero; a
                weight counts like repeating the sample, as in scikit-learn (samples of
                weight 0 are left out, the others rescaled to average 1).
            **kwargs: Overrides of the fit parameters (``epochs``, ``batch_size``,
                ``verbose``, ``callbacks``, ``validation_split``, ``validation_data``,
                ``shuffle`` and, for classifiers, ``class_weight``) for this call.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: Without exactly one build function (``build_fn=`` or ``model=``),
                with ``y=None``, or with invalid sample weights.
            FloatingPointError: If the training loss became NaN or infinite.
        """
        self._check_routing()
        params = self._resolve_fit_params(kwargs)
        self._release()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = self._validate_X(X, reset=True)
        meta = self._fit_target(y, X)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        model = self._build(meta, params, release=True)
        try:
            self._configure_target(model, X)
            y_fit = self._encode_target(y)
            if sample_weight is not None:
                X, y_fit, sample_weight = drop_unweighted(X, y_fit, sample_weight)
            validation_data = params.pop("validation_data")
            if validation_data is not None:
                validation_data = self._prepare_validation_data(validation_data)
            callbacks = fresh_callbacks(params.pop("callbacks"))
            callbacks += [keras.callbacks.TerminateOnNaN(), FitMonitor(current_epoch_observer())]
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
        out = self.model_.predict(X, batch_size=to_python(self.batch_size), verbose=0)
        return np.asarray(out)

    def __sklearn_is_fitted__(self) -> bool:
        return "model_" in self.__dict__

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Fits are reproducible when seeded (keras.utils.set_random_seed before building).
        tags.non_deterministic = self.random_state is None
        tags.input_tags.sparse = True  # CSR/CSC X: Keras makes dense batches of it
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


class KerasClassifier(ClassifierMixin, ClassifierTargets, _KerasWrapperBase):
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
        model: The same, under scikeras' name; give exactly one of the two (as
            scikit-learn's rules ask, the constructor stores its arguments and ``fit``
            checks them). After fitting, ``.model`` returns the fitted Keras model when
            this is None.
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

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> KerasClassifier:
        """Build a fresh model with the current parameters and train it on ``(X, y)``.

        Args:
            X: Training inputs, array-like of shape ``(n_samples, n_features, ...)``.
            y: Labels of shape ``(n_samples,)`` (any kind) or one-hot rows.
            sample_weight: Optional non-negative per-sample weights, not all zero; a
                weight counts like repeating the sample, as in scikit-learn (samples of
                weight 0 are left out, the others rescaled to average 1).
            **kwargs: Overrides of the fit parameters (``epochs``, ``batch_size``,
                ``verbose``, ``callbacks``, ``validation_split``, ``validation_data``,
                ``class_weight``, ``shuffle``) for this call.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: Without exactly one build function (``build_fn=`` or ``model=``),
                with ``y=None``, or with invalid sample weights.
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


class KerasRegressor(RegressorMixin, RegressorTargets, _KerasWrapperBase):
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
        model: The same, under scikeras' name; give exactly one of the two (as
            scikit-learn's rules ask, the constructor stores its arguments and ``fit``
            checks them). After fitting, ``.model`` returns the fitted Keras model when
            this is None.
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

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> KerasRegressor:
        """Build a fresh model with the current parameters and train it on ``(X, y)``.

        Args:
            X: Training inputs, array-like of shape ``(n_samples, n_features, ...)``.
            y: Targets of shape ``(n_samples,)`` or ``(n_samples, n_outputs)``.
            sample_weight: Optional non-negative per-sample weights, not all zero; a
                weight counts like repeating the sample, as in scikit-learn (samples of
                weight 0 are left out, the others rescaled to average 1).
            **kwargs: Overrides of the fit parameters (``epochs``, ``batch_size``,
                ``verbose``, ``callbacks``, ``validation_split``, ``validation_data``,
                ``shuffle``) for this call.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: Without exactly one build function (``build_fn=`` or ``model=``),
                with ``y=None``, or with invalid sample weights.
            FloatingPointError: If the training loss became NaN or infinite.
        """
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y of shape (n_samples, n_outputs)
        return tags

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: 1-D for single-output models, else ``(n_samples, n_outputs)``.

        Args:
            X: Inputs.

        Returns:
            Array of predictions.
        """
        out = self._predict_raw(X).astype(np.float64)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out
