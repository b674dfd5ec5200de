"""benchmarks/scaling.py runs (its quick version, on SQLite) and reports what it says.

Checks the table's structure and the counts, not the speed: speed is measured by the
benchmark itself, never in a timed test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_quick_scaling_benchmark_reports_rates_and_storage_work(tmp_path):
    out = tmp_path / "scaling.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "scaling.py"),
            *("--quick", "--storages", "sqlite", "--delay", "0.05", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "## Trials per second" in done.stdout and "## Storage work per trial" in done.stdout
    figures = json.loads(out.read_text())
    assert [(r["storage"], r["workers"], r["trials"]) for r in figures["scaling"]] == [
        ("sqlite", 1, 8),
        ("sqlite", 2, 8),
    ]
    for row in figures["scaling"]:
        assert row["trials_per_s"] > 0
        assert row["ideal_trials_per_s"] == pytest.approx(row["workers"] / 0.1)
        assert row["fraction_of_ideal"] == pytest.approx(
            row["trials_per_s"] / row["ideal_trials_per_s"]
        )
    (cost,) = figures["storage_cost"]
    assert cost["storage"] == "sqlite"
    # a trial is at least asked (a write) and told (a write) in the database
    assert cost["write_transactions"] >= 2 and cost["statements"] > cost["commits"] >= 2
    assert cost["max_trials_per_s"] == pytest.approx(1 / cost["seconds_per_trial"])


def test_the_scaling_benchmark_refuses_an_unknown_storage():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scaling.py"), "--storages", "redis"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--storages: 'redis' is not one of sqlite, journal, postgresql, ray" in done.stderr
