"""The ``tunefleet`` command line, on real SQLite files and real searches."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import optuna
import pytest
from sklearn.datasets import load_iris
from sklearn.neighbors import KNeighborsClassifier
from typer.testing import CliRunner

import tunefleet
from tunefleet.attrs import STATUS_ATTR, SURPLUS
from tunefleet.cli import app, main
from tunefleet.storage import open_storage
from tunefleet.study import counts

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SKLEARN_SCRIPT = textwrap.dedent(
    """
    import tunefleet
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier

    search = tunefleet.RandomizedSearchCV(
        KNeighborsClassifier(), {"n_neighbors": tunefleet.Int(1, 40)},
        n_iter=3, cv=2, random_state=0, study_name="iris-knn")

    def data():
        return load_iris(return_X_y=True)
    """
)


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def cli(*args, cwd=None, timeout=600):
    """``python -m tunefleet ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "tunefleet", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def trials_of(db, study):
    # open_storage retries while another process creates the schema
    return optuna.load_study(study_name=study, storage=open_storage(f"sqlite:///{db}")).trials


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """A SQLite file holding one finished study, filled by a real search."""
    db = tmp_path_factory.mktemp("cli") / "tune.db"
    tunefleet.RandomizedSearchCV(
        KNeighborsClassifier(),
        {"n_neighbors": tunefleet.Int(1, 40)},
        n_iter=4,
        cv=2,
        random_state=0,
        storage=f"sqlite:///{db}",
        study_name="iris",
    ).fit(*load_iris(return_X_y=True))
    return db


@pytest.mark.parametrize("command", [[], ["tune"], ["studies"], ["trials"], ["best"], ["delete"]])
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: tunefleet" in result.output and "--help" in result.output


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["tunefleet"] == "tunefleet.cli:main"
    assert any(dep.startswith("typer>=") for dep in project["project"]["dependencies"])
    assert callable(main)


def test_studies_trials_and_best_read_the_storage(storage):
    result = invoke("studies", storage, "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["study"], row["trials"], row["complete"], row["direction"]) == (
        "iris",
        4,
        4,
        "maximize",
    )
    study = optuna.load_study(study_name="iris", storage=f"sqlite:///{storage}")
    assert row["best_value"] == pytest.approx(study.best_value)

    rows = json.loads(invoke("trials", storage, "--format", "json").output)  # one study: no --study
    assert [r["number"] for r in rows] == [0, 1, 2, 3]
    assert [r["params"]["n_neighbors"] for r in rows] == [
        t.params["n_neighbors"] for t in study.trials
    ]
    assert all(len(r["cv"]["score"]) == 2 for r in rows)  # per-fold scores

    table = list(csv.DictReader(io.StringIO(invoke("trials", storage, "-f", "csv").output)))
    assert [float(r["value"]) for r in table] == pytest.approx([t.value for t in study.trials])
    assert {"number", "state", "param_n_neighbors", "note"} <= set(table[0])

    result = invoke("trials", f"sqlite:///{storage}", "--study", "iris")
    assert result.exit_code == 0 and "trials of 'iris'" in result.output
    assert "COMPLETE" in result.output

    best = json.loads(invoke("best", storage, "--study", "iris", "-f", "json").output)
    assert best["number"] == study.best_trial.number
    assert best["params"] == study.best_trial.params
    result = invoke("best", storage)
    assert result.exit_code == 0 and f"#{study.best_trial.number}" in result.output


def test_several_studies_need_study_and_unknown_ones_are_listed(tmp_path):
    db = tmp_path / "two.db"
    for name in ("a", "b"):
        optuna.create_study(study_name=name, storage=f"sqlite:///{db}")
    result = invoke("trials", db)
    assert result.exit_code == 2 and "holds 2 studies ('a', 'b')" in result.output
    result = invoke("best", db, "--study", "c")
    assert result.exit_code == 1 and "no study 'c'" in result.output and "'a', 'b'" in result.output
    result = invoke("best", db, "--study", "a")
    assert result.exit_code == 1 and "has no completed trial yet" in result.output


def test_a_missing_storage_is_an_error_and_is_not_created(tmp_path):
    for command in ("studies", "trials", "best"):
        result = invoke(command, tmp_path / "nope.db")
        assert result.exit_code == 1 and "does not exist" in result.output
    assert not (tmp_path / "nope.db").exists()


def test_delete_asks_for_confirmation_unless_yes(tmp_path):
    db = tmp_path / "del.db"
    for name in ("a", "b"):
        optuna.create_study(study_name=name, storage=f"sqlite:///{db}")
    result = invoke("delete", db, "--study", "a", input="n\n")
    assert result.exit_code == 1 and "Delete study 'a'" in result.output
    assert set(optuna.get_all_study_names(f"sqlite:///{db}")) == {"a", "b"}
    result = invoke("delete", db, "--study", "a", input="y\n")
    assert result.exit_code == 0 and "Deleted study 'a'" in result.output
    result = invoke("delete", db, "--study", "b", "--yes")
    assert result.exit_code == 0
    assert optuna.get_all_study_names(f"sqlite:///{db}") == []


def test_delete_takes_the_default_storage_as_every_other_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default storage is sqlite:///tunefleet.db, here
    optuna.create_study(study_name="a", storage="sqlite:///tunefleet.db")
    result = invoke("delete", "--study", "a", "--yes")
    assert result.exit_code == 0, result.output
    assert optuna.get_all_study_names("sqlite:///tunefleet.db") == []


def test_a_script_without_the_expected_names_exits_2(tmp_path):
    script = tmp_path / "empty.py"
    script.write_text("x = 1\n")
    done = cli("tune", script, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "does not define search and data" in done.stderr
    assert "`search` (a tunefleet tuner" in done.stderr
    assert not (tmp_path / "tunefleet.db").exists()


@pytest.mark.parametrize(
    ("body", "args", "message"),
    [
        ("search = 3\ndef data():\n    return [], []\n", [], "not a tunefleet tuner or *SearchCV"),
        (
            SKLEARN_SCRIPT.replace("return load_iris(return_X_y=True)", "return 1"),
            [],
            "returned int; expected (X, y)",
        ),
        (SKLEARN_SCRIPT, ["--strategy", "annealing"], "--strategy 'annealing' is not a known"),
        (SKLEARN_SCRIPT, ["--strategy", "tpe"], "does not apply to RandomizedSearchCV"),
        (
            SKLEARN_SCRIPT.replace("RandomizedSearchCV(", "GridSearchCV(")
            .replace("tunefleet.Int(1, 40)", "[1, 5]")
            .replace("n_iter=3, ", "")
            .replace("random_state=0, ", ""),
            ["--trials", "4"],
            "--trials does not apply to GridSearchCV",
        ),
    ],
)
def test_bad_scripts_and_options_exit_2_before_any_trial(
    tmp_path, monkeypatch, body, args, message
):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / f"script_{abs(hash(body + str(args)))}.py"
    script.write_text(body)
    result = invoke("tune", script, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "tunefleet.db").exists()


LR_FIND_SCRIPT = textwrap.dedent(
    """
    import tunefleet
    from sklearn.datasets import load_iris
    from keras_models import build_classifier as build_model

    def data():
        return load_iris(return_X_y=True)
    """
)


def test_lr_find_stores_its_run_in_an_existing_study(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    script = tmp_path / "lr_script.py"
    script.write_text(LR_FIND_SCRIPT)
    db = tmp_path / "tune.db"
    optuna.create_study(study_name="iris", storage=f"sqlite:///{db}", direction="maximize")
    plot = tmp_path / "lr.png"
    common = ("lr-find", script, "--steps", 20, "-o", plot)
    missing = invoke(*common, "--storage", db, "--study", "nope")
    assert missing.exit_code == 1 and "no study 'nope'" in missing.output
    assert not plot.exists()  # refused before the test ran
    assert invoke(*common, "--study", "iris").exit_code == 2  # --study without --storage
    result = invoke(*common, "--storage", db, "--study", "iris")
    assert result.exit_code == 0, result.output
    assert "suggested learning rate" in result.output and "stored in study 'iris'" in result.output
    assert plot.stat().st_size > 1000
    run = optuna.load_study(study_name="iris", storage=f"sqlite:///{db}").user_attrs[
        "tunefleet:lr_finder"
    ]
    assert len(run["lrs"]) == len(run["losses"]) > 3
    assert run["lrs"][0] == pytest.approx(1e-5)
    assert run["lrs"][0] < run["suggestion"] < 10


def test_tune_runs_a_search_cv_script_into_the_default_storage_and_resumes(tmp_path, monkeypatch):
    script = tmp_path / "iris_search.py"
    script.write_text(SKLEARN_SCRIPT)
    done = cli("tune", script, "--trials", 3, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "trials of 'iris-knn'" in done.stdout and "Best trial of 'iris-knn'" in done.stdout
    db = tmp_path / "tunefleet.db"  # the default storage, in the current folder
    first = {t.number: t.value for t in trials_of(db, "iris-knn")}
    assert len(first) == 3
    done = cli("tune", script, "--trials", 5, "--jobs", 1, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    trials = trials_of(db, "iris-knn")
    assert len(trials) == 5 and {t.number: t.value for t in trials[:3]} == first
    monkeypatch.chdir(tmp_path)
    listed = invoke("trials", "--format", "json")  # the default storage again
    assert [r["number"] for r in json.loads(listed.output)] == [0, 1, 2, 3, 4]


def test_tune_refuses_another_experiment_unless_resume_is_forced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "iris_search.py"
    script.write_text(SKLEARN_SCRIPT)
    assert invoke("tune", script, "--trials", 2).exit_code == 0
    db = tmp_path / "tunefleet.db"
    first = {t.number: t.value for t in trials_of(db, "iris-knn")}
    # The same study name, another scoring: another experiment.
    script.write_text(SKLEARN_SCRIPT.replace("cv=2,", "cv=2, scoring='f1_macro',"))
    refused = invoke("tune", script, "--trials", 3)
    assert refused.exit_code == 1
    assert "scoring" in refused.output and "nothing stored was changed" in refused.output
    assert {t.number: t.value for t in trials_of(db, "iris-knn")} == first
    bad = invoke("tune", script, "--resume", "always")
    assert bad.exit_code == 2 and "--resume 'always'" in bad.output
    forced = invoke("tune", script, "--trials", 3, "--resume", "force")
    assert forced.exit_code == 0, forced.output
    trials = trials_of(db, "iris-knn")
    assert len(trials) == 3 and {t.number: t.value for t in trials[:2]} == first


TUNER_SCRIPT = textwrap.dedent(
    """
    import tunefleet as kt
    import keras
    from sklearn.datasets import load_digits


    def build_model(hp):
        model = keras.Sequential([keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
            keras.layers.Dense(10, activation="softmax")])
        model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


    search = kt.RandomSearch(build_model, "val_accuracy", max_trials=10, directory="runs",
                             project_name="digits")


    def data():
        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype("float32")
        return x[:256], y[:256], {"epochs": 1, "batch_size": 64,
                                  "validation_data": (x[256:384], y[256:384])}
    """
)


@pytest.mark.slow
def test_tune_runs_a_tuner_script_with_the_options_applied(tmp_path):
    script = tmp_path / "digits_tuner.py"
    script.write_text(TUNER_SCRIPT)
    db = tmp_path / "cli.db"
    done = cli(
        "tune",
        script,
        "--storage",
        db,
        "--study",
        "from-cli",
        "--trials",
        3,
        "--jobs",
        2,
        "--strategy",
        "tpe",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Best trial of 'from-cli'" in done.stdout
    # the budget is counted in the transaction that starts a trial: no surplus is created
    everything = trials_of(db, "from-cli")
    trials = [t for t in everything if counts(t)]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert all(t.user_attrs[STATUS_ATTR] == SURPLUS for t in everything if not counts(t))
    # --jobs 2: trials ran in worker processes, not in the command's own process
    owners = {t.user_attrs["tunefleet:worker"].split(":")[1] for t in trials}
    assert str(os.getpid()) not in owners and len(owners) >= 1
    assert all((tmp_path / "runs" / "digits" / f"trial_{t.number:04d}").is_dir() for t in trials)


SLOW_SCRIPT = textwrap.dedent(
    """
    import time
    from pathlib import Path
    import tunefleet
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.datasets import load_iris


    # Fits in 0.4 s; while a file "hold" exists, a fit touches "held" and waits.
    class Slow(ClassifierMixin, BaseEstimator):
        def __init__(self, c=1.0):
            self.c = c

        def fit(self, X, y):
            time.sleep(0.4)
            if Path("hold").exists():
                Path("held").touch()
                time.sleep(120)
            self.classes_ = sorted(set(y))
            return self

        def predict(self, X):
            return [self.classes_[0]] * len(X)


    search = tunefleet.RandomizedSearchCV(Slow(), {"c": tunefleet.Float(0.1, 1.0)}, n_iter=6,
                                          cv=2, random_state=0, study_name="slow")


    def data():
        return load_iris(return_X_y=True)
    """
)


@pytest.mark.slow
def test_ctrl_c_keeps_completed_trials_and_the_next_run_resumes(tmp_path):
    script = tmp_path / "slow_search.py"
    script.write_text(SLOW_SCRIPT)
    db = tmp_path / "tunefleet.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "tunefleet", "tune", str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def wait_for(condition):
        deadline = time.monotonic() + 120
        while not condition():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the search did not get there in 120 s"
            time.sleep(0.1)

    def two_complete():
        try:
            return sum(t.state.name == "COMPLETE" for t in trials_of(db, "slow")) >= 2
        except KeyError:  # the study is not created yet
            return False

    wait_for(lambda: db.exists() and two_complete())
    (tmp_path / "hold").touch()  # the next fit waits, so the signal lands inside a trial
    wait_for((tmp_path / "held").exists)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Completed trials are stored" in err
    kept = {t.number: t.value for t in trials_of(db, "slow") if t.state.name == "COMPLETE"}
    assert len(kept) >= 2
    (tmp_path / "hold").unlink()
    done = cli("tune", script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    trials = trials_of(db, "slow")
    counted = [t for t in trials if "tunefleet:status" not in t.user_attrs]
    assert len(counted) == 6 and all(t.state.name == "COMPLETE" for t in counted)
    assert {t.number: t.value for t in trials if t.number in kept} == kept
    assert any(t.user_attrs.get("tunefleet:status") == "interrupted" for t in trials)


@pytest.mark.slow
def test_tune_without_storage_runs_a_tuner_script_in_its_own_study(tmp_path):
    # The tuner's own storage (runs/digits/study.db), not the CLI's default tunefleet.db:
    # `python script.py` and `tunefleet tune script.py` continue one study.
    script = tmp_path / "digits_tuner.py"
    script.write_text(TUNER_SCRIPT)
    done = cli("tune", script, "--trials", 1, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "tunefleet.db").exists()
    assert [
        t.state.name for t in trials_of(tmp_path / "runs" / "digits" / "study.db", "digits")
    ] == ["COMPLETE"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("example", "study"),
    [("kt_digits_mlp.py", "kt_digits_mlp"), ("sklearn_diabetes_randomized.py", "diabetes-mlp")],
)
def test_the_examples_run_with_tunefleet_tune(tmp_path, example, study):
    db = tmp_path / "examples.db"
    done = cli("tune", ROOT / "examples" / example, "--trials", 2, "--storage", db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Best trial of '{study}'" in done.stdout
    assert [t.state.name for t in trials_of(db, study)] == ["COMPLETE"] * 2


@pytest.mark.slow
def test_workers_join_a_running_study_and_share_its_budget(tmp_path):
    script = tmp_path / "slow_search.py"
    script.write_text(SLOW_SCRIPT)
    db = tmp_path / "shared.db"
    started = cli("tune", script, "--storage", db, "--trials", 1, cwd=tmp_path)
    assert started.returncode == 0, started.stderr[-2000:]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tunefleet",
                "worker",
                str(db),
                str(script),
                "--study",
                "slow",
                "--trials",
                "8",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    counted = [t for t in trials_of(db, "slow") if counts(t)]
    assert len(counted) == 8 and all(t.state.name == "COMPLETE" for t in counted)
    ran = [int(out.split(" ran ")[1].split(" ")[0]) for out, _ in outputs]
    assert sum(ran) == 7  # the tune run made the first
    owners = {t.user_attrs["tunefleet:worker"].split(":")[1] for t in counted[1:]}
    assert owners == {str(w.pid) for w, n in zip(workers, ran, strict=True) if n}


def test_a_worker_needs_the_study_to_exist(tmp_path):
    script = tmp_path / "slow_search.py"
    script.write_text(SLOW_SCRIPT)
    db = tmp_path / "shared.db"
    optuna.create_study(storage=open_storage(f"sqlite:///{db}"), study_name="other")
    result = invoke("worker", db, script, "--study", "slow")
    assert result.exit_code != 0
    assert "no study 'slow'" in result.output and "'other'" in result.output
    assert [
        s.study_name for s in optuna.get_all_study_summaries(open_storage(f"sqlite:///{db}"))
    ] == ["other"]
