"""The progress of a tuner's search, shown and watched after each trial.

:class:`SearchWatch` is called with each finished trial: it prints one line per trial
(when no progress bar is shown) or moves the bar, and stops the search after
``max_consecutive_failed_trials`` failures in a row. At the end it prints the best
trial.
"""

from __future__ import annotations

import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunefleet.attrs import ERROR_ATTR, HP_ATTR
from tunefleet.progress import SearchProgress
from tunefleet.study import counts
from tunefleet.tuners.oracle import Objective, Oracle, Trial


class SearchWatch:
    """After each trial: one line (when no bar is shown), the bar, the failure streak."""

    def __init__(
        self,
        oracle: Oracle,
        objective: Objective,
        max_consecutive_failed_trials: int | None,
        study: optuna.Study,
        display: int,
    ) -> None:
        self.oracle = oracle
        self.objective = objective
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        self.study = study
        self.display = display
        self.bar: SearchProgress | None = None
        self.streak: list[str] = []
        self.start = time.perf_counter()

    def _best(self) -> Trial | None:
        best = self.oracle.get_best_trials(1)
        return best[0] if best else None

    def __call__(self, frozen: FrozenTrial) -> None:
        objective = self.objective
        best = self._best()
        if self.bar is not None and self.bar.enabled:
            self.poll()
        elif self.display:
            value = "" if frozen.value is None else f" {objective.name}={frozen.value:.4g}"
            seconds = frozen.duration.total_seconds() if frozen.duration else 0.0
            so_far = "" if best is None else f"; best {best.score:.4g} (trial {best.trial_id})"
            params = frozen.user_attrs.get(HP_ATTR, frozen.params)
            print(
                f"Trial {frozen.number} {frozen.state.name}{value}{so_far} [{seconds:.1f}s] {params}",
                flush=True,
            )
        self._streak(frozen)

    def _streak(self, frozen: FrozenTrial) -> None:
        limit = self.max_consecutive_failed_trials
        if frozen.state == TrialState.FAIL:
            self.streak.append(frozen.user_attrs.get(ERROR_ATTR, "unknown error"))
        else:
            self.streak = []
        if limit is not None and len(self.streak) >= limit:
            raise RuntimeError(
                f"{len(self.streak)} consecutive trials failed (max_consecutive_failed_trials="
                f"{limit}); the search stops. The last error:\n{self.streak[-1]}"
            )

    def poll(self) -> None:
        if self.bar is None or not self.bar.enabled:
            return
        finished = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if counts(t) and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        ]
        best = self._best()
        self.bar.update(done=len(finished), best=None if best is None else best.score)

    def finish(self) -> None:
        best = self._best()
        elapsed = time.perf_counter() - self.start
        if best is None:
            print(f"Search done in {elapsed:.1f}s; no trial completed.", flush=True)
            return
        print(
            f"Search done in {elapsed:.1f}s. Best {self.objective.name}: "
            f"{best.score:.4g} (trial {best.trial_id}) {best.hyperparameters.values}",
            flush=True,
        )
