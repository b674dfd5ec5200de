"""Multi-fidelity search on real Keras training: epochs and seconds to a target accuracy.

Each method searches the same four parameters (depth, width, learning rate, dropout) of a
task, at most ``max_epochs`` epochs a trial, and is scored by when it first trains a model
that reaches the task's validation accuracy: the epochs trained until then (by all its
trials) and the seconds (see :mod:`benchmarks.multi_fidelity.watch` for how each is
counted), and whether it gets there within its budget. Every run (task, method, seed) is a
fresh process on the JAX backend.

Usage::

    python -m benchmarks.multi_fidelity --quick     # digits MLP, 9 epochs, 3 seeds: minutes
    python -m benchmarks.multi_fidelity --full      # 27 epochs; digits 10 seeds, CNN 3: ~1.7 h
    python -m benchmarks.multi_fidelity --tasks digits-mlp --methods "random (full epochs)" \\
        --seeds 2 --json out.json
    python -m benchmarks.multi_fidelity --seeds 7 --first-seed 3 --json more.json
    python -m benchmarks.multi_fidelity --merge out.json,more.json --json all.json
    python -m benchmarks.multi_fidelity --warm-cache rerun --methods ... --json warm.json

Prints a Markdown table per task: runs, success rate, median epochs and seconds to the
target (a run that never reached it counts as infinitely many), the median seconds of those
that went to compiling (runs that reached it; see :mod:`benchmarks.multi_fidelity.watch`),
and each method's median against the best anchor's. Runs go seed by seed, every method in
turn. With ``--warm-cache`` each run follows another run of the same method that shared a
new JAX compilation cache with it: the same seed (``rerun``: a repeated search, whose
programs were all compiled before) or another one (``other-seed``, ``seed + 1000``: a
search of a model family this machine searched before). Its method is named with the
protocol's :data:`WARM` suffix and compared with the anchors run so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.multi_fidelity.methods import METHODS, Budget
from benchmarks.multi_fidelity.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]
#: Methods whose name starts so are ours; the others are anchors.
OURS = ("tunefleet",)
#: ``--warm-cache`` protocol -> (the end of its runs' method names, the warming run's seed
#: offset from the measured run's).
WARM = {"rerun": (" (rerun, warm cache)", 0), "other-seed": (" (warm cache, other seed)", 1000)}


@dataclass(frozen=True)
class Part:
    """Which methods run on a task, and over how many seeds."""

    task: str
    seeds: int
    methods: tuple[str, ...] = tuple(METHODS)


def _without(*slow: str) -> tuple[str, ...]:
    return tuple(m for m in METHODS if m not in slow)


QUICK = {"parts": [Part("digits-mlp", 3)], "budget": Budget(9, 6, 12)}
#: About 1.7 hours on a 2-core CPU (the issue allows two). Cut to fit: the one-by-one
#: ``Hyperband`` tuner (four minutes a run on digits, most of it compiling; its fleet form
#: stays) on both tasks, and on the CNN seven of the ten seeds, ``HalvingRandomSearchCV``
#: and the ``HyperbandSearchCV`` fleet (four minutes a run there).
FULL = {
    "parts": [
        Part("digits-mlp", 10, _without("tunefleet Hyperband")),
        Part(
            "mnist1d-cnn",
            3,
            _without(
                "tunefleet Hyperband",
                "tunefleet HyperbandSearchCV fleet",
                "sklearn HalvingRandomSearchCV",
            ),
        ),
    ],
    "budget": Budget(),
}


def run_one(
    task_name: str, method: str, seed: int, budget: Budget, target: float | None = None
) -> dict:
    """One run in this process: what it reached, and when (``target``: the task's)."""
    import dataclasses

    import keras
    from benchmarks.multi_fidelity import watch

    task = TASKS[task_name]
    if target is not None:
        task = dataclasses.replace(task, target=target)
    keras.utils.set_random_seed(seed)
    data = task.load()
    watch.watch_compiling()
    watch.WATCH = watch.Watch(task.target, data[2], data[3])
    with contextlib.suppress(watch.TargetReached):  # the watch stopped the run
        METHODS[method](task, seed, data, budget)
    current = watch.WATCH
    reached = current.reached
    return {
        "task": task_name,
        "method": method,
        "seed": seed,
        "status": "ok",
        "reached": reached is not None,
        "epochs_to_target": reached[0] if reached else None,
        "seconds_to_target": reached[1] if reached else None,
        "compile_seconds_to_target": reached[2] if reached else None,
        "epochs": current.epochs,
        "seconds": current.seconds(),
        "compile_seconds": current.compile_seconds(),
        "best": current.best,
    }


def run_child(
    task: str,
    method: str,
    seed: int,
    budget: Budget,
    timeout: float,
    target: float | None = None,
    cache: str | None = None,
) -> dict:
    """:func:`run_one` in a fresh process; a failure becomes a row that says so.

    ``cache``: a folder for JAX's compilation cache, with tunefleet's thresholds.
    """
    command = [
        sys.executable, "-m", "benchmarks.multi_fidelity", "--child",
        json.dumps([task, method, seed, asdict(budget), target]),
    ]  # fmt: skip
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    if cache is not None:
        from tunefleet.compilation_cache import environment

        env.update(environment(cache))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    try:
        done = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"task": task, "method": method, "seed": seed, "status": "timed out"}
    last = done.stdout.strip().splitlines()[-1:] or [""]
    if done.returncode != 0 or not last[0].startswith("{"):
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"task": task, "method": method, "seed": seed, "status": f"failed: {tail[0]}"}
    return json.loads(last[0])


def _ratio(mine: float, best: float) -> float:
    """``mine / best``; NaN where no anchor reached the target (nothing to compare with)."""
    return mine / best if math.isfinite(best) else math.nan


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def summarize(runs: list[dict], tasks: list[str], methods: list[str]) -> list[dict]:
    """One row per task and method (medians over its runs; unreached runs count as inf)."""
    rows = []
    for task in tasks:
        for method in methods:
            mine = [r for r in runs if r["task"] == task and r["method"] == method]
            ok = [r for r in mine if r.get("status") == "ok"]
            row = {"task": task, "method": method, "runs": len(ok)}
            if not ok:
                failures = sorted({r.get("status", "no runs") for r in mine}) or ["no runs"]
                rows.append({**row, "status": failures[0]})
                continue
            reached = [r for r in ok if r["reached"]]
            inf = math.inf
            row.update(
                status="ok",
                success=len(reached) / len(ok),
                median_epochs=_median([r["epochs_to_target"] if r["reached"] else inf for r in ok]),
                median_seconds=_median(
                    [r["seconds_to_target"] if r["reached"] else inf for r in ok]
                ),
                median_compile_seconds=_median(
                    [c for r in reached if (c := r.get("compile_seconds_to_target")) is not None]
                ),
                median_best=_median([r["best"] for r in ok]),
            )
            rows.append(row)
    for task in tasks:
        for suffix in [None, *(end for end, _ in WARM.values())]:  # compare like with like
            alike = [
                r for r in rows
                if r["task"] == task and r.get("status") == "ok" and _protocol(r["method"]) == suffix
            ]  # fmt: skip
            anchors = [r for r in alike if not r["method"].startswith(OURS)]
            best_epochs = min((r["median_epochs"] for r in anchors), default=math.nan)
            best_seconds = min((r["median_seconds"] for r in anchors), default=math.nan)
            for row in alike:
                row["epochs_vs_best_anchor"] = _ratio(row["median_epochs"], best_epochs)
                row["seconds_vs_best_anchor"] = _ratio(row["median_seconds"], best_seconds)
    return rows


def _protocol(method: str) -> str | None:
    """The warm-cache suffix a method's name ends with, if any."""
    return next((end for end, _ in WARM.values() if method.endswith(end)), None)


def _cell(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "never" if math.isinf(value) else f"{value:.{digits}f}"


def format_table(rows: list[dict]) -> str:
    header = (
        "| task | method | runs | reached | median epochs | median s | of which compiling | "
        "epochs / best anchor | s / best anchor | median best acc |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(f"| {r['task']} | {r['method']} | 0 | {r['status']} | | | | | | |")
            continue
        lines.append(
            f"| {r['task']} | {r['method']} | {r['runs']} | {r['success']:.0%} | "
            f"{_cell(r['median_epochs'])} | {_cell(r['median_seconds'], 1)} | "
            f"{_cell(r.get('median_compile_seconds', math.nan), 1)} | "
            f"{_cell(r['epochs_vs_best_anchor'], 2)} | {_cell(r['seconds_vs_best_anchor'], 2)} | "
            f"{r['median_best']:.3f} |"
        )
    return "\n".join(lines)


def _in_order(names: list[str], known: list[str]) -> list[str]:
    seen = list(dict.fromkeys(names))
    return sorted(seen, key=lambda n: (known.index(n) if n in known else len(known), seen.index(n)))


def merge(paths: list[str], out: str | None = None) -> list[dict]:
    """Table the runs of several ``--json`` files together.

    The files must share their budget. A (task, method, seed) run found in several files
    counts once, from the last file that has it (so a rerun replaces the run it repeats).
    Tasks and methods come in the order of :data:`TASKS` and :data:`METHODS` (names not
    there, last, in the order first seen).
    """
    by_key: dict[tuple, dict] = {}
    budgets = set()
    for path in paths:
        data = json.loads(Path(path).read_text())
        budgets.add(json.dumps(data["budget"], sort_keys=True))
        for run in data["runs"]:
            by_key[(run["task"], run["method"], run["seed"])] = run
    if len(budgets) > 1:
        raise ValueError(f"--merge: the files were run with different budgets: {sorted(budgets)}")
    runs = list(by_key.values())
    tasks = _in_order([r["task"] for r in runs], list(TASKS))
    methods = _in_order([r["method"] for r in runs], list(METHODS))
    rows = summarize(runs, tasks, methods)
    print(format_table(rows))
    if out:
        Path(out).write_text(json.dumps({"budget": json.loads(budgets.pop()), "runs": runs,
                                         "table": rows}, indent=1))  # fmt: skip
    return rows


def _run(task: str, method: str, seed: int, budget: Budget, args: argparse.Namespace) -> dict:
    """One run as the options say: cold, or after a run that warmed a compilation cache."""
    if not args.warm_cache:
        return run_child(task, method, seed, budget, args.timeout, args.target)
    suffix, offset = WARM[args.warm_cache]
    with tempfile.TemporaryDirectory(prefix="mf-jax-cache-") as cache:
        run_child(task, method, seed + offset, budget, args.timeout, args.target, cache)
        run = run_child(task, method, seed, budget, args.timeout, args.target, cache)
    return {**run, "method": method + suffix}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits MLP, 9 epochs, 3 seeds")
    parser.add_argument(
        "--full", action="store_true", help="27 epochs; digits 10 seeds, CNN 3 (see FULL)"
    )
    parser.add_argument("--tasks", help=f"comma-separated, of {', '.join(TASKS)}")
    parser.add_argument("--methods", help="comma-separated method names (default: all)")
    parser.add_argument("--seeds", type=int, help="how many seeds (from --first-seed)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument(
        "--merge", help="comma-separated JSON files of earlier runs: table them together"
    )
    parser.add_argument("--max-epochs", type=int, help="epochs a trial, at most")
    parser.add_argument("--random-trials", type=int, help="trials of random search")
    parser.add_argument("--async-trials", type=int, help="configurations of halving methods")
    parser.add_argument("--target", type=float, help="accuracy to reach (default: the task's)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run, at most")
    parser.add_argument(
        "--warm-cache", choices=list(WARM),
        help="time each run after a run of the same seed (rerun) or another one warmed a JAX "
        "compilation cache",
    )  # fmt: skip
    parser.add_argument("--json", help="write the runs and the table to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        task, method, seed, budget, target = json.loads(args.child)
        print(json.dumps(run_one(task, method, seed, Budget(**budget), target)))
        return
    if args.merge:
        merge(args.merge.split(","), args.json)
        return
    preset = FULL if args.full else QUICK
    parts = preset["parts"]
    if args.tasks or args.methods or args.seeds is not None:  # a plan of one's own
        tasks = args.tasks.split(",") if args.tasks else list(dict.fromkeys(p.task for p in parts))
        methods = args.methods.split(",") if args.methods else list(METHODS)
        seeds = args.seeds if args.seeds is not None else max(p.seeds for p in parts)
        parts = [Part(task, seeds, tuple(methods)) for task in tasks]
    for part in parts:
        for names, known, what in (
            ([part.task], TASKS, "--tasks"),
            (part.methods, METHODS, "--methods"),
        ):
            unknown = [n for n in names if n not in known]
            if unknown:
                parser.error(f"{what}: unknown {unknown}; expected names from {list(known)}")
    default = preset["budget"]
    budget = Budget(
        args.max_epochs or default.max_epochs,
        args.random_trials or default.random_trials,
        args.async_trials or default.async_trials,
    )
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores; {budget}")  # fmt: skip
    runs = []
    started = time.perf_counter()
    for part in parts:
        # Seed by seed, every method in turn: a machine that slows down part-way through
        # the run slows every method alike, so their ratios hold.
        for seed in range(args.first_seed, args.first_seed + part.seeds):
            for method in part.methods:
                run = _run(part.task, method, seed, budget, args)
                runs.append(run)
                when = (
                    f"{run['epochs_to_target']} epochs, {run['seconds_to_target']:.1f} s"
                    if run.get("reached")
                    else f"not reached (best {run.get('best', math.nan):.3f})"
                )
                print(f"  {part.task} | {method} | seed {seed}: "
                      f"{when if run['status'] == 'ok' else run['status']}", flush=True)  # fmt: skip
    tasks = list(dict.fromkeys(p.task for p in parts))
    methods = list(
        dict.fromkeys(
            m + (WARM[args.warm_cache][0] if args.warm_cache else "")
            for p in parts
            for m in p.methods
        )
    )
    rows = summarize(runs, tasks, methods)
    print(f"\n{format_table(rows)}\n\n{time.perf_counter() - started:.0f} s in all")
    if args.json:
        Path(args.json).write_text(json.dumps({"budget": asdict(budget), "runs": runs,
                                               "table": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
