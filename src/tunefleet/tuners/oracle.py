"""What to optimize and what was tried: ``Objective``, and the ``Oracle`` view of a study.

In Keras Tuner the oracle decides what to try and remembers the trials. Here the Optuna
study (with its sampler) does both, in the storage; :class:`Oracle` is a thin read-only
view that answers Keras Tuner's questions (``get_best_trials``, ``get_trial``,
``trials``) from the stored trials, and :class:`Trial` is one of them as Keras Tuner
users know it (``hyperparameters``, ``score``, ``metrics``, ``status``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunefleet.attrs import (
    BEST_STEP_ATTR,
    CV_ATTR,
    ERROR_ATTR,
    HP_ATTR,
    METRICS_ATTR,
    MODEL_ATTR,
    STATUS_ATTR,
)
from tunefleet.study import counts
from tunefleet.tuners.hyperparameters import DeclaredSpace, HyperParameters

#: Trial attributes written by the tuners.
#: Study attribute: the objective's name (its direction is the study's direction).

_MINIMIZE_WORDS = (
    "loss",
    "error",
    "mse",
    "mae",
    "mape",
    "msle",
    "crossentropy",
    "hinge",
    "logcosh",
    "divergence",
    "kld",
    "poisson",
)
_MAXIMIZE_WORDS = (
    "acc",
    "auc",
    "precision",
    "recall",
    "f1",
    "fbeta",
    "r2",
    "iou",
    "sensitivity",
    "specificity",
    "score",
    "top_k",
)

_STATUS = {
    TrialState.COMPLETE: "COMPLETED",
    TrialState.PRUNED: "STOPPED",
    TrialState.FAIL: "FAILED",
    TrialState.RUNNING: "RUNNING",
    TrialState.WAITING: "IDLE",
}


@dataclass(frozen=True)
class Objective:
    """The metric a tuner optimizes and its direction.

    Args:
        name: a key of the Keras training history (``"val_accuracy"``, ``"val_loss"``...)
            or of the dict a custom ``HyperModel.fit`` returns.
        direction: ``"min"`` or ``"max"`` (``"minimize"``/``"maximize"`` also accepted).

    Example:

    >>> Objective("val_auc", direction="max").direction
    'max'
    """

    name: str
    direction: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Objective name must be a non-empty string, got {self.name!r}.")
        direction = {"minimize": "min", "maximize": "max"}.get(self.direction, self.direction)
        if direction not in ("min", "max"):
            raise ValueError(
                f"Objective({self.name!r}): direction must be 'min' or 'max', got {self.direction!r}."
            )
        object.__setattr__(self, "direction", direction)

    @property
    def optuna_direction(self) -> str:
        return "minimize" if self.direction == "min" else "maximize"

    def better(self, a: float, b: float | None) -> bool:
        """Whether ``a`` beats ``b`` (``None``/NaN ``b`` is beaten by any finite ``a``)."""
        if not math.isfinite(a):
            return False
        if b is None or not math.isfinite(b):
            return True
        return a < b if self.direction == "min" else a > b

    def best_index(self, values: list[float]) -> int | None:
        """The index of the best finite value, or ``None``."""
        best: int | None = None
        for i, v in enumerate(values):
            if self.better(v, None if best is None else values[best]):
                best = i
        return best


def infer_direction(name: str) -> str:
    """``"min"`` or ``"max"`` for a metric name, as Keras Tuner infers it.

    Raises ``ValueError`` for a name it cannot tell.
    """
    base = name.lower()
    if base.startswith("val_"):
        base = base[4:]
    if any(word in base for word in _MINIMIZE_WORDS):
        return "min"
    if any(word in base for word in _MAXIMIZE_WORDS):
        return "max"
    raise ValueError(
        f"objective={name!r}: cannot tell whether to minimize or maximize it; pass "
        f"tunefleet.Objective({name!r}, direction='max') (or 'min')."
    )


def as_objective(objective: Any) -> Objective:
    """Turn a tuner's ``objective`` argument into an :class:`Objective`.

    ``None`` means ``"val_loss"`` (minimized), as in Keras Tuner.
    """
    if objective is None:
        return Objective("val_loss", "min")
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, str):
        return Objective(objective, infer_direction(objective))
    if isinstance(objective, (list, tuple)):
        if len(objective) == 1:
            return as_objective(objective[0])
        raise ValueError(
            f"objective={objective!r}: tunefleet tuners optimize one objective; pass one "
            "name or Objective (combine metrics in a custom HyperModel.fit if needed)."
        )
    name, direction = getattr(objective, "name", None), getattr(objective, "direction", None)
    if isinstance(name, str) and isinstance(direction, str):  # e.g. a keras_tuner.Objective
        return Objective(name, direction)
    raise TypeError(
        f"objective must be a metric name, an Objective or None, got {type(objective).__name__}."
    )


@dataclass
class Trial:
    """One stored trial, as Keras Tuner shows it.

    Attributes:
        trial_id: the trial's id (its Optuna trial number, as a string).
        number: the Optuna trial number.
        hyperparameters: the values tried, as a :class:`HyperParameters` (pass it to
            ``hypermodel.build`` to rebuild the model).
        score: the objective (the best epoch's value, averaged over folds and
            executions), ``None`` if the trial did not complete.
        status: ``"COMPLETED"``, ``"STOPPED"`` (pruned), ``"FAILED"``, ``"RUNNING"``.
        metrics: every metric of the best epoch.
        cv_scores: the objective per cross-validation fold (one value without ``cv``).
        best_step: the best epoch (counting from 0).
        model_path: the saved ``.keras`` model, if any.
        error: the error message of a failed trial.

    Trials come from ``tuner.oracle`` (``get_best_trials``, ``trials``, ``get_trial``).

    Example:

    >>> from tunefleet.tuners import HyperParameters, Trial
    >>> hp = HyperParameters()
    >>> hp.values["units"] = 32
    >>> trial = Trial(trial_id="0", number=0, hyperparameters=hp, score=0.75,
    ...               status="COMPLETED")
    >>> trial.summary()
    Trial 0 summary
    Hyperparameters:
    units: 32
    Score: 0.75
    """

    trial_id: str
    number: int
    hyperparameters: HyperParameters
    score: float | None
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    cv_scores: list[float] | None = None
    best_step: int | None = None
    model_path: str | None = None
    error: str | None = None

    def summary(self) -> None:
        """Print the trial as Keras Tuner's ``Trial.summary()`` does."""
        print(f"Trial {self.trial_id} summary")
        print("Hyperparameters:")
        for name, value in self.hyperparameters.values.items():
            print(f"{name}: {value}")
        if self.cv_scores is not None and len(self.cv_scores) > 1:
            folds = ", ".join(f"{s:.4g}" for s in self.cv_scores)
            print(f"Fold scores: [{folds}]")
        if self.score is not None:
            print(f"Score: {self.score}")
        if self.error:
            print(f"Error: {self.error.strip()}")


def to_tuner_trial(frozen: FrozenTrial, space: DeclaredSpace, project_dir: str, name: str) -> Trial:
    """The Keras Tuner-style view of a stored Optuna trial."""
    values = frozen.user_attrs.get(HP_ATTR)
    if values is None:
        values = space.values_of(dict(frozen.params))
    record = frozen.user_attrs.get(CV_ATTR)
    cv_scores = None
    if record is not None:
        cv_scores = [float(v) for v in record.get("test", {}).get(name, [])]
    model = frozen.user_attrs.get(MODEL_ATTR)
    return Trial(
        trial_id=str(frozen.number),
        number=frozen.number,
        hyperparameters=HyperParameters._with_values(space, values),
        score=frozen.value if frozen.state == TrialState.COMPLETE else None,
        status=_STATUS.get(frozen.state, frozen.state.name),
        metrics=dict(frozen.user_attrs.get(METRICS_ATTR, {})),
        cv_scores=cv_scores,
        best_step=frozen.user_attrs.get(BEST_STEP_ATTR),
        model_path=None if model is None else os.path.join(project_dir, model),
        error=frozen.user_attrs.get(ERROR_ATTR),
    )


class Oracle:
    """Read-only Keras Tuner-style view of a tuner's study.

    ``tuner.oracle.get_best_trials(n)`` and friends read the storage, so they answer
    for trials run by any process, in this session or before.

    Example:

    >>> import tempfile
    >>> from tunefleet.keras import build_mlp
    >>> from sklearn.datasets import load_iris
    >>> import tunefleet as kt
    >>> x, y = load_iris(return_X_y=True)
    >>> def build_model(hp):
    ...     return build_mlp((4,), "multiclass:3", n_hidden=1, n_neurons=hp.Choice("units", [4, 8]))
    >>> tuner = kt.GridSearch(build_model, objective="val_accuracy",
    ...                       directory=tempfile.mkdtemp(), project_name="oracle")
    >>> tuner.oracle.objective, tuner.oracle.get_best_trials()
    (Objective(name='val_accuracy', direction='max'), [])
    >>> tuner.search(x, y, epochs=1, validation_split=0.2, verbose=0)  # doctest: +ELLIPSIS
    Search: 2 trial(s) to run of 2, objective 'val_accuracy' (max).
    Search done in ...
    >>> [(t.trial_id, t.status) for t in tuner.oracle.trials.values()]
    [('0', 'COMPLETED'), ('1', 'COMPLETED')]
    >>> tuner.oracle.get_trial(1).hyperparameters.values
    {'units': 8}
    """

    def __init__(self, study: Callable[[], optuna.Study | None], tuner: Any) -> None:
        self._get_study = study
        self._tuner = tuner

    @property
    def objective(self) -> Objective:
        return self._tuner._objective

    @property
    def max_trials(self) -> int | None:
        return getattr(self._tuner, "max_trials", None)

    @property
    def hyperparameters(self) -> HyperParameters:
        """The search space declared so far (values empty)."""
        return HyperParameters._with_values(self._tuner._space, {})

    @property
    def study(self) -> optuna.Study | None:
        """The Optuna study (``None`` before any search stored one)."""
        return self._get_study()

    def _frozen(self) -> list[FrozenTrial]:
        study = self.study
        if study is None:
            return []
        return [t for t in study.get_trials(deepcopy=False) if counts(t)]

    def _view(self, frozen: FrozenTrial) -> Trial:
        tuner = self._tuner
        return to_tuner_trial(frozen, tuner._space, tuner.models_dir(), tuner._objective.name)

    @property
    def trials(self) -> dict[str, Trial]:
        """Every counted trial by id (interrupted and surplus ones left out)."""
        return {str(t.number): self._view(t) for t in self._frozen()}

    def get_trial(self, trial_id: str | int) -> Trial:
        """The trial with this id (its number)."""
        for t in self._frozen():
            if str(t.number) == str(trial_id):
                return self._view(t)
        raise KeyError(f"no trial with id {trial_id!r} in this study.")

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        """The ``num_trials`` best completed trials, best first."""
        done = [t for t in self._frozen() if t.state == TrialState.COMPLETE and t.value is not None]
        reverse = self.objective.direction == "max"
        done.sort(key=lambda t: (t.value, -t.number) if reverse else (t.value, t.number))
        if reverse:
            done.reverse()
        return [self._view(t) for t in done[:num_trials]]

    def __repr__(self) -> str:
        return f"Oracle(objective={self.objective!r}, max_trials={self.max_trials!r})"


def trial_state_counts(study: optuna.Study) -> dict[str, int]:
    """Counted trials by state name, and the interrupted ones (for messages)."""
    out = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0, "RUNNING": 0, "WAITING": 0, "interrupted": 0}
    for t in study.get_trials(deepcopy=False):
        if counts(t):
            out[t.state.name] = out.get(t.state.name, 0) + 1
        elif t.user_attrs.get(STATUS_ATTR) == "interrupted":
            out["interrupted"] += 1
    return out
