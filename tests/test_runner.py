"""The engine's trial runner (tunefleet.runner) through a tiny adapter, on a real SQLite study.

The adapter fits a real scikit-learn estimator on the folds of iris; epochs are the
passes of an ``SGDClassifier`` trained with ``partial_fit``. Each test runs the runner
inside a trial of a study on a SQLite file, tells the trial as the executors do, and
reads the stored trial back through a second storage.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.datasets import load_iris
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold

from tunefleet.attrs import CV_ATTR, ERROR_ATTR
from tunefleet.runner import EpochReporter, FoldRecord, OnError, Run, Runner, RunScores, TrialFailed
from tunefleet.storage import RecordingStorage, open_storage

X, Y = load_iris(return_X_y=True)
X = (X - X.mean(0)) / X.std(0)
SPLITS = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, Y))


class Always(optuna.pruners.BasePruner):
    """Prunes at the first report."""

    def prune(self, study, trial):
        return True


class SGDFolds:
    """An adapter: one SGDClassifier per fold (x executions), ``epochs`` partial_fit passes.

    ``how`` picks how epochs reach the runner: ``"callback"`` (``report_epoch``, the run
    returns when told to stop, as the tuners' Keras callback does), ``"observer"``
    (``epoch_observer``, which raises, as a Keras wrapper inside a Pipeline) or ``None``
    (no epoch reports). ``fail`` maps a run index to how many of its attempts raise.
    """

    def __init__(self, epochs=3, executions=1, how="callback", fail=None, error=RuntimeError):
        self.epochs, self.executions, self.how = epochs, executions, how
        self.fail = dict(fail or {})
        self.error = error
        self.calls: list[int] = []

    def runs(self):
        return [
            Run(index=fold * self.executions + e, fold=fold, epochs=self.epochs, data=split)
            for fold, split in enumerate(SPLITS)
            for e in range(self.executions)
        ]

    def fit_and_score(self, run: Run, reporter: EpochReporter) -> RunScores:
        self.calls.append(run.index)
        if self.fail.get(run.index, 0) > 0:
            self.fail[run.index] -= 1
            raise self.error(f"boom in run {run.index}")
        train, test = run.data
        model = SGDClassifier(random_state=run.index)
        observe = None
        if self.how == "observer":
            observe = reporter.epoch_observer(lambda: model.score(X[test], Y[test]))
        for epoch in range(self.epochs):
            model.partial_fit(X[train], Y[train], classes=np.unique(Y))
            if self.how == "callback":
                if reporter.report_epoch(epoch, model.score(X[test], Y[test])):
                    break
            elif observe is not None:
                observe(epoch, self.epochs)
        score = model.score(X[test], Y[test])
        return RunScores(
            test={"accuracy": score, "neg_error": score - 1.0},
            fit_time=0.25,
            score_time=0.125,
            train={"accuracy": model.score(X[train], Y[train]), "neg_error": 0.0},
            cost={"size": float(model.coef_.size)},
        )

    def describe_error(self, run, exc):
        return f"run {run.index + 1} failed: {type(exc).__name__}: {exc}"


@pytest.fixture
def study_and_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'runner.db'}"
    storage = open_storage(url)
    assert isinstance(storage, RecordingStorage)
    return storage, url


def new_study(storage, pruner=None):
    return optuna.create_study(storage=storage, direction="maximize", pruner=pruner)


def reread(url, trial):
    """The trial as another process sees it (a second connection to the file)."""
    return optuna.load_study(study_name=trial.study.study_name, storage=url).trials[trial.number]


def run_and_tell(study, runner, adapter):
    """Run a trial and tell it as the executors do (execution._run_one)."""
    trial = study.ask()
    try:
        value = runner.run(trial, adapter)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
    except TrialFailed:
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, value)
    return trial


def test_a_trial_reports_each_epoch_at_run_times_epochs_and_stores_its_record(study_and_url):
    storage, url = study_and_url
    study = new_study(storage)
    runner = Runner(metrics=("neg_error", "accuracy"), n_folds=3, primary="accuracy", train=True)
    trial = study.ask()
    value = runner.run(trial, SGDFolds(epochs=3, executions=2))
    # the record waits for the tell: nothing of it is in the file yet
    assert CV_ATTR not in reread(url, trial).user_attrs
    study.tell(trial, value)
    stored = reread(url, trial)
    assert stored.state == TrialState.COMPLETE
    assert sorted(stored.intermediate_values) == list(range(6 * 3))  # 6 runs x 3 epochs
    record = stored.user_attrs[CV_ATTR]
    assert list(record) == ["test", "fit_time", "score_time", "train"]
    assert list(record["test"]) == ["neg_error", "accuracy"]
    assert record["fit_time"] == [0.5, 0.5, 0.5]  # summed over the 2 executions
    assert record["score_time"] == [0.25, 0.25, 0.25]
    assert record["train"]["neg_error"] == [0.0, 0.0, 0.0]
    assert value == pytest.approx(np.mean(record["test"]["accuracy"]))
    assert ERROR_ATTR not in stored.user_attrs


def test_costs_are_recorded_and_returned_after_the_score(study_and_url):
    storage, url = study_and_url
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    runner = Runner(metrics=("accuracy",), n_folds=3, costs=("size",))
    trial = study.ask()
    value = runner.run(trial, SGDFolds(epochs=2, how=None))
    assert isinstance(value, list) and value[1] == 12.0  # 3 classes x 4 features
    study.tell(trial, value)
    stored = reread(url, trial)
    assert stored.values == value
    assert stored.user_attrs[CV_ATTR]["cost"] == {"size": [12.0, 12.0, 12.0]}


def test_an_observer_reports_at_the_epochs_it_is_given(study_and_url):
    storage, url = study_and_url
    study = new_study(storage)
    adapter = SGDFolds(epochs=2, how="observer")
    adapter.runs = lambda: [Run(i, i, data=s) for i, s in enumerate(SPLITS)]  # epochs unknown
    trial = run_and_tell(study, Runner(metrics=("accuracy",), n_folds=3), adapter)
    assert sorted(reread(url, trial).intermediate_values) == [0, 1, 2, 3, 4, 5]


def test_runs_without_epochs_report_the_running_mean_after_each_fold(study_and_url):
    storage, url = study_and_url
    study = new_study(storage)
    runner = Runner(metrics=("accuracy",), n_folds=3, prune=True, fold_reports=True)
    trial = run_and_tell(study, runner, SGDFolds(how=None))
    stored = reread(url, trial)
    scores = stored.user_attrs[CV_ATTR]["test"]["accuracy"]
    assert stored.intermediate_values == pytest.approx(
        {0: scores[0], 1: np.mean(scores[:2]), 2: np.mean(scores)}
    )


@pytest.mark.parametrize("how", ["callback", "observer"])
def test_a_pruned_trial_stops_at_once_and_stores_a_nan_record(study_and_url, how):
    storage, url = study_and_url
    study = new_study(storage, pruner=Always())
    adapter = SGDFolds(epochs=3, how=how)
    trial = run_and_tell(study, Runner(metrics=("accuracy",), n_folds=3, prune=True), adapter)
    stored = reread(url, trial)
    assert stored.state == TrialState.PRUNED
    assert list(stored.intermediate_values) == [0]  # pruned after the first epoch
    assert adapter.calls == [0]
    record = stored.user_attrs[CV_ATTR]
    assert all(math.isnan(v) for v in record["test"]["accuracy"])
    assert record["fit_time"][0] >= 0 and all(math.isnan(v) for v in record["fit_time"][1:])
    assert all(math.isnan(v) for v in record["score_time"])  # the pruned run was not scored


def test_without_prune_the_pruner_is_not_asked(study_and_url):
    storage, url = study_and_url
    study = new_study(storage, pruner=Always())
    trial = run_and_tell(study, Runner(metrics=("accuracy",), n_folds=3), SGDFolds(epochs=2))
    assert reread(url, trial).state == TrialState.COMPLETE  # learning curves only


def test_a_partial_pruned_record_keeps_the_finished_runs(study_and_url):
    storage, url = study_and_url

    class SecondFold(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return max(trial.intermediate_values) >= 6  # in run 2 (of 2 per fold)...

    study = new_study(storage, pruner=SecondFold())
    runner = Runner(metrics=("accuracy",), n_folds=3, prune=True, pruned_scores="partial")
    trial = run_and_tell(study, runner, SGDFolds(epochs=3, executions=2))
    stored = reread(url, trial)
    assert stored.state == TrialState.PRUNED
    record = stored.user_attrs[CV_ATTR]
    first, second, third = record["test"]["accuracy"]
    assert not math.isnan(first) and math.isnan(second) and math.isnan(third)
    assert record["fit_time"] == [0.5, 0.25, 0.0]  # the pruned run's time counts
    assert record["score_time"] == [0.25, 0.0, 0.0]


def test_error_score_scores_failed_runs_and_fails_the_trial_with_its_record(study_and_url):
    storage, url = study_and_url
    study = new_study(storage)
    runner = Runner(
        metrics=("accuracy",), n_folds=3, train=True, on_error=OnError.from_error_score(-1.0)
    )
    adapter = SGDFolds(fail={1: 1})
    trial = run_and_tell(study, runner, adapter)
    assert adapter.calls == [0, 1, 2]  # the other folds still ran
    stored = reread(url, trial)
    assert stored.state == TrialState.FAIL
    record = stored.user_attrs[CV_ATTR]
    assert record["test"]["accuracy"][1] == -1.0 and record["train"]["accuracy"][1] == -1.0
    assert record["test"]["accuracy"][0] > 0 and record["score_time"][1] == 0.0
    assert stored.user_attrs[ERROR_ATTR] == "run 2 failed: RuntimeError: boom in run 1"


def test_error_score_raise_stores_the_error_and_raises_it(study_and_url):
    storage, url = study_and_url
    study = new_study(storage)
    runner = Runner(metrics=("accuracy",), n_folds=3, on_error=OnError.from_error_score("raise"))
    trial = study.ask()
    with pytest.raises(RuntimeError, match="boom in run 0"):
        runner.run(trial, SGDFolds(fail={0: 1}))
    study.tell(trial, state=TrialState.FAIL)
    stored = reread(url, trial)
    assert stored.user_attrs[ERROR_ATTR] == "run 1 failed: RuntimeError: boom in run 0"
    assert CV_ATTR not in stored.user_attrs


def test_failed_runs_are_retried_then_fail_the_trial(study_and_url):
    storage, url = study_and_url
    study = new_study(storage)
    runner = Runner(metrics=("accuracy",), n_folds=3, on_error=OnError.fail_trial(max_retries=1))
    adapter = SGDFolds(fail={1: 1})  # fails once: the retry succeeds
    trial = run_and_tell(study, runner, adapter)
    assert adapter.calls == [0, 1, 1, 2]
    assert reread(url, trial).state == TrialState.COMPLETE
    adapter = SGDFolds(fail={1: 2})  # fails twice: the trial fails
    trial = run_and_tell(study, runner, adapter)
    assert adapter.calls == [0, 1, 1]
    stored = reread(url, trial)
    assert stored.state == TrialState.FAIL
    assert stored.user_attrs[ERROR_ATTR] == "run 2 failed: RuntimeError: boom in run 1"
    assert CV_ATTR not in stored.user_attrs


def test_fatal_errors_are_raised_unrecorded_and_not_retried(study_and_url):
    storage, _ = study_and_url
    study = new_study(storage)
    policy = OnError.fail_trial(max_retries=3, fatal=(TypeError,))
    adapter = SGDFolds(fail={0: 5}, error=TypeError)
    trial = study.ask()
    with pytest.raises(TypeError):
        Runner(metrics=("accuracy",), n_folds=3, on_error=policy).run(trial, adapter)
    assert adapter.calls == [0]
    assert trial.user_attrs == {}


def test_an_adapter_raising_trial_failed_fails_the_trial_without_retries(study_and_url):
    storage, url = study_and_url
    study = new_study(storage)
    adapter = SGDFolds(fail={0: 5}, error=TrialFailed)
    runner = Runner(metrics=("accuracy",), n_folds=3, on_error=OnError.fail_trial(max_retries=3))
    trial = run_and_tell(study, runner, adapter)
    assert adapter.calls == [0]
    assert reread(url, trial).user_attrs[ERROR_ATTR] == "boom in run 0"


def test_rungs_cross_validate_report_between_passes_and_finish(study_and_url):
    storage, url = study_and_url
    study = new_study(storage, pruner=optuna.pruners.NopPruner())
    runner = Runner(metrics=("accuracy",), n_folds=3)
    trial = study.ask()
    for rung in (1, 3):
        folds = runner.cross_validate(trial, SGDFolds(epochs=rung, how=None))
        if rung != 3:
            runner.report(trial, folds, step=rung, why="pruned")
    value = runner.finish(trial, folds)
    study.tell(trial, value)
    stored = reread(url, trial)
    assert list(stored.intermediate_values) == [1]
    assert value == pytest.approx(np.mean(stored.user_attrs[CV_ATTR]["test"]["accuracy"]))


def test_fold_record_mean_skips_folds_not_run():
    folds = FoldRecord(["a", "b"], n_folds=3, primary="b")
    assert math.isnan(folds.mean())
    folds.add(Run(0, 0), RunScores({"a": 1.0, "b": 0.5}, fit_time=1.0))
    assert folds.mean() == 0.5
    assert folds.pruned("nan")["fit_time"][0] == 1.0
    assert math.isnan(folds.pruned("nan")["fit_time"][1])


# -- the tuners' face through the runner (real Keras, tiny) ---------------------------------
def _tiny(hp):
    """A tiny compiled MLP on iris."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(hp.Choice("units", [4, 8]), activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def test_a_pruned_tuner_trial_stores_its_partial_record_and_hp_with_its_state(tmp_path):
    import tunefleet as kt

    tuner = kt.GridSearch(
        _tiny,
        "val_loss",
        cv=2,
        directory=tmp_path,
        project_name="pruned",
        pruner=optuna.pruners.ThresholdPruner(upper=1e-6),  # any real loss is above it
    )
    tuner.search(X.astype("float32"), Y, epochs=3, batch_size=50)
    url = f"sqlite:///{tmp_path / 'pruned' / 'study.db'}"
    trials = optuna.load_study(study_name="pruned", storage=url).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for t in trials:
        assert list(t.intermediate_values) == [0]  # run 1, epoch 1
        record = t.user_attrs[CV_ATTR]
        assert all(math.isnan(v) for v in record["test"]["val_loss"])  # no run finished
        assert record["fit_time"][0] > 0 and record["fit_time"][1] == 0.0
        assert record["score_time"] == [0.0, 0.0]
        assert t.user_attrs["tunefleet:hp"]["units"] == t.params["units"]


def test_a_failed_tuner_trial_is_retried_then_stores_its_error_and_hp(tmp_path):
    import tunefleet as kt
    from tunefleet.tuners import HyperModel

    attempts = []

    class FailsWith8Units(HyperModel):
        def build(self, hp):
            return _tiny(hp)

        def fit(self, hp, model, *args, **kwargs):
            attempts.append(hp.get("units"))
            if hp.get("units") == 8:
                raise RuntimeError("boom in fit")
            return model.fit(*args, **kwargs)

    tuner = kt.GridSearch(
        FailsWith8Units(),
        "val_accuracy",
        max_retries_per_trial=1,
        directory=tmp_path,
        project_name="failed",
    )
    tuner.search(X.astype("float32"), Y, epochs=1, batch_size=50, validation_split=0.2)
    assert sorted(attempts) == [4, 8, 8]  # the failed run was retried once
    url = f"sqlite:///{tmp_path / 'failed' / 'study.db'}"
    trials = {
        t.params["units"]: t for t in optuna.load_study(study_name="failed", storage=url).trials
    }
    assert trials[4].state == TrialState.COMPLETE
    assert len(trials[4].user_attrs[CV_ATTR]["test"]["val_accuracy"]) == 1
    assert "tunefleet:metrics" in trials[4].user_attrs
    assert trials[8].state == TrialState.FAIL
    assert trials[8].user_attrs[ERROR_ATTR] == "RuntimeError: boom in fit"
    assert trials[8].user_attrs["tunefleet:hp"] == {"units": 8}
    assert CV_ATTR not in trials[8].user_attrs
