"""Every ``tunefleet:*`` key tunefleet writes into an Optuna storage, in one place.

A search's study is its record: what tunefleet adds to Optuna's own columns (params,
values, states, intermediate values) it writes as user attributes of the study or of a
trial, under the keys below. Readers (result building, the CLI, the report) read them
from here too, so a key is named, and its value's shape documented, once. Values are
JSON, as Optuna stores user attributes.

Study attributes:

* ``SPACE_ATTR``: the search space's fingerprint, checked on resume.
* ``EXPERIMENT_ATTR``: what defines the experiment (estimator, scoring, cv, data
  fingerprint...; see :mod:`tunefleet.experiment`), checked on resume.
* ``FORCED_ATTR``: ``[{"at": time, "differences": [[where, stored, given], ...]}]``, one
  entry per resume forced over differences.
* ``STRATEGY_ATTR``: the strategy's name (``"tpe"``, ``"grid"``...).
* ``OBJECTIVES_ATTR``: the names of a multi-objective search's objectives.
* ``OBJECTIVE_ATTR``: a tuner's objective name (its direction is the study's).
* ``GRID_DONE_ATTR`` / ``GRID_SHARED_ATTR``: the grid was enqueued (twice, by racing
  workers: duplicates are then told apart by ``GRID_ATTR``).
* ``GRID_LIMIT_ATTR``: how many grid points a tuner's ``max_trials`` let it enqueue.
* ``PLAN_ATTR``: a Hyperband tuner's plan settings, checked on resume.
* ``LR_FINDER_ATTR``: an LR finder run, ``{"lrs": [...], "losses": [...], "suggestion": x}``.

Trial attributes:

* ``WORKER_ATTR``: the worker that started it (host, pid, process start time), so a
  resume can tell a trial of a dead process from one still running.
* ``STATUS_ATTR``: why a finished trial does not count (:data:`INTERRUPTED`,
  :data:`SURPLUS`, :data:`DUPLICATE`); absent on trials that count.
* ``GRID_ATTR``: the grid point's index.
* ``ERROR_ATTR``: why it failed (the last :data:`MAX_ERROR_CHARS` characters); see
  :func:`error_text`. A trial whose objective was not finite (Optuna stores no NaN)
  is failed with :func:`non_finite_error` here: its scores are kept, it ran.
* ``CV_ATTR``: per-fold scores and timings, ``{"test": {metric: [...]}, "fit_time":
  [...], "score_time": [...], ...}``; ``"errors"``: the error of each run scored with
  ``error_score`` (one line each), when some raised.
* ``RESOURCE_ATTR``: the resource (epochs, samples) a successive-halving trial reached.
* ``HP_ATTR``, ``METRICS_ATTR``, ``BEST_STEP_ATTR``, ``MODEL_ATTR``: a tuner trial's
  active hyperparameters, metrics at its best epoch, that epoch, its saved model.
* ``RETRY_ATTR``: a trial that runs again the configuration of trials whose workers
  died: ``{"of": [their numbers, oldest first]}``.
* ``BRACKET_ATTR``, ``PROGRESS_ATTR``, ``CONTINUES_ATTR``, ``ROUND_ATTR``: a Hyperband
  tuner trial's bracket, training progress, the interrupted trial it continues, and the
  round after which it was pruned.

Trial system attributes (Optuna's hidden column; not shown with the user's attributes):

* ``HEARTBEAT_ATTR``: the time (seconds since the epoch) of its worker's last heartbeat
  (see :mod:`tunefleet.liveness`).
* ``CLAIM_ATTR``: a random token written with the trial's creation (or its pop from the
  queue), by which a write retried after a lost connection finds the trial it already
  made instead of making a second one (see :mod:`tunefleet.storage`).

Example:

>>> import optuna
>>> from tunefleet.attrs import ERROR_ATTR, error_text
>>> study = optuna.create_study()
>>> trial = study.ask()
>>> trial.set_user_attr(ERROR_ATTR, error_text("x" * 5000))
>>> len(study.tell(trial, state=optuna.trial.TrialState.FAIL).user_attrs[ERROR_ATTR])
2000
"""

from __future__ import annotations

# -- study attributes --------------------------------------------------------------------
SPACE_ATTR = "tunefleet:space"
EXPERIMENT_ATTR = "tunefleet:experiment"
FORCED_ATTR = "tunefleet:forced_resumes"
STRATEGY_ATTR = "tunefleet:strategy"
OBJECTIVES_ATTR = "tunefleet:objectives"
OBJECTIVE_ATTR = "tunefleet:objective"
GRID_DONE_ATTR = "tunefleet:grid_enqueued"
GRID_SHARED_ATTR = "tunefleet:grid_enqueued_twice"
GRID_LIMIT_ATTR = "tunefleet:grid_limit"
PLAN_ATTR = "tunefleet:hyperband_plan"
LR_FINDER_ATTR = "tunefleet:lr_finder"
MODELS_ATTR = "tunefleet:models"  # a tuner study's model folder, relative to its project_dir

# -- trial attributes --------------------------------------------------------------------
WORKER_ATTR = "tunefleet:worker"
STATUS_ATTR = "tunefleet:status"
GRID_ATTR = "tunefleet:grid_index"
ERROR_ATTR = "tunefleet:error"
CV_ATTR = "tunefleet:cv"
RESOURCE_ATTR = "tunefleet:resource"
HP_ATTR = "tunefleet:hp"
METRICS_ATTR = "tunefleet:metrics"
BEST_STEP_ATTR = "tunefleet:best_step"
MODEL_ATTR = "tunefleet:model"
BRACKET_ATTR = "tunefleet:bracket"
PROGRESS_ATTR = "tunefleet:hyperband"
CONTINUES_ATTR = "tunefleet:continues"
ROUND_ATTR = "tunefleet:round"
RETRY_ATTR = "tunefleet:retry"
HEARTBEAT_ATTR = "tunefleet:heartbeat"  # a system attribute
CLAIM_ATTR = "tunefleet:claim"  # a system attribute

# -- values of STATUS_ATTR ---------------------------------------------------------------
INTERRUPTED = "interrupted"
SURPLUS = "surplus"
DUPLICATE = "duplicate"

#: The longest failure record kept (its end: a traceback's last lines say the most).
MAX_ERROR_CHARS = 2000


def error_text(message: str) -> str:
    """The failure record stored under ``ERROR_ATTR``: the end of ``message``."""
    return message[-MAX_ERROR_CHARS:]


_NON_FINITE = "the objective was "


def non_finite_error(value: object) -> str:
    """The ``ERROR_ATTR`` of a trial failed because its objective was not finite.

    Example:

    >>> non_finite_error(float("nan")), is_non_finite_error(non_finite_error([0.5, None]))
    ('the objective was nan', True)
    """
    return f"{_NON_FINITE}{value}"


def is_non_finite_error(message: object) -> bool:
    """Whether ``message`` (an ``ERROR_ATTR``) is a :func:`non_finite_error`, not a failure.

    Example:

    >>> is_non_finite_error("fold 1 failed: ValueError: bad")
    False
    """
    return isinstance(message, str) and message.startswith(_NON_FINITE)
