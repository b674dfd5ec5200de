"""``BayesianOptimization``: model-based search (Optuna's TPE, or its Gaussian process)."""

from __future__ import annotations

from typing import Any

from tunefleet.tuners.base_tuner import BaseTuner


class BayesianOptimization(BaseTuner):
    """Model-based search (Keras Tuner's ``BayesianOptimization``), on Optuna's TPE.

    Keras Tuner fits a Gaussian process; tunefleet uses TPE by default (it handles
    categorical and conditional ``hp`` natively and needs no PyTorch); pass
    ``strategy="gp"`` for Optuna's Gaussian process. ``alpha`` and ``beta`` (Keras
    Tuner's GP settings) are accepted and not used.

    Args:
        num_initial_points: random trials before the model is used (default: a
            quarter of ``max_trials``, between 3 and 10).
        other arguments: as :class:`~tunefleet.tuners.RandomSearch`, in Keras Tuner's
            order (``hypermodel, objective, max_trials, num_initial_points, alpha, beta,
            seed, ...``).

    Example:

    >>> import tempfile
    >>> from tunefleet.keras import build_mlp
    >>> from sklearn.datasets import load_iris
    >>> import tunefleet as kt
    >>> x, y = load_iris(return_X_y=True)
    >>> def build_model(hp):
    ...     return build_mlp((4,), "multiclass:3", n_hidden=1, n_neurons=hp.Int("units", 4, 16))
    >>> tuner = kt.BayesianOptimization(build_model, objective="val_accuracy", max_trials=2,
    ...                                 num_initial_points=1, seed=0,
    ...                                 directory=tempfile.mkdtemp(), project_name="bo")
    >>> tuner.search(x, y, epochs=1, validation_split=0.2, verbose=0)  # doctest: +ELLIPSIS
    Search: 2 trial(s) to run of 2, objective 'val_accuracy' (max).
    Search done in ...
    >>> len(tuner.oracle.trials)
    2
    """

    _default_strategy = "tpe"

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int = 10,
        num_initial_points: int | None = None,
        alpha: float = 1e-4,
        beta: float = 2.6,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.num_initial_points = num_initial_points
        self.alpha = alpha
        self.beta = beta
        super().__init__(hypermodel, objective, max_trials, *args, **kwargs)

    def _check_settings(self) -> None:
        super()._check_settings()
        self._check_int("num_initial_points", self.num_initial_points, 1, allow_none=True)
