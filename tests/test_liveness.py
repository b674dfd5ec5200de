"""Liveness across hosts: heartbeats, stale trials, bounded retries of a configuration.

A worker on another machine cannot be judged by its pid; its trials' heartbeats tell.
The other machine is played by a subprocess that names itself ``node-b`` (its
``liveness.HOST``) and is killed with SIGKILL mid-trial.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tunefleet import liveness
from tunefleet.attrs import ERROR_ATTR, GRID_ATTR, HEARTBEAT_ATTR, RETRY_ATTR, STATUS_ATTR
from tunefleet.execution import run_trials
from tunefleet.storage import open_storage
from tunefleet.study import Budget, ask_owned, counts, recover_interrupted

TESTS = Path(__file__).parent
ELSEWHERE = "node-b:4242:1.00:feedfacecafe"  # a worker on another host


def start_elsewhere(study, params=None, beat_age=None, grid_index=None, retry_of=None):
    """A RUNNING trial of the worker on node-b, last heard of ``beat_age`` seconds ago."""
    if params is not None:
        attrs = {} if grid_index is None else {GRID_ATTR: grid_index}
        if retry_of:
            attrs[RETRY_ATTR] = {"of": retry_of}
        study.enqueue_trial(params, user_attrs=attrs)
    trial = ask_owned(study, ELSEWHERE)
    trial.suggest_float("x", 0.0, 10.0)
    if beat_age is not None:
        study._storage.set_trial_system_attr(
            trial._trial_id, HEARTBEAT_ATTR, time.time() - beat_age
        )
    return trial


@pytest.fixture
def study(tmp_path):
    return optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 't.db'}"))


def test_a_running_trial_gets_heartbeats_until_it_ends(study, monkeypatch):
    monkeypatch.setattr(liveness, "HEARTBEAT_INTERVAL", 0.05)
    beats = []

    def objective(trial):
        for _ in range(6):
            time.sleep(0.1)
            beats.append(study._storage.get_trial(trial._trial_id).system_attrs.get(HEARTBEAT_ATTR))
        return trial.suggest_float("x", 0.0, 1.0)

    run_trials(study, objective, Budget(2, grid=False))
    seen = [b for b in beats if b is not None]
    assert len(set(seen)) >= 3  # beating while the trial ran
    assert all(abs(time.time() - b) < 30 for b in seen)
    ended = [t.system_attrs.get(HEARTBEAT_ATTR) for t in study.trials]
    time.sleep(0.3)  # the worker is gone: nothing writes any more
    assert [t.system_attrs.get(HEARTBEAT_ATTR) for t in study.trials] == ended
    assert not any(t.name.startswith("tunefleet-heartbeat") for t in threading.enumerate())


def test_a_trial_of_another_host_is_recovered_only_once_its_heartbeat_is_stale(study):
    fresh = start_elsewhere(study, beat_age=5)
    stale = start_elsewhere(study, beat_age=liveness.GRACE_PERIOD + 5)
    assert recover_interrupted(study) == 1
    states = {t.number: (t.state, t.user_attrs.get(STATUS_ATTR)) for t in study.trials}
    assert states[fresh.number] == (TrialState.RUNNING, None)
    assert states[stale.number] == (TrialState.FAIL, "interrupted")


def test_a_trial_that_never_beat_is_judged_by_its_start(study):
    trial = start_elsewhere(study)  # started now: alive
    assert recover_interrupted(study) == 0
    assert liveness.is_stale(study.trials[trial.number], grace=60.0) is False
    assert liveness.is_stale(study.trials[trial.number], grace=60.0, now=time.time() + 61)


def test_a_configuration_is_retried_with_its_history_then_given_up(study):
    grid = [{"x": 1.0}, {"x": 2.0}]
    start_elsewhere(study, grid[1], beat_age=10_000, grid_index=1)
    for deaths in (1, 2):
        assert recover_interrupted(study, grid, max_retries=2) == 1
        queued = [t for t in study.trials if t.state == TrialState.WAITING]
        assert len(queued) == 1 and queued[0].system_attrs["fixed_params"] == {"x": 2.0}
        assert queued[0].user_attrs[GRID_ATTR] == 1
        assert queued[0].user_attrs[RETRY_ATTR]["of"] == [t.number for t in study.trials][:deaths]
        trial = ask_owned(study, ELSEWHERE)  # the retry starts, and its worker dies again
        trial.suggest_float("x", 0.0, 10.0)
        study._storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_ATTR, 0.0)
    assert recover_interrupted(study, grid, max_retries=2) == 1
    last = study.trials[-1]
    assert last.state == TrialState.FAIL and counts(last)  # given up: it counts, failed
    assert "died 3 times (trials 0, 1, 2)" in last.user_attrs[ERROR_ATTR]
    assert "max_retries=2" in last.user_attrs[ERROR_ATTR]
    assert not [t for t in study.trials if t.state == TrialState.WAITING]


def test_other_configurations_are_retried_when_asked(study):
    start_elsewhere(study, {"x": 3.5}, beat_age=10_000)
    assert recover_interrupted(study, retry_configurations=True) == 1
    (queued,) = [t for t in study.trials if t.state == TrialState.WAITING]
    assert queued.system_attrs["fixed_params"] == {"x": 3.5} and queued.user_attrs[RETRY_ATTR] == {
        "of": [0]
    }
    start_elsewhere(study, {"x": 4.5}, beat_age=10_000)
    assert recover_interrupted(study) == 1  # by default only grid points are queued again
    assert len([t for t in study.trials if t.state == TrialState.WAITING]) == 1


@pytest.mark.parametrize("name", ["TUNEFLEET_HEARTBEAT_INTERVAL", "TUNEFLEET_GRACE_PERIOD"])
def test_a_bad_liveness_setting_names_the_variable(name):
    result = subprocess.run(
        [sys.executable, "-c", "import tunefleet.liveness"],
        env=dict(os.environ, **{name: "soon"}),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"{name} must be a positive number of seconds, got 'soon'" in result.stderr


WORKER_ON_NODE_B = textwrap.dedent(
    """
    import sys, time
    import optuna
    from tunefleet import liveness
    liveness.HOST = "node-b"   # this process plays a worker on another machine
    from tunefleet.execution import run_trials
    from tunefleet.storage import open_storage
    from tunefleet.study import Budget

    study = optuna.load_study(study_name="s", storage=open_storage(sys.argv[1]))

    def objective(trial):
        time.sleep(300)  # killed in here

    run_trials(study, objective, Budget(3, grid=False))
    """
)


@pytest.mark.slow
def test_a_worker_killed_on_another_host_is_found_by_its_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setattr(liveness, "GRACE_PERIOD", 1.5)
    url = f"sqlite:///{tmp_path / 't.db'}"
    optuna.create_study(storage=open_storage(url), study_name="s")
    env = dict(os.environ, TUNEFLEET_HEARTBEAT_INTERVAL="0.2", TUNEFLEET_GRACE_PERIOD="1.5")
    worker = subprocess.Popen([sys.executable, "-c", WORKER_ON_NODE_B, url], env=env)
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    deadline = time.monotonic() + 120
    while not any(HEARTBEAT_ATTR in t.system_attrs for t in study.trials):
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    assert recover_interrupted(study) == 0  # beating: alive, though not judged by pid
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert recover_interrupted(study) == 0  # within the grace period
    time.sleep(2.0)
    assert recover_interrupted(study) == 1
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL and trial.user_attrs[STATUS_ATTR] == "interrupted"
