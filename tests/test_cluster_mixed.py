"""Worker processes and a Ray run on one PostgreSQL study (issue 15's mixed run).

Two drivers share one 200-point grid on a real PostgreSQL server: one runs it in Ray actors
(on the cluster ``RAY_ADDRESS`` names, as CI starts one, else a local cluster it starts), the
other, started once the actors are at work, in 4 worker processes. Together they run every
point once: 200 counted trials, no point twice.
"""

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pytest

from tunefleet.storage import open_storage
from tunefleet.study import counts

# PostgreSQL servers and Ray clusters: these tests share one pytest-xdist worker (Makefile)
pytestmark = pytest.mark.xdist_group("servers")

if os.environ.get("CI") != "true":
    pytest.importorskip("ray")

TESTS = Path(__file__).parent
GRID = [float(c) for c in np.logspace(-3, 3, 200)]

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import tunefleet
    from estimators import WhereClassifier, iris
    kind, url = sys.argv[1], sys.argv[2]
    if kind == "ray" and os.environ.get("RAY_ADDRESS"):  # a running cluster, as docs/cluster.md
        import ray
        names = ("PYTHONPATH", "TUNEFLEET_TEST_FIT_LOG", "KERAS_BACKEND")
        ray.init(runtime_env={"env_vars": {n: os.environ[n] for n in names}})
    X, y = iris()
    grid = {"C": [float(c) for c in np.logspace(-3, 3, 200)], "delay": [0.1]}
    tunefleet.GridSearchCV(
        WhereClassifier(), grid, cv=2, storage=url, study_name="mixed", refit=False,
        n_jobs=4 if kind == "processes" else 2,
        backend="local" if kind == "processes" else "ray",
    ).fit(X, y)
    """
)


def start(kind, url, log):
    env = dict(os.environ)
    env.update(PYTHONPATH=str(TESTS), TUNEFLEET_TEST_FIT_LOG=str(log), KERAS_BACKEND="jax")
    return subprocess.Popen([sys.executable, "-c", SCRIPT, kind, url], env=env)


def stored(url):
    try:
        study = optuna.load_study(study_name="mixed", storage=open_storage(url))
    except KeyError:
        return []
    return study.get_trials(deepcopy=False)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_four_worker_processes_and_ray_actors_run_a_200_point_grid_once(postgres_server, tmp_path):
    url = postgres_server.create_database()
    log = tmp_path / "fits.log"
    on_ray = start("ray", url, log)
    deadline = time.monotonic() + 300
    while not any(t.state.name == "COMPLETE" for t in stored(url)):
        assert on_ray.poll() is None, "the Ray run ended before its first trial"
        assert time.monotonic() < deadline, "no trial completed in Ray actors"
        time.sleep(0.5)
    in_processes = start("processes", url, log)
    assert on_ray.wait(timeout=600) == 0 and in_processes.wait(timeout=600) == 0
    counted = [t for t in stored(url) if counts(t)]
    assert len(counted) == 200 and all(t.state.name == "COMPLETE" for t in counted)
    points = Counter(t.params["C"] for t in counted)
    assert sorted(points) == GRID and set(points.values()) == {1}  # each point once
    kinds = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert kinds["ray"] > 0 and kinds["process"] > 0  # both kinds of worker ran trials
    assert sum(kinds.values()) == 2 * 200  # two folds a trial, no fit repeated
