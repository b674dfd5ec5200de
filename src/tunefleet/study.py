"""Studies in storages: open, resume, recognise the space, recover crashed trials.

The Optuna storage is the single source of truth: any process can resume a search or
join one. This module owns the conventions tunefleet adds on top of Optuna:

* the search space's fingerprint is stored with the study, and a resumed study whose
  space differs is refused before any trial runs; so are the names of the extra
  objectives of a multi-objective search (``tunefleet:objectives``), and a study of
  another experiment (estimator, scoring, cv, data: ``tunefleet:experiment``) unless
  the resume is forced;
* every trial records which worker runs it (host, pid, process start time, run id), so
  a trial left ``RUNNING`` by a process that died (SIGKILL, power loss) is recognised
  on the next start, marked as interrupted and, for grids, its point queued again;
* trials that must not count (interrupted, asked for by a worker after the budget was
  spent, or a second copy of a grid point queued by two processes starting at once) are
  ``FAIL`` with a ``tunefleet:status`` attribute and are left out of
  results and budgets.

The keys of these records are in :mod:`tunefleet.attrs`.

Example:

>>> import optuna
>>> from tunefleet.study import Budget, counts
>>> study = optuna.create_study()
>>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
>>> Budget(5, grid=False).remaining(study), all(counts(t) for t in study.trials)
(3, True)
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import optuna
import sqlalchemy as sa
import sqlalchemy.exc
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tunefleet.attrs import (
    ERROR_ATTR,
    EXPERIMENT_ATTR,
    FORCED_ATTR,
    GRID_ATTR,
    GRID_DONE_ATTR,
    GRID_SHARED_ATTR,
    INTERRUPTED,
    OBJECTIVES_ATTR,
    RETRY_ATTR,
    SPACE_ATTR,
    STATUS_ATTR,
    SURPLUS,
    WORKER_ATTR,
)
from tunefleet.experiment import differences, format_differences
from tunefleet.liveness import Worker as Worker  # re-exported: the faces start workers
from tunefleet.liveness import watch, worker_dead
from tunefleet.storage import find_claim, retrying, write_claim

logger = logging.getLogger("tunefleet")


def check_study_name(value: Any, param: str = "study_name") -> None:
    """Refuse a study name that is not ``None`` or a non-blank string (``ValueError``/``TypeError``).

    An empty name would otherwise be silently replaced by a default one, and a search the
    user believes is stored under ``""`` would resume or overwrite another.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(
            f"{param} must be a non-empty string or None (a default name), got "
            f"{type(value).__name__}: {value!r}."
        )
    if not value.strip():
        raise ValueError(
            f"{param}={value!r} is blank; give a non-empty name, or None for the default name. "
            "Nothing stored was changed."
        )


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    *,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    fingerprint: str,
    directions: Sequence[str] = ("maximize",),
    objectives: Sequence[str] = (),
    experiment: Mapping[str, Any] | None = None,
    resume: str = "auto",
) -> tuple[optuna.Study, bool]:
    """Create the study or resume it; return ``(study, created)``.

    A stored study whose search space differs from ``fingerprint``, or whose extra
    objectives (the names of the minimized costs after the score) differ from
    ``objectives``, is refused with a ``ValueError`` and left untouched. So is one whose
    stored ``experiment`` (see :mod:`tunefleet.experiment`) differs, unless ``resume``
    is ``"force"``: then a warning names what differs, the new experiment is stored and
    the forced resume recorded (``tunefleet:forced_resumes``). A study stored before
    experiments were recorded is resumed, and this one recorded.
    """
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            sampler=sampler,
            pruner=pruner,
            directions=list(directions),
        )
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=sampler, pruner=pruner
        )
        created = False
    if created:
        study.set_user_attr(SPACE_ATTR, fingerprint)
        if objectives:
            study.set_user_attr(OBJECTIVES_ATTR, list(objectives))
        if experiment is not None:
            study.set_user_attr(EXPERIMENT_ATTR, dict(experiment))
        return study, True
    stored_objectives = list(study.user_attrs.get(OBJECTIVES_ATTR, []))
    if stored_objectives != list(objectives) and study.user_attrs.get(SPACE_ATTR) is not None:
        raise ValueError(
            f"study_name={study_name!r} was created with objectives={stored_objectives or None}, "
            f"so it cannot be resumed with objectives={list(objectives) or None}. Use another "
            "study_name (or storage); nothing stored was changed."
        )
    stored_dirs = [d.name.lower() for d in study.directions]
    if stored_dirs != [d.lower() for d in directions]:
        raise ValueError(
            f"study_name={study_name!r} in this storage optimizes {stored_dirs}, but this search "
            f"optimizes {list(directions)}; use another study_name."
        )
    stored = study.user_attrs.get(SPACE_ATTR)
    if stored is None:
        if study.trials:
            raise ValueError(
                f"study_name={study_name!r} already holds {len(study.trials)} trials that tunefleet "
                "did not create; use another study_name."
            )
        study.set_user_attr(SPACE_ATTR, fingerprint)
        if objectives:
            study.set_user_attr(OBJECTIVES_ATTR, list(objectives))
    elif stored != fingerprint:
        raise ValueError(
            f"study_name={study_name!r} was created with a different search space, so it cannot be "
            f"resumed with this one.\n  stored: {_summarize(stored)}\n  given:  "
            f"{_summarize(fingerprint)}\nUse another study_name (or storage) for the new space; "
            f"nothing stored was changed.{_legacy_labels_hint(stored)}"
        )
    if experiment is not None:
        _resume_experiment(study, dict(experiment), resume)
    return study, False


def _resume_experiment(study: optuna.Study, given: dict[str, Any], resume: str) -> None:
    """Refuse (or, forced, record) a resume by another experiment; record a missing one."""
    stored = study.user_attrs.get(EXPERIMENT_ATTR)
    if stored is None:
        if study.trials:
            logger.info(
                "study %r was stored without a record of its experiment (by an earlier "
                "tunefleet); this search's estimator, scoring, cv and data are recorded now "
                "and checked on later resumes.",
                study.study_name,
            )
        study.set_user_attr(EXPERIMENT_ATTR, given)
        return
    found = differences(stored, given)
    if not found:
        return
    if resume != "force":
        raise ValueError(
            f"study_name={study.study_name!r} holds the trials of another experiment, so this "
            f"search cannot resume it; what differs:\n{format_differences(found)}\nIts scores "
            "would not be comparable. Use another study_name (or storage) for this experiment, "
            "or resume='force' to add its trials to this study anyway; nothing stored was "
            "changed."
        )
    logger.warning(
        "study %r: resume='force' adds the trials of another experiment to it; what differs:\n%s",
        study.study_name,
        format_differences(found),
    )
    history = list(study.user_attrs.get(FORCED_ATTR, []))
    history.append(
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "differences": [list(d) for d in found],
        }
    )
    study.set_user_attr(FORCED_ATTR, history)
    study.set_user_attr(EXPERIMENT_ATTR, given)


def _legacy_labels_hint(stored: str) -> str:
    """Guidance when the stored space was labelled by an earlier tunefleet's cut ``repr``."""
    if '...\\"' not in stored:
        return ""
    return (
        "\nThe stored space labels some values by a repr cut at 80 characters (an earlier "
        "tunefleet), which cannot tell them from others that differ further on; such a study "
        "can only be continued with a new study_name."
    )


def _summarize(fingerprint: str) -> str:
    try:
        subspaces = json.loads(fingerprint)
    except ValueError:
        return fingerprint
    parts = []
    for sub in subspaces:
        items = []
        for dim in sub:
            dist = json.loads(dim["distribution"])
            attrs = dist.get("attributes", {})
            if "choices" in attrs:
                desc = f"{attrs['choices']}"
            else:
                desc = f"[{attrs.get('low')}, {attrs.get('high')}]" + (
                    " log" if attrs.get("log") else ""
                )
            if "scipy" in dim:
                desc = f"{dim['scipy']['name']}{tuple(dim['scipy']['args'])}"
            items.append(f"{dim['name']}: {desc}")
        parts.append("{" + ", ".join(items) + "}")
    return " | ".join(parts)


def enqueue_grid(study: optuna.Study, points: list[dict[str, Any]], created: bool) -> None:
    """Queue every grid point once (on creation, or finish a creation that was cut short).

    A process that finds the queue unfinished cannot tell a creator that died from one
    still queueing, so it queues the missing points too and flags the study: the two may
    then queue a point twice, and :meth:`Budget.is_duplicate` keeps the copy from running.
    """
    if not created:
        if study.user_attrs.get(GRID_DONE_ATTR):
            return
        study.set_user_attr(GRID_SHARED_ATTR, True)
    trials = study.get_trials(deepcopy=False)
    present = {t.user_attrs.get(GRID_ATTR) for t in trials}
    # trials a sampler drew before (a RandomizedSearchCV resumed with an n_iter that now
    # covers its space of lists whole) already ran their points
    drawn = [t.params for t in trials if GRID_ATTR not in t.user_attrs and counts(t)]
    for index, point in enumerate(points):
        if index not in present and point not in drawn:
            study.enqueue_trial(point, user_attrs={GRID_ATTR: index})
    study.set_user_attr(GRID_DONE_ATTR, True)


def counts(trial: FrozenTrial) -> bool:
    """Whether a trial counts towards the budget and the results."""
    return STATUS_ATTR not in trial.user_attrs


#: How many times a configuration whose worker died runs again (``TUNEFLEET_MAX_RETRIES``).
MAX_RETRIES = int(os.environ.get("TUNEFLEET_MAX_RETRIES", "3"))


def recover_interrupted(
    study: optuna.Study,
    grid_points: list[dict[str, Any]] | None = None,
    *,
    retry_configurations: bool = False,
    max_retries: int | None = None,
    known_dead: Callable[[str], bool] | None = None,
) -> int:
    """Finish the trials of dead workers; run their configurations again, a bounded number of times.

    A running trial's worker is dead when its process is gone (same host) or its
    heartbeat is older than the grace period (any host; see :mod:`tunefleet.liveness`).
    Its trial is marked interrupted, which keeps it out of budgets and results, and its
    configuration is queued again (a grid point always; any other configuration with
    ``retry_configurations``) with the numbers of the trials it ran as before
    (``tunefleet:retry``). A configuration whose workers died ``max_retries`` times
    (default :data:`MAX_RETRIES`) is not queued again: its last trial ends failed, with
    an error saying so, and counts. Trials of live workers are left alone.
    ``known_dead(owner)``: whether the caller knows worker ``owner`` to be dead (a Ray
    actor the driver saw die), which needs no waiting for its heartbeat to go stale.

    Returns how many trials were recovered.
    """
    max_retries = MAX_RETRIES if max_retries is None else max_retries
    storage = study._storage
    recovered = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(WORKER_ATTR)
        if owner is None:
            continue
        if not (known_dead is not None and known_dead(owner)) and not worker_dead(trial, owner):
            continue
        ran = [*trial.user_attrs.get(RETRY_ATTR, {}).get("of", []), trial.number]
        again = len(ran) <= max_retries
        if again:
            attrs = {STATUS_ATTR: INTERRUPTED}
        else:
            attrs = {
                ERROR_ATTR: (
                    f"the workers running this configuration died {len(ran)} times (trials "
                    f"{', '.join(map(str, ran))}); it is not run again (max_retries={max_retries})."
                )
            }
        try:
            for key, value in attrs.items():
                storage.set_trial_user_attr(trial._trial_id, key, value)
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # another process recovered it first
        recovered += 1
        if not again:
            continue
        index = trial.user_attrs.get(GRID_ATTR)
        retry = {RETRY_ATTR: {"of": ran}}
        if grid_points is not None and index is not None:
            study.enqueue_trial(grid_points[index], user_attrs={GRID_ATTR: index, **retry})
        elif retry_configurations and trial.params:
            study.enqueue_trial(trial.params, user_attrs=retry)
    if recovered:
        logger.warning(
            "Recovered %d trial(s) of study %r left running by a worker that died; "
            "they are marked interrupted and will be run again.",
            recovered,
            study.study_name,
        )
    return recovered


def _one_transaction(study: optuna.Study) -> tuple[Any, Any] | None:
    """``(backend, session context factory)`` to write several rows in one transaction.

    ``None`` unless the study's storage is an RDB storage (SQLite, PostgreSQL...) whose
    internals are the ones this was written against (then callers write one by one).
    """
    backend = getattr(study._storage, "_backend", study._storage)
    if not isinstance(backend, optuna.storages.RDBStorage):
        return None
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
    except ImportError:
        return None
    needed = (
        "_set_trial_intermediate_value_without_commit",
        "_set_trial_attr_without_commit",
        "_get_prepared_new_trial",
        "_build_frozen_trial_from_trial_model",
    )
    if not all(hasattr(backend, name) for name in needed) or not all(
        hasattr(models, name) for name in ("TrialUserAttributeModel", "TrialModel", "StudyModel")
    ):
        return None
    return backend, lambda: _create_scoped_session(backend.scoped_session, True)


def _unless_finished_elsewhere(trial: optuna.Trial, write: Any, *args: Any) -> None:
    """``write(*args)``, skipped if another worker finished ``trial`` meanwhile."""
    try:
        write(*args)
    except UpdateFinishedTrialError:
        logger.info("trial %d was finished by another worker; write skipped", trial.number)


def report_many(study: optuna.Study, reports: Sequence[tuple[optuna.Trial, int, float]]) -> None:
    """Report many ``(trial, step, value)`` intermediate values at once.

    On an RDB storage (SQLite, PostgreSQL...) they are written in one transaction instead
    of one each, which keeps fleets' bookkeeping small; elsewhere, or if Optuna's storage
    internals change, each is reported through ``Trial.report``. A trial that another
    worker popped too and finished first (see :mod:`tunefleet.execution`) is left
    to it: its values are skipped, the others written.
    """
    if not reports:
        return
    rdb = _one_transaction(study)
    if rdb is not None:
        backend, session = rdb

        def write(again: bool) -> None:  # upserts: a retry writes the same values
            with session() as s:
                for trial, step, value in reports:
                    backend._set_trial_intermediate_value_without_commit(
                        s, trial._trial_id, step, value
                    )

        try:
            retrying(backend, "report_many", write)
        except UpdateFinishedTrialError:
            pass  # nothing was written: write the others one by one below
        else:
            for trial, step, value in reports:
                trial._cached_frozen_trial.intermediate_values[step] = value
            return
    for trial, step, value in reports:
        _unless_finished_elsewhere(trial, trial.report, value, step)


def set_user_attrs(study: optuna.Study, trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Set several user attributes of ``trial``, in one transaction on an RDB storage.

    Like :func:`report_many`: a fleet finishing 64 trials writes 4 attributes each,
    and on SQLite every separate write is a commit. Nothing is set on a trial another
    worker finished first.
    """
    if not attrs:
        return
    rdb = _one_transaction(study)
    if rdb is None:
        for key, value in attrs.items():
            _unless_finished_elsewhere(trial, trial.set_user_attr, key, value)
        return
    from optuna.storages._rdb import models

    backend, session = rdb

    def write(again: bool) -> None:  # upserts: a retry writes the same values
        with session() as s:
            for key, value in attrs.items():
                backend._set_trial_attr_without_commit(
                    s, models.TrialUserAttributeModel, trial._trial_id, key, value
                )

    try:
        retrying(backend, "set_user_attrs", write)
    except UpdateFinishedTrialError:
        logger.info("trial %d was finished by another worker; attributes not set", trial.number)
        return
    trial._cached_frozen_trial.user_attrs.update(attrs)


def mark_excluded(study: optuna.Study, trial: optuna.Trial, status: str) -> None:
    """Finish ``trial`` as FAIL with a status that keeps it out of budgets and results."""
    trial.set_user_attr(STATUS_ATTR, status)
    study.tell(trial, state=TrialState.FAIL)


class _Refused(Exception):
    """Rolls back a claim: no trial is left to start (budget spent, queue empty)."""


def ask_owned(
    study: optuna.Study,
    owner: str,
    *,
    limit: int | None = None,
    queued_only: bool = False,
    attrs: Mapping[str, Any] | None = None,
) -> optuna.Trial | None:
    """Start a trial that records its ``owner`` (see :class:`Worker`) from its first commit.

    Like ``study.ask()``: pops the first queued (``WAITING``) trial, else creates one;
    ``queued_only`` never creates one. ``attrs`` are further user attributes set with the
    owner. With ``limit``, no trial is started once the study holds ``limit`` trials that
    count (see :func:`counts`). Returns ``None`` when nothing may start.

    On an RDB storage (SQLite, PostgreSQL...) the claim, the owner and the budget count
    are one transaction: no trial ever exists ``RUNNING`` without an owner, which
    :func:`recover_interrupted` needs to judge it after a crash, and two workers can
    neither pop one queued trial both nor start more than ``limit``. Elsewhere (in
    memory, journal) a new trial is created with its owner in one write (Optuna's
    ``create_new_trial`` template); a popped one gets its owner in a second write.

    While it runs, the trial gets a heartbeat from its worker (:func:`tunefleet.liveness.watch`).
    """
    attrs = {WORKER_ATTR: owner, **(attrs or {})}
    rdb = _one_transaction(study)
    if rdb is None:
        trial_id = _claim_one_by_one(study, attrs, limit, queued_only)
    else:
        try:
            started = _claim_in_one_transaction(study, rdb, attrs, limit, queued_only)
        except _Refused:
            started = None
        trial_id = None if started is None else started._trial_id
        if started is not None and study._storage is not rdb[0]:
            _cache_started_trial(study, started)
    if trial_id is None:
        return None
    watch(owner, study._storage, trial_id)
    thread_local = getattr(study, "_thread_local", None)
    if thread_local is not None:  # as Study.ask: samplers read the study afresh
        thread_local.cached_all_trials = None
    return optuna.Trial(study, trial_id)


def _cache_started_trial(study: optuna.Study, started: FrozenTrial) -> None:
    """Tell Optuna's trial cache (in front of an RDB storage) of a trial started here.

    As Optuna's own ``create_new_trial`` does; the cache needs it before the trial's
    first ``suggest``. Where the cache's internals are not the ones this was written
    against, it reads the study's running trials instead (slower, same outcome).
    """
    cache, sid = study._storage, study._study_id
    add = getattr(cache, "_add_trials_to_cache", None)
    lock, studies = getattr(cache, "_lock", None), getattr(cache, "_studies", None)
    if add is not None and lock is not None and isinstance(studies, dict):
        with lock:
            if sid in studies:
                add(sid, [started])
                return
    cache.get_all_trials(sid, deepcopy=False, states=(TrialState.RUNNING,))


def _claim_in_one_transaction(
    study: optuna.Study,
    rdb: tuple[Any, Any],
    attrs: Mapping[str, Any],
    limit: int | None,
    queued_only: bool,
) -> FrozenTrial | None:
    """:func:`ask_owned` on an RDB storage: one transaction, rolled back if refused.

    Returns the started trial as stored (read inside the transaction, before its commit).
    """
    from optuna.storages._rdb import models

    backend = rdb[0]
    sid = study._study_id
    trials = models.TrialModel
    # A claim retried after a lost connection (see tunefleet.storage.retrying) first looks
    # for its token: a commit whose answer was lost is not claimed twice.
    token = uuid.uuid4().hex
    return retrying(
        backend,
        "ask",
        lambda again: _claim(backend, sid, trials, attrs, limit, queued_only, token, again),
    )


def _claim(
    backend: Any,
    sid: int,
    trials: Any,
    attrs: Mapping[str, Any],
    limit: int | None,
    queued_only: bool,
    token: str,
    again: bool,
) -> FrozenTrial | None:
    """One try of :func:`_claim_in_one_transaction`."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    # Integrity errors propagate (nothing is returned for a claim that was not stored).
    with _create_scoped_session(backend.scoped_session) as s:
        # Trial creators lock the study row (as Optuna's create_new_trial): one at a time.
        models.StudyModel.find_or_raise_by_id(sid, s, for_update=True)
        claimed = find_claim(s, token) if again else None
        if claimed is not None:  # the try whose answer was lost claimed it
            return backend._build_frozen_trial_from_trial_model(
                trials.find_or_raise_by_id(claimed, s)
            )
        trial_id = None
        waiting = s.scalars(
            sa.select(trials.trial_id)
            .where(trials.study_id == sid, trials.state == TrialState.WAITING)
            .order_by(trials.trial_id)
        ).all()
        for candidate in waiting:
            # Conditional: of two workers popping one trial at once, one gets it.
            popped = s.execute(
                sa.update(trials)
                .where(trials.trial_id == candidate, trials.state == TrialState.WAITING)
                .values(state=TrialState.RUNNING, datetime_start=datetime.now())
                .execution_options(synchronize_session=False)
            )
            if popped.rowcount == 1:
                trial_id = candidate
                break
        if trial_id is not None:
            for key, value in attrs.items():
                backend._set_trial_attr_without_commit(
                    s, models.TrialUserAttributeModel, trial_id, key, value
                )
        elif queued_only:
            raise _Refused
        else:
            trial_id = backend._get_prepared_new_trial(sid, _running(attrs), s).trial_id
        write_claim(s, trial_id, token)
        s.flush()
        if limit is not None:
            # Counted after the claim, inside the transaction that holds the write lock,
            # so no other worker's claim can slip in between.
            excluded = sa.exists().where(
                models.TrialUserAttributeModel.trial_id == trials.trial_id,
                models.TrialUserAttributeModel.key == STATUS_ATTR,
            )
            n = s.scalar(
                sa.select(sa.func.count(trials.trial_id)).where(
                    trials.study_id == sid,
                    sa.or_(trials.state != TrialState.FAIL, sa.not_(excluded)),
                )
            )
            if n > limit:
                raise _Refused
        return backend._build_frozen_trial_from_trial_model(trials.find_or_raise_by_id(trial_id, s))


def _claim_one_by_one(
    study: optuna.Study, attrs: Mapping[str, Any], limit: int | None, queued_only: bool
) -> int | None:
    """:func:`ask_owned` through Optuna's public storage API (no RDB transaction)."""
    storage, sid = study._storage, study._study_id
    if limit is not None and n_counted(study) >= limit:
        return None
    for waiting in storage.get_all_trials(sid, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if not storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING):
                continue
        except UpdateFinishedTrialError:
            continue
        for key, value in attrs.items():
            storage.set_trial_user_attr(waiting._trial_id, key, value)
        return waiting._trial_id
    if queued_only:
        return None
    trial_id = storage.create_new_trial(sid, template_trial=_running(attrs))
    if limit is not None and n_counted(study) > limit:
        # Another process started one at the same moment: the later one gives way.
        number = storage.get_trial(trial_id).number
        earlier = sum(
            1
            for t in storage.get_all_trials(sid, deepcopy=False)
            if t.number < number and counts(t)
        )
        if earlier >= limit:
            storage.set_trial_user_attr(trial_id, STATUS_ATTR, SURPLUS)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            return None
    return trial_id


def _running(attrs: Mapping[str, Any]) -> FrozenTrial:
    """A template for a new ``RUNNING`` trial with user attributes ``attrs``."""
    return FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=dict(attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )


def n_counted(study: optuna.Study) -> int:
    """How many trials of ``study`` count towards a budget (see :func:`counts`)."""
    storage, sid = study._storage, study._study_id
    live = sum(
        storage.get_n_trials(sid, state)
        for state in (
            TrialState.COMPLETE,
            TrialState.PRUNED,
            TrialState.RUNNING,
            TrialState.WAITING,
        )
    )
    failed = storage.get_all_trials(sid, deepcopy=False, states=(TrialState.FAIL,))
    return live + sum(1 for t in failed if counts(t))


class Budget:
    """How many more trials a search may start: ``n_trials`` counted ones, or the grid queue."""

    def __init__(self, n_trials: int | None, *, grid: bool) -> None:
        self.n_trials = n_trials
        self.grid = grid

    def ask(
        self, study: optuna.Study, owner: str, attrs: Mapping[str, Any] | None = None
    ) -> optuna.Trial | None:
        """Start the next trial the budget allows (see :func:`ask_owned`), else ``None``.

        A grid pops its queued points only; ``n_trials`` bounds the counted trials.
        """
        limit = None if self.grid else self.n_trials
        return ask_owned(study, owner, limit=limit, queued_only=self.grid, attrs=attrs)

    def remaining(self, study: optuna.Study) -> int:
        """Trials still to start (for a grid: points still queued)."""
        if self.grid:
            return study._storage.get_n_trials(study._study_id, TrialState.WAITING)
        assert self.n_trials is not None
        return self.n_trials - n_counted(study)

    def is_duplicate(self, study: optuna.Study, trial: optuna.Trial) -> bool:
        """Whether ``trial`` is a second copy of a grid point that another trial holds.

        Two processes that start a grid at once may both queue a point; the
        lowest-numbered counted trial of a point runs, later copies do not.
        """
        index = trial.user_attrs.get(GRID_ATTR)
        if not self.grid or index is None or not study.user_attrs.get(GRID_SHARED_ATTR):
            return False
        return any(
            t.number < trial.number and counts(t) and t.user_attrs.get(GRID_ATTR) == index
            for t in study.get_trials(deepcopy=False)
        )
