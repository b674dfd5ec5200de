"""The searches compared, each configured from one :class:`Budget` on one :class:`Task`.

Every method searches :data:`~benchmarks.multi_fidelity.tasks.SPACE` with at most
``budget.max_epochs`` epochs a trial. Methods that train one model at a time carry a
watch callback, fleet runs a watch on their per-epoch reports (see
:mod:`benchmarks.multi_fidelity.watch`); either stops the run when the target is reached.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from benchmarks.multi_fidelity import watch
from benchmarks.multi_fidelity.tasks import SPACE, Task


@dataclass(frozen=True)
class Budget:
    """How much each method may run."""

    max_epochs: int = 27  # epochs a trial, at most (Hyperband's max_epochs)
    random_trials: int = 15  # random search: trials at max_epochs each
    async_trials: int = 40  # successive-halving methods: configurations started


Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Method = Callable[[Task, int, Data, Budget], None]


def _suggest(trial: Any) -> dict[str, Any]:
    """Optuna's form of the space."""
    return {
        name: (trial.suggest_int if kind == "int" else trial.suggest_float)(
            name, low, high, log=log
        )
        for name, kind, low, high, log in SPACE
    }


def _hp_build(task: Task) -> Callable[[Any], Any]:
    """Keras Tuner's form (tunefleet's tuners take the same ``hp``)."""

    def build(hp: Any) -> Any:
        params = {}
        for name, kind, low, high, log in SPACE:
            sampling = "log" if log else "linear"
            if kind == "int":
                params[name] = hp.Int(name, int(low), int(high), sampling=sampling)
            else:
                params[name] = hp.Float(name, low, high, sampling=sampling)
        return task.build(**params)

    return build


def _tunefleet_space() -> dict[str, Any]:
    import tunefleet

    kinds = {"int": tunefleet.Int, "float": tunefleet.Float}
    return {name: kinds[kind](low, high, log=log) for name, kind, low, high, log in SPACE}


class _LogInt:
    """An integer distribution, log-uniform, for scikit-learn's randomized searches."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def rvs(self, random_state: Any = None) -> int:
        from sklearn.utils import check_random_state

        rng = check_random_state(random_state)
        return round(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))


def _scipy_space() -> dict[str, Any]:
    from scipy.stats import loguniform, randint, uniform

    space: dict[str, Any] = {}
    for name, kind, low, high, log in SPACE:
        if kind == "int":
            space[name] = _LogInt(int(low), int(high)) if log else randint(int(low), int(high) + 1)
        else:
            space[name] = loguniform(low, high) if log else uniform(low, high - low)
    return space


def _one_split(task: Task, data: Data) -> tuple[np.ndarray, np.ndarray, Any]:
    """Training and validation rows stacked, with the split that separates them again."""
    from sklearn.model_selection import PredefinedSplit

    x_train, y_train, x_val, y_val = data
    fold = np.r_[np.full(len(x_train), -1), np.zeros(len(x_val), dtype=int)]
    return np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val]), PredefinedSplit(fold)


def random_search(task: Task, seed: int, data: Data, budget: Budget) -> None:
    """Random configurations, each trained for the full ``max_epochs`` (Optuna's sampler)."""
    import keras
    import optuna

    x_train, y_train, x_val, y_val = data

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        model = task.build(**_suggest(trial))
        model.fit(
            x_train, y_train, epochs=budget.max_epochs, batch_size=task.batch_size,
            callbacks=[watch.watch_callback()], verbose=0,
        )  # fmt: skip
        return float(model.evaluate(x_val, y_val, verbose=0)[1])

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    study.optimize(objective, n_trials=budget.random_trials)


def optuna_tpe_hyperband(task: Task, seed: int, data: Data, budget: Budget) -> None:
    """Optuna's TPE with its ``HyperbandPruner``, pruning after every epoch."""
    import keras
    import optuna

    x_train, y_train, x_val, y_val = data

    class Report(keras.callbacks.Callback):
        def __init__(self, trial: optuna.Trial) -> None:
            super().__init__()
            self.trial = trial

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.trial.report(float(logs["val_accuracy"]), epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        model = task.build(**_suggest(trial))
        history = model.fit(
            x_train, y_train, epochs=budget.max_epochs, batch_size=task.batch_size,
            validation_data=(x_val, y_val), callbacks=[watch.watch_callback(), Report(trial)],
            verbose=0,
        )  # fmt: skip
        return float(max(history.history["val_accuracy"]))

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(1, budget.max_epochs, 3),
    )
    study.optimize(objective, n_trials=budget.async_trials)


def keras_tuner_hyperband(task: Task, seed: int, data: Data, budget: Budget) -> None:
    """Keras Tuner's ``Hyperband`` (one iteration, factor 3)."""
    import keras_tuner

    x_train, y_train, x_val, y_val = data
    with tempfile.TemporaryDirectory() as directory:
        tuner = keras_tuner.Hyperband(
            _hp_build(task), objective="val_accuracy", max_epochs=budget.max_epochs, factor=3,
            seed=seed, directory=directory, project_name="kt", overwrite=True,
        )  # fmt: skip
        tuner.search(
            x_train, y_train, batch_size=task.batch_size, validation_data=(x_val, y_val),
            callbacks=[watch.watch_callback()], verbose=0,
        )  # fmt: skip


def _tunefleet_tuner(fleet: bool) -> Method:
    def run(task: Task, seed: int, data: Data, budget: Budget) -> None:
        import tunefleet

        x_train, y_train, x_val, y_val = data
        with tempfile.TemporaryDirectory() as directory:
            tuner = tunefleet.Hyperband(
                _hp_build(task), objective="val_accuracy", max_epochs=budget.max_epochs,
                factor=3, seed=seed, directory=directory, project_name="tf", fleet=fleet,
                progress=False,
            )  # fmt: skip
            watched = {} if fleet else {"callbacks": [watch.watch_callback()]}
            with watch.watch_fleet_reports():
                tuner.search(
                    x_train, y_train, batch_size=task.batch_size, validation_data=(x_val, y_val),
                    verbose=0, **watched,
                )  # fmt: skip

    run.__doc__ = f"tunefleet's Hyperband tuner, fleet={fleet}."
    return run


def _tunefleet_search(fleet: bool, sampler: str = "random", schedule: str = "hyperband") -> Method:
    def run(task: Task, seed: int, data: Data, budget: Budget) -> None:
        import tunefleet
        from tunefleet.keras import KerasClassifier

        X, y, split = _one_split(task, data)
        estimator = KerasClassifier(
            task.build, epochs=budget.max_epochs, batch_size=task.batch_size, verbose=0,
            callbacks=None if fleet else [watch.watch_callback()],
        )  # fmt: skip
        search = tunefleet.HyperbandSearchCV(
            estimator, _tunefleet_space(), n_iter=budget.async_trials, min_resource=1,
            factor=3, cv=split, refit=False, random_state=seed, fleet=fleet, progress=False,
            sampler=sampler, schedule=schedule,
        )  # fmt: skip
        with watch.watch_fleet_reports():
            search.fit(X, y)

    run.__doc__ = (
        f"tunefleet's HyperbandSearchCV, fleet={fleet}, sampler={sampler!r}, schedule={schedule!r}."
    )
    return run


def sklearn_halving(task: Task, seed: int, data: Data, budget: Budget) -> None:
    """scikit-learn's ``HalvingRandomSearchCV`` over epochs, on tunefleet's KerasClassifier."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    from tunefleet.keras import KerasClassifier

    X, y, split = _one_split(task, data)
    estimator = KerasClassifier(
        task.build, epochs=budget.max_epochs, batch_size=task.batch_size, verbose=0,
        callbacks=[watch.watch_callback()],
    )  # fmt: skip
    HalvingRandomSearchCV(
        estimator, _scipy_space(), n_candidates=budget.async_trials, resource="epochs",
        min_resources=1, max_resources=budget.max_epochs, factor=3, cv=split, refit=False,
        random_state=seed, error_score="raise",
    ).fit(X, y)  # fmt: skip


#: name -> method, in the order of the table.
METHODS: dict[str, Method] = {
    "random (full epochs)": random_search,
    "tunefleet HyperbandSearchCV": _tunefleet_search(fleet=False),
    "tunefleet HyperbandSearchCV fleet": _tunefleet_search(fleet=True),
    "tunefleet HyperbandSearchCV tpe": _tunefleet_search(fleet=False, sampler="tpe"),
    "tunefleet HyperbandSearchCV halving": _tunefleet_search(fleet=False, schedule="halving"),
    "tunefleet HyperbandSearchCV halving fleet": _tunefleet_search(fleet=True, schedule="halving"),
    "tunefleet Hyperband": _tunefleet_tuner(fleet=False),
    "tunefleet Hyperband fleet": _tunefleet_tuner(fleet=True),
    "keras-tuner Hyperband": keras_tuner_hyperband,
    "optuna TPE + HyperbandPruner": optuna_tpe_hyperband,
    "sklearn HalvingRandomSearchCV": sklearn_halving,
}
