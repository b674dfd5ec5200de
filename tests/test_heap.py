"""Trial loops run with the heap alive at their start frozen for the garbage collector."""

import gc
import os
import threading
import weakref

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_iris

import tunefleet
from estimators import SlowClassifier
from tunefleet.execution import run_trials
from tunefleet.heap import frozen_heap
from tunefleet.study import Budget


@pytest.fixture(autouse=True)
def no_freeze_before_and_after():
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()  # a failing test must not leave the worker's heap frozen


class Node:
    """A reference cycle, collectable only by the collector."""

    def __init__(self):
        self.me = self


class FreezeNotingClassifier(SlowClassifier):
    """Logistic regression that notes how many objects were frozen when it was fitted."""

    seen: list[int] = []

    def fit(self, X, y):
        FreezeNotingClassifier.seen.append(gc.get_freeze_count())
        return super().fit(X, y)


def test_cycles_made_inside_are_collected_and_older_ones_after_the_loop():
    old = Node()
    old_ref = weakref.ref(old)
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        del old
        new_ref = weakref.ref(Node())
        gc.collect()
        assert new_ref() is None  # made in the loop: collected as usual
        assert old_ref() is not None  # alive at the start: skipped while the loop runs
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert old_ref() is None  # nothing leaks: freed once the loop ended


def test_garbage_left_before_the_loop_is_collected_not_frozen():
    gc.disable()  # no automatic collection: only the loop's own can free it
    try:
        ref = weakref.ref(Node())
        assert ref() is not None
        with frozen_heap():
            assert ref() is None
    finally:
        gc.enable()


def test_nested_and_concurrent_loops_share_one_freeze_and_freeze_what_came_since():
    def nested_loop():
        """A cycle made before a nested loop and dropped in it: frozen on entry."""
        node = Node()
        ref = weakref.ref(node)
        with frozen_heap():
            del node
            gc.collect()
            return ref

    with frozen_heap():
        nested = nested_loop()
        assert nested() is not None  # made since the outer loop began: frozen too
        assert gc.get_freeze_count() > 0  # the inner exit keeps the freeze
        in_thread = []
        thread = threading.Thread(target=lambda: in_thread.append(nested_loop()))
        thread.start()
        thread.join()
        assert in_thread[0]() is not None
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0  # the outermost exit undoes it
    gc.collect()
    assert nested() is None and in_thread[0]() is None  # nothing leaks


def test_a_freeze_the_process_made_itself_is_left_alone():
    gc.freeze()
    node = Node()  # made after the process's freeze
    ref = weakref.ref(node)
    with frozen_heap():
        del node
        gc.collect()
        assert ref() is None  # not frozen again on entry
    assert gc.get_freeze_count() > 0  # nor unfrozen on exit


def test_a_loop_that_raises_unfreezes():
    study = optuna.create_study()

    def objective(trial):
        assert gc.get_freeze_count() > 0
        raise KeyboardInterrupt  # stops the loop (the trial is marked interrupted)

    with pytest.raises(KeyboardInterrupt):
        run_trials(study, objective, Budget(3, grid=False))
    assert gc.get_freeze_count() == 0
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL]


def test_a_search_fits_its_trials_with_the_heap_frozen_and_unfreezes_it():
    X, y = load_iris(return_X_y=True)
    FreezeNotingClassifier.seen.clear()
    search = tunefleet.RandomizedSearchCV(
        FreezeNotingClassifier(), {"C": [0.1, 1.0, 10.0]}, n_iter=3, cv=2, random_state=0
    )
    search.fit(X, y)
    seen = FreezeNotingClassifier.seen
    assert len(seen) == 3 * 2 + 1  # 3 trials of 2 folds, then the refit
    assert all(count > 0 for count in seen)  # the trials and the refit
    assert gc.get_freeze_count() == 0  # after the search


def test_a_keras_search_collects_with_the_heap_frozen_from_its_start():
    """Checking the build and releasing memory before the trials collect too (0.2-0.3 s
    each over the whole heap): only the freeze's own collection scans everything."""
    full = []

    def note(phase, info):
        if phase == "start" and info["generation"] == 2:
            full.append(gc.get_freeze_count())

    def build_model(units=4):
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(units), keras.layers.Dense(3)]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    X, y = load_iris(return_X_y=True)
    search = tunefleet.RandomizedSearchCV(
        tunefleet.KerasClassifier(build_model, epochs=1, verbose=0), {"units": [4, 8]},
        n_iter=2, cv=2, random_state=0, fleet=False, refit=False, progress=False,
    )  # fmt: skip
    gc.callbacks.append(note)
    try:
        search.fit(X, y)
    finally:
        gc.callbacks.remove(note)
    assert len(full) > 3  # the freeze's, the checked build's, and one between trials at least
    assert full[0] == 0 and all(count > 0 for count in full[1:])
    assert gc.get_freeze_count() == 0


def test_hyperband_tuner_trains_with_the_heap_frozen(tmp_path):
    seen = []

    def build(hp):
        seen.append(gc.get_freeze_count())
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(hp.Int("units", 4, 8)), keras.layers.Dense(3)]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    X, y = load_iris(return_X_y=True)
    X = X.astype("float32")
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    tuner = tunefleet.Hyperband(
        build, "val_loss", max_epochs=2, factor=2, seed=0, directory=tmp_path, progress=False
    )
    tuner.search(X[:100], y[:100], validation_data=(X[100:], y[100:]), verbose=0)
    # the build the tuner checks before its trials, and every trial's
    assert len(seen) > 1 and all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0
