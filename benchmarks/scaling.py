"""Trials per second with 1, 2, 4 and 8 workers, and the storage's cost per trial.

Part 1 runs ``RandomizedSearchCV(SleepClassifier(delay), ..., n_jobs=k, storage=...)`` (or
``backend="ray"`` with ``k`` actors) for each storage and each worker count. A trial's fit
sleeps ``delay`` seconds (0.3 by default), so the 2-core machine is not the limit: ideal
scaling is ``k / delay`` trials per second. The rate is measured from the stored trials,
from the first trial's start to the last trial's end (steady state; worker start-up,
which on a cluster is paid once per search, is printed apart).

Part 2 runs trials with no sleep in one process and measures, per trial, the storage's
work: SQL statements and write transactions (RDB storages, counted with SQLAlchemy's
events), bytes appended (journal), and the bookkeeping time per trial (the whole trial
less its tiny fit). ``1 / that time`` is about the trial rate one storage client can
absorb; docs/cluster.md projects from it.

Storages: ``sqlite`` (a file), ``journal`` (Optuna's journal file), ``postgresql`` (a
throwaway server started with tests/postgres.py: Debian's ``postgresql``), ``ray``
(actors on a local Ray cluster, on a SQLite file).

Usage: python benchmarks/scaling.py [--quick] [--repeats 3] [--storages sqlite,journal,...]
[--workers 1,2,4,8] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris

import tunefleet
from tunefleet.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
STORAGES = ("sqlite", "journal", "postgresql", "ray")


class SleepClassifier(ClassifierMixin, BaseEstimator):
    """Sleeps ``delay`` seconds in fit, then predicts the majority class."""

    def __init__(self, C=1.0, delay=0.3):
        self.C = C
        self.delay = delay

    def fit(self, X, y):
        time.sleep(self.delay)
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def search(url: str, n_trials: int, workers: int, delay: float, ray: bool):
    X, y = load_iris(return_X_y=True)
    extra = {"backend": "ray"} if ray else {}
    return tunefleet.RandomizedSearchCV(
        SleepClassifier(delay=delay),
        {"C": tunefleet.Float(1e-3, 1e2, log=True)},
        n_iter=n_trials,
        cv=2,  # two fits: a trial sleeps 2 * delay
        refit=False,
        storage=url,
        study_name="scaling",
        random_state=0,
        progress=False,
        n_jobs=workers,
        **extra,
    ).fit(X, y)


class Postgres:
    """A throwaway PostgreSQL server (tests/postgres.py), started on first use."""

    server = None

    @classmethod
    def url(cls) -> str:
        if cls.server is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            import postgres

            folder = tempfile.mkdtemp()
            os.chmod(folder, 0o755)  # the server runs as the postgres user when we are root
            cls.server = postgres.from_environment() or postgres.start_server(Path(folder) / "pg")
        return cls.server.create_database()

    @classmethod
    def stop(cls) -> None:
        if cls.server is not None and cls.server.data is not None:
            cls.server.stop()


def storage_url(kind: str, folder: str) -> str:
    if kind in ("sqlite", "ray"):
        return f"sqlite:///{folder}/tune.db"
    if kind == "journal":
        return f"journal:///{folder}/tune.log"
    return Postgres.url()


def one_run(kind: str, workers: int, n_trials: int, delay: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        url = storage_url(kind, folder)
        start = time.perf_counter()
        search(url, n_trials, workers, delay, ray=kind == "ray")
        wall = time.perf_counter() - start
        trials = optuna.load_study(study_name="scaling", storage=open_storage(url)).trials
        done = [t for t in trials if t.state.name == "COMPLETE"]
        assert len(done) == n_trials, f"{kind}: {len(done)} of {n_trials} trials complete"
        first = min(t.datetime_start for t in done)
        last = max(t.datetime_complete for t in done)
        steady = (last - first).total_seconds()
        return {"trials_per_s": n_trials / steady, "wall_s": wall, "startup_s": wall - steady}


def scaling(kinds, worker_counts, repeats, trials_per_worker, delay) -> list[dict]:
    rows = []
    per_trial = 2 * delay
    print(f"## Trials per second (trial = 2 fits of {delay} s; median of {repeats} runs)")
    print(
        f"{'storage':<11} {'workers':>7} {'trials':>6} {'trials/s':>9} {'ideal':>7} "
        f"{'of ideal':>8} {'start-up s':>10}"
    )
    for kind in kinds:
        for k in worker_counts:
            n_trials = max(8, trials_per_worker * k)
            runs = [one_run(kind, k, n_trials, delay) for _ in range(repeats)]
            rate = statistics.median(r["trials_per_s"] for r in runs)
            startup = statistics.median(r["startup_s"] for r in runs)
            ideal = k / per_trial
            row = {
                "storage": kind,
                "workers": k,
                "trials": n_trials,
                "trials_per_s": rate,
                "ideal_trials_per_s": ideal,
                "fraction_of_ideal": rate / ideal,
                "startup_s": startup,
                "runs": runs,
            }
            rows.append(row)
            print(
                f"{kind:<11} {k:>7} {n_trials:>6} {rate:>9.2f} {ideal:>7.2f} "
                f"{rate / ideal:>7.0%} {startup:>10.1f}",
                flush=True,
            )
    return rows


def storage_cost(kinds, n_trials: int, repeats: int) -> list[dict]:
    """Per-trial storage work in one process (fits do not sleep)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen = {"statements": 0, "commits": 0, "writes": 0, "sql_s": 0.0}
    state = {"wrote": False, "t0": 0.0}

    def before(conn, cursor, statement, *args):
        seen["statements"] += 1
        state["t0"] = time.perf_counter()
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            state["wrote"] = True

    def after(*args):
        seen["sql_s"] += time.perf_counter() - state["t0"]

    def on_commit(conn):
        seen["commits"] += 1
        seen["writes"] += state["wrote"]
        state["wrote"] = False

    rows = []
    print(f"\n## Storage work per trial, one process, {n_trials} trials (median of {repeats})")
    print(
        f"{'storage':<11} {'statements':>10} {'commits':>8} {'writes':>7} {'bytes':>7} "
        f"{'bookkeeping ms':>14} {'trials/s max':>12}"
    )
    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    event.listen(Engine, "commit", on_commit)
    try:
        for kind in [k for k in kinds if k != "ray"]:
            runs = []
            for _ in range(repeats):
                for key in seen:
                    seen[key] = 0
                with tempfile.TemporaryDirectory() as folder:
                    url = storage_url(kind, folder)
                    start = time.perf_counter()
                    search(url, n_trials, 1, 0.0, ray=False)
                    wall = time.perf_counter() - start
                    size = os.path.getsize(f"{folder}/tune.log") if kind == "journal" else 0
                runs.append(
                    {
                        "statements": seen["statements"] / n_trials,
                        "commits": seen["commits"] / n_trials,
                        "write_transactions": seen["writes"] / n_trials,
                        "journal_bytes": size / n_trials,
                        "seconds_per_trial": wall / n_trials,
                    }
                )
            row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            row["storage"] = kind
            row["max_trials_per_s"] = 1 / row["seconds_per_trial"]
            rows.append(row)
            print(
                f"{kind:<11} {row['statements']:>10.1f} {row['commits']:>8.1f} "
                f"{row['write_transactions']:>7.1f} {row['journal_bytes']:>7.0f} "
                f"{row['seconds_per_trial'] * 1e3:>14.1f} {row['max_trials_per_s']:>12.0f}",
                flush=True,
            )
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)
        event.remove(Engine, "commit", on_commit)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run, 1 and 2 workers, short")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--storages", default=",".join(STORAGES))
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--delay", type=float, default=0.15, help="seconds per fit (2 per trial)")
    parser.add_argument("--trials-per-worker", type=int, default=6)
    parser.add_argument("--cost-trials", type=int, default=100)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    kinds = [k for k in args.storages.split(",") if k]
    for kind in kinds:
        if kind not in STORAGES:
            parser.error(f"--storages: {kind!r} is not one of {', '.join(STORAGES)}")
    workers = [int(k) for k in args.workers.split(",")]
    if args.quick:
        args.repeats, workers, args.trials_per_worker, args.cost_trials = 1, [1, 2], 4, 20
    if "ray" in kinds:
        import ray

        ray.init(num_cpus=max(workers), include_dashboard=False, logging_level="WARNING")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}; load average {os.getloadavg()[0]:.2f}")
    print(f"optuna {optuna.__version__}, tunefleet {tunefleet.__version__}\n")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = scaling(kinds, workers, args.repeats, args.trials_per_worker, args.delay)
            cost = storage_cost(kinds, args.cost_trials, args.repeats)
    finally:
        Postgres.stop()
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine,
                    "optuna": optuna.__version__,
                    "delay_per_fit_s": args.delay,
                    "scaling": rows,
                    "storage_cost": cost,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
