"""The multi-fidelity benchmark (benchmarks/multi_fidelity) runs and prints its table.

A tiny version (digits, two methods, one seed, two epochs a trial): the table's structure
is checked, not its numbers; the summary's rules are checked on given runs.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from benchmarks.multi_fidelity import watch
from benchmarks.multi_fidelity.__main__ import FULL, OURS, QUICK, WARM, main, merge, summarize
from benchmarks.multi_fidelity.methods import METHODS as ALL_METHODS
from benchmarks.multi_fidelity.tasks import TASKS

METHODS = ["random (full epochs)", "tunefleet HyperbandSearchCV fleet"]


@pytest.mark.slow
def test_tiny_run_prints_and_writes_its_table(tmp_path, capsys):
    out = tmp_path / "mf.json"
    main(
        [
            "--tasks", "digits-mlp", "--methods", ",".join(METHODS), "--seeds", "1",
            "--max-epochs", "2", "--random-trials", "1", "--async-trials", "3",
            "--target", "0.5", "--json", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "| task | method | runs | reached | median epochs | median s | of which compiling |" in (
        printed
    )
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["table"]] == METHODS
    for run in data["runs"]:
        assert run["status"] == "ok", run
        assert run["epochs"] >= 1 and 0.0 <= run["best"] <= 1.0
        assert 0.0 < run["compile_seconds"] < run["seconds"]  # each method compiles
        if run["reached"]:
            assert 1 <= run["epochs_to_target"] <= run["epochs"]
            assert run["best"] >= 0.5
            assert 0.0 < run["compile_seconds_to_target"] <= run["compile_seconds"]
    for row in data["table"]:
        assert row["runs"] == 1 and 0.0 <= row["success"] <= 1.0


def test_unreached_runs_count_as_never_and_ratios_use_the_best_anchor():
    def run(method, seed, epochs):
        reached = epochs is not None
        return {
            "task": "t", "method": method, "seed": seed, "status": "ok", "reached": reached,
            "epochs_to_target": epochs, "seconds_to_target": epochs and epochs / 10,
            "best": 0.9,
        }  # fmt: skip

    runs = [
        run("anchor A", 0, 100), run("anchor A", 1, 120), run("anchor A", 2, None),
        run("anchor B", 0, None), run("anchor B", 1, None), run("anchor B", 2, 10),
        run("tunefleet X", 0, 30), run("tunefleet X", 1, 50), run("tunefleet X", 2, 70),
    ]  # fmt: skip
    rows = {r["method"]: r for r in summarize(runs, ["t"], ["anchor A", "anchor B", "tunefleet X"])}
    assert rows["anchor A"]["success"] == pytest.approx(2 / 3)
    assert rows["anchor A"]["median_epochs"] == 120  # the unreached run counts as never
    assert math.isinf(rows["anchor B"]["median_epochs"])  # reached once in three
    assert rows["tunefleet X"]["epochs_vs_best_anchor"] == pytest.approx(50 / 120)
    assert rows["tunefleet X"]["seconds_vs_best_anchor"] == pytest.approx(5 / 12)

    # Runs made after a warming run are compared with the anchors run the same way.
    rerun, other = WARM["rerun"][0], WARM["other-seed"][0]
    runs += [run("anchor A" + rerun, seed, 10) for seed in range(3)]
    runs += [run("tunefleet X" + rerun, seed, 20) for seed in range(3)]
    runs += [run("tunefleet X" + other, seed, 40) for seed in range(3)]
    methods = ["anchor A", "anchor B", "tunefleet X", "anchor A" + rerun, "tunefleet X" + rerun,
               "tunefleet X" + other]  # fmt: skip
    rows = {r["method"]: r for r in summarize(runs, ["t"], methods)}
    assert rows["tunefleet X"]["epochs_vs_best_anchor"] == pytest.approx(50 / 120)  # as before
    assert rows["tunefleet X" + rerun]["epochs_vs_best_anchor"] == pytest.approx(20 / 10)
    assert math.isnan(rows["tunefleet X" + other]["epochs_vs_best_anchor"])  # no anchor ran so


def test_a_fleet_epoch_counts_each_trial_and_the_run_stops_at_its_first_reaching_score():
    from tunefleet import fleet_batch, study

    current = watch.Watch(0.975, np.zeros((1, 1)), np.zeros(1))
    watch.WATCH = current
    try:
        with watch.watch_fleet_reports():
            assert fleet_batch.report_many is not study.report_many  # watched
            fleet_batch.report_many(None, [])  # nothing reported: nothing counted
            current.reports_done([0.5, 0.96])  # one fleet epoch of two trials
            with pytest.raises(watch.TargetReached):
                current.reports_done([0.97, 0.98, 0.3])
        assert fleet_batch.report_many is study.report_many  # put back
    finally:
        watch.WATCH = None
    assert current.reached is not None and current.reached[0] == 5  # 2 + 3 trial epochs
    assert current.epochs == 5 and current.best == 0.98


def test_compiling_counts_nested_spans_once_and_not_the_watchs_own_predictions():
    current = watch.Watch(0.975, np.zeros((1, 1)), np.zeros(1), began=100.0)
    trace, xla = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/backend_compile_duration",
    )
    assert {trace, xla} <= watch.COMPILE_EVENTS
    current.compile_span(trace, 99.0, 101.0)  # began before the run: its part in the run
    current.compile_span(trace, 102.0, 104.0)
    current.compile_span(trace, 102.5, 103.0)  # a trace nested in the one above
    current.compile_span(xla, 103.5, 105.0)  # overlaps it: merged
    current.compile_span(xla, 101.5, 101.75)  # reported late (another thread), in a gap
    current.compile_span("/jax/other_duration", 110.0, 120.0)  # not compiling
    current.scoring = True
    current.compile_span(xla, 106.0, 107.0)  # the watch's own predictions
    current.scoring = False
    assert current.compile_seconds() == pytest.approx(1.0 + 0.25 + 3.0)
    current.compile_span(xla, 98.0, 99.5)  # ended before the run
    assert current.compile_seconds() == pytest.approx(4.25)


def test_merge_counts_a_repeated_run_once_from_the_last_file_and_refuses_mixed_budgets(
    tmp_path, capsys
):
    def run(method, seed, epochs):
        return {
            "task": "t", "method": method, "seed": seed, "status": "ok", "reached": True,
            "epochs_to_target": epochs, "seconds_to_target": epochs / 10, "best": 0.99,
        }  # fmt: skip

    budget = {"max_epochs": 27, "random_trials": 15, "async_trials": 40}
    first, second, other = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    first.write_text(
        json.dumps({"budget": budget, "runs": [run("anchor", 0, 100), run("anchor", 1, 50)]})
    )
    second.write_text(
        json.dumps({"budget": budget, "runs": [run("anchor", 0, 10), run("tunefleet X", 0, 5)]})
    )
    out = tmp_path / "all.json"
    rows = {r["method"]: r for r in merge([str(first), str(second)], str(out))}
    assert rows["anchor"]["runs"] == 2  # seed 0 once, from the later file
    assert rows["anchor"]["median_epochs"] == pytest.approx((10 + 50) / 2)
    assert rows["tunefleet X"]["epochs_vs_best_anchor"] == pytest.approx(5 / 30)
    assert "| t | anchor | 2 |" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["runs"]) == 3
    other.write_text(
        json.dumps({"budget": {**budget, "max_epochs": 9}, "runs": [run("anchor", 2, 1)]})
    )
    with pytest.raises(ValueError, match="different budgets"):
        merge([str(first), str(other)])


def test_presets_name_known_tasks_and_methods_and_full_keeps_every_anchor_on_digits():
    for preset in (QUICK, FULL):
        for part in preset["parts"]:
            assert part.task in TASKS and part.seeds >= 1
            assert set(part.methods) <= set(ALL_METHODS)
    digits = next(p for p in FULL["parts"] if p.task == "digits-mlp")
    assert digits.seeds >= 10  # the ten seeds on the MLP
    assert {m for m in ALL_METHODS if not m.startswith(OURS)} <= set(digits.methods)


@pytest.mark.slow
def test_halving_fleet_trains_its_first_round_then_only_the_best_further():
    from benchmarks.multi_fidelity.__main__ import run_one
    from benchmarks.multi_fidelity.methods import Budget

    # One fleet of three (3 configurations, max 3 epochs): one epoch each, then the best
    # alone from epoch 1 to 3. A target above 1 is never reached, so the budget runs out.
    method = "tunefleet HyperbandSearchCV halving fleet"
    run = run_one("digits-mlp", method, 0, Budget(3, 1, 3), 1.01)
    assert run["status"] == "ok" and not run["reached"]
    assert run["epochs"] == 3 * 1 + 1 * 2
    assert 0.0 < run["best"] <= 1.0
