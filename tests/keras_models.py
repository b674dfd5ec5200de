"""Module-level Keras build functions (picklable, for process workers and subprocesses)."""

import keras


def build_classifier(
    n_hidden=1, n_neurons=16, learning_rate=1e-2, optimizer="adam", n_features=4, n_classes=3
):
    """A small softmax MLP, compiled (the seed-style tf.keras build function)."""
    model = keras.Sequential([keras.Input((n_features,))])
    for _ in range(n_hidden):
        model.add(keras.layers.Dense(n_neurons, activation="relu"))
    model.add(keras.layers.Dense(n_classes, activation="softmax"))
    opt = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }[optimizer]
    model.compile(
        optimizer=opt(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def build_regressor(n_hidden=1, n_neurons=30, learning_rate=3e-3, input_shape=(8,)):
    """The regressor of the seed code (Géron's ``build_model``), compiled with MSE."""
    model = keras.Sequential([keras.Input(input_shape)])
    for _ in range(n_hidden):
        model.add(keras.layers.Dense(n_neurons, activation="relu"))
    model.add(keras.layers.Dense(1))
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate))
    return model
