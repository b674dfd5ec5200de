"""Searches that survive crashes, resume, and share one SQLite file between processes."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from scipy import stats

import tunefleet
from estimators import SlowClassifier, iris
from tunefleet.attrs import DUPLICATE, GRID_ATTR, STATUS_ATTR
from tunefleet.execution import run_trials
from tunefleet.storage import open_storage
from tunefleet.study import Budget, enqueue_grid

# PostgreSQL servers and Ray clusters: these tests share one pytest-xdist worker (Makefile)
pytestmark = pytest.mark.xdist_group("servers")

TESTS = Path(__file__).parent


def trials(url, name):
    return optuna.load_study(study_name=name, storage=open_storage(url)).trials


def complete(url, name):
    return [t for t in trials(url, name) if t.state.name == "COMPLETE"]


def test_fitting_again_resumes_and_stops_at_n_iter_in_total(tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    space = {"C": stats.loguniform(1e-3, 1e2)}
    first = tunefleet.RandomizedSearchCV(
        SlowClassifier(), space, n_iter=3, storage=url, study_name="s", random_state=0
    )
    first.fit(X, y)
    assert len(first.cv_results_["params"]) == 3
    second = tunefleet.RandomizedSearchCV(
        SlowClassifier(), space, n_iter=5, storage=url, study_name="s", random_state=0
    )
    second.fit(X, y)
    assert len(second.cv_results_["params"]) == 5
    assert second.cv_results_["params"][:3] == first.cv_results_["params"]  # not rerun
    again = tunefleet.RandomizedSearchCV(
        SlowClassifier(), space, n_iter=5, storage=url, study_name="s"
    )
    again.fit(X, y)  # nothing left to run: results straight from the storage
    assert len(trials(url, "s")) == 5
    assert again.best_params_ == second.best_params_


def test_grid_resume_runs_only_missing_points(tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    grid = {"C": [0.01, 0.1, 1.0, 10.0]}
    tunefleet.GridSearchCV(SlowClassifier(), grid, storage=url, study_name="g").fit(X, y)
    tunefleet.GridSearchCV(SlowClassifier(), grid, storage=url, study_name="g").fit(X, y)
    assert sorted(t.params["C"] for t in trials(url, "g")) == grid["C"]


def test_resuming_with_a_different_space_is_refused_and_loses_nothing(tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    tunefleet.RandomizedSearchCV(
        SlowClassifier(), {"C": [0.1, 1.0]}, n_iter=2, storage=url, study_name="s"
    ).fit(X, y)
    before = [(t.number, t.state, t.value) for t in trials(url, "s")]
    search = tunefleet.RandomizedSearchCV(
        SlowClassifier(), {"C": [0.1, 1.0, 5.0]}, n_iter=4, storage=url, study_name="s"
    )
    with pytest.raises(
        ValueError,
        match=r"(?s)study_name='s' was created with a different search space.*C: \[0.1, 1.0, 5.0\]",
    ):
        search.fit(X, y)
    assert [(t.number, t.state, t.value) for t in trials(url, "s")] == before


def test_bad_parameter_on_resume_loses_nothing(tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    tunefleet.GridSearchCV(SlowClassifier(), {"C": [0.1]}, storage=url, study_name="s").fit(X, y)
    with pytest.raises(ValueError, match="Invalid parameter 'D'"):
        tunefleet.GridSearchCV(SlowClassifier(), {"D": [0.1]}, storage=url, study_name="s").fit(
            X, y
        )
    assert len(complete(url, "s")) == 1


KILLED_SEARCH = textwrap.dedent(
    """
    import sys
    import tunefleet
    from estimators import SlowClassifier, iris
    kind, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    X, y = iris()
    if kind == "grid":
        search = tunefleet.GridSearchCV(
            SlowClassifier(delay=0.4), {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}, cv=2,
            storage=url, study_name="killed")
    else:
        search = tunefleet.RandomizedSearchCV(
            SlowClassifier(delay=0.4), {"C": tunefleet.Float(1e-3, 1e2, log=True)}, n_iter=n, cv=2,
            storage=url, study_name="killed", random_state=0)
    search.fit(X, y)
    """
)


def run_script(args, hold=None, **kwargs):
    """The search script in a subprocess; with ``hold``, see ``SlowClassifier``."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    if hold is not None:
        env["TUNEFLEET_TEST_HOLD"] = str(hold)
    return subprocess.Popen([sys.executable, "-c", KILLED_SEARCH, *args], env=env, **kwargs)


def wait_for_complete(url, n, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the search finished before it could be killed"
        try:
            if len(complete(url, "killed")) >= n:
                return
        except KeyError:
            pass
        time.sleep(0.1)
    raise AssertionError("search did not make progress")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random", "grid"])
def test_sigkill_mid_run_then_resume_ends_with_exact_trials(tmp_path, shared_storage, kind):
    url = shared_storage
    hold = tmp_path / "hold"
    process = run_script([kind, url, "6"], hold=hold)
    wait_for_complete(url, 2, process)
    hold.touch()  # the next fit waits: the kill lands inside a trial
    deadline = time.monotonic() + 120
    while not Path(f"{hold}.held").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert any(t.state.name == "RUNNING" for t in trials(url, "killed"))
    resumed = run_script([kind, url, "6"])
    assert resumed.wait(timeout=300) == 0
    done = complete(url, "killed")
    assert len(done) == 6
    if kind == "grid":
        assert sorted(t.params["C"] for t in done) == [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    interrupted = [
        t for t in trials(url, "killed") if t.user_attrs.get("tunefleet:status") == "interrupted"
    ]
    assert len(interrupted) >= 1
    assert not any(t.state.name == "RUNNING" for t in trials(url, "killed"))


@pytest.mark.slow
def test_two_processes_share_one_storage(shared_storage):
    url = shared_storage
    a = run_script(["random", url, "8"])
    b = run_script(["random", url, "8"])
    assert a.wait(timeout=300) == 0 and b.wait(timeout=300) == 0
    counted = [t for t in trials(url, "killed") if "tunefleet:status" not in t.user_attrs]
    assert len(counted) == 8 and all(t.state.name == "COMPLETE" for t in counted)
    owners = {t.user_attrs["tunefleet:worker"].split(":")[1] for t in counted}
    assert len(owners) == 2  # both processes ran trials


@pytest.mark.slow
def test_two_processes_on_one_grid_run_each_point_once(shared_storage):
    url = shared_storage
    a = run_script(["grid", url, "0"])
    b = run_script(["grid", url, "0"])
    assert a.wait(timeout=300) == 0 and b.wait(timeout=300) == 0
    done = complete(url, "killed")
    assert sorted(t.params["C"] for t in done) == [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]


def test_a_grid_point_queued_twice_runs_once(tmp_path):
    # Two processes that start one grid at once may both queue its points: the second
    # cannot tell a creator that is still queueing from one that died while queueing.
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'tune.db'}", study_name="g")
    points = [{"x": float(i)} for i in range(4)]
    study.enqueue_trial(points[0], user_attrs={GRID_ATTR: 0})  # the creator is cut in...
    enqueue_grid(study, points, created=False)  # ...by a second process queueing the rest
    for index, point in enumerate(points[1:], start=1):  # ...then the creator goes on
        study.enqueue_trial(point, user_attrs={GRID_ATTR: index})
    ran = []

    def objective(trial):
        ran.append(trial.suggest_float("x", 0.0, 3.0))
        return ran[-1]

    run_trials(study, objective, Budget(None, grid=True))
    assert sorted(ran) == [0.0, 1.0, 2.0, 3.0]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["x"] for t in done) == [0.0, 1.0, 2.0, 3.0]
    copies = [t for t in study.trials if t.state.name != "COMPLETE"]
    assert len(copies) == 3 and all(t.user_attrs[STATUS_ATTR] == DUPLICATE for t in copies)


@pytest.mark.slow
def test_n_jobs_runs_worker_processes_on_the_storage(shared_storage):
    X, y = iris()
    url = shared_storage
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "delay": [0.2]}
    search = tunefleet.GridSearchCV(
        SlowClassifier(), grid, n_jobs=2, storage=url, study_name="p"
    ).fit(X, y)
    done = complete(url, "p")
    assert sorted(t.params["C"] for t in done) == grid["C"]
    assert len({t.user_attrs["tunefleet:worker"] for t in done}) == 2
    assert search.best_score_ > 0.9 and hasattr(search, "best_estimator_")


@pytest.mark.slow
def test_n_jobs_with_in_memory_storage(tmp_path):
    X, y = iris()
    search = tunefleet.RandomizedSearchCV(
        SlowClassifier(), {"C": stats.loguniform(1e-3, 1e2)}, n_iter=4, n_jobs=2, random_state=0
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert isinstance(search.study_._storage, optuna.storages.InMemoryStorage)
    assert len({p["C"] for p in search.cv_results_["params"]}) == 4


def test_n_jobs_refuses_a_storage_object_workers_cannot_reopen(tmp_path):
    from optuna.storages.journal import JournalFileBackend

    path = tmp_path / "tune.log"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))  # no URL
    search = tunefleet.RandomizedSearchCV(
        SlowClassifier(), {"C": [0.1, 1.0]}, n_iter=2, n_jobs=2, storage=storage
    )
    with pytest.raises(ValueError, match=r"n_jobs=2 runs worker processes.*storage URL"):
        search.fit(*iris())
    assert storage.get_all_studies() == []  # refused before any study was made


@pytest.mark.parametrize("on_sqlite", [True, False])
def test_batched_writes_land_in_the_storage(tmp_path, on_sqlite):
    """report_many / set_user_attrs: one transaction on SQLite, per-value calls elsewhere."""
    from tunefleet.study import report_many, set_user_attrs

    url = f"sqlite:///{tmp_path / 'batched.db'}" if on_sqlite else None
    study = optuna.create_study(storage=url, study_name="batched")
    trials = [study.ask() for _ in range(3)]
    report_many(study, [(t, step, t.number + step / 10) for t in trials for step in range(2)])
    set_user_attrs(study, trials[1], {"a": 1, "b": {"nested": [1, 2]}})
    set_user_attrs(study, trials[2], {})
    # the trial objects see their own writes, and (on SQLite) a fresh reader sees them too
    assert trials[1].user_attrs == {"a": 1, "b": {"nested": [1, 2]}}
    reader = optuna.load_study(study_name="batched", storage=url) if on_sqlite else study
    stored = reader.get_trials(deepcopy=False)
    assert [t.intermediate_values for t in stored] == [{0: n + 0.0, 1: n + 0.1} for n in range(3)]
    assert stored[1].user_attrs == {"a": 1, "b": {"nested": [1, 2]}}
    assert stored[2].user_attrs == {}


@pytest.mark.parametrize("where", ["inside", "at_tell"])
def test_a_queued_trial_another_worker_finished_first_is_left_to_it(tmp_path, where):
    """Optuna on SQLite can hand one queued grid point to two workers popping at once.

    Here the "other worker" is a second handle on the same file that finishes the trial
    while this worker still runs it: this worker must move on, not fail.
    """
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    study = optuna.create_study(storage=url, study_name="g")
    other = optuna.load_study(study_name="g", storage=url)
    points = [{"x": float(i)} for i in range(3)]
    enqueue_grid(study, points, created=True)
    ran = []

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 2.0)
        ran.append(x)
        if x == 1.0:
            other.tell(trial.number, 42.0)  # the other worker is done first
            if where == "inside":
                trial.set_user_attr("late", True)  # refused by the storage
        return x

    run_trials(study, objective, Budget(None, grid=True))
    assert ran == [0.0, 1.0, 2.0]  # the search went on after the lost trial
    done = {t.params["x"]: t for t in study.get_trials()}
    assert [t.state.name for t in done.values()] == ["COMPLETE"] * 3
    assert done[1.0].value == 42.0 and "late" not in done[1.0].user_attrs
    assert [done[0.0].value, done[2.0].value] == [0.0, 2.0]


@pytest.mark.parametrize("on_sqlite", [True, False])
def test_a_batch_trial_another_worker_finished_first_is_left_to_it(tmp_path, on_sqlite):
    """The fleet path of the same race: reports, attributes and the tell of the lost
    trial are skipped, the rest of the batch is written and told."""
    from tunefleet.execution import run_trial_batches
    from tunefleet.study import report_many, set_user_attrs

    url = f"sqlite:///{tmp_path / 'tune.db'}" if on_sqlite else None
    study = optuna.create_study(storage=url, study_name="g")
    other = optuna.load_study(study_name="g", storage=url) if on_sqlite else study
    enqueue_grid(study, [{"x": float(i)} for i in range(3)], created=True)

    def run_batch(study, trials):
        values = [t.suggest_float("x", 0.0, 2.0) for t in trials]
        other.tell(trials[1].number, 42.0)  # the other worker is done first
        reports = [
            (t, step, v + step) for t, v in zip(trials, values, strict=True) for step in (0, 1)
        ]
        report_many(study, reports)
        for t in trials:
            set_user_attrs(study, t, {"late": True})
        return values

    run_trial_batches(study, run_batch, Budget(None, grid=True), batch_size=3)
    done = {t.params["x"]: t for t in study.get_trials()}
    assert [t.state.name for t in done.values()] == ["COMPLETE"] * 3
    assert done[1.0].value == 42.0
    assert done[1.0].intermediate_values == {} and "late" not in done[1.0].user_attrs
    for x in (0.0, 2.0):
        assert done[x].value == x and done[x].intermediate_values == {0: x, 1: x + 1}
        assert done[x].user_attrs["late"] is True


class WriteTransactions:
    """Counts the SQLite transactions that wrote something (each one a commit to disk)."""

    def __init__(self):
        self.count = 0
        self._wrote = False

    def __enter__(self):
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Engine, "commit", self._commit)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.remove(Engine, "before_cursor_execute", self._statement)
        event.remove(Engine, "commit", self._commit)

    def _statement(self, conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self._wrote = True

    def _commit(self, conn):
        self.count += self._wrote
        self._wrote = False


def test_a_trial_costs_about_one_write_transaction_more_than_plain_optuna(tmp_path):
    # On SQLite every write transaction is a commit to disk, the bulk of a trivial trial's
    # time. tunefleet records the worker, the per-fold scores and the budget; the worker
    # and the budget go with the trial's start, one transaction.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    X, y = iris()
    n = 20

    def objective(trial):
        model = LogisticRegression(C=trial.suggest_float("C", 1e-3, 1e2, log=True))
        return cross_val_score(model, X, y, cv=2).mean()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plain_study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'plain.db'}",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    with WriteTransactions() as plain:
        plain_study.optimize(objective, n_trials=n)
    search = tunefleet.RandomizedSearchCV(
        LogisticRegression(),
        {"C": tunefleet.Float(1e-3, 1e2, log=True)},
        n_iter=n,
        cv=2,
        refit=False,
        random_state=0,
        storage=f"sqlite:///{tmp_path / 'ours.db'}",
        study_name="s",
    )
    with WriteTransactions() as ours:
        search.fit(X, y)
    assert len(complete(f"sqlite:///{tmp_path / 'ours.db'}", "s")) == n
    extra = (ours.count - plain.count) / n  # study creation and its checks included
    assert extra <= 0.5, f"{ours.count} write transactions against plain Optuna's {plain.count}"


def test_a_record_held_for_the_end_is_dropped_when_another_worker_ended_the_trial(tmp_path):
    # The per-fold record travels with the state (one transaction); a trial that another
    # worker finished meanwhile (recovery marked it failed) keeps what that worker wrote.
    from tunefleet.storage import RecordingStorage, open_storage, record_at_end

    storage = open_storage(f"sqlite:///{tmp_path / 'tune.db'}")
    assert isinstance(storage, RecordingStorage)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    record_at_end(trial, {"tunefleet:cv": {"test": {"score": [0.5]}}})
    assert trial.user_attrs["tunefleet:cv"] == {"test": {"score": [0.5]}}
    other = optuna.load_study(
        study_name=study.study_name, storage=f"sqlite:///{tmp_path / 'tune.db'}"
    )
    other._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.COMPLETE, [0.5])
    (stored,) = optuna.load_study(study_name=study.study_name, storage=storage).trials
    assert stored.state.name == "FAIL" and "tunefleet:cv" not in stored.user_attrs
    assert storage._at_end == {}  # nothing held for a later write
    second = study.ask()
    record_at_end(second, {"tunefleet:cv": {"test": {"score": [0.7]}}})
    study.tell(second, 0.7)
    assert study.trials[1].user_attrs == {"tunefleet:cv": {"test": {"score": [0.7]}}}
