"""Memory stays bounded over searches of many distinct widths (JAX backend), and
worker processes are replaced after a bounded number of trials (TensorFlow's remedy).

Each check runs in a fresh subprocess, so its resident memory (RSS) is not mixed with
that of other tests. Every fit or trial has a width of its own, so every one compiles
new programs: before tunefleet released JAX's compiled programs, RSS grew by about
8 MiB per distinct width. The checks allow a few MiB per width on average (with the
default budget of kept programs for the wrappers; with a smaller one for the shorter
tuner search, so that it releases several times).
"""

import gc
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import optuna
import pytest

from tunefleet.attrs import WORKER_ATTR
from tunefleet.execution import TENSORFLOW_TRIALS_PER_WORKER, WorkerJob, run_in_processes
from tunefleet.space import Float, parse_distributions
from tunefleet.study import Budget

TESTS = Path(__file__).parent
MiB = 2**20

PRELUDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, psutil
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X[:200] / 16.0).astype("float32")
    y = y[:200]
    rss = []
    def mark():
        rss.append(psutil.Process().memory_info().rss)
    """
)

WRAPPER = PRELUDE + textwrap.dedent(
    """
    from tunefleet.keras import KerasClassifier
    from keras_models import build_classifier
    for i in range(int(sys.argv[1])):
        KerasClassifier(
            build_classifier, n_neurons=8 + i, n_features=64, n_classes=10,
            epochs=1, batch_size=200, verbose=0,
        ).fit(X, y)
        mark()
    print(json.dumps(rss))
    """
)

TUNER = PRELUDE + textwrap.dedent(
    """
    import keras, tunefleet
    from tunefleet.keras.memory import set_compiled_program_budget
    set_compiled_program_budget(16 * 2**20)  # releases within this short search

    def build(hp):
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", list(range(8, 8 + int(sys.argv[1])))),
                               activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    class Marking(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            mark()

    tuner = tunefleet.GridSearch(
        build, "val_accuracy", directory=sys.argv[2], project_name="m", seed=0,
    )
    tuner.search(X, y, epochs=1, batch_size=200, validation_data=(X, y),
                 callbacks=[Marking()], verbose=0)
    print(json.dumps(rss))
    """
)

FLEET = PRELUDE + textwrap.dedent(
    """
    import keras, tunefleet
    from tunefleet.keras import KerasClassifier
    from tunefleet.keras.memory import set_compiled_program_budget
    set_compiled_program_budget(16 * 2**20)  # releases within this short search

    def build(n_neurons=8):
        mark()  # once per trial the fleet builds (and once for the checks)
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(n_neurons, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    half = np.arange(len(X)) % 2 == 0
    tunefleet.GridSearchCV(
        KerasClassifier(build, epochs=1, batch_size=100, verbose=0),
        {"n_neurons": list(range(8, 8 + int(sys.argv[1])))},
        cv=[(np.flatnonzero(half), np.flatnonzero(~half))], refit=False, fleet=True,
    ).fit(X, y)
    print(json.dumps(rss))
    """
)

AFTER_FLEET_SEARCH = PRELUDE + textwrap.dedent(
    """
    import keras, tunefleet
    from tunefleet.keras import KerasClassifier
    from tunefleet.keras.memory import release_compiled_programs, release_memory

    def build(n_hidden=1, n_neurons=8):
        model = keras.Sequential([keras.Input((64,))])
        for _ in range(n_hidden):
            model.add(keras.layers.Dense(n_neurons, activation="relu"))
        model.add(keras.layers.Dense(10, activation="softmax"))
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    half = np.arange(len(X)) % 2 == 0
    tunefleet.RandomizedSearchCV(
        KerasClassifier(build, epochs=1, batch_size=64, verbose=0),
        {"n_hidden": tunefleet.Int(1, 3), "n_neurons": tunefleet.Int(8, 512)},
        n_iter=int(sys.argv[1]), cv=[(np.flatnonzero(half), np.flatnonzero(~half))],
        refit=False, random_state=0, fleet=True,
    ).fit(X, y)
    mark()  # as the search left it
    release_memory()
    release_compiled_programs(force=True)
    mark()  # everything released
    print(json.dumps(rss))
    """
)


def rss_series(script, *args):
    """Run ``script`` on the JAX backend in a fresh process; return its RSS marks."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth_per_width(rss, warmup):
    """Mean RSS growth (MiB) per fit after ``warmup`` fits, up to the largest RSS seen."""
    return (max(rss[warmup:]) - rss[warmup - 1]) / MiB / (len(rss) - warmup)


@pytest.mark.slow
def test_wrapper_fits_of_distinct_widths_stay_bounded():
    rss = rss_series(WRAPPER, 40)
    per_width = growth_per_width(rss, warmup=8)
    assert per_width < 3.0, f"RSS grew {per_width:.1f} MiB per distinct width (fits 8-40)"


@pytest.mark.slow
def test_tuner_trials_of_distinct_widths_stay_bounded(tmp_path):
    rss = rss_series(TUNER, 32, tmp_path)
    assert len(rss) == 32  # one mark per trial
    per_width = growth_per_width(rss, warmup=6)
    assert per_width < 2.0, f"RSS grew {per_width:.1f} MiB per distinct width (trials 6-32)"


@pytest.mark.slow
def test_fleet_search_of_distinct_widths_stays_bounded():
    rss = rss_series(FLEET, 40)
    assert len(rss) >= 40  # every trial was built (plus the search's checks)
    per_width = growth_per_width(rss, warmup=6)
    assert per_width < 2.0, f"RSS grew {per_width:.1f} MiB per distinct width (fleet builds)"


@pytest.mark.slow
def test_fleet_search_releases_its_last_batch_when_it_returns():
    """The last batch's models, group programs and freed pages (about 270 MiB for these 10
    trials of widths 8-512 before the search released them at its end) are not left behind."""
    left, released = rss_series(AFTER_FLEET_SEARCH, 10)
    kept = (left - released) / MiB
    assert kept < 64, f"the search left {kept:.0f} MiB that a release gives back"


# ------------------------------------------------ worker processes replaced after N trials


def draw_x(trial):
    """A module-level objective, picklable into spawned workers."""
    return trial.suggest_float("x", 0.0, 1.0)


def worker_job(url, **kwargs):
    return WorkerJob(
        storage_url=url,
        study_name="w",
        sampler="random",
        space=parse_distributions({"x": Float(0.0, 1.0)}),
        seed=0,
        pruner=optuna.pruners.NopPruner(),
        objective=draw_x,
        budget=Budget(7, grid=False),
        **kwargs,
    )


@pytest.mark.slow
def test_workers_are_replaced_after_max_trials_per_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    optuna.create_study(storage=url, study_name="w")
    run_in_processes(worker_job(url, max_trials_per_worker=2), 2, poll_interval=0.05)
    stored = optuna.load_study(study_name="w", storage=url).trials
    trials = [t for t in stored if t.state.name == "COMPLETE"]
    assert len(trials) == 7  # none lost, none run twice
    # The budget is counted in the transaction that starts a trial: nothing else is stored.
    assert len(stored) == 7
    per_process = Counter(t.user_attrs[WORKER_ATTR] for t in trials)
    assert max(per_process.values()) <= 2
    assert len(per_process) >= 4  # fresh processes took the retired ones' places
    assert len({t.params["x"] for t in trials}) == 7  # replacements do not repeat draws


def test_max_trials_per_worker_must_be_a_positive_integer(tmp_path):
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"max_trials_per_worker: expected a positive"):
            worker_job(f"sqlite:///{tmp_path / 'tune.db'}", max_trials_per_worker=bad)


@pytest.mark.backend
def test_tensorflow_workers_are_bounded_by_default():
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("the tensorflow package is not installed here (`make test` installs it)")
    code = (
        "import keras\n"
        "from tunefleet.execution import default_trials_per_worker as d\n"
        "print(keras.backend.backend(), d())"
    )
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["tensorflow", str(TENSORFLOW_TRIALS_PER_WORKER)]


def test_fleet_group_programs_are_dropped_with_jax_programs():
    """A trainer's kept group programs (compiled ahead of time, out of ``jax.clear_caches``'s
    reach) go at the same release as JAX's caches, so they count against the same budget;
    a later fit compiles again and trains as before."""
    from functools import partial

    import keras
    from sklearn.datasets import load_iris

    from tunefleet.fleet import FleetTrainer
    from tunefleet.keras import build_mlp
    from tunefleet.keras.memory import release_compiled_programs

    if keras.backend.backend() != "jax":
        pytest.skip("fleets need the JAX backend")  # conftest runs the suite on JAX
    x, y = load_iris(return_X_y=True)
    build_fn = partial(build_mlp, (4,), "multiclass:3", n_hidden=1)
    configs = [{"n_neurons": n, "learning_rate": 1e-2} for n in (8, 16)]
    trainer = FleetTrainer(build_fn, seed=0)
    trainer.fit(configs, x, y, epochs=1, validation_split=0.2)
    kept = len(trainer._programs)
    compiled = trainer.compile_seconds
    assert kept > 0
    assert release_compiled_programs(force=True)
    assert trainer._programs == {}
    assert trainer.compile_seconds == pytest.approx(compiled)  # dropped, still accounted for
    result = trainer.fit(configs, x, y, epochs=1, validation_split=0.2)
    assert len(trainer._programs) == kept
    assert trainer.compile_seconds > compiled  # compiled again
    assert len(result.history[0]["loss"]) == 1


TENSORFLOW_SEARCHES = textwrap.dedent(
    """
    import json, os, sys
    import keras, optuna
    from sklearn.base import clone
    from sklearn.datasets import load_digits
    import tunefleet, tunefleet.execution
    from tunefleet.attrs import WORKER_ATTR
    from tunefleet.keras import KerasClassifier
    from keras_models import build_classifier

    tunefleet.execution.TENSORFLOW_TRIALS_PER_WORKER = 2
    X, y = load_digits(return_X_y=True)
    X, y = (X[:120] / 16.0).astype("float32"), y[:120]

    def build_hp(hp):
        return build_classifier(n_neurons=hp.Int("n_neurons", 4, 64), n_features=64, n_classes=10)

    search = tunefleet.RandomizedSearchCV(
        KerasClassifier(build_classifier, n_features=64, n_classes=10, epochs=1, verbose=0),
        {"n_neurons": tunefleet.Int(4, 64)}, n_iter=3, cv=2, random_state=0,
    ).fit(X, y)
    tuner = tunefleet.RandomSearch(
        build_hp, "val_loss", 3, directory=sys.argv[1], project_name="t", seed=0
    )
    tuner.search(X, y, epochs=1, validation_split=0.5, verbose=0)
    stored = optuna.load_study(
        study_name=None, storage=f"sqlite:///{sys.argv[1]}/t/study.db"
    ).trials
    tunefleet.execution.TENSORFLOW_TRIALS_PER_WORKER = None  # the opt-out: trials run here
    here = clone(search).set_params(random_state=1).fit(X, y)
    print(json.dumps({
        "backend": keras.backend.backend(),
        "pid": os.getpid(),
        "search": [t.user_attrs[WORKER_ATTR] for t in search.study_.trials],
        "states": [t.state.name for t in search.study_.trials],
        "cv_results": len(search.cv_results_["params"]),
        "best": int(search.best_estimator_.predict(X[:4]).shape[0]),
        "tuner": [t.user_attrs[WORKER_ATTR] for t in stored],
        "tuner_states": [t.state.name for t in stored],
        "opted_out": [t.user_attrs[WORKER_ATTR] for t in here.study_.trials],
    }))
    """
)


@pytest.mark.backend
@pytest.mark.slow
def test_long_tensorflow_searches_run_in_replaced_worker_processes(tmp_path):
    """On TensorFlow, a search of more trials than a worker runs (here 2) trains them in
    worker processes replaced after that many trials, also with ``n_jobs=1``: the
    search's process trains none of them, none is lost or run twice, and the results
    (``cv_results_``, the refit best model, the tuner's study) are those of any search."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("the tensorflow package is not installed here (`make test` installs it)")
    env = dict(
        os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(TESTS)
    )
    done = subprocess.run(
        [sys.executable, "-c", TENSORFLOW_SEARCHES, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "tensorflow"
    searches = [(result["search"], result["states"]), (result["tuner"], result["tuner_states"])]
    for owners, states in searches:
        assert states == ["COMPLETE"] * 3
        pids = [int(owner.split(":")[1]) for owner in owners]
        assert result["pid"] not in pids  # the search's process trained none
        assert sorted(Counter(pids).values()) == [1, 2]  # a fresh worker after 2 trials
    assert result["cv_results"] == 3 and result["best"] == 4
    opted_out = [int(owner.split(":")[1]) for owner in result["opted_out"]]
    assert opted_out == [result["pid"]] * 3  # TENSORFLOW_TRIALS_PER_WORKER = None


def test_the_program_budget_counts_growth_from_after_the_first_trial(monkeypatch):
    """What the first trial imports (TensorFlow, the XLA runtime) is not growth.

    The level used to be measured at the first call, before the first trial: its imports
    then released every kept program at the second model a fleet built.
    """
    import keras
    import numpy as np

    from tunefleet.keras import memory

    if keras.backend.backend() != "jax":
        pytest.skip("the budget releases JAX's programs")
    monkeypatch.setattr(memory, "_first_call", True)  # a fresh process
    monkeypatch.setattr(memory, "_level", None)
    monkeypatch.setattr(memory, "_budget", 50 * 2**20)
    # Earlier tests' garbage, and free pages the allocator keeps, would otherwise be given
    # back in the middle of this one and hide the growth it makes.
    gc.collect()
    memory._trim_allocator()
    assert not memory.release_compiled_programs()  # before the first trial
    assert memory._level is None
    first_trial = np.ones(10 * 2**20)  # 80 MiB the first trial brings
    gc.collect()
    memory._trim_allocator()
    assert not memory.release_compiled_programs()  # after it: the level is measured
    assert memory._level is not None
    later = np.ones(10 * 2**20)  # 80 MiB more than one trial after: past the budget
    assert memory.release_compiled_programs()
    assert memory._level is None  # measured again after the next trial
    del first_trial, later
