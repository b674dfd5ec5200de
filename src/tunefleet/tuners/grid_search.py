"""``GridSearch``: every combination of the ``hp.*`` values, each once."""

from __future__ import annotations

from typing import Any

from tunefleet.tuners.base_tuner import BaseTuner


class GridSearch(BaseTuner):
    """Every combination of the ``hp.*`` values, each once (Keras Tuner's ``GridSearch``).

    ``hp.Choice``/``hp.Boolean``/``hp.Fixed`` give their values, ``hp.Int`` every value
    ``step`` apart, ``hp.Float`` needs a ``step``. Inactive conditional hyperparameters
    are left out of a point. Points are queued in the study, so parallel workers and
    resumed runs never repeat one. ``max_trials`` (default: all) runs the first points.
    Hyperparameters declared only in branches the default values do not reach are drawn
    at random. Arguments: as :class:`~tunefleet.tuners.RandomSearch`.

    Example:

    >>> import tempfile
    >>> from tunefleet.keras import build_mlp
    >>> from sklearn.datasets import load_iris
    >>> import tunefleet as kt
    >>> x, y = load_iris(return_X_y=True)
    >>> def build_model(hp):
    ...     return build_mlp((4,), "multiclass:3", n_hidden=1, n_neurons=hp.Choice("units", [4, 8]))
    >>> tuner = kt.GridSearch(build_model, objective="val_accuracy",
    ...                       directory=tempfile.mkdtemp(), project_name="grid")
    >>> tuner.search(x, y, epochs=1, validation_split=0.2, verbose=0)  # doctest: +ELLIPSIS
    Search: 2 trial(s) to run of 2, objective 'val_accuracy' (max).
    Search done in ...
    >>> sorted(hp.values["units"] for hp in tuner.get_best_hyperparameters(2))
    [4, 8]
    """

    _default_strategy = "grid"

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(hypermodel, objective, max_trials, *args, **kwargs)
