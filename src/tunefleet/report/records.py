"""The records a stored study is read into: its trials, parameters and views over them.

:class:`StudyData` is what every figure, table and the HTML report take; it holds one
:class:`TrialRecord` per stored trial and one :class:`ParamInfo` per searched parameter.
:mod:`tunefleet.report.data` builds them from a storage or an ``optuna.Study``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna


@dataclass(frozen=True)
class ParamInfo:
    """One searched parameter as the report shows it.

    Args:
        name: the user's parameter name.
        kind: ``"float"``, ``"int"`` or ``"categorical"``.
        log: whether the parameter was searched on a log scale.
        choices: the stored labels of a categorical parameter, in their order.

    Example:

    >>> import optuna
    >>> from tunefleet.report import study_data
    >>> study = optuna.create_study()
    >>> study.enqueue_trial({"C": 1.0, "kernel": "rbf"})
    >>> study.optimize(lambda t: t.suggest_float("C", 1e-3, 1e3, log=True)
    ...                + len(t.suggest_categorical("kernel", ["linear", "rbf"])), n_trials=1)
    >>> C, kernel = study_data(study).params
    >>> C
    ParamInfo(name='C', kind='float', log=True, choices=None)
    >>> kernel.choices, kernel.numeric, kernel.ordered
    (('linear', 'rbf'), False, False)
    """

    name: str
    kind: str
    log: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def numeric(self) -> bool:
        """Whether the parameter is an int or a float (else categorical)."""
        return self.kind != "categorical"

    @property
    def ordered(self) -> bool:
        """Whether values can be compared as numbers (numeric, or all choices numbers)."""
        if self.numeric:
            return True
        return bool(self.choices) and all(is_number_label(c) for c in self.choices or ())


def is_number_label(label: str) -> bool:
    """Whether a stored categorical label reads as a number (``"0.1"``; not ``"nan"``)."""
    try:
        float(label)
    except ValueError:
        return False
    return label not in ("True", "False", "nan", "inf", "-inf")


@dataclass
class TrialRecord:
    """One stored trial, decoded.

    Attributes:
        number: the Optuna trial number.
        state: ``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``, ``"RUNNING"`` or ``"WAITING"``.
        values: the objective values of a complete trial, else ``None``.
        params: user parameter name -> value (numbers as numbers, categorical values as
            their stored labels).
        duration: seconds from start to completion (``None`` while not finished).
        start: when the trial started.
        complete: when it finished.
        intermediate: step -> value reported during training (per epoch, fold or rung).
        error: the error message of a failed trial.
        status: ``"interrupted"`` / ``"surplus"`` for trials left out of results.
        worker: the worker that ran the trial (``host:pid:...``).
        resource: the last Hyperband budget of the trial (samples or parameter value).
        folds: the number of cross-validation folds (from ``tunefleet:cv``).

    Example:

    >>> import optuna
    >>> from tunefleet.report import study_data
    >>> study = optuna.create_study(direction="maximize")
    >>> study.enqueue_trial({"x": 0.5})
    >>> def objective(trial):
    ...     x = trial.suggest_float("x", 0, 1)
    ...     trial.report(x / 2, step=0)
    ...     return x
    >>> study.optimize(objective, n_trials=1)
    >>> record = study_data(study).trials[0]
    >>> record.number, record.state, record.value, record.params, record.intermediate
    (0, 'COMPLETE', 0.5, {'x': 0.5}, {0: 0.25})
    >>> record.counted  # not interrupted, not surplus
    True
    """

    number: int
    state: str
    values: tuple[float, ...] | None
    params: dict[str, Any]
    duration: float | None
    start: datetime | None
    complete: datetime | None
    intermediate: dict[int, float]
    error: str | None = None
    status: str | None = None
    worker: str | None = None
    resource: int | None = None
    folds: int | None = None

    @property
    def value(self) -> float | None:
        """The first objective value (``None`` unless complete)."""
        return self.values[0] if self.values else None

    @property
    def counted(self) -> bool:
        """Whether the trial belongs in results (not interrupted, not surplus)."""
        return self.status is None


@dataclass
class StudyData:
    """A study read from its storage into tidy records.

    Build one with :func:`load_study_data` (from a storage) or :func:`study_data` (from an
    ``optuna.Study``); every figure and the HTML report take it.

    Attributes:
        study_name: the study's name.
        directions: ``"maximize"`` / ``"minimize"`` per objective.
        objective_names: a label per objective (Optuna metric names, else ``"score"`` or
            ``"objective k"``).
        storage: the storage URL with any password masked (``None`` for storage objects
            without a URL, e.g. in memory).
        strategy: the search strategy, when known.
        trials: every trial, excluded ones included, by number.
        params: the searched parameters, in first-seen order.
        space: a one-line summary of the stored search space, when stored.
        lr_finder: the LR finder run (``lrs``, ``losses``, ``suggestion``), when stored.
        user_attrs: the study's user attributes.

    Example:

    >>> import optuna
    >>> from tunefleet.report import study_data
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> for accuracy, size in [(0.9, 100), (0.8, 10), (0.7, 50)]:
    ...     study.add_trial(optuna.trial.create_trial(values=[accuracy, size]))
    >>> data = study_data(study)
    >>> data.multi_objective, data.objective_names, len(data.complete)
    (True, ['objective 0', 'objective 1'], 3)
    >>> [t.number for t in data.best_trials]  # trial 2 is dominated by trial 1
    [0, 1]
    >>> data.state_counts()
    {'COMPLETE': 3, 'PRUNED': 0, 'FAIL': 0, 'RUNNING': 0, 'WAITING': 0}
    """

    study_name: str
    directions: list[str]
    objective_names: list[str]
    storage: str | None
    strategy: str | None
    trials: list[TrialRecord]
    params: list[ParamInfo]
    space: str | None = None
    lr_finder: dict[str, Any] | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)

    # -- views ----------------------------------------------------------------------------
    @property
    def multi_objective(self) -> bool:
        """Whether the study optimizes more than one objective."""
        return len(self.directions) > 1

    @property
    def counted(self) -> list[TrialRecord]:
        """Trials that belong in results (excluded ones left out)."""
        return [t for t in self.trials if t.counted]

    @property
    def complete(self) -> list[TrialRecord]:
        """Counted trials that finished with finite values."""
        return [
            t
            for t in self.trials
            if t.counted
            and t.state == "COMPLETE"
            and t.values
            and all(math.isfinite(v) for v in t.values)
        ]

    @property
    def pruned(self) -> list[TrialRecord]:
        """Counted pruned trials."""
        return [t for t in self.trials if t.counted and t.state == "PRUNED"]

    @property
    def failed(self) -> list[TrialRecord]:
        """Counted failed trials."""
        return [t for t in self.trials if t.counted and t.state == "FAIL"]

    def state_counts(self) -> dict[str, int]:
        """Trials per state; excluded trials are counted under their status instead."""
        counts = Counter(t.state if t.counted else str(t.status) for t in self.trials)
        order = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
        out = {s: counts.pop(s, 0) for s in order}
        out.update(sorted(counts.items()))
        return out

    def better(self, a: float, b: float, objective: int = 0) -> bool:
        """Whether value ``a`` beats ``b`` on ``objective``."""
        return a > b if self.directions[objective] == "maximize" else a < b

    @property
    def best_trial(self) -> TrialRecord | None:
        """The best complete trial of a single-objective study (first one on ties)."""
        if self.multi_objective:
            return None
        best = None
        for t in self.complete:
            if best is None or self.better(t.values[0], best.values[0]):
                best = t
        return best

    @property
    def best_trials(self) -> list[TrialRecord]:
        """The Pareto-optimal complete trials (the best trial for one objective).

        The front is Optuna's (``Study.best_trials``) over :attr:`complete`: trials left
        out of results and trials with non-finite values take no part.
        """
        if not self.multi_objective:
            best = self.best_trial
            return [best] if best is not None else []
        complete = self.complete
        if not complete:
            return []
        # Optuna's front (Study.best_trials) over these trials' values only
        front = optuna.create_study(directions=self.directions)
        front.add_trials([optuna.trial.create_trial(values=list(t.values)) for t in complete])
        return [complete[t.number] for t in sorted(front.best_trials, key=lambda t: t.number)]

    def epochs_per_fold(self) -> int | None:
        """Epochs per fold when intermediate values are per epoch of each fold in turn.

        Keras models report at ``step = fold * epochs + epoch``; this is recognised from
        complete trials whose steps are ``0 .. folds * epochs - 1``. ``1`` means one value
        per fold (scikit-learn estimators with a pruner: the mean of the folds so far);
        ``None``: not recognised (Hyperband budgets, studies from elsewhere).
        """
        found = set()
        for t in self.complete:
            if not t.intermediate or not t.folds or t.resource is not None:
                continue
            steps = list(t.intermediate)
            n = max(steps) + 1
            if n % t.folds or steps != list(range(n)):
                return None
            found.add(n // t.folds)
        return found.pop() if len(found) == 1 else None

    def durations(self) -> list[float]:
        """Durations in seconds of the counted finished trials."""
        return [t.duration for t in self.counted if t.duration is not None]

    def timing(self) -> dict[str, float | None]:
        """``total`` (sum of trial durations), ``wall`` (first start to last finish),
        ``mean`` / ``median`` / ``max`` trial duration, in seconds."""
        durations = self.durations()
        starts = [t.start for t in self.counted if t.start is not None]
        ends = [t.complete for t in self.counted if t.complete is not None]
        wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
        return {
            "total": sum(durations) if durations else None,
            "wall": wall,
            "mean": statistics.fmean(durations) if durations else None,
            "median": statistics.median(durations) if durations else None,
            "max": max(durations) if durations else None,
        }

    def frame(self) -> Any:
        """All trials as a pandas DataFrame, one row per trial.

        Columns: ``number``, ``state``, one column per objective, ``duration``,
        ``start``, ``complete``, one ``param_<name>`` column per parameter, ``error``,
        ``status``, ``worker``, ``n_intermediate``.
        """
        import pandas as pd

        rows = []
        for t in self.trials:
            row: dict[str, Any] = {"number": t.number, "state": t.state}
            for i, name in enumerate(self.objective_names):
                row[name] = t.values[i] if t.values else None
            row.update(duration=t.duration, start=t.start, complete=t.complete)
            for p in self.params:
                row[f"param_{p.name}"] = t.params.get(p.name)
            row.update(
                error=t.error,
                status=t.status,
                worker=t.worker,
                n_intermediate=len(t.intermediate),
            )
            rows.append(row)
        return pd.DataFrame(rows)
