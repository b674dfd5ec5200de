"""``RandomSearch``: Keras Tuner's random search on tunefleet's engine."""

from __future__ import annotations

from tunefleet.tuners.base_tuner import BaseTuner


class RandomSearch(BaseTuner):
    """Random search over the ``hp.*`` space (Keras Tuner's ``RandomSearch``).

    Takes Keras Tuner's arguments in its order (``hypermodel, objective, max_trials,
    seed, hyperparameters, tune_new_entries, allow_new_entries, max_retries_per_trial,
    max_consecutive_failed_trials``) and the keyword arguments of :class:`BaseTuner`
    (``directory``, ``project_name``, ``overwrite``, ``executions_per_trial``,
    ``storage``, ``study_name``, ``cv``, ``pruner``, ``strategy``, ``n_jobs``...).
    A space whose hyperparameters all take finitely many values is drawn without
    replacement: each point runs at most once.

    Example:

    >>> import tempfile
    >>> import keras
    >>> from sklearn.datasets import load_iris
    >>> import tunefleet as kt
    >>> x, y = load_iris(return_X_y=True)
    >>> def build_model(hp):
    ...     model = keras.Sequential([keras.Input((4,)),
    ...         keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
    ...         keras.layers.Dense(3, activation="softmax")])
    ...     model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
    ...                   "sparse_categorical_crossentropy", metrics=["accuracy"])
    ...     return model
    >>> tuner = kt.RandomSearch(build_model, objective="val_accuracy", max_trials=2,
    ...                         seed=0, directory=tempfile.mkdtemp(), project_name="iris")
    >>> tuner.search(x, y, epochs=1, validation_split=0.2, verbose=0)  # doctest: +ELLIPSIS
    Search: 2 trial(s) to run of 2, objective 'val_accuracy' (max).
    Search done in ...
    >>> len(tuner.oracle.trials), sorted(tuner.get_best_hyperparameters()[0].values)
    (2, ['lr', 'units'])
    >>> type(tuner.get_best_models(1)[0]).__name__
    'Sequential'
    """

    _default_strategy = "random"
