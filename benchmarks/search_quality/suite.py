"""Run optimizers on problems at budgets and score them as Bayesmark does.

Score of a run (one optimizer, problem, budget, seed): ``100 * (base - f) / (base - best)``
where ``f`` is the best cross-validation loss the run found, ``best`` the lowest loss ever
seen on the problem (any optimizer, budget or seed of this suite's run) and ``base`` the
median, over 1000 resamples, of the best of ``budget // 4`` points drawn from every point
random search evaluated on the problem. 100 = the best ever seen, 0 = random search after a
quarter of the budget; runs worse than that score below 0. The suite's score of an
optimizer is the mean over problems and seeds, with a 95% bootstrap confidence interval.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from benchmarks.search_quality.optimizers import OPTIMIZERS, RUN_PER_BUDGET, NotInstalled
from benchmarks.search_quality.problems import Problem


@dataclass
class Run:
    """One optimizer's run on one problem at one budget and seed."""

    optimizer: str
    problem: str
    budget: int
    seed: int
    best: float
    seconds: float
    losses: list[float] = field(default_factory=list)


def run_suite(
    problems: list[tuple[str, str]],
    optimizers: list[str],
    budgets: list[int],
    seeds: int,
    log=print,
    jobs: int = 1,
) -> tuple[list[Run], dict[str, str], int]:
    """Every optimizer on every problem, budget and seed; returns runs, failures and fits.

    One task per (problem, seed) runs every optimizer on one cache of fits; ``jobs``
    tasks run side by side in fresh processes.
    """
    tasks = [
        (model, dataset, seed, optimizers, budgets)
        for model, dataset in problems
        for seed in range(seeds)
    ]
    runs: list[Run] = []
    missing: dict[str, str] = {}
    fits = 0
    with contextlib.ExitStack() as stack:
        if jobs <= 1:
            results = (_task(*task) for task in tasks)
        else:
            spawn = multiprocessing.get_context("spawn")
            pool = stack.enter_context(ProcessPoolExecutor(jobs, mp_context=spawn))
            results = pool.map(_task, *zip(*tasks, strict=True))
        for task_runs, task_missing, task_fits, lines in results:
            for line in lines:
                log(line)
            runs.extend(task_runs)
            for name, why in task_missing.items():
                missing.setdefault(name, why)
            fits += task_fits
    return runs, missing, fits


def _task(
    model: str, dataset: str, seed: int, optimizers: list[str], budgets: list[int]
) -> tuple[list[Run], dict[str, str], int, list[str]]:
    """Every optimizer on one problem and seed: runs, failures, fits and log lines."""
    problem = Problem.make(model, dataset)
    runs: list[Run] = []
    missing: dict[str, str] = {}
    lines: list[str] = []
    for name in optimizers:
        for budget in budgets if name in RUN_PER_BUDGET else [max(budgets)]:
            problem.stamps.clear()
            start = time.perf_counter()
            try:
                losses = OPTIMIZERS[name](problem, budget, seed)
            except NotInstalled as exc:
                missing[name] = f"not installed ({exc})"
                lines.append(f"  {name}: {missing[name]}")
                break
            except Exception as exc:  # an optimizer crashing is a result too
                missing[name] = f"failed: {type(exc).__name__}: {exc}"
                lines.append(f"  {name}: {missing[name]}\n{traceback.format_exc(limit=3)}")
                break
            seconds = time.perf_counter() - start
            # Read the smaller budgets off a budget-blind optimizer's run (its first points).
            read_at = [budget] if name in RUN_PER_BUDGET else budgets
            for b in read_at:
                took = problem.stamps[b - 1] - start if b < len(problem.stamps) else seconds
                run = Run(name, problem.name, b, seed, min(losses[:b]), took, losses[:b])
                runs.append(run)
                lines.append(
                    f"  {problem.name:18s} n={b:3d} seed={seed} {name:34s} "
                    f"best loss {run.best:.5g}  {took:6.1f} s"
                )
    return runs, missing, problem.fits, lines


def scores(runs: list[Run], rng_seed: int = 0) -> dict[tuple[str, int], list[float]]:
    """Bayesmark-normalised score of each run, grouped by (optimizer, budget)."""
    rng = np.random.default_rng(rng_seed)
    best = {}
    longest: dict[tuple[str, int], list[float]] = {}  # random search's points, each once
    for r in runs:
        best[r.problem] = min(best.get(r.problem, np.inf), r.best)
        if r.optimizer == "random" and len(r.losses) > len(longest.get((r.problem, r.seed), [])):
            longest[(r.problem, r.seed)] = r.losses
    pool: dict[str, list[float]] = {}
    for (problem, _), losses in longest.items():
        pool.setdefault(problem, []).extend(losses)
    base: dict[tuple[str, int], float] = {}
    out: dict[tuple[str, int], list[float]] = {}
    for r in runs:
        if r.problem not in pool:
            raise ValueError("the score needs random search's runs: include 'random'.")
        key = (r.problem, r.budget)
        if key not in base:
            points = np.asarray(pool[r.problem])
            k = max(1, r.budget // 4)
            draws = rng.choice(points, size=(1000, k), replace=True).min(axis=1)
            base[key] = float(np.median(draws))
        span = base[key] - best[r.problem]
        score = 100.0 if span <= 1e-12 else 100.0 * (base[key] - r.best) / span
        out.setdefault((r.optimizer, r.budget), []).append(score)
    return out


def mean_ci(values: list[float], rng_seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% bootstrap confidence interval."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(rng_seed)
    means = rng.choice(data, size=(2000, len(data)), replace=True).mean(axis=1)
    return float(data.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def table(
    runs: list[Run], missing: dict[str, str], optimizers: list[str], budgets: list[int]
) -> list[dict]:
    """One row per optimizer and budget: mean score, CI, runs, median seconds; missing rows too."""
    by = scores(runs)
    rows = []
    for name in optimizers:
        for budget in budgets:
            values = by.get((name, budget))
            if not values:
                rows.append(
                    {"optimizer": name, "budget": budget, "status": missing.get(name, "no runs")}
                )
                continue
            mean, low, high = mean_ci(values)
            seconds = [r.seconds for r in runs if r.optimizer == name and r.budget == budget]
            rows.append(
                {
                    "optimizer": name,
                    "budget": budget,
                    "status": "ok",
                    "score": round(mean, 1),
                    "ci_low": round(low, 1),
                    "ci_high": round(high, 1),
                    "runs": len(values),
                    "median_seconds": round(float(np.median(seconds)), 2),
                }
            )
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| optimizer | budget | score (mean) | 95% CI | runs | median s/run |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['optimizer']} | {row['budget']} | {row['status']} | | | |")
        else:
            lines.append(
                f"| {row['optimizer']} | {row['budget']} | {row['score']:.1f} | "
                f"{row['ci_low']:.1f} .. {row['ci_high']:.1f} | {row['runs']} | "
                f"{row['median_seconds']:.2f} |"
            )
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> None:
    """Scores with their intervals per budget, as a static plotly HTML page."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name in dict.fromkeys(r["optimizer"] for r in rows):
        ok = [r for r in rows if r["optimizer"] == name and r["status"] == "ok"]
        if not ok:
            continue
        fig.add_trace(
            go.Scatter(
                x=[str(r["budget"]) for r in ok],
                y=[r["score"] for r in ok],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r["ci_high"] - r["score"] for r in ok],
                    "arrayminus": [r["score"] - r["ci_low"] for r in ok],
                },
                mode="markers+lines",
                name=name,
            )
        )
    fig.update_layout(
        title="Search quality (100 = best seen, 0 = random search at a quarter of the budget)",
        xaxis_title="evaluations",
        yaxis_title="normalised score",
    )
    fig.write_html(path, include_plotlyjs="cdn")
