"""The CLI answers a broken script or an unwritable output with one clear line, exit code 2."""

import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from tunefleet.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

BROKEN = {
    "syntax": ("x = 1\ndef data(:\n    pass\n", 2, "SyntaxError"),
    "import": ("import os\n\nx = {}['missing_key']\n", 3, "KeyError: 'missing_key'"),
    "data": (
        "def build_model():\n    pass\n\ndef data():\n    raise RuntimeError('no dataset here')\n",
        5,
        "RuntimeError: no dataset here",
    ),
}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("kind", ["syntax", "import"])
@pytest.mark.parametrize("command", ["tune", "lr-find"])
def test_a_broken_script_names_file_and_line(tmp_path, monkeypatch, command, kind):
    monkeypatch.delenv("TUNEFLEET_TRACEBACK", raising=False)
    source, line, message = BROKEN[kind]
    script = tmp_path / f"broken_{kind}.py"
    script.write_text(source)
    args = [command, script] + (["-o", tmp_path / "lr.png"] if command == "lr-find" else [])
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, (SyntaxError, KeyError))
    assert f"{script}:{line}" in result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_a_script_whose_data_raises_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNEFLEET_TRACEBACK", raising=False)
    source, line, message = BROKEN["data"]
    script = tmp_path / "bad_data.py"
    script.write_text(source)
    result = invoke("lr-find", script, "-o", tmp_path / "lr.png")
    assert result.exit_code == 2, result.output
    assert f"{script}:{line}" in result.output
    assert message in result.output


def test_a_syntax_error_in_a_subprocess_prints_no_traceback(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text(BROKEN["syntax"][0])
    done = subprocess.run(
        [sys.executable, "-m", "tunefleet", "tune", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert f"{script}:2" in done.stderr


@pytest.fixture
def stored(tmp_path):
    url = f"sqlite:///{tmp_path}/tune.db"
    study = optuna.create_study(storage=url, study_name="s", direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    return url


@pytest.mark.parametrize("where", ["missing_folder", "parent_is_a_file", "a_folder"])
def test_report_to_an_unwritable_path_fails_clearly(tmp_path, stored, where):
    (tmp_path / "file.txt").write_text("x")
    output = {
        "missing_folder": tmp_path / "nonexistent" / "dir" / "r.html",
        "parent_is_a_file": tmp_path / "file.txt" / "r.html",
        "a_folder": tmp_path,
    }[where]
    result = invoke("report", stored, "-o", output)
    assert result.exit_code == 2, result.output
    assert "--output" in result.output and str(output) in result.output.replace("\n", "")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_lr_find_checks_its_output_before_running(tmp_path):
    script = tmp_path / "never_imported.py"
    script.write_text(
        textwrap.dedent(
            """
            raise AssertionError("the script must not be imported")
            """
        )
    )
    result = invoke("lr-find", script, "-o", tmp_path / "no" / "lr.png")
    assert result.exit_code == 2, result.output
    assert "does not exist" in " ".join(result.output.split())  # long paths wrap the line


def test_lr_find_on_data_too_small_says_why_without_a_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNEFLEET_TRACEBACK", raising=False)
    script = tmp_path / "small.py"
    script.write_text(
        textwrap.dedent(
            """
            import keras
            import numpy as np

            def build_model():
                model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
                model.compile(optimizer="sgd", loss="mse")
                return model

            def data():
                return np.zeros((40, 4), "float32"), np.zeros(40, "float32")
            """
        )
    )
    result = invoke("lr-find", script, "-o", tmp_path / "lr.png")
    assert result.exit_code == 1, result.output
    assert "the data is too small for num_steps=200 batches" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "lr.png").exists()


@pytest.mark.slow
def test_lr_find_runs_on_the_shipped_tuner_example(tmp_path):
    # examples/kt_digits_mlp.py defines build_model(hp): built at the defaults
    plot = tmp_path / "lr.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunefleet",
            "lr-find",
            str(EXAMPLES / "kt_digits_mlp.py"),
            "--steps",
            "30",
            "-o",
            str(plot),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "each hyperparameter at its default value" in done.stdout
    assert "suggested learning rate" in done.stdout and plot.stat().st_size > 0
