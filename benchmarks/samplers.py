"""Which model-based sampler should BayesSearchCV use by default? Measure, don't guess.

Runs RandomizedSearchCV (random), and BayesSearchCV with TPE and with GP, on a few
real scikit-learn tuning tasks, several seeds each, the same budget, and prints the mean
best cross-validation score and the mean wall time per trial (sampler cost included).

Usage: python benchmarks/samplers.py [--trials 30] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import tunefleet
from tunefleet import Categorical, Float, Int


def tasks():
    X, y = load_digits(return_X_y=True)
    yield (
        "SVC on digits (C, gamma: log-uniform)",
        SVC(),
        {"C": Float(1e-3, 1e3, log=True), "gamma": Float(1e-5, 1e0, log=True)},
        X[::3],
        y[::3],
    )
    X, y = load_breast_cancer(return_X_y=True)
    yield (
        "HistGradientBoosting on breast_cancer (4 mixed parameters)",
        HistGradientBoostingClassifier(max_iter=50),
        {
            "learning_rate": Float(1e-3, 1.0, log=True),
            "max_leaf_nodes": Int(2, 64, log=True),
            "l2_regularization": Float(1e-6, 10.0, log=True),
            "max_features": Float(0.2, 1.0),
        },
        X,
        y,
    )
    X, y = load_wine(return_X_y=True)
    yield (
        "scaled SVC on wine (kernel categorical + C, gamma)",
        make_pipeline(StandardScaler(), SVC()),
        {
            "svc__kernel": Categorical(["rbf", "sigmoid", "poly"]),
            "svc__C": Float(1e-3, 1e3, log=True),
            "svc__gamma": Float(1e-4, 1e1, log=True),
        },
        X,
        y,
    )


def run(kind: str, estimator, space, X, y, n_trials: int, seed: int) -> tuple[float, float]:
    common = dict(n_iter=n_trials, cv=3, random_state=seed, refit=False, progress=False)
    if kind == "random":
        search = tunefleet.RandomizedSearchCV(estimator, space, **common)
    else:
        search = tunefleet.BayesSearchCV(estimator, space, sampler=kind, **common)
    start = time.perf_counter()
    search.fit(X, y)
    return search.best_score_, (time.perf_counter() - start) / n_trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.trials} trials, {args.seeds} seeds\n")
    kinds = ("random", "tpe", "gp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, estimator, space, X, y in tasks():
            print(f"## {name}")
            print(f"{'sampler':<8} {'mean best CV score':>19} {'worst seed':>11} {'median s/trial':>15}")
            for kind in kinds:
                results = [run(kind, estimator, space, X, y, args.trials, seed) for seed in range(args.seeds)]
                scores = [r[0] for r in results]
                times = [r[1] for r in results]
                print(f"{kind:<8} {np.mean(scores):>19.4f} {min(scores):>11.4f} {statistics.median(times):>15.3f}")
            print()


if __name__ == "__main__":
    main()
