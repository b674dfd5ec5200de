"""Search quality, Bayesmark-style: optimizers side by side on scikit-learn tuning problems.

Usage::

    python -m benchmarks.search_quality --quick          # a few minutes
    python -m benchmarks.search_quality --full           # the suite (see docs/benchmarks.md)
    python -m benchmarks.search_quality --problems kNN-iris,DT-wine --budgets 32 --seeds 3 \\
        --optimizers random,"optuna TPE" --json out.json --plot out.html

Prints a Markdown table (mean normalised score with a 95% bootstrap interval, per optimizer
and budget); optimizers whose package is missing get a "not installed" row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
# Optuna's GPSampler runs fastest single-threaded (its docs); it also keeps --jobs tasks
# from fighting over the cores. Read by PyTorch at import, so set before any import.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from benchmarks.search_quality.optimizers import OPTIMIZERS
from benchmarks.search_quality.problems import DATASETS, MODELS_CLF
from benchmarks.search_quality.suite import Run, format_table, plot, run_suite, table

QUICK = {
    "problems": "DT-wine,kNN-breast,linear-diabetes",
    "budgets": "16",
    "seeds": 2,
    "optimizers": "random,tunefleet BayesSearchCV (default),optuna TPE,hyperopt TPE",
}
# Every model family once and every data set at least once, each family on a data set where
# a 3-fold fit costs at most 0.2 s here (kNN and AdaBoost on digits cost 0.7-0.8 s, the
# l1 logistic regression on digits 38 s: they get smaller data sets).
FULL = {
    "problems": "kNN-breast,SVM-wine,DT-digits,RF-wine,MLP-adam-iris,MLP-sgd-diabetes,"
    "ada-iris,lasso-wine,linear-diabetes",
    "budgets": "16,32,64",
    "seeds": 10,
    "optimizers": ",".join(OPTIMIZERS),
    "jobs": 2,
}


def parse_problems(text: str) -> list[tuple[str, str]]:
    """``model-dataset`` names, comma separated (``all`` for every model on every data set)."""
    if text == "all":
        return [(m, d) for m in MODELS_CLF for d in DATASETS]
    out = []
    for item in text.split(","):
        model, _, dataset = item.strip().rpartition("-")
        if model not in MODELS_CLF or dataset not in DATASETS:
            raise SystemExit(
                f"--problems: {item!r} is not model-dataset with model in {list(MODELS_CLF)} "
                f"and dataset in {list(DATASETS)}"
            )
        out.append((model, dataset))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the suite; print the table; write JSON and a plot when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes: " + str(QUICK))
    parser.add_argument("--full", action="store_true", help="the whole suite: " + str(FULL))
    parser.add_argument("--problems")
    parser.add_argument("--budgets")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--optimizers", help=f"comma separated, from {list(OPTIMIZERS)}")
    parser.add_argument("--jobs", type=int, help="(problem, seed) tasks run side by side")
    parser.add_argument("--json", help="write runs and table to this file")
    parser.add_argument("--plot", help="write a plotly HTML plot to this file")
    parser.add_argument(
        "--merge",
        help="no new runs: score together the runs of these --json files (comma separated), "
        "e.g. an added optimizer run later on the same problems and seeds",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge.split(","), args.json, args.plot)
    preset = FULL if args.full else QUICK
    problems = parse_problems(args.problems or preset["problems"])
    budgets = [int(b) for b in (args.budgets or preset["budgets"]).split(",")]
    seeds = args.seeds or preset["seeds"]
    jobs = args.jobs or preset.get("jobs", 1)
    optimizers = [o.strip() for o in (args.optimizers or preset["optimizers"]).split(",")]
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown:
        raise SystemExit(f"--optimizers: unknown {unknown}; expected names from {list(OPTIMIZERS)}")
    if "random" not in optimizers:
        optimizers.insert(0, "random")  # the score's zero is random search
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(
        f"machine: {machine}; {len(problems)} problems, budgets {budgets}, {seeds} seeds, "
        f"{jobs} jobs",
        flush=True,
    )
    start = time.perf_counter()
    runs, missing, fits = run_suite(
        problems, optimizers, budgets, seeds, log=lambda s: print(s, flush=True), jobs=jobs
    )
    rows = table(runs, missing, optimizers, budgets)
    print()
    print(format_table(rows))
    print(f"\n{time.perf_counter() - start:.0f} s; {fits} fits")
    about = {"problems": [f"{m}-{d}" for m, d in problems], "seeds": seeds, "machine": machine}
    _write(args.json, args.plot, about, budgets, rows, runs, missing)
    return 0


def merge(paths: list[str], json_path: str | None, plot_path: str | None) -> int:
    """Score the runs of several ``--json`` files together; print (and write) the table."""
    seen: dict[tuple, Run] = {}  # a run in two files (random search's zero) counts once
    missing: dict[str, str] = {}
    about: dict[str, list] = {"merged": paths, "problems": [], "machine": []}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for r in data["runs"]:
            seen.setdefault((r["optimizer"], r["problem"], r["budget"], r["seed"]), Run(**r))
        missing.update(data.get("missing", {}))
        about["problems"] += [p for p in data["problems"] if p not in about["problems"]]
        about["machine"].append(data.get("machine"))
    runs = list(seen.values())
    optimizers = list(dict.fromkeys([r.optimizer for r in runs] + list(missing)))
    budgets = sorted({r.budget for r in runs})
    rows = table(runs, missing, optimizers, budgets)
    print(format_table(rows))
    _write(json_path, plot_path, about, budgets, rows, runs, missing)
    return 0


def _write(json_path, plot_path, about, budgets, rows, runs, missing) -> None:
    if json_path:
        with open(json_path, "w") as f:
            json.dump(
                {
                    **about,
                    "budgets": budgets,
                    "table": rows,
                    "missing": missing,
                    "runs": [r.__dict__ for r in runs],
                },
                f,
                indent=1,
            )
    if plot_path:
        plot(rows, plot_path)


if __name__ == "__main__":
    sys.exit(main())
