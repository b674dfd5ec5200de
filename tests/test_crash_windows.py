"""Kills at the exact moments where a search could lose or orphan a trial, then resume.

The kills are injected, not timed: a child process SIGKILLs itself right after the
commit that starts a trial (before anything else is written), or a test kills the
parent of worker processes while they hold trials.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import psutil
import pytest

from tunefleet.attrs import GRID_ATTR, STATUS_ATTR, WORKER_ATTR

TESTS = Path(__file__).parent
POINTS = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]

SEARCH = textwrap.dedent(
    """
    import os, signal, sqlite3, sys
    import tunefleet
    from estimators import SlowClassifier, iris
    kind, url, n, n_jobs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    kill_at = int(os.environ.get("TUNEFLEET_TEST_KILL_AT", "0"))
    if kill_at:
        # SIGKILL this process right after the commit that starts trial number
        # ``kill_at`` (counting trials that left the queue), before any other write.
        from sqlalchemy import event
        from sqlalchemy.orm import Session

        def after_commit(session):
            with sqlite3.connect(url[len("sqlite:///"):]) as db:
                (started,), = db.execute("SELECT count(*) FROM trials WHERE state != 'WAITING'")
            if started >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        event.listen(Session, "after_commit", after_commit)
    end_at = int(os.environ.get("TUNEFLEET_TEST_KILL_AT_END", "0"))
    if end_at:
        # SIGKILL this process inside the transaction that ends trial number ``end_at``
        # (its state and its per-fold record written, not yet committed).
        from sqlalchemy import event
        from sqlalchemy.orm import Session
        ended = []

        def before_commit(session):
            for obj in session.dirty:
                if type(obj).__name__ == "TrialModel" and obj.state.is_finished():
                    ended.append(obj.trial_id)
            if len(ended) >= end_at:
                session.flush()
                os.kill(os.getpid(), signal.SIGKILL)

        event.listen(Session, "before_commit", before_commit)
    X, y = iris()
    if kind == "grid":
        search = tunefleet.GridSearchCV(
            SlowClassifier(), {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}, cv=2, storage=url, study_name="s", n_jobs=n_jobs)
    else:
        search = tunefleet.RandomizedSearchCV(
            SlowClassifier(), {"C": tunefleet.Float(1e-3, 1e2, log=True)}, n_iter=n, cv=2,
            storage=url, study_name="s", random_state=0, n_jobs=n_jobs)
    search.fit(X, y)
    """
)


def run_search(kind, url, n=6, n_jobs=1, env=None):
    full = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    )
    return subprocess.Popen(
        [sys.executable, "-c", SEARCH, kind, url, str(n), str(n_jobs)], env=full
    )


def trials(url):
    return optuna.load_study(study_name="s", storage=url).trials


def assert_exact(url, kind, n=6):
    """Exactly the budget completed, each grid point once, nothing left running."""
    stored = trials(url)
    done = [t for t in stored if t.state.name == "COMPLETE"]
    assert len(done) == n
    if kind == "grid":
        assert sorted(t.params["C"] for t in done) == POINTS
    assert not [t.number for t in stored if t.state.name == "RUNNING"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random", "grid"])
def test_kill_right_after_a_trial_is_started_then_resume(tmp_path, kind):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    killed = run_search(kind, url, env={"TUNEFLEET_TEST_KILL_AT": "3"})
    assert killed.wait(timeout=300) == -signal.SIGKILL
    running = [t for t in trials(url) if t.state.name == "RUNNING"]
    assert len(running) == 1  # killed right after it started
    resumed = run_search(kind, url)
    assert resumed.wait(timeout=300) == 0
    assert_exact(url, kind)
    interrupted = [t for t in trials(url) if t.user_attrs.get("tunefleet:status")]
    assert [t.number for t in interrupted] == [running[0].number]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random", "grid"])
def test_kill_inside_the_transaction_that_ends_a_trial_then_resume(tmp_path, kind):
    # The trial's state and its per-fold record are one commit: a kill before it leaves
    # the trial running with no record (then interrupted and, for a grid, run again),
    # never a finished trial without its record.
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    killed = run_search(kind, url, env={"TUNEFLEET_TEST_KILL_AT_END": "2"})
    assert killed.wait(timeout=300) == -signal.SIGKILL
    stored = trials(url)
    assert [t.state.name for t in stored].count("COMPLETE") == 1
    (running,) = [t for t in stored if t.state.name == "RUNNING"]
    assert "tunefleet:cv" not in running.user_attrs
    resumed = run_search(kind, url)
    assert resumed.wait(timeout=300) == 0
    assert_exact(url, kind)
    for t in trials(url):
        assert ("tunefleet:cv" in t.user_attrs) == (t.state.name == "COMPLETE")


def gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_workers_stop_when_the_search_process_dies(tmp_path):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    hold = tmp_path / "hold"
    hold.touch()  # every fit waits while this file exists
    parent = run_search("random", url, n=6, n_jobs=2, env={"TUNEFLEET_TEST_HOLD": str(hold)})
    deadline = time.monotonic() + 180
    workers: set[int] = set()
    while len(workers) < 2:
        assert parent.poll() is None and time.monotonic() < deadline, "workers did not start"
        time.sleep(0.2)
        try:
            running = [t for t in trials(url) if t.state.name == "RUNNING"]
        except KeyError:
            continue
        owners = [t.user_attrs.get("tunefleet:worker") for t in running]
        workers = {int(owner.split(":")[1]) for owner in owners if owner}
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in workers if not gone(pid)]
    for pid in alive:  # leave nothing behind, then fail
        os.kill(pid, signal.SIGKILL)
    assert not alive, "worker processes outlived the search process"
    hold.unlink()
    resumed = run_search("random", url, n=6)
    assert resumed.wait(timeout=300) == 0
    assert_exact(url, "random")
    interrupted = [t for t in trials(url) if t.user_attrs.get("tunefleet:status")]
    assert len(interrupted) == 2


@pytest.mark.parametrize("on_sqlite", [True, False])
def test_ask_owned_starts_trials_with_their_owner_within_the_budget(tmp_path, on_sqlite):
    from tunefleet.study import ask_owned

    url = f"sqlite:///{tmp_path / 'tune.db'}" if on_sqlite else None
    study = optuna.create_study(storage=url, study_name="s")
    study.enqueue_trial({"x": 1.0}, user_attrs={GRID_ATTR: 0})
    popped = ask_owned(study, "me", limit=3, attrs={"k": 1})
    assert popped.number == 0 and popped.suggest_float("x", 0, 2) == 1.0  # the queued one
    created = ask_owned(study, "me", limit=3)
    excluded = ask_owned(study, "me", limit=3)
    excluded.set_user_attr(STATUS_ATTR, "surplus")
    study.tell(excluded, state=optuna.trial.TrialState.FAIL)
    assert ask_owned(study, "me", queued_only=True) is None  # the queue is empty
    third = ask_owned(study, "me", limit=3)  # the excluded trial does not count
    assert ask_owned(study, "me", limit=3) is None  # 3 counted trials: nothing started
    stored = study.trials
    assert [t.number for t in stored] == [0, 1, 2, 3]
    assert all(t.user_attrs[WORKER_ATTR] == "me" for t in stored)
    assert stored[0].user_attrs == {GRID_ATTR: 0, WORKER_ATTR: "me", "k": 1}
    assert [t.state.name for t in stored] == ["RUNNING", "RUNNING", "FAIL", "RUNNING"]
    created.suggest_float("x", 0, 2)  # the trials are usable as Optuna trials
    study.tell(created, 0.5)
    study.tell(third, 0.25)
    assert study.best_trial.number == 3  # minimize: 0.25


HYPERBAND = textwrap.dedent(
    """
    import os, signal, sqlite3, sys
    import tunefleet as kt
    import keras
    from sklearn.datasets import load_digits

    project = sys.argv[1]
    kill_at = int(os.environ.get("TUNEFLEET_TEST_KILL_AT", "0"))
    if kill_at:  # as in SEARCH: die right after the commit that starts trial ``kill_at``
        from sqlalchemy import event
        from sqlalchemy.orm import Session

        def after_commit(session):
            with sqlite3.connect(os.path.join(project, "hb", "study.db")) as db:
                (started,), = db.execute("SELECT count(*) FROM trials WHERE state != 'WAITING'")
            if started >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        event.listen(Session, "after_commit", after_commit)

    def build(hp):
        model = keras.Sequential([keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
            keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    tuner = kt.Hyperband(build, "val_accuracy", max_epochs=3, factor=3, seed=0,
                         directory=project, project_name="hb", fleet=False)
    tuner.search(X[:128], y[:128], batch_size=64, validation_data=(X[128:192], y[128:192]))
    """
)


@pytest.mark.slow
def test_hyperband_killed_right_after_a_trial_is_started_resumes_to_the_plan(tmp_path):
    url = f"sqlite:///{tmp_path / 'hb' / 'study.db'}"
    env = dict(os.environ, TUNEFLEET_TEST_KILL_AT="2")
    killed = subprocess.run([sys.executable, "-c", HYPERBAND, str(tmp_path)], env=env, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    hb = optuna.load_study(study_name="hb", storage=url).trials
    assert [t.state.name for t in hb].count("RUNNING") >= 1
    resumed = subprocess.run([sys.executable, "-c", HYPERBAND, str(tmp_path)], timeout=300)
    assert resumed.returncode == 0
    trials = optuna.load_study(study_name="hb", storage=url).trials
    counted = [t for t in trials if "tunefleet:status" not in t.user_attrs]
    assert len(counted) == 5  # exactly the plan: 5 trials
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in counted)
    assert not [t for t in trials if t.state.name == "RUNNING"]


LOGGED_HYPERBAND = textwrap.dedent(
    """
    import json, os, signal, sys
    import tunefleet as kt
    import keras
    from sklearn.datasets import load_digits

    project, log = sys.argv[1], sys.argv[2]
    end_at = int(os.environ.get("TUNEFLEET_TEST_KILL_AT_END", "0"))
    if end_at:  # as in SEARCH: die inside the transaction that ends trial ``end_at``
        from sqlalchemy import event
        from sqlalchemy.orm import Session
        ended = []

        def before_commit(session):
            for obj in session.dirty:
                if type(obj).__name__ == "TrialModel" and obj.state.is_finished():
                    ended.append(obj.trial_id)
            if len(ended) >= end_at:
                session.flush()
                os.kill(os.getpid(), signal.SIGKILL)

        event.listen(Session, "before_commit", before_commit)

    class Logged(kt.HyperModel):  # logs the epochs each fit trains
        def build(self, hp):
            model = keras.Sequential([keras.Input((64,)),
                keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
                keras.layers.Dense(10, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            return model

        def fit(self, hp, model, *args, **kwargs):
            with open(log, "a") as f:
                f.write(json.dumps([kwargs.get("initial_epoch", 0), kwargs["epochs"]]) + "\\n")
            return model.fit(*args, **kwargs)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    tuner = kt.Hyperband(Logged(), "val_accuracy", max_epochs=3, factor=3, seed=0,
                         directory=project, project_name="hb")
    tuner.search(X[:128], y[:128], batch_size=64, validation_data=(X[128:192], y[128:192]))
    """
)


def trained_epochs(log):
    fits = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return sum(epochs - initial for initial, epochs in fits)


@pytest.mark.slow
def test_hyperband_killed_while_ending_a_round_resumes_with_exactly_the_rest(tmp_path):
    # Plan (max_epochs=3, factor=3): bracket 0 trains 3 x 1 epoch, then 1 x 3 (2 more);
    # bracket 1 trains 2 x 3 epochs: 5 trials, 11 epochs. Killed while the second loser
    # of bracket 0's first round is told PRUNED: the resumed search must start exactly
    # the trials and train exactly the epochs that are left, no trial twice.
    url = f"sqlite:///{tmp_path / 'hb' / 'study.db'}"
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    env = dict(os.environ, TUNEFLEET_TEST_KILL_AT_END="2")
    killed = subprocess.run(
        [sys.executable, "-c", LOGGED_HYPERBAND, str(tmp_path), str(first)], env=env, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL
    at_kill = optuna.load_study(study_name="hb", storage=url).trials
    assert sorted(t.state.name for t in at_kill) == ["PRUNED", "RUNNING", "RUNNING"]
    assert trained_epochs(first) == 3  # round 0: three configurations, one epoch each
    (pruned,) = [t for t in at_kill if t.state.name == "PRUNED"]

    resumed = subprocess.run(
        [sys.executable, "-c", LOGGED_HYPERBAND, str(tmp_path), str(second)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = optuna.load_study(study_name="hb", storage=url).trials
    counted = [t for t in trials if STATUS_ATTR not in t.user_attrs]
    assert len(counted) == 5  # exactly the plan
    assert sorted(t.state.name for t in counted) == ["COMPLETE"] * 3 + ["PRUNED"] * 2
    interrupted = [t for t in trials if t.user_attrs.get(STATUS_ATTR) == "interrupted"]
    assert sorted(t.number for t in interrupted) == sorted(
        t.number for t in at_kill if t.state.name == "RUNNING"
    )
    assert len(trials) == 3 + 4  # resumed: 2 continuations + bracket 1's 2 trials, no more
    assert trials[pruned.number].state.name == "PRUNED"  # told before the kill: kept
    # The continued round-0 configurations resume from their saved epoch: the survivor
    # trains its 2 last epochs, bracket 1 its 2 x 3: 8 of the plan's 11, none again.
    assert trained_epochs(second) == 8
    assert not [t for t in trials if t.state.name == "RUNNING"]
