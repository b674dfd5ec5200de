"""A worker that loses its database: retries, a write applied once, a clean stop, a resume.

Faults are injected, never hoped for: a commit reaches the database and then its answer
is lost (SQLite's driver made to raise after committing: the one case where a retried
write could be applied twice), or every statement is refused (a database out of reach);
the PostgreSQL server of ``tests/postgres.py`` is stopped by the search's own estimator,
mid-trial.
``test_storages.py`` has the search that goes on across a short server outage.
"""

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from sqlalchemy import event

from tunefleet.attrs import CLAIM_ATTR, GRID_ATTR, INTERRUPTED, STATUS_ATTR, WORKER_ATTR
from tunefleet.storage import RETRY_ENV, UNAVAILABLE_EXIT, StorageUnavailable, open_storage
from tunefleet.study import Budget, Worker, counts

# PostgreSQL servers and Ray clusters: these tests share one pytest-xdist worker (Makefile)
pytestmark = pytest.mark.xdist_group("servers")

TESTS = Path(__file__).parent


class LoseAnswers:
    """The next commit that ran a statement starting with ``prefix`` reaches the database,
    then its answer is lost (the driver raises, as for a dropped connection), ``times``
    times."""

    def __init__(self, storage, prefix, times=1):
        self.prefix, self.left, self.armed = prefix.upper(), times, False
        event.listen(storage.engine, "after_cursor_execute", self._saw)
        dialect = storage.engine.dialect
        commit = dialect.do_commit

        def do_commit(dbapi_connection):
            commit(dbapi_connection)
            if self.armed and self.left:
                self.armed, self.left = False, self.left - 1
                raise sqlite3.OperationalError("server closed the connection unexpectedly")
            self.armed = False

        dialect.do_commit = do_commit

    def _saw(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(self.prefix):
            self.armed = True


@pytest.fixture
def storage(tmp_path):
    return open_storage(f"sqlite:///{tmp_path / 'tune.db'}")


def test_a_trial_whose_creation_lost_its_answer_is_created_once(storage):
    study = optuna.create_study(storage=storage, study_name="s")
    lost = LoseAnswers(storage, "INSERT INTO trials ")
    study.enqueue_trial({"x": 1.0})  # Optuna's create_new_trial, for a queued trial
    assert lost.left == 0  # its answer was lost: retried
    assert [(t.number, t.state.name) for t in study.get_trials()] == [(0, "WAITING")]
    assert study.ask().number == 0  # pops it
    lost = LoseAnswers(storage, "INSERT INTO trials ")
    assert study.ask().number == 1  # creates one
    assert lost.left == 0
    stored = study.get_trials()
    assert [(t.number, t.state.name) for t in stored] == [(0, "RUNNING"), (1, "RUNNING")]
    assert len({t.system_attrs[CLAIM_ATTR] for t in stored}) == 2


def test_a_claim_whose_answer_was_lost_is_claimed_once(storage):
    study = optuna.create_study(storage=storage, study_name="s")
    study.enqueue_trial({"x": 1.0})
    budget = Budget(3, grid=False)
    with Worker() as worker:
        lost = LoseAnswers(storage, "UPDATE trials ")  # popping the queued trial
        popped = budget.ask(study, worker.owner)
        assert lost.left == 0
        lost = LoseAnswers(storage, "INSERT INTO trials ")  # creating a new one
        created = budget.ask(study, worker.owner)
        assert lost.left == 0
    stored = study.get_trials()
    assert [(t.number, t.state.name) for t in stored] == [(0, "RUNNING"), (1, "RUNNING")]
    assert (popped.number, created.number) == (0, 1)
    assert all(t.user_attrs[WORKER_ATTR] == worker.owner for t in stored)


def test_a_trial_end_whose_answer_was_lost_is_taken_as_done(storage):
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    lost = LoseAnswers(storage, "UPDATE trials ")
    frozen = study.tell(trial, 0.25)  # retried: Optuna refuses a finished trial, we see it ours
    assert lost.left == 0
    assert frozen.state.name == "COMPLETE" and study.trials[0].value == 0.25
    # a finished trial that holds something else is still refused
    again = LoseAnswers(storage, "UPDATE trials ")
    assert again.left == 1
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


def test_a_database_out_of_reach_is_retried_then_stops_the_worker(storage, monkeypatch):
    study = optuna.create_study(storage=storage, study_name="s")
    monkeypatch.setenv(RETRY_ENV, "1")

    def refuse(conn, cursor, statement, parameters, context, executemany):
        raise sqlalchemy.exc.OperationalError(statement, {}, Exception("Connection refused"))

    event.listen(storage.engine, "before_cursor_execute", refuse)
    start = time.monotonic()
    with pytest.raises(StorageUnavailable, match=r"cannot be reached: no answer for 1 s"):
        study.ask()
    assert 1.0 <= time.monotonic() - start < 5
    start = time.monotonic()  # it gave up: the next operation tries once
    with pytest.raises(StorageUnavailable):
        storage.get_all_studies()
    assert time.monotonic() - start < 0.5
    event.remove(storage.engine, "before_cursor_execute", refuse)
    assert [s.study_name for s in storage.get_all_studies()] == ["s"]
    assert not storage._gave_up  # back: retried as before


SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.linear_model import LogisticRegression
    import tunefleet
    from estimators import iris

    class StopsTheServer(ClassifierMixin, BaseEstimator):
        # Stops the PostgreSQL server in the first fit of C=1.0 when TEST_STOP_SERVER is set.
        def __init__(self, C=1.0):
            self.C = C

        def fit(self, X, y):
            marker = os.environ.get("TEST_STOP_SERVER")
            if self.C == 1.0 and marker and os.path.exists(marker):
                os.remove(marker)
                subprocess.run(json.loads(os.environ["TEST_STOP_COMMAND"]), check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.model_ = LogisticRegression(C=self.C, max_iter=200).fit(X, y)
            self.classes_ = self.model_.classes_
            return self

        def predict(self, X):
            return self.model_.predict(X)

    search = tunefleet.GridSearchCV(StopsTheServer(), {"C": [0.01, 0.1, 1.0, 10.0, 100.0]}, cv=2)

    def data():
        return iris()
    """
)


def test_a_worker_whose_database_stays_away_stops_cleanly_and_a_resume_completes(
    own_postgres_server, tmp_path
):
    import postgres

    url = own_postgres_server.create_database()
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    marker = tmp_path / "stop-the-server"
    marker.touch()
    stop = [
        *postgres._as_server_user(),
        os.path.join(own_postgres_server.bindir, "pg_ctl"),
        "-D",
        str(own_postgres_server.data),
        "stop",
        "-m",
        "fast",
    ]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        TEST_STOP_SERVER=str(marker),
        TEST_STOP_COMMAND=json.dumps(stop),
        **{RETRY_ENV: "3"},
    )
    command = [sys.executable, "-m", "tunefleet", "tune", str(script), "--storage", url]
    command += ["--study", "s"]
    try:
        start = time.monotonic()
        first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        took = time.monotonic() - start
    finally:
        own_postgres_server.start()
    assert not marker.exists()  # the server was stopped mid-trial
    assert first.returncode == UNAVAILABLE_EXIT, first.stderr
    message = " ".join(first.stderr.split())
    assert f"storage 'postgresql+psycopg://{own_postgres_server.user}:***@" in message
    assert "cannot be reached: no answer for 3 s" in message
    assert "run the same command again" in message
    assert own_postgres_server.password not in first.stderr + first.stdout
    assert "Traceback" not in first.stderr
    assert took < 60

    storage = open_storage(url)
    left = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state.name for t in left if t.number < 2] == ["COMPLETE", "COMPLETE"]
    assert [t.state.name for t in left if t.user_attrs.get(GRID_ATTR) == 2] == ["RUNNING"]

    env.pop("TEST_STOP_SERVER")
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    trials = optuna.load_study(study_name="s", storage=storage).trials
    counted = [t for t in trials if counts(t)]
    assert sorted(t.user_attrs[GRID_ATTR] for t in counted) == [0, 1, 2, 3, 4]
    assert all(t.state.name == "COMPLETE" for t in counted)
    assert not [t for t in trials if t.state.name == "RUNNING"]
    # the stopped worker's trial was found dead (its process is gone) and run again
    (interrupted,) = [t for t in trials if not counts(t)]
    assert interrupted.user_attrs[STATUS_ATTR] == INTERRUPTED
    assert interrupted.user_attrs[GRID_ATTR] == 2 and interrupted.state.name == "FAIL"
    assert [t.number for t in counted if t.number < 2] == [0, 1]  # nothing before it ran again
