"""``Hyperband`` with a budget known in advance, survivors continued, and crash-safe resume.

The schedule is Keras Tuner's: from ``max_epochs``, ``factor`` and
``hyperband_iterations`` come brackets; bracket ``s`` starts ``n`` configurations for a
few epochs and keeps the best ``1/factor`` of them for ever longer rounds, until the
survivors reach ``max_epochs``. Differences from Keras Tuner:

* the plan is computed before anything runs, and the tuner prints the exact number of
  trials and epochs the search will spend (``Hyperband.plan()`` returns it);
* ``epochs=`` given to ``search`` does not change the plan; a notice says it is unused;
* one configuration is one Optuna trial, alive across its bracket's rounds: each round
  continues training from the model (weights and optimizer state) saved at the end of
  the previous round (``initial_epoch``), instead of retraining from scratch, and every
  epoch's value is reported on that trial; with fleet training (the default on JAX,
  :mod:`tunefleet.tuners.hyperband_fleet`) a round's configurations train together,
  each continuing from its saved weights and optimizer state as well;
* losers of a round are told ``PRUNED``, survivors of the last round ``COMPLETE`` with
  their best epoch's value;
* a search killed mid-bracket (Ctrl-C, SIGKILL, power loss) resumes: trials it left
  running are marked interrupted by the engine, and each is continued by a new trial
  with the same hyperparameters from its last saved round; finished trials are never
  run again, and the search ends with exactly the planned number of trials.

The brackets start and end their trials through the engine's steps
(:mod:`tunefleet.execution`), as every other search does: each trial is asked within the
plan's budget (:func:`~tunefleet.execution.ask_trial`, a
:class:`~tunefleet.study.Budget` of the plan's trials, each trial recording its worker),
told with :func:`~tunefleet.execution.tell` (a trial another process finished first is
taken as stored, counted once), and marked interrupted with
:func:`~tunefleet.execution.interrupt`. The plan's arithmetic shared with
``HyperbandSearchCV`` is :func:`tunefleet.strategies.n_brackets`; where the two
Hyperbands differ is said there.

Rounds run synchronously in one process (``n_jobs`` must be 1).
"""

from __future__ import annotations

from typing import Any

import optuna

from tunefleet.attrs import PLAN_ATTR
from tunefleet.dispatch import n_workers
from tunefleet.progress import SearchProgress
from tunefleet.study import Budget, Worker
from tunefleet.tuners.base_tuner import BaseTuner
from tunefleet.tuners.brackets import (
    Bracket,
    HyperbandPlan,
    finished_count,
    hyperband_plan,
    waiting_to_continue,
)
from tunefleet.tuners.search_watch import SearchWatch
from tunefleet.tuners.trial_runner import TrialRunner


class Hyperband(BaseTuner):
    """Hyperband (Keras Tuner's arguments), with a predictable budget and resumable brackets.

    Args:
        hypermodel, objective: as :class:`~tunefleet.RandomSearch`.
        max_epochs: the most epochs a configuration trains.
        factor: keep the best ``1/factor`` configurations of each round.
        hyperband_iterations: how many times the whole set of brackets is run.
        *args: Keras Tuner's next arguments (``seed, hyperparameters, tune_new_entries,
            allow_new_entries, max_retries_per_trial, max_consecutive_failed_trials``).
        **kwargs: as :class:`~tunefleet.RandomSearch` (``directory``, ``project_name``,
            ``cv``, ``executions_per_trial``, ``storage``, ``strategy="tpe"`` for a
            BOHB-like search...); ``pruner`` and ``n_jobs > 1`` are refused.

    Example:

    >>> import tempfile
    >>> from tunefleet.keras import build_mlp
    >>> from sklearn.datasets import load_iris
    >>> import tunefleet as kt
    >>> x, y = load_iris(return_X_y=True)
    >>> def build_model(hp):
    ...     return build_mlp((4,), "multiclass:3", n_hidden=1, n_neurons=hp.Int("units", 4, 16, step=4))
    >>> tuner = kt.Hyperband(build_model, objective="val_accuracy", max_epochs=2, factor=2,
    ...                      seed=0, directory=tempfile.mkdtemp(), project_name="hb")
    >>> tuner.plan().n_trials, tuner.plan().total_epochs()
    (4, 7)
    >>> tuner.search(x, y, validation_split=0.2, verbose=0)  # doctest: +ELLIPSIS
    Hyperband plan ...
    >>> len(tuner.oracle.trials)
    4
    """

    _schedule = "hyperband"

    _plans_trials = True

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_epochs: int = 100,
        factor: int = 3,
        hyperband_iterations: int = 1,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.max_epochs = max_epochs
        self.factor = factor
        self.hyperband_iterations = hyperband_iterations
        if kwargs.pop("max_trials", None) is not None:
            raise TypeError(
                "Hyperband plans its trials from max_epochs, factor and hyperband_iterations; "
                "it takes no max_trials."
            )
        super().__init__(hypermodel, objective, None, *args, **kwargs)

    def _check_settings(self) -> None:
        super()._check_settings()
        self._check_int("max_epochs", self.max_epochs, 1)
        self._check_int("factor", self.factor, 2)
        self._check_int("hyperband_iterations", self.hyperband_iterations, 1)
        if self.pruner is not None:
            raise ValueError(
                "pruner cannot be set on Hyperband: it stops configurations itself, round by "
                "round; shape it with max_epochs and factor."
            )
        if self._strategy_name() == "grid":
            raise ValueError("strategy='grid' cannot drive Hyperband; use GridSearch instead.")
        if n_workers(self.n_jobs) != 1:
            raise ValueError(
                f"n_jobs={self.n_jobs}: Hyperband runs its rounds in one process; use n_jobs=1."
            )

    def _default_fleet_size(self) -> int:
        return 64  # nothing completes inside a bracket: a round's trials can all go at once

    def plan(self) -> HyperbandPlan:
        """The brackets this search runs (trials and epochs are known in advance)."""
        self._check_settings()
        return hyperband_plan(self.max_epochs, self.factor, self.hyperband_iterations)

    def _check_fit_arguments(
        self, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any], tuned: dict[str, Any]
    ) -> None:
        if "epochs" in tuned:
            raise ValueError(
                "epochs cannot be tuned with Hyperband: it sets each round's epochs itself "
                "(up to max_epochs)."
            )
        if "initial_epoch" in fit_kwargs:
            raise ValueError("initial_epoch cannot be given to Hyperband.search(): it sets it.")

    def _run(
        self,
        study: optuna.Study,
        runner: TrialRunner,
        sampler: optuna.samplers.BaseSampler,
        grid: list[dict[str, Any]] | None,
        created: bool,
        n_workers: int,
        display: int,
    ) -> None:
        plan = self.plan()
        stored = study.user_attrs.get(PLAN_ATTR)
        if stored is None:
            study.set_user_attr(PLAN_ATTR, plan.settings())
        elif stored != plan.settings():
            raise ValueError(
                f"study {study.study_name!r} was planned with {stored}; this tuner has "
                f"{plan.settings()}. Use another project_name/study_name, or overwrite=True."
            )
        epochs = runner.fit_kwargs.pop("epochs", None)
        if epochs is not None and epochs != self.max_epochs:
            print(
                f"Hyperband: search(epochs={epochs}) is not used; every configuration trains "
                f"for at most max_epochs={self.max_epochs} epochs, as planned below.",
                flush=True,
            )
        runs = runner.n_folds * runner.executions
        finished = finished_count(study)
        if finished >= plan.n_trials and not waiting_to_continue(study):
            print(
                f"Nothing to run: study {study.study_name!r} already holds the "
                f"{plan.n_trials} trials of its Hyperband plan. Pass overwrite=True to start over.",
                flush=True,
            )
            return
        print(plan.describe(runs), flush=True)
        watch = SearchWatch(
            self.oracle, self._objective, self.max_consecutive_failed_trials, study, display
        )
        fleet = None
        if self._fleet_batch is not None:
            from tunefleet.tuners.hyperband_fleet import RoundFleet

            fleet = RoundFleet(runner, self._fleet_batch)
        budget = Budget(plan.n_trials, grid=False)  # the plan's trials, shared by its brackets
        with (
            Worker() as worker,
            SearchProgress(
                plan.n_trials, done=finished, description="Hyperband", enabled=self.progress
            ) as bar,
        ):
            watch.bar = bar
            for index, rounds in enumerate(plan.brackets):
                Bracket(
                    self._objective,
                    self.max_epochs,
                    study,
                    runner,
                    worker,
                    watch,
                    index,
                    rounds,
                    fleet,
                    budget,
                ).run()
        if fleet is not None:
            self.fleet_stats_ = dict(fleet.stats)
        watch.finish()
