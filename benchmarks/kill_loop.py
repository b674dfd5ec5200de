"""SIGKILL a search at random moments, again and again, then check what the storage holds.

For each strategy (random search with ``n_iter`` trials, grid search over as many
points) on a fresh SQLite file: start the search in a child process, wait until it has
started a trial, sleep a random 0-``--max-delay`` seconds and SIGKILL it; repeat until
``--kills`` kills landed (a run that finishes before its kill starts a new study). Each
study is then resumed once to the end, and must hold exactly its budget of completed
trials, every grid point exactly once, and no trial left ``RUNNING``. Trials are fast
(a logistic regression on 40 samples, 2 folds: ~20-40 ms), so kills land in every part
of a trial's life, including between its creation and its first write.

Prints one line per strategy and, last, a JSON summary.

Usage: python benchmarks/kill_loop.py [--kills 30] [--trials 40] [--seed 0] [--max-delay 0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys, warnings
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
import tunefleet
kind, url, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
X, y = load_iris(return_X_y=True)
keep = np.r_[0:20, 50:70]
X, y = X[keep], y[keep]
estimator = LogisticRegression(max_iter=200)
common = dict(cv=2, refit=False, storage=url, study_name=name, progress=False)
if kind == "grid":
    search = tunefleet.GridSearchCV(estimator, {"C": np.logspace(-3, 2, n).tolist()}, **common)
else:
    search = tunefleet.RandomizedSearchCV(
        estimator, {"C": tunefleet.Float(1e-3, 1e2, log=True)}, n_iter=n, **common)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    search.fit(X, y)
"""


def _query(path: str, sql: str, *args: object) -> list[tuple]:
    try:
        with sqlite3.connect(path, timeout=60) as db:
            return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []  # no tables yet


def _started(path: str, name: str) -> int:
    rows = _query(
        path,
        "SELECT count(*) FROM trials JOIN studies USING (study_id) "
        "WHERE study_name = ? AND state != 'WAITING'",
        name,
    )
    return rows[0][0] if rows else 0


def _ownerless_running(path: str, name: str) -> int:
    rows = _query(
        path,
        "SELECT count(*) FROM trials t JOIN studies USING (study_id) WHERE study_name = ? "
        "AND t.state = 'RUNNING' AND NOT EXISTS (SELECT 1 FROM trial_user_attributes a "
        "WHERE a.trial_id = t.trial_id AND a.key = 'tunefleet:worker')",
        name,
    )
    return rows[0][0] if rows else 0


def _launch(kind: str, url: str, name: str, n: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, url, name, str(n)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _check(url: str, name: str, kind: str, n: int) -> dict[str, int]:
    import optuna

    stored = optuna.load_study(study_name=name, storage=url).trials
    done = [t for t in stored if t.state.name == "COMPLETE"]
    points = [t.user_attrs.get("tunefleet:grid_index") for t in done]
    return {
        "complete": len(done),
        "budget": n,
        "running_left": sum(t.state.name == "RUNNING" for t in stored),
        "grid_points_missing": (n - len(set(points))) if kind == "grid" else 0,
        "grid_points_twice": (len(points) - len(set(points))) if kind == "grid" else 0,
        "interrupted": sum(t.user_attrs.get("tunefleet:status") == "interrupted" for t in stored),
    }


def kill_loop(kind: str, kills: int, n: int, rng: random.Random, max_delay: float) -> dict:
    """Kill searches of ``kind`` ``kills`` times; resume each study and check it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kill.db")
        url = f"sqlite:///{path}"
        studies: list[str] = []
        landed = ownerless = 0
        finished = True  # the last run ended on its own: start a new study
        start = time.perf_counter()
        while landed < kills:
            if finished:
                studies.append(f"{kind}-{len(studies)}")
            name = studies[-1]
            before = _started(path, name)
            child = _launch(kind, url, name, n)
            finished = False
            while _started(path, name) == before:  # wait until it starts a trial
                if child.poll() is not None:
                    finished = True
                    break
                time.sleep(0.01)
            if not finished:
                time.sleep(rng.uniform(0.0, max_delay))
                child.send_signal(signal.SIGKILL)
            finished = child.wait() == 0
            if not finished:
                landed += 1
                ownerless += _ownerless_running(path, name)
        results = []
        for name in studies:  # run each study to its end, then check it
            assert _launch(kind, url, name, n).wait() == 0, f"resume of {name} failed"
            results.append(_check(url, name, kind, n))
        return {
            "strategy": kind,
            "kills": landed,
            "studies": len(studies),
            "ownerless_running_after_kills": ownerless,
            "seconds": round(time.perf_counter() - start, 1),
            "all_exact": all(
                r["complete"] == n
                and r["running_left"] == 0
                and r["grid_points_missing"] == 0
                and r["grid_points_twice"] == 0
                for r in results
            ),
            "per_study": results,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="kills per strategy")
    parser.add_argument("--trials", type=int, default=40, help="n_iter, and grid points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=0.3)
    parser.add_argument("--strategies", default="random,grid")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    summary = []
    for kind in args.strategies.split(","):
        result = kill_loop(kind, args.kills, args.trials, rng, args.max_delay)
        summary.append(result)
        completes = [r["complete"] for r in result["per_study"]]
        print(
            f"{kind:<7} kills {result['kills']:>3}  studies {result['studies']}  "
            f"complete {completes} of {args.trials}  "
            f"running left {sum(r['running_left'] for r in result['per_study'])}  "
            f"grid points missing {sum(r['grid_points_missing'] for r in result['per_study'])} "
            f"twice {sum(r['grid_points_twice'] for r in result['per_study'])}  "
            f"ownerless RUNNING after a kill {result['ownerless_running_after_kills']}  "
            f"exact: {result['all_exact']}  ({result['seconds']} s)",
            flush=True,
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
