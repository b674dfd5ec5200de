"""Ready-made, searchable build functions: `build_mlp` and `build_cnn`.

Each returns a compiled ``keras.Model`` whose every training technique is a plain
keyword argument (depth, width, activation, dropout, batch normalization, L2,
optimizer, learning rate and schedule, gradient clipping, and for the CNN data
augmentation), so they plug straight into tunefleet's searches::

    KerasClassifier(build_mlp, input_shape=(64,), output="multiclass:10", epochs=10)

Named schedules (``schedule="cosine"`` etc.) span ``schedule_steps`` optimizer
steps; pass ``schedule_steps = epochs * ceil(n_train / batch_size)`` (a fixed
parameter of the estimator) so the schedule ends with training.

Example:

>>> from tunefleet.keras import SCHEDULES, build_mlp
>>> SCHEDULES
('constant', 'step', 'cosine', 'warmup_cosine', 'onecycle')
>>> model = build_mlp((64,), "multiclass:10", schedule="cosine", schedule_steps=100)
>>> model.output_shape
(None, 10)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import keras

from tunefleet.keras.schedules import OneCycle, StepDecay, WarmupCosine

__all__ = ["SCHEDULES", "build_cnn", "build_mlp"]

#: Named learning-rate schedules accepted by ``schedule=`` (learning_rate is the peak).
SCHEDULES = ("constant", "step", "cosine", "warmup_cosine", "onecycle")

_BIG = 3.0e38  # "no clipping" for RandomContrast's value_range (finite, so JSON-safe)

_OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd", "nesterov")

_OUTPUT_HELP = (
    "expected 'binary', 'multiclass:K' (K >= 2 classes, e.g. 'multiclass:10'), "
    "'regression' or 'regression:K' (K >= 1 targets)"
)


def _parse_output(output: Any) -> tuple[str, int]:
    """``output`` string -> (kind, units)."""
    if not isinstance(output, str):
        raise ValueError(f"output={output!r} is not valid; {_OUTPUT_HELP}.")
    kind, _, count = output.partition(":")
    if kind == "binary" and not count:
        return "binary", 1
    if kind == "regression" and not count:
        return "regression", 1
    if kind in ("multiclass", "regression") and count:
        try:
            units = int(count)
        except ValueError:
            units = 0
        minimum = 2 if kind == "multiclass" else 1
        if units >= minimum:
            return kind, units
    raise ValueError(f"output={output!r} is not valid; {_OUTPUT_HELP}.")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_float(name: str, value: Any, low: float, high: float, high_open: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (
            math.isfinite(value) and low <= value and (value < high if high_open else value <= high)
        )
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must be a number in [{low}, {high}{bracket}, got {value!r}.")
    return value


def _check_shape(name: str, value: Any, ranks: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in value)
    except TypeError:
        shape = ()
    if len(shape) not in ranks or any(d < 1 for d in shape):
        raise ValueError(
            f"{name} must be a tuple of {' or '.join(map(str, ranks))} positive sizes, "
            f"got {value!r}."
        )
    return shape


def _learning_rate(
    learning_rate: Any, schedule: Any, schedule_steps: Any
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    lr = _check_float("learning_rate", learning_rate, 0.0, math.inf)
    if lr <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}.")
    if schedule is None or schedule == "constant":
        return lr
    if schedule not in SCHEDULES:
        raise ValueError(
            f"schedule={schedule!r} is not valid; expected None, a "
            f"keras.optimizers.schedules.LearningRateSchedule or one of {SCHEDULES}."
        )
    steps = _check_int("schedule_steps", schedule_steps, 2)
    if schedule == "step":
        return StepDecay(lr, drop=0.5, every=max(1, steps // 3))
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
    if schedule == "warmup_cosine":
        return WarmupCosine(lr, total_steps=steps, warmup_steps=max(1, steps // 10))
    return OneCycle(lr, total_steps=steps)


def _optimizer(
    optimizer: Any, learning_rate: Any, schedule: Any, schedule_steps: Any, clipnorm: Any
) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if optimizer not in _OPTIMIZERS:
        raise ValueError(
            f"optimizer={optimizer!r} is not valid; expected one of {_OPTIMIZERS} or a "
            "keras.optimizers.Optimizer instance."
        )
    lr = _learning_rate(learning_rate, schedule, schedule_steps)
    kwargs: dict[str, Any] = {"learning_rate": lr}
    if clipnorm is not None:
        kwargs["clipnorm"] = _check_float("clipnorm", clipnorm, 0.0, math.inf)
        if kwargs["clipnorm"] <= 0:
            raise ValueError(f"clipnorm must be > 0 (or None), got {clipnorm!r}.")
    if optimizer == "adam":
        return keras.optimizers.Adam(**kwargs)
    if optimizer == "adamw":
        return keras.optimizers.AdamW(**kwargs)
    if optimizer == "nadam":
        return keras.optimizers.Nadam(**kwargs)
    if optimizer == "rmsprop":
        return keras.optimizers.RMSprop(**kwargs)
    if optimizer == "sgd":
        return keras.optimizers.SGD(**kwargs)
    return keras.optimizers.SGD(momentum=0.9, nesterov=True, **kwargs)


def _initializer(activation: str) -> str:
    if activation in ("relu", "elu", "gelu", "silu", "swish", "leaky_relu", "relu6", "mish"):
        return "he_normal"
    if activation == "selu":
        return "lecun_normal"
    return "glorot_uniform"


def _check_activation(activation: Any) -> str:
    if not isinstance(activation, str):
        raise ValueError(f"activation must be the name of a Keras activation, got {activation!r}.")
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(
            f"activation={activation!r} is not a Keras activation (e.g. 'relu', 'gelu', "
            "'selu', 'tanh')."
        ) from None
    return activation


def _head_and_compile(
    inputs: Any,
    features: Any,
    kind: str,
    units: int,
    regularizer: Any,
    optimizer: keras.optimizers.Optimizer,
    name: str,
) -> keras.Model:
    activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": None}[kind]
    outputs = keras.layers.Dense(
        units, activation=activation, kernel_regularizer=regularizer, name="output"
    )(features)
    model = keras.Model(inputs, outputs, name=name)
    loss, metrics = {
        "binary": ("binary_crossentropy", ["accuracy"]),
        "multiclass": ("sparse_categorical_crossentropy", ["accuracy"]),
        "regression": ("mse", ["mae"]),
    }[kind]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def _dense_block(
    x: Any,
    units: int,
    activation: str,
    batchnorm: bool,
    dropout: float,
    regularizer: Any,
    name: str,
) -> Any:
    x = keras.layers.Dense(
        units,
        use_bias=not batchnorm,
        kernel_initializer=_initializer(activation),
        kernel_regularizer=regularizer,
        name=name,
    )(x)
    if batchnorm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.Activation(activation, name=f"{name}_act")(x)
    if dropout > 0:
        # AlphaDropout keeps SELU's self-normalization
        layer = keras.layers.AlphaDropout if activation == "selu" else keras.layers.Dropout
        x = layer(dropout, name=f"{name}_dropout")(x)
    return x


def build_mlp(
    input_shape: Sequence[int],
    output: str,
    n_hidden: int = 2,
    n_neurons: int = 64,
    activation: str = "relu",
    dropout: float = 0.0,
    batchnorm: bool = False,
    l2: float = 0.0,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    schedule: str | keras.optimizers.schedules.LearningRateSchedule | None = None,
    schedule_steps: int | None = None,
    clipnorm: float | None = None,
) -> keras.Model:
    """Build and compile a multilayer perceptron for classification or regression.

    ``n_hidden`` blocks of ``Dense(n_neurons) -> [BatchNormalization] -> activation
    -> [Dropout]`` (He initialization for ReLU-like activations, LeCun and
    ``AlphaDropout`` for SELU; no bias before batch normalization), then the output
    layer chosen by ``output``:

    - ``"binary"``: one sigmoid unit, binary cross-entropy, accuracy;
    - ``"multiclass:K"``: K softmax units, sparse categorical cross-entropy
      (integer labels), accuracy;
    - ``"regression"`` / ``"regression:K"``: K linear units, MSE, MAE.

    Args:
        input_shape: Shape of one sample, e.g. ``(64,)``; more dimensions are
            flattened.
        output: ``"binary"``, ``"multiclass:K"``, ``"regression"`` or
            ``"regression:K"``.
        n_hidden: Number of hidden layers (>= 0).
        n_neurons: Units per hidden layer (>= 1).
        activation: Hidden activation, any Keras activation name.
        dropout: Dropout rate after each hidden layer, in [0, 1).
        batchnorm: Add batch normalization before each activation.
        l2: L2 penalty on every kernel (0 for none).
        optimizer: ``"adam"``, ``"adamw"``, ``"nadam"``, ``"rmsprop"``, ``"sgd"``,
            ``"nesterov"`` (SGD, momentum 0.9, Nesterov), or an optimizer instance
            (then ``learning_rate``, ``schedule`` and ``clipnorm`` are not used).
        learning_rate: Learning rate, or the peak rate of a named schedule.
        schedule: None (constant), a name among ``SCHEDULES`` (``"step"``: halve
            every third of ``schedule_steps``; ``"cosine"``: Keras ``CosineDecay`` to
            0; ``"warmup_cosine"``: 10% warmup then cosine; ``"onecycle"``), or a
            ``LearningRateSchedule`` instance (then ``learning_rate`` is not used).
        schedule_steps: Optimizer steps a named schedule spans (usually
            ``epochs * ceil(n_train / batch_size)``); required with a named schedule.
        clipnorm: Clip each gradient to this norm (None for no clipping).

    Returns:
        A compiled ``keras.Model``.

    Raises:
        ValueError: For an invalid argument, named in the message.

    Example:

    >>> from sklearn.datasets import load_digits
    >>> from tunefleet.keras import KerasClassifier, build_mlp
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KerasClassifier(build_mlp, input_shape=(64,), output="multiclass:10",
    ...                       n_hidden=1, dropout=0.2, epochs=1, random_state=0)
    >>> clf.fit(X / 16, y).predict_proba(X[:3] / 16).shape
    (3, 10)
    """
    shape = _check_shape("input_shape", input_shape, (1, 2, 3, 4))
    kind, units = _parse_output(output)
    n_hidden = _check_int("n_hidden", n_hidden, 0)
    n_neurons = _check_int("n_neurons", n_neurons, 1)
    activation = _check_activation(activation)
    dropout = _check_float("dropout", dropout, 0.0, 1.0, high_open=True)
    l2 = _check_float("l2", l2, 0.0, math.inf)
    opt = _optimizer(optimizer, learning_rate, schedule, schedule_steps, clipnorm)
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None

    inputs = keras.Input(shape, name="input")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(shape) > 1 else inputs
    for i in range(n_hidden):
        x = _dense_block(
            x, n_neurons, activation, bool(batchnorm), dropout, regularizer, f"dense_{i}"
        )
    return _head_and_compile(inputs, x, kind, units, regularizer, opt, "mlp")


def build_cnn(
    input_shape: Sequence[int],
    output: str,
    n_conv_blocks: int = 2,
    filters: int = 32,
    kernel_size: int = 3,
    convs_per_block: int = 1,
    pooling: str = "max",
    global_pool: bool = True,
    dense_units: int = 64,
    activation: str = "relu",
    dropout: float = 0.0,
    batchnorm: bool = False,
    l2: float = 0.0,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    schedule: str | keras.optimizers.schedules.LearningRateSchedule | None = None,
    schedule_steps: int | None = None,
    clipnorm: float | None = None,
    flip: str | None = None,
    rotation: float = 0.0,
    translation: float = 0.0,
    zoom: float = 0.0,
    contrast: float = 0.0,
    fill_mode: str = "constant",
    pixel_range: tuple[float, float] | None = None,
) -> keras.Model:
    """Build and compile a small convolutional network with optional data augmentation.

    Augmentation (Keras preprocessing layers, active during training only) ->
    ``n_conv_blocks`` blocks of ``convs_per_block`` ``Conv2D`` layers (the filter
    count doubling every block, ``"same"`` padding, optional batch normalization)
    followed by 2x2 pooling -> global average pooling (or flattening) -> optional
    ``Dense`` layer
    with dropout -> the output layer chosen by ``output`` (as in `build_mlp`).

    Args:
        input_shape: ``(height, width, channels)``, or ``(height, width)`` for
            single-channel images (a channel axis is added).
        output: ``"binary"``, ``"multiclass:K"``, ``"regression"`` or
            ``"regression:K"``.
        n_conv_blocks: Number of convolution blocks (>= 1); each halves the image
            size, so at most log2 of the smaller side.
        filters: Filters of the first block (doubled in each following block).
        kernel_size: Convolution kernel size.
        convs_per_block: Convolutions per block.
        pooling: ``"max"`` or ``"avg"`` pooling between blocks.
        global_pool: Average the last feature maps over positions (True), or
            flatten them (False: keeps where features are, better for tiny
            images such as 8x8 digits).
        dense_units: Units of the dense layer before the output (0 for none).
        activation: Activation of the hidden layers.
        dropout: Dropout rate before the dense and output layers, in [0, 1).
        batchnorm: Batch normalization after each convolution and the dense layer.
        l2: L2 penalty on every kernel.
        optimizer: As in `build_mlp`.
        learning_rate: As in `build_mlp`.
        schedule: As in `build_mlp`.
        schedule_steps: As in `build_mlp`.
        clipnorm: As in `build_mlp`.
        flip: None, ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"``
            (``keras.layers.RandomFlip``).
        rotation: Maximum rotation as a fraction of a full turn, in [0, 0.5]
            (``RandomRotation``; 0 for none).
        translation: Maximum shift as a fraction of height and width, in [0, 1)
            (``RandomTranslation``).
        zoom: Maximum zoom in or out as a fraction, in [0, 1) (``RandomZoom``).
        contrast: Maximum contrast change as a fraction, in [0, 1)
            (``RandomContrast``).
        fill_mode: How rotation, translation and zoom fill new pixels:
            ``"constant"`` (zeros, right for digits on a black background),
            ``"reflect"``, ``"wrap"`` or ``"nearest"``.
        pixel_range: ``(low, high)`` range the contrast-adjusted pixels are clipped
            to, e.g. ``(0, 255)``; None for no clipping.

    Returns:
        A compiled ``keras.Model``.

    Raises:
        ValueError: For an invalid argument, named in the message.

    Example:

    >>> from sklearn.datasets import load_digits
    >>> from tunefleet.keras import build_cnn
    >>> X, y = load_digits(return_X_y=True)
    >>> model = build_cnn((8, 8, 1), "multiclass:10", rotation=0.05, zoom=0.1)
    >>> x = X[:64].reshape(-1, 8, 8, 1) / 16
    >>> history = model.fit(x, y[:64], batch_size=64, epochs=1, verbose=0)
    >>> model.output_shape, len(history.history["loss"])
    ((None, 10), 1)
    """
    shape = _check_shape("input_shape", input_shape, (2, 3))
    kind, units = _parse_output(output)
    n_conv_blocks = _check_int("n_conv_blocks", n_conv_blocks, 1)
    if 2**n_conv_blocks > min(shape[0], shape[1]):
        raise ValueError(
            f"n_conv_blocks={n_conv_blocks} halves the image {n_conv_blocks} times, too "
            f"often for input_shape={tuple(input_shape)!r}; use at most "
            f"{int(math.log2(min(shape[0], shape[1])))}."
        )
    filters = _check_int("filters", filters, 1)
    kernel_size = _check_int("kernel_size", kernel_size, 1)
    convs_per_block = _check_int("convs_per_block", convs_per_block, 1)
    if pooling not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}.")
    dense_units = _check_int("dense_units", dense_units, 0)
    activation = _check_activation(activation)
    dropout = _check_float("dropout", dropout, 0.0, 1.0, high_open=True)
    l2 = _check_float("l2", l2, 0.0, math.inf)
    flips = (None, "horizontal", "vertical", "horizontal_and_vertical")
    if flip not in flips:
        raise ValueError(f"flip must be one of {flips}, got {flip!r}.")
    rotation = _check_float("rotation", rotation, 0.0, 0.5)
    translation = _check_float("translation", translation, 0.0, 1.0, high_open=True)
    zoom = _check_float("zoom", zoom, 0.0, 1.0, high_open=True)
    contrast = _check_float("contrast", contrast, 0.0, 1.0, high_open=True)
    fills = ("constant", "reflect", "wrap", "nearest")
    if fill_mode not in fills:
        raise ValueError(f"fill_mode must be one of {fills}, got {fill_mode!r}.")
    if pixel_range is None:
        pixel_range = (-_BIG, _BIG)
    else:
        if not isinstance(pixel_range, (tuple, list)) or len(pixel_range) != 2:
            raise ValueError(f"pixel_range must be None or (low, high), got {pixel_range!r}.")
        low, high = (_check_float("pixel_range", v, -_BIG, _BIG) for v in pixel_range)
        if low >= high:
            raise ValueError(
                f"pixel_range must be (low, high) with low < high, got {pixel_range!r}."
            )
        pixel_range = (low, high)
    opt = _optimizer(optimizer, learning_rate, schedule, schedule_steps, clipnorm)
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None

    inputs = keras.Input(shape, name="input")
    x = inputs
    if len(shape) == 2:
        x = keras.layers.Reshape((*shape, 1), name="add_channel")(x)
    if flip is not None:
        x = keras.layers.RandomFlip(flip, name="random_flip")(x)
    if rotation > 0:
        x = keras.layers.RandomRotation(rotation, fill_mode=fill_mode, name="random_rotation")(x)
    if translation > 0:
        x = keras.layers.RandomTranslation(
            translation, translation, fill_mode=fill_mode, name="random_translation"
        )(x)
    if zoom > 0:
        x = keras.layers.RandomZoom(zoom, zoom, fill_mode=fill_mode, name="random_zoom")(x)
    if contrast > 0:
        x = keras.layers.RandomContrast(contrast, value_range=pixel_range, name="random_contrast")(
            x
        )
    pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    for block in range(n_conv_blocks):
        for conv in range(convs_per_block):
            name = f"conv_{block}_{conv}"
            x = keras.layers.Conv2D(
                filters * 2**block,
                kernel_size,
                padding="same",
                use_bias=not batchnorm,
                kernel_initializer=_initializer(activation),
                kernel_regularizer=regularizer,
                name=name,
            )(x)
            if batchnorm:
                x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
            x = keras.layers.Activation(activation, name=f"{name}_act")(x)
        x = pool(2, name=f"pool_{block}")(x)
    if global_pool:
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    if dense_units > 0:
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name="dense_dropout")(x)
        x = _dense_block(x, dense_units, activation, bool(batchnorm), 0.0, regularizer, "dense")
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="output_dropout")(x)
    return _head_and_compile(inputs, x, kind, units, regularizer, opt, "cnn")
