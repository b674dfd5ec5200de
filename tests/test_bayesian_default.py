"""The default Bayesian strategy, ``"auto"``: Optuna's GP on numeric spaces, TPE elsewhere.

Chosen by the search-quality benchmark (docs/strategies.md). These tests check the choice
and that the chosen sampler runs where searches run: in this process and in workers.
"""

from __future__ import annotations

import importlib.util

import optuna
import pytest
from sklearn.svm import SVC

import tunefleet
from estimators import SlowClassifier, iris
from tunefleet.attrs import STRATEGY_ATTR
from tunefleet.space import parse_distributions
from tunefleet.strategies import GP_MAX_TRIALS, bayesian_choice

NUMERIC = {
    "C": tunefleet.Float(1e-2, 1e2, log=True),
    "gamma": tunefleet.Float(1e-4, 1e-1, log=True),
}


def test_auto_runs_the_gaussian_process_on_a_numeric_space():
    search = tunefleet.BayesSearchCV(SVC(), NUMERIC, n_iter=8, random_state=0).fit(*iris())
    assert isinstance(search.study_.sampler, optuna.samplers.GPSampler)
    assert search.study_.sampler._n_startup_trials == 3  # a quarter of the budget, >= 3
    assert search.study_.user_attrs[STRATEGY_ATTR] == "gp"
    assert len(search.cv_results_["params"]) == 8 and search.best_score_ > 0.9


def test_auto_runs_tpe_on_a_categorical_space():
    space = {"kernel": ["rbf", "linear"], "C": tunefleet.Float(1e-2, 1e2, log=True)}
    search = tunefleet.BayesSearchCV(SVC(), space, n_iter=6, random_state=0).fit(*iris())
    assert isinstance(search.study_.sampler, optuna.samplers.TPESampler)
    assert search.study_.user_attrs[STRATEGY_ATTR] == "tpe"


def test_auto_chooses_by_space_budget_and_pytorch(monkeypatch):
    numeric = parse_distributions(NUMERIC)
    assert bayesian_choice(numeric, GP_MAX_TRIALS) == "gp"
    assert bayesian_choice(numeric, GP_MAX_TRIALS + 1) == "tpe"  # the GP's cost per trial grows
    assert bayesian_choice(numeric, None) == "tpe"  # an open-ended search
    assert bayesian_choice(parse_distributions([NUMERIC, {"C": [1.0]}]), 20) == "tpe"  # conditional
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else found(name, *a)
    )
    assert bayesian_choice(numeric, 20) == "tpe"  # no PyTorch: TPE, no error


def test_a_forced_sampler_is_kept():
    search = tunefleet.BayesSearchCV(SVC(), NUMERIC, n_iter=4, sampler="tpe", random_state=0)
    search.fit(*iris())
    assert isinstance(search.study_.sampler, optuna.samplers.TPESampler)


@pytest.mark.slow
def test_the_gaussian_process_runs_in_worker_processes_without_repeating_a_point():
    search = tunefleet.BayesSearchCV(
        SlowClassifier(),
        {"C": tunefleet.Float(1e-3, 1e2, log=True)},
        n_iter=8,
        n_jobs=2,
        random_state=0,
    ).fit(*iris())
    assert search.study_.user_attrs[STRATEGY_ATTR] == "gp"
    values = [p["C"] for p in search.cv_results_["params"]]
    assert len(values) == 8 and len(set(values)) == 8
