"""Searches on a real Ray cluster (a local one, started here; ``RAY_ADDRESS`` for another).

Trials run in Ray actors that open the study from its storage; an actor killed with
SIGKILL mid-trial is replaced, and its configuration runs again.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from scipy import stats

import tunefleet
from estimators import SlowClassifier, iris
from tunefleet.attrs import RETRY_ATTR, STATUS_ATTR, WORKER_ATTR
from tunefleet.storage import open_storage

# PostgreSQL servers and Ray clusters: these tests share one pytest-xdist worker (Makefile)
pytestmark = pytest.mark.xdist_group("servers")

if os.environ.get("CI") == "true":
    import ray  # CI must test Ray: the test extra installs it
else:
    ray = pytest.importorskip("ray")

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster whose actors import the tests' estimators; ``hold`` pauses fits."""
    hold = tmp_path_factory.mktemp("ray") / "hold"
    src = str(TESTS.parent / "src")
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            num_cpus=None if os.environ.get("RAY_ADDRESS") else 4,
            include_dashboard=False,
            runtime_env={
                "env_vars": {
                    "PYTHONPATH": os.pathsep.join([str(TESTS), src]),
                    "KERAS_BACKEND": "jax",
                    "TUNEFLEET_TEST_HOLD": str(hold),
                }
            },
        )
    yield hold
    ray.shutdown()


def stored(url, name="s"):
    return optuna.load_study(study_name=name, storage=open_storage(url)).trials


def test_a_random_search_runs_its_budget_in_ray_actors(cluster, tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    search = tunefleet.RandomizedSearchCV(
        SlowClassifier(delay=0.5),  # long enough for both actors to start
        {"C": stats.loguniform(1e-2, 1e2)},
        n_iter=8,
        cv=2,
        storage=url,
        study_name="s",
        random_state=0,
        backend="ray",
        n_jobs=2,
    ).fit(X, y)
    trials = stored(url)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 8
    pids = {t.user_attrs[WORKER_ATTR].split(":")[1] for t in trials}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two actors, not the driver
    assert search.best_score_ > 0.8 and hasattr(search, "best_estimator_")


def test_a_grid_runs_each_point_once_on_ray(cluster, tmp_path):
    X, y = iris()
    url = f"journal:///{tmp_path / 'tune.log'}"
    grid = {"C": [0.01, 0.1, 1.0, 10.0, 100.0]}
    tunefleet.GridSearchCV(
        SlowClassifier(), grid, cv=2, storage=url, study_name="s", backend="ray", n_jobs=-1
    ).fit(X, y)
    assert sorted(t.params["C"] for t in stored(url)) == grid["C"]


@pytest.mark.slow
def test_a_ray_actor_killed_mid_trial_is_replaced_and_its_configuration_retried(cluster, tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    hold = cluster
    killed = {}

    def kill_the_holding_actor():
        deadline = time.monotonic() + 120
        while not Path(f"{hold}.held").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (running,) = [t for t in stored(url) if t.state.name == "RUNNING"]
        killed["number"], killed["params"] = running.number, running.params
        hold.unlink()  # the retry must not wait
        os.kill(int(running.user_attrs[WORKER_ATTR].split(":")[1]), signal.SIGKILL)

    search = tunefleet.RandomizedSearchCV(
        SlowClassifier(),
        {"C": stats.loguniform(1e-2, 1e2)},
        n_iter=4,
        cv=2,
        storage=url,
        study_name="s",
        random_state=0,
        backend="ray",
        n_jobs=1,
    )
    hold.touch()
    killer = threading.Thread(target=kill_the_holding_actor)
    killer.start()
    try:
        search.fit(X, y)
    finally:
        killer.join()
        Path(f"{hold}.held").unlink(missing_ok=True)
    trials = stored(url)
    interrupted = trials[killed["number"]]
    assert interrupted.state.name == "FAIL" and interrupted.user_attrs[STATUS_ATTR] == "interrupted"
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and len(search.cv_results_["params"]) == 4
    (retry,) = [t for t in complete if RETRY_ATTR in t.user_attrs]
    assert retry.user_attrs[RETRY_ATTR] == {"of": [killed["number"]]}
    assert retry.params == killed["params"]
    assert not any(t.state.name == "RUNNING" for t in trials)


def build_model(hp):
    import keras

    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.slow
def test_a_tuner_runs_its_trials_on_ray(cluster, tmp_path):
    X, y = iris()
    X = X.astype("float32")
    tuner = tunefleet.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_trials=3,
        directory=str(tmp_path),
        project_name="p",
        backend="ray",
        n_jobs=2,
        seed=0,
    )
    tuner.search(X, y, epochs=2, validation_split=0.25, verbose=0)
    frame = tuner.trials_dataframe()
    assert list(frame["state"]) == ["COMPLETE"] * 3
    assert np.isfinite(frame["value"]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "dask"}, r"backend must be 'local' or 'ray', got 'dask'"),
        (
            {"backend": "ray", "resources_per_trial": {"cpu": -1}},
            r"resources_per_trial\['cpu'\] must be a non-negative number, got -1",
        ),
        (
            {"backend": "ray", "resources_per_trial": 2},
            r"resources_per_trial must be a dict such as \{'cpu': 1, 'gpu': 0.5\}, got int: 2",
        ),
    ],
)
def test_bad_ray_settings_are_refused_before_anything_is_stored(tmp_path, kwargs, message):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    search = tunefleet.RandomizedSearchCV(
        SlowClassifier(), {"C": [0.1, 1.0]}, n_iter=2, storage=url, study_name="s", **kwargs
    )
    with pytest.raises(ValueError, match=message):
        search.fit(X, y)
    assert optuna.get_all_study_names(open_storage(url)) == []


def test_the_hyperband_tuner_says_it_does_not_run_on_ray(tmp_path):
    with pytest.raises(ValueError, match=r"backend='ray': Hyperband runs its synchronous brackets"):
        tunefleet.Hyperband(
            build_model,
            objective="val_accuracy",
            max_epochs=3,
            directory=str(tmp_path),
            backend="ray",
        )


DRIVER = textwrap.dedent(
    """
    import os, sys
    import tunefleet
    from estimators import SlowClassifier, iris
    url, backend = sys.argv[1], sys.argv[2]
    if backend == "ray" and os.environ.get("RAY_ADDRESS"):  # a running cluster's actors
        import ray
        names = ("PYTHONPATH", "TUNEFLEET_TEST_HOLD", "KERAS_BACKEND")
        ray.init(runtime_env={"env_vars": {n: os.environ[n] for n in names}})
    X, y = iris()
    tunefleet.GridSearchCV(
        SlowClassifier(delay=0.2), {"C": [0.01, 0.1, 1.0, 10.0, 100.0]}, cv=2, refit=False,
        storage=url, study_name="s", backend=backend, n_jobs=1,
    ).fit(X, y)
    """
)


@pytest.mark.slow
def test_a_ray_driver_killed_mid_search_is_resumed_from_another_process(tmp_path):
    # The driver dies with SIGKILL while its actor is inside a fit; Ray ends the dead
    # driver's actor, and a plain (local) run of the same search finishes the grid.
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    hold = tmp_path / "hold"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent / "src")]),
        TUNEFLEET_TEST_HOLD=str(hold),
        KERAS_BACKEND="jax",
    )
    hold.touch()  # the first fit waits: the kill lands inside a trial
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, url, "ray"], env=env)
    deadline = time.monotonic() + 300
    while not Path(f"{hold}.held").exists():
        assert driver.poll() is None and time.monotonic() < deadline, "no trial started"
        time.sleep(0.1)
    (running,) = [t for t in stored(url) if t.state.name == "RUNNING"]
    actor = int(running.user_attrs[WORKER_ATTR].split(":")[1])
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 120
    while _alive(actor):  # Ray ends the actors of a driver that died
        assert time.monotonic() < deadline, "the dead driver's actor is still running"
        time.sleep(0.2)
    hold.unlink()
    resumed = subprocess.run(
        [sys.executable, "-c", DRIVER, url, "local"], env=env, timeout=300, check=False
    )
    assert resumed.returncode == 0
    trials = stored(url)
    counted = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["C"] for t in counted) == [0.01, 0.1, 1.0, 10.0, 100.0]
    killed = trials[running.number]
    assert killed.state.name == "FAIL" and killed.user_attrs[STATUS_ATTR] == "interrupted"
    assert not any(t.state.name == "RUNNING" for t in trials)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has ended
        return stat.read().split(")")[-1].split()[0] != "Z"
