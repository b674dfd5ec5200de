"""The search-quality benchmark (benchmarks/search_quality) runs and prints its table.

A tiny version (one problem, budget 8, one seed): the table's structure is checked, not
its numbers.
"""

from __future__ import annotations

import json

import pytest
from benchmarks.search_quality.__main__ import main, parse_problems
from benchmarks.search_quality.problems import Problem
from benchmarks.search_quality.suite import mean_ci, run_suite

OPTIMIZERS = ["random", "tunefleet BayesSearchCV (default)", "optuna TPE"]


def test_tiny_suite_prints_and_writes_its_table(tmp_path, capsys):
    out = tmp_path / "sq.json"
    plot = tmp_path / "sq.html"
    main(
        [
            "--problems", "DT-wine", "--budgets", "8", "--seeds", "1",
            "--optimizers", ",".join(OPTIMIZERS), "--json", str(out), "--plot", str(plot),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "| optimizer | budget | score (mean) | 95% CI | runs | median s/run |" in printed
    data = json.loads(out.read_text())
    rows = data["table"]
    assert [r["optimizer"] for r in rows] == OPTIMIZERS
    for row in rows:
        assert row["status"] == "ok" and row["budget"] == 8 and row["runs"] == 1
        assert row["ci_low"] <= row["score"] <= row["ci_high"]
        assert row["score"] <= 100.0
    # The best run on the problem defines 100.
    assert max(r["score"] for r in rows) == 100.0
    assert all(len(run["losses"]) == 8 for run in data["runs"])
    assert "plotly" in plot.read_text()

    # An optimizer run later on the same problem and seed is scored with the others.
    later = tmp_path / "later.json"
    main(["--problems", "DT-wine", "--budgets", "8", "--seeds", "1", "--optimizers",
          "optuna TPE multivariate", "--json", str(later)])  # fmt: skip
    merged = tmp_path / "merged.json"
    main(["--merge", f"{out},{later}", "--json", str(merged)])
    rows = json.loads(merged.read_text())["table"]
    assert [r["optimizer"] for r in rows] == [*OPTIMIZERS, "optuna TPE multivariate"]
    assert all(r["runs"] == 1 for r in rows)  # random search, in both files, counts once


def test_budget_blind_optimizers_are_read_at_smaller_budgets_off_one_run():
    optimizers = ["random", "optuna TPE", "tunefleet BayesSearchCV (default)"]
    runs, missing, fits = run_suite([("DT", "wine")], optimizers, [4, 8], 1, log=lambda s: None)
    assert not missing and fits > 0
    by = {(r.optimizer, r.budget): r for r in runs}
    assert sorted(by) == sorted((o, b) for o in optimizers for b in (4, 8))
    for name in ("random", "optuna TPE"):  # one run of 8, read at 4
        assert by[(name, 4)].losses == by[(name, 8)].losses[:4]
        assert 0 < by[(name, 4)].seconds <= by[(name, 8)].seconds
    # Our face sizes its random start by n_iter: it runs once per budget.
    assert len(by[("tunefleet BayesSearchCV (default)", 4)].losses) == 4


def test_a_repeated_point_is_not_refit():
    problem = Problem.make("kNN", "iris")
    first = problem.loss({"n_neighbors": 5, "p": 2})
    assert problem.loss({"n_neighbors": 5.2, "p": 2.0}) == first
    assert problem.fits == 1


def test_unknown_problem_names_the_parameter():
    with pytest.raises(SystemExit, match="--problems: 'SVM-boston'"):
        parse_problems("SVM-boston")


def test_mean_ci_brackets_the_mean():
    mean, low, high = mean_ci([10.0, 20.0, 30.0, 40.0])
    assert mean == 25.0 and low < mean < high


def test_jobs_run_tasks_in_spawned_processes_with_the_same_results():
    # kNN is deterministic; a decision tree draws from the process's NumPy random state.
    args = ([("kNN", "iris")], ["random"], [4], 2)
    alone, _, fits_alone = run_suite(*args, log=lambda s: None)
    side_by_side, _, fits_pooled = run_suite(*args, log=lambda s: None, jobs=2)
    assert fits_pooled == fits_alone > 0
    assert [(r.seed, r.losses) for r in side_by_side] == [(r.seed, r.losses) for r in alone]
