"""How the Keras wrappers turn scikit-learn targets into what the model trains on.

`ClassifierTargets` encodes labels of any kind (or one-hot rows) for the model's
output: 0/1 for one sigmoid unit, integer codes for a sparse loss, else one-hot rows,
and maps ``class_weight`` to those codes. `RegressorTargets` checks that the targets'
columns match the model's outputs. Both check the model built for a fit
(``_configure_target``) and keep what prediction needs on the estimator.
`check_sample_weight` and `drop_unweighted` make sample weights count like repeated
samples, as in scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from tunefleet.keras.routing import to_python


class LossInfo:
    """What matters about a compiled model's loss for encoding targets.

    Example:

    >>> import keras
    >>> info = LossInfo(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> info.sparse, info.from_logits
    (True, True)
    >>> LossInfo("categorical_crossentropy").sparse
    False
    """

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


def single_output_shape(model: keras.Model, X: np.ndarray) -> tuple[int | None, ...]:
    """The per-sample output shape of a single-output model (built on one sample if needed).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> single_output_shape(model, np.zeros((2, 4)))
    (3,)
    """
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


def is_one_hot(y: np.ndarray) -> bool:
    """Whether the rows of a 2-D array are one-hot (a single 1, else 0s).

    Example:

    >>> import numpy as np
    >>> is_one_hot(np.eye(3)), is_one_hot(np.ones((2, 3)))
    (True, False)
    """
    try:
        values = y.astype(float)
    except (TypeError, ValueError):
        return False
    return bool(np.isin(values, (0.0, 1.0)).all() and (values.sum(axis=1) == 1).all())


class ClassifierTargets:
    """Label encoding of `tunefleet.keras.KerasClassifier` (a mixin of the estimator).

    Sets ``classes_``, ``n_classes_`` and the target format of the built model on the
    estimator it is mixed into.

    Example:

    >>> from tunefleet.keras import KerasClassifier
    >>> from tunefleet.keras.targets import ClassifierTargets
    >>> issubclass(KerasClassifier, ClassifierTargets)
    True
    """

    def _fit_target(self, y: Any, X: np.ndarray) -> dict[str, Any]:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            if not is_one_hot(y):
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
                f"1 class: {self.classes_.tolist()!r}."
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
        shape = single_output_shape(model, X)
        if len(shape) > 1:
            raise ValueError(
                f"The model's output has per-sample shape {shape}; a classifier needs "
                "(n_classes,) or (1,)."
            )
        width = shape[0] if shape else 1
        loss = LossInfo(getattr(model, "loss", None))
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
            if y.ndim != 2 or y.shape[1] != self.n_classes_ or not is_one_hot(y):
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
        if all(to_python(k) in labels for k in class_weight):
            return {labels.index(to_python(k)): float(w) for k, w in class_weight.items()}
        if all(isinstance(to_python(k), int) and 0 <= to_python(k) < n for k in class_weight):
            return {int(k): float(w) for k, w in class_weight.items()}
        raise ValueError(
            f"class_weight keys {list(class_weight)!r} must be class labels "
            f"{labels!r} (or their indices)."
        )


class RegressorTargets:
    """Target checks of `tunefleet.keras.KerasRegressor` (a mixin of the estimator).

    Sets ``n_outputs_`` on the estimator it is mixed into.

    Example:

    >>> from tunefleet.keras import KerasRegressor
    >>> from tunefleet.keras.targets import RegressorTargets
    >>> issubclass(KerasRegressor, RegressorTargets)
    True
    """

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
        shape = single_output_shape(model, X)
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


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Check ``sample_weight`` of a fit on ``n_samples`` samples; return it as float32.

    Weights must be one finite, non-negative number per sample, not all zero.

    Example:

    >>> check_sample_weight([1, 0, 2], 3)
    array([1., 0., 2.], dtype=float32)
    >>> check_sample_weight([0, 0], 2)
    Traceback (most recent call last):
    ...
    ValueError: Sample weights must contain at least one non-zero number.
    """
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype="float64")
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must be one weight per sample: shape ({n_samples},), got "
            f"{weights.shape}."
        )
    if not np.isfinite(weights).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if (weights < 0).any():
        raise ValueError("Negative values in sample_weight are not allowed.")
    if not weights.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return weights.astype("float32")


def drop_unweighted(
    X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave out samples of weight 0 and rescale the other weights to average 1.

    So a weight counts like repeating the sample, as in scikit-learn: Keras averages a
    batch's weighted losses over the batch's size, so weights that average 1 make one
    batch's loss the weighted mean ``sum(w * loss) / sum(w)``, the mean loss of the data
    with each sample repeated ``w`` times; the scale of the weights changes nothing.

    Example:

    >>> import numpy as np
    >>> X, y = np.arange(4.0).reshape(4, 1), np.arange(4.0)
    >>> X2, y2, w2 = drop_unweighted(X, y, np.array([2.0, 0.0, 1.0, 1.0]))
    >>> X2[:, 0].tolist(), w2.tolist()
    ([0.0, 2.0, 3.0], [1.5, 0.75, 0.75])
    """
    keep = sample_weight > 0
    if not keep.all():
        X, y, sample_weight = X[keep], y[keep], sample_weight[keep]
    scale = sample_weight.shape[0] / float(sample_weight.astype("float64").sum())
    return X, y, (sample_weight * scale).astype("float32")
