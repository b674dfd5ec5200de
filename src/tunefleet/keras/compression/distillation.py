"""Knowledge distillation through Keras 3's ``keras.distillation.Distiller``."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
from keras import ops

from tunefleet.keras.compression.measure import evaluate_metrics, require_built_model
from tunefleet.keras.compression.report import CompressionReport, make_report, measure_model

__all__ = ["distill"]

_EPSILON = 1e-7


def _output_kind(model: keras.Model) -> str:
    """``"softmax"``, ``"sigmoid"`` or ``"linear"``: what the model's last layer outputs."""
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if len(list(layer._flatten_layers())) == 1
    ]
    last = layers[-1] if layers else None
    activation = getattr(last, "activation", None)
    if activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax":
        return "softmax"
    if activation is keras.activations.sigmoid or getattr(activation, "__name__", "") == "sigmoid":
        return "sigmoid"
    return "linear"


def _output_shape(model: keras.Model, x: Any) -> tuple[Any, ...]:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if outputs:
        if len(outputs) != 1:
            raise ValueError(
                f"distill: the model {model.name!r} has {len(outputs)} outputs; distill "
                "supports single-output models."
            )
        return tuple(outputs[0].shape[1:])
    sample = keras.tree.map_structure(lambda a: a[:1], x)
    return tuple(ops.shape(model(sample, training=False))[1:])


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss.lower()
    for attr in ("name", "__name__"):
        value = getattr(loss, attr, None)
        if isinstance(value, str):
            return value.lower()
    return type(loss).__name__.lower()


def _as_logits(outputs: Any, kind: str) -> Any:
    """Outputs turned into logits up to a per-sample constant (which softmax ignores)."""
    if kind == "softmax":
        return ops.log(ops.clip(outputs, _EPSILON, 1.0))
    if kind == "sigmoid":
        p = ops.clip(outputs, _EPSILON, 1.0 - _EPSILON)
        return ops.concatenate([ops.log(1.0 - p), ops.log(p)], axis=-1)
    if outputs.shape[-1] == 1:  # a single binary logit z: class logits (0, z)
        return ops.concatenate([ops.zeros_like(outputs), outputs], axis=-1)
    return outputs


_OUTPUT_DISTILLATION: type | None = None


def _output_distillation(temperature: float, teacher_kind: str, student_kind: str) -> Any:
    """``LogitsDistillation`` (KL at a temperature) for models ending in softmax or sigmoid too.

    The class is made on first use, when ``keras.distillation`` (Keras >= 3.12, the lower
    bound tunefleet pins) is imported.
    """
    global _OUTPUT_DISTILLATION
    if _OUTPUT_DISTILLATION is None:

        class _OutputDistillation(keras.distillation.LogitsDistillation):
            def __init__(self, temperature: float, teacher_kind: str, student_kind: str) -> None:
                super().__init__(temperature=temperature, loss=keras.losses.KLDivergence())
                self.teacher_kind = teacher_kind
                self.student_kind = student_kind

            def compute_loss(
                self, teacher_outputs: Any, student_outputs: Any, **kwargs: Any
            ) -> Any:
                return super().compute_loss(
                    _as_logits(teacher_outputs, self.teacher_kind),
                    _as_logits(student_outputs, self.student_kind),
                    **kwargs,
                )

        _OUTPUT_DISTILLATION = _OutputDistillation
    return _OUTPUT_DISTILLATION(temperature, teacher_kind, student_kind)


def _build_student(
    student_build_fn: Callable[..., keras.Model], build_kwargs: Mapping[str, Any], seed: int | None
) -> keras.Model:
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    student = student_build_fn(**build_kwargs)
    if not isinstance(student, keras.Model) or not getattr(student, "compiled", False):
        raise TypeError(
            "distill: student_build_fn must return a compiled keras.Model (its optimizer and "
            f"loss are used), got {type(student).__name__}."
        )
    return student


def distill(
    teacher: keras.Model,
    student_build_fn: Callable[..., keras.Model],
    x: Any,
    y: Any,
    *,
    temperature: float = 3.0,
    alpha: float = 0.1,
    epochs: int = 10,
    batch_size: int = 32,
    build_kwargs: Mapping[str, Any] | None = None,
    validation_data: tuple[Any, Any] | None = None,
    baseline: bool = False,
    seed: int | None = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
) -> tuple[keras.Model, CompressionReport]:
    """Train a small student model to imitate a trained teacher (knowledge distillation).

    Uses Keras 3's ``keras.distillation.Distiller``: the student minimizes
    ``alpha * student_loss(y, student(x)) + (1 - alpha) * distillation_loss``, where
    the student loss is the one the student was compiled with and, for classifiers,
    the distillation loss is Hinton's KL divergence between the teacher's and the
    student's outputs softened at ``temperature`` (scaled by ``temperature**2``).
    Models may end in softmax, sigmoid or plain logits: probabilities are turned
    into logits (their logarithm) before softening, which Keras'
    ``LogitsDistillation`` alone does not do. Regressors (linear outputs and a
    non-cross-entropy loss) get ``FeatureDistillation`` with MSE on the outputs
    (``temperature`` unused). The teacher is not changed (its ``trainable`` flag
    is restored).

    Args:
        teacher: A trained, built ``keras.Model``.
        student_build_fn: A function returning a compiled student model (its
            optimizer trains it, its loss is the student loss); called with
            ``build_kwargs``.
        x: Training inputs.
        y: Training targets (as the student's loss expects them).
        temperature: Softening temperature (> 0), typically 2 to 10.
        alpha: Weight of the student's own loss, in [0, 1]; ``1 - alpha`` weighs the
            distillation loss.
        epochs: Training epochs (>= 1).
        batch_size: Batch size.
        build_kwargs: Keyword arguments for ``student_build_fn``.
        validation_data: ``(x_val, y_val)`` for the report's metrics; defaults to
            ``(x, y)``.
        baseline: Also train the same student alone (same seed, epochs and batch
            size, no teacher) and store its metrics in
            ``report.details["baseline_metrics"]``.
        seed: Keras global seed set before building each student (None: not set).
        callbacks: Callbacks for the distillation ``fit``.
        verbose: Verbosity of ``fit``.

    Returns:
        ``(student, report)``: the trained student (compiled as its build function
        compiled it) and a `CompressionReport` whose "before" figures are the
        teacher's and "after" figures the student's.

    Raises:
        ValueError: If the teacher's and the student's output shapes differ, or an
            argument is out of range.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> from tunefleet.keras import build_mlp, count_params, distill
    >>> teacher = build_mlp((4,), "multiclass:3", n_neurons=64)
    >>> _ = teacher.fit(X, y, epochs=1, verbose=0)
    >>> student, report = distill(
    ...     teacher, build_mlp, X, y, temperature=4.0, alpha=0.1, epochs=1,
    ...     build_kwargs={"input_shape": (4,), "output": "multiclass:3", "n_neurons": 8},
    ...     validation_data=(X, y), baseline=True)
    >>> report.method, count_params(student) < count_params(teacher)
    ('distill', True)
    >>> sorted(report.details["baseline_metrics"])
    ['accuracy', 'loss']
    """
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not temperature > 0
    ):
        raise ValueError(f"distill: temperature must be a number > 0, got {temperature!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"distill: alpha must be a number in [0, 1], got {alpha!r}.")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"distill: epochs must be an integer >= 1, got {epochs!r}.")
    if not callable(student_build_fn) or isinstance(student_build_fn, keras.Model):
        raise TypeError(
            "distill: student_build_fn must be a function that builds and compiles the student "
            f"(called again for the baseline), got {type(student_build_fn).__name__}."
        )
    if not hasattr(keras, "distillation"):
        raise ImportError(
            f"distill needs keras.distillation, which Keras {keras.__version__} does not have; "
            "upgrade Keras (3.15 has it)."
        )
    teacher = require_built_model(teacher, "distill")
    build_kwargs = dict(build_kwargs or {})
    x_eval, y_eval = validation_data if validation_data is not None else (x, y)

    student = _build_student(student_build_fn, build_kwargs, seed)
    teacher_shape = _output_shape(teacher, x)
    student_shape = _output_shape(student, x)
    if teacher_shape != student_shape:
        raise ValueError(
            f"distill: the teacher's output shape {teacher_shape} and the student's "
            f"{student_shape} differ; the student must predict the same targets (same number "
            "of classes or outputs)."
        )
    teacher_kind, student_kind = _output_kind(teacher), _output_kind(student)
    classification = (
        "softmax" in (teacher_kind, student_kind)
        or "sigmoid" in (teacher_kind, student_kind)
        or "crossentropy" in _loss_name(student.loss)
    )
    if classification:
        loss = _output_distillation(float(temperature), teacher_kind, student_kind)
        loss_name = f"KL divergence at temperature {float(temperature):g}"
    else:
        loss = keras.distillation.FeatureDistillation(loss="mse")
        loss_name = "MSE between outputs (regression)"

    before = measure_model(teacher, x_eval, y_eval, 128)
    was_trainable = teacher.trainable
    try:
        distiller = keras.distillation.Distiller(
            teacher=teacher,
            student=student,
            distillation_losses=loss,
            student_loss_weight=float(alpha),
        )
        distiller.compile(optimizer=student.optimizer, loss=student.loss)
        distiller.fit(
            x,
            y,
            epochs=int(epochs),
            batch_size=int(batch_size),
            callbacks=list(callbacks),
            verbose=verbose,
        )
    finally:
        teacher.trainable = was_trainable
    del distiller
    after = measure_model(student, x_eval, y_eval, 128)
    details: dict[str, Any] = {
        "temperature": float(temperature),
        "alpha": float(alpha),
        "epochs": int(epochs),
        "distillation_loss": loss_name,
        "teacher_output": teacher_kind,
        "student_output": student_kind,
    }
    if baseline:
        alone = _build_student(student_build_fn, build_kwargs, seed)
        alone.fit(x, y, epochs=int(epochs), batch_size=int(batch_size), verbose=verbose)
        details["baseline_metrics"] = evaluate_metrics(alone, x_eval, y_eval, 128)
        del alone
    return student, make_report("distill", before, after, details=details)
