"""The optimizers compared, each run as ``optimizer(problem, budget, seed) -> losses``.

``losses`` are the cross-validation losses of the evaluated points, in order. Optional
packages are imported when an optimizer runs; a missing one raises :class:`NotInstalled`,
which the suite reports as a "not installed" row.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable

import numpy as np
from benchmarks.search_quality.problems import Problem


class NotInstalled(RuntimeError):
    """An optional optimizer package is missing."""


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install of a compiled dependency
        raise NotInstalled(f"{module}: {type(exc).__name__}: {exc}") from exc


def _tunefleet(sampler: str | None):
    def run(problem: Problem, budget: int, seed: int) -> list[float]:
        """``tunefleet.BayesSearchCV`` through the face (fits every point itself, no cache)."""
        import tunefleet

        space = {
            name: (
                tunefleet.Int(int(p.low), int(p.high), log=p.log)
                if p.kind == "int"
                else tunefleet.Float(p.low, p.high, log=p.log)
            )
            for p in problem.space
            for name in [next(iter(problem.estimator_params({p.name: 0})))]
        }
        kwargs = {} if sampler is None else {"sampler": sampler}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search = tunefleet.BayesSearchCV(
                problem.estimator,
                space,
                n_iter=budget,
                cv=problem.cv,
                scoring=problem.scoring,
                random_state=seed,
                refit=False,
                progress=False,
                **kwargs,
            ).fit(problem.X, problem.y)
        scores = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
        order = np.argsort(search.cv_results_.get("trial_number", np.arange(len(scores))))
        return [float(-s) if np.isfinite(s) else float("inf") for s in scores[order]]

    return run


def _optuna(make_sampler: Callable[[int], object]):
    def run(problem: Problem, budget: int, seed: int) -> list[float]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = optuna.create_study(sampler=make_sampler(seed))
            losses = []
            for _ in range(budget):
                trial = study.ask()
                params = {
                    p.name: (
                        trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
                        if p.kind == "int"
                        else trial.suggest_float(p.name, p.low, p.high, log=p.log)
                    )
                    for p in problem.space
                }
                loss = problem.loss(params)
                losses.append(loss)
                study.tell(trial, loss if np.isfinite(loss) else 1e12)
        return losses

    return run


def _random(seed: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _tpe(seed: int):
    import optuna

    # Explicitly univariate: Optuna 5's default (multivariate=None) proposed exactly the
    # points of multivariate=True in the first measurements (docs/benchmarks.md).
    return optuna.samplers.TPESampler(seed=seed, multivariate=False)


def _tpe_mv(seed: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def _gp(seed: int):
    import optuna

    _need("torch")
    return optuna.samplers.GPSampler(seed=seed)


def hyperopt_tpe(problem: Problem, budget: int, seed: int) -> list[float]:
    """Hyperopt's TPE (``fmin`` with ``tpe.suggest``)."""
    hyperopt = _need("hyperopt")
    from hyperopt import hp

    space = {}
    for p in problem.space:
        if p.kind == "int" and not p.log:
            space[p.name] = hp.uniformint(p.name, p.low, p.high)
        elif p.log:
            space[p.name] = hp.loguniform(p.name, np.log(p.low), np.log(p.high))
        else:
            space[p.name] = hp.uniform(p.name, p.low, p.high)
    losses: list[float] = []

    def objective(params):
        loss = problem.loss(params)
        losses.append(loss)
        return loss if np.isfinite(loss) else 1e12

    hyperopt.fmin(
        objective,
        space,
        algo=hyperopt.tpe.suggest,
        max_evals=budget,
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    return losses


def skopt_gp(problem: Problem, budget: int, seed: int) -> list[float]:
    """scikit-optimize's ``Optimizer`` (GP, default settings), ask/tell."""
    skopt = _need("skopt")
    from skopt.space import Integer, Real

    dims = [
        Integer(int(p.low), int(p.high), prior="log-uniform" if p.log else "uniform", name=p.name)
        if p.kind == "int"
        else Real(p.low, p.high, prior="log-uniform" if p.log else "uniform", name=p.name)
        for p in problem.space
    ]
    opt = skopt.Optimizer(dims, random_state=seed)  # its default start: 10 random points
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(budget):
            x = opt.ask()
            loss = problem.loss({p.name: v for p, v in zip(problem.space, x, strict=True)})
            losses.append(loss)
            opt.tell(x, loss if np.isfinite(loss) else 1e12)
    return losses


def smac3(problem: Problem, budget: int, seed: int) -> list[float]:
    """SMAC3's hyperparameter-optimization facade (random forest), ask/tell."""
    _need("smac")
    from ConfigSpace import ConfigurationSpace, Float, Integer
    from smac import HyperparameterOptimizationFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue

    cs = ConfigurationSpace(seed=seed)
    for p in problem.space:
        kind = Integer if p.kind == "int" else Float
        cs.add(kind(p.name, (p.low, p.high), log=p.log))
    losses = []
    with tempfile.TemporaryDirectory() as out:
        scenario = Scenario(
            cs, deterministic=True, n_trials=budget, seed=seed, output_directory=out
        )
        smac = HyperparameterOptimizationFacade(
            scenario, lambda config, seed=0: 0.0, overwrite=True, logging_level=40
        )
        for _ in range(budget):
            info = smac.ask()
            loss = problem.loss(dict(info.config))
            losses.append(loss)
            smac.tell(info, TrialValue(cost=loss if np.isfinite(loss) else 1e12))
    return losses


def hebo(problem: Problem, budget: int, seed: int) -> list[float]:
    """HEBO (Huawei's winner of the NeurIPS 2020 black-box challenge), suggest/observe."""
    _need("hebo")
    import torch
    from hebo.design_space.design_space import DesignSpace
    from hebo.optimizers.hebo import HEBO

    np.random.seed(seed)
    torch.manual_seed(seed)
    specs = []
    for p in problem.space:
        if p.kind == "int":
            specs.append({"name": p.name, "type": "int", "lb": int(p.low), "ub": int(p.high)})
        elif p.log:
            specs.append({"name": p.name, "type": "pow", "lb": p.low, "ub": p.high})
        else:
            specs.append({"name": p.name, "type": "num", "lb": p.low, "ub": p.high})
    opt = HEBO(DesignSpace().parse(specs))
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(budget):
            rec = opt.suggest(n_suggestions=1)
            loss = problem.loss(rec.iloc[0].to_dict())
            losses.append(loss)
            opt.observe(rec, np.array([[loss if np.isfinite(loss) else 1e12]]))
    return losses


OPTIMIZERS: dict[str, Callable[[Problem, int, int], list[float]]] = {
    "random": _optuna(_random),
    "tunefleet BayesSearchCV (default)": _tunefleet(None),
    "tunefleet BayesSearchCV (gp)": _tunefleet("gp"),
    "optuna TPE": _optuna(_tpe),
    "optuna TPE multivariate": _optuna(_tpe_mv),
    "optuna GP": _optuna(_gp),
    "hyperopt TPE": hyperopt_tpe,
    "scikit-optimize GP": skopt_gp,
    "SMAC3 HPO": smac3,
    "HEBO": hebo,
}
RUN_PER_BUDGET = {name for name in OPTIMIZERS if name.startswith("tunefleet")} | {"SMAC3 HPO"}
"""Optimizers run once per budget, as their users would run them: our faces size their
random start by ``n_iter``, SMAC3 its initial design by ``n_trials``. The others do not
look at the budget: each runs once at the largest budget and is read at every smaller one
(its first ``budget`` points), as Bayesmark reads its curves."""
