"""benchmarks/gpu.sh end to end with tiny settings, on the CPU (the GPU run's dry run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**os.environ, "PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_tiny_run_writes_every_figure(tmp_path):
    out = tmp_path / "out"
    done = run_script(
        str(out),
        "--tiny",
        GPU_WHEELS="none",  # this Python has every package already
        GPU_ANCHORS="optuna,fleet",
        GPU_FLEET_SIZES="2,4",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "environment.txt",
        "fleet-tests.log",
        "fleet-tests.xml",
        "throughput-cnn.json",
        "throughput-mlp.json",
        "throughput.log",
    ]
    assert "devices:" in (out / "environment.txt").read_text()
    suite = ET.parse(out / "fleet-tests.xml").getroot().find("testsuite")
    assert suite is not None
    assert (int(suite.get("tests")), int(suite.get("failures")), int(suite.get("errors"))) == (
        1,
        0,
        0,
    )
    for model in ("mlp", "cnn"):
        figures = json.loads((out / f"throughput-{model}.json").read_text())
        assert (figures["trials"], figures["anchor_trials"], figures["epochs"]) == (6, 2, 2)
        rows = figures[model]
        assert set(rows) == {"optuna", "fleet", "fleet_2", "fleet_4"}
        assert rows["fleet"]["trials"] == 6 and len(rows["fleet"]["scores"]) == 6
        assert rows["optuna"]["trials"] == 2  # one-by-one anchors: the first 2 only
        assert rows["fleet_2"]["trials"] == 2 and rows["fleet_4"]["trials"] == 4
        optuna = rows["optuna"]
        assert optuna["per_trial_seconds"] == pytest.approx(optuna["seconds"] / 2)
        expected = optuna["per_trial_seconds"] / rows["fleet"]["per_trial_seconds"]
        assert optuna["fleet_speedup"] == pytest.approx(expected)
        # Accuracy compared over the same two configurations.
        gap = 100 * (max(rows["fleet"]["scores"][:2]) - optuna["best_val_accuracy"])
        assert optuna["fleet_accuracy_gap_points"] == pytest.approx(gap)
    log = (out / "throughput.log").read_text()
    assert "a fleet of 4 takes" in log
    assert "per trial, 2 of 6" in log


def test_refuses_a_missing_wheel_folder_and_bad_arguments(tmp_path):
    done = run_script(str(tmp_path / "out"), GPU_WHEELS=str(tmp_path / "no-wheels"))
    assert done.returncode == 2
    assert "run benchmarks/gpu_wheels.sh first" in done.stderr
    done = run_script(str(tmp_path / "out"), "--huge")
    assert done.returncode == 2 and "usage" in done.stderr
    done = run_script()
    assert done.returncode != 0 and "usage" in done.stderr
