"""Parameter importances of a stored study by Optuna's evaluators (fANOVA, MDI, PED-ANOVA)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from tunefleet.records import ParamInfo, StudyData, TrialRecord

_FANOVA_MAX_TRIALS = 200


def param_importances(
    data: StudyData,
    *,
    objective: int = 0,
    evaluators: Sequence[str] = ("fanova", "mean_decrease_impurity", "ped_anova"),
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Parameter importances by Optuna's evaluators, on the complete trials.

    fANOVA (32 trees), the most faithful, costs about a second per hundred trials; above
    200 complete trials it is fitted on a seeded random sample of 200. Mean decrease in
    impurity and PED-ANOVA use every complete trial. An evaluator that cannot run (too
    few trials, parameters that differ between trials) is left out.

    Args:
        data: the study.
        objective: which objective (for multi-objective studies).
        evaluators: names among ``"fanova"``, ``"mean_decrease_impurity"``,
            ``"ped_anova"``.
        seed: seeds the evaluators and the fANOVA sample.

    Returns:
        evaluator name -> parameter name -> importance (summing to 1 per evaluator),
        parameters sorted by decreasing importance.

    Example:

    >>> import optuna
    >>> from tunefleet.report import param_importances, study_data
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> def objective(trial):  # x matters, y hardly
    ...     return trial.suggest_float("x", -1, 1) ** 2 + 0.01 * trial.suggest_float("y", 0, 1)
    >>> study.optimize(objective, n_trials=20)
    >>> importances = param_importances(study_data(study))
    >>> {name: list(ranked) for name, ranked in importances.items()}  # most important first
    {'fanova': ['x', 'y'], 'mean_decrease_impurity': ['x', 'y'], 'ped_anova': ['x', 'y']}
    """
    import random
    import warnings

    from optuna import importance

    complete = data.complete
    if len(complete) < 2:
        return {}
    usable = [p for p in data.params if all(p.name in t.params for t in complete)]
    usable = [p for p in usable if len({_key(t.params[p.name]) for t in complete}) > 1]
    if not usable:
        return {}
    direction = data.directions[objective]
    makers: dict[str, Callable[[], Any]] = {
        "fanova": lambda: importance.FanovaImportanceEvaluator(n_trees=32, seed=seed),
        "mean_decrease_impurity": lambda: importance.MeanDecreaseImpurityImportanceEvaluator(
            seed=seed
        ),
        "ped_anova": lambda: importance.PedAnovaImportanceEvaluator(),
    }
    for name in evaluators:
        if name not in makers:
            raise ValueError(f"evaluators: {name!r} is not known; expected any of {list(makers)}.")
    out: dict[str, dict[str, float]] = {}
    full_study: optuna.Study | None = None
    for name in evaluators:
        if name == "fanova" and len(complete) > _FANOVA_MAX_TRIALS:
            sample = random.Random(seed).sample(complete, _FANOVA_MAX_TRIALS)
            study = _importance_study(sample, usable, direction, objective)
        else:
            if full_study is None:
                full_study = _importance_study(complete, usable, direction, objective)
            study = full_study
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = importance.get_param_importances(
                    study, evaluator=makers[name](), params=[p.name for p in usable]
                )
        except Exception:
            continue
        values = {k: float(v) for k, v in result.items() if math.isfinite(float(v))}
        if values:
            out[name] = dict(sorted(values.items(), key=lambda kv: -kv[1]))
    return out


def _key(value: Any) -> Any:
    return value if isinstance(value, (int, float, str)) else repr(value)


def _importance_study(
    trials: Sequence[TrialRecord], params: Sequence[ParamInfo], direction: str, objective: int
) -> optuna.Study:
    """An in-memory single-objective study of ``trials`` over the decoded ``params``."""
    distributions: dict[str, BaseDistribution] = {}
    numeric = {p.name: p.ordered for p in params}
    for p in params:
        if not numeric[p.name]:
            seen = sorted({str(t.params[p.name]) for t in trials})
            distributions[p.name] = CategoricalDistribution(seen)
        else:
            values = [float(t.params[p.name]) for t in trials]
            low, high = min(values), max(values)
            if high <= low:
                high = low + 1.0
            log = p.log and low > 0
            distributions[p.name] = FloatDistribution(low, high, log=log)
    frozen = [
        optuna.trial.create_trial(
            value=t.values[objective],
            params={
                p.name: float(t.params[p.name]) if numeric[p.name] else str(t.params[p.name])
                for p in params
            },
            distributions=distributions,
        )
        for t in trials
    ]
    study = optuna.create_study(direction=direction)
    study.add_trials(frozen)
    return study
