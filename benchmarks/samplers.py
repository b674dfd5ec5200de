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
from sklearn.neighbors import KNeighborsClassifier
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
        "k-nearest neighbours on scaled breast_cancer (integers + categorical)",
        make_pipeline(StandardScaler(), KNeighborsClassifier()),
        {
            "kneighborsclassifier__n_neighbors": Int(1, 60),
            "kneighborsclassifier__weights": Categorical(["uniform", "distance"]),
            "kneighborsclassifier__p": Int(1, 3),
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
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.trials} trials, {args.seeds} seeds\n"
    )
    kinds = ("random", "tpe", "gp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, estimator, space, X, y in tasks():
            print(f"## {name}")
            print(
                f"{'sampler':<8} {'mean best CV score':>19} {'worst seed':>11} {'median s/trial':>15}"
            )
            for kind in kinds:
                results = [
                    run(kind, estimator, space, X, y, args.trials, seed)
                    for seed in range(args.seeds)
                ]
                scores = [r[0] for r in results]
                times = [r[1] for r in results]
                print(
                    f"{kind:<8} {np.mean(scores):>19.4f} {min(scores):>11.4f} {statistics.median(times):>15.3f}"
                )
            print()


if __name__ == "__main__":
    main()
