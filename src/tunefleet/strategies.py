"""Strategy names -> Optuna samplers and pruners.

tunefleet does not implement samplers or pruners: it chooses Optuna's.

* ``"grid"``: every point exactly once. Points are enqueued in the study and popped by
  workers, so parallel workers and resumed runs never repeat a completed point.
* ``"random"``: :class:`optuna.samplers.RandomSampler`; over a space given only as lists
  of values, :class:`DistinctSampler` (Optuna's brute-force sampler in random order), so
  that, as in scikit-learn, no point is drawn twice.
* ``"tpe"`` (the default Bayesian strategy): :class:`optuna.samplers.TPESampler`,
  univariate (multivariate with groups on conditional spaces), with the constant liar so
  parallel workers and batches do not propose the same point. Chosen over ``"gp"`` and
  multivariate TPE on measurements (``docs/strategies.md``): it handles categorical and
  conditional (list-of-dicts) spaces, costs little per trial, and needs no PyTorch.
* ``"gp"``: :class:`optuna.samplers.GPSampler` (needs PyTorch).
* ``"cmaes"``: :class:`optuna.samplers.CmaEsSampler`, for all-numeric spaces.
* ``"nsga2"``: :class:`optuna.samplers.NSGAIISampler`, a genetic algorithm that also
  handles categorical parameters.

Hyperband's arithmetic is here too, for both faces that run it (:func:`n_brackets`,
:func:`rung_resources`).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from tunefleet.space import SearchSpace

SAMPLERS = ("grid", "random", "tpe", "gp", "cmaes", "nsga2")
PRUNERS = ("none", "median", "hyperband", "successive_halving")


class DistinctSampler(optuna.samplers.BruteForceSampler):
    """Draws the points of a finite space without replacement, in a random (seeded) order.

    Optuna's :class:`~optuna.samplers.BruteForceSampler` (which skips points already run
    or running, so parallel workers and resumed searches do not repeat one), except that
    the search's budget, not ``study.stop()``, ends the search: tunefleet runs trials
    through ask/tell, where ``study.stop()`` is not allowed. Once every point has run,
    further draws repeat points at random; budgets are capped so that this does not
    happen in a normal search.
    """

    def __init__(self, seed: int | None = None) -> None:
        with warnings.catch_warnings():  # experimental in Optuna; its behaviour is tested here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(seed=seed)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Nothing: the budget decides when the search ends."""


def make_sampler(
    sampler: str | optuna.samplers.BaseSampler,
    *,
    space: SearchSpace,
    seed: int | None,
    param: str = "sampler",
    population_size: int | None = None,
    n_trials: int | None = None,
    n_startup_trials: int | None = None,
) -> optuna.samplers.BaseSampler:
    """Return the Optuna sampler for a strategy name (or pass an Optuna sampler through).

    ``n_trials`` (the search's budget) sizes the random start of model-based samplers:
    a quarter of the budget, between 3 and 10 trials, unless ``n_startup_trials`` says.
    """
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(
            f"{param}={sampler!r} is not a known strategy; expected one of {list(SAMPLERS)} "
            "or an optuna.samplers.BaseSampler instance."
        )
    if sampler == "random" and space.n_points is not None:
        return DistinctSampler(seed=seed)
    if sampler in ("grid", "random"):
        # Grid points are enqueued; the random sampler is never consulted for them.
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "tpe":
        # Univariate on one subspace: it scored best on the search-quality suite
        # (docs/strategies.md); multivariate with groups on conditional spaces, which
        # Optuna's ``group`` needs.
        conditional = len(space.subspaces) > 1
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=_n_startup(n_trials, n_startup_trials),
            multivariate=conditional,
            group=conditional,
            constant_liar=True,
        )
    if sampler == "gp":
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"{param}='gp' needs PyTorch: pip install torch") from exc
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=_n_startup(n_trials, n_startup_trials)
        )
    if sampler == "cmaes":
        if not space.is_numeric:
            raise ValueError(
                f"{param}='cmaes' searches numeric spaces only, but the space has categorical "
                f"parameters or several subspaces ({space.names}); use 'nsga2' instead."
            )
        return optuna.samplers.CmaEsSampler(seed=seed, popsize=population_size)
    kwargs: dict[str, Any] = {"seed": seed}
    if population_size is not None:
        kwargs["population_size"] = population_size
    return PicklableNSGAIISampler(**kwargs)


class PicklableNSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's ``NSGAIISampler`` that pickles, as the other samplers do.

    Optuna's genetic samplers hold a ``threading.Lock``, which does not pickle, so a
    fitted search holding its study (``study_``) could not be pickled nor sent to a
    worker. The lock is left out of the pickle and made anew when it is loaded.

    Example:

    >>> import pickle
    >>> sampler = pickle.loads(pickle.dumps(PicklableNSGAIISampler(seed=0)))
    >>> type(sampler).__name__
    'PicklableNSGAIISampler'
    """

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


def _n_startup(n_trials: int | None, given: int | None = None) -> int:
    if given is not None:
        return given
    if n_trials is None:
        return 10
    return int(min(10, max(3, n_trials // 4)))


def make_pruner(
    pruner: str | optuna.pruners.BasePruner | None,
    *,
    param: str = "pruner",
    min_resource: int = 1,
    max_resource: int | str = "auto",
    reduction_factor: int = 3,
) -> optuna.pruners.BasePruner:
    """Return the Optuna pruner for a name (or pass an Optuna pruner through)."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_resource, max_resource=max_resource, reduction_factor=reduction_factor
        )
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min_resource, reduction_factor=reduction_factor
        )
    raise ValueError(
        f"{param}={pruner!r} is not a known pruner; expected one of {list(PRUNERS)} "
        "or an optuna.pruners.BasePruner instance."
    )


class ReportedRungsPruner(optuna.pruners.BasePruner):
    """Successive halving that compares trials by the values they reported at each rung.

    At each step in ``rungs`` a trial goes on if its value there is among the best
    ``max(1, n // reduction_factor)`` of the ``n`` values reported at that step so far by
    the study's trials (running, pruned or complete, itself included); at other steps it
    goes on.

    Optuna's ``SuccessiveHalvingPruner`` records a trial's rung value when that trial is
    asked, so trials that reach a rung at the same time are compared in the order they are
    asked: the first has no rival and goes on. Here the values are read from the reports.
    A fleet reports the epoch of all its trials in one transaction before the pruner is
    asked, so its trials reaching a rung together are all compared with each other, as in
    synchronous successive halving; a trial reaching a rung alone is compared with those
    before it (as ASHA), and the first one goes on.

    Args:
        rungs: the steps at which trials are compared.
        reduction_factor: keep the best ``1 / reduction_factor`` at each rung.

    Example:

    >>> import optuna
    >>> from tunefleet.strategies import ReportedRungsPruner
    >>> pruner = ReportedRungsPruner(rungs=[0, 2, 8], reduction_factor=3)
    >>> study = optuna.create_study(direction="maximize", pruner=pruner)
    >>> trials = [study.ask() for _ in range(3)]
    >>> for trial, value in zip(trials, [0.5, 0.9, 0.7]):  # one fleet epoch, step 0
    ...     trial.report(value, 0)
    >>> [trial.should_prune() for trial in trials]
    [True, False, True]
    """

    def __init__(self, rungs: Sequence[int], reduction_factor: int = 3) -> None:
        if reduction_factor < 2:
            raise ValueError(f"expected reduction_factor >= 2, got {reduction_factor}.")
        self.rungs = frozenset(int(step) for step in rungs)
        self.reduction_factor = reduction_factor

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        """Whether ``trial`` stops at its last reported step (see the class docstring)."""
        step = trial.last_step
        if step is None or step not in self.rungs:
            return False
        value = trial.intermediate_values[step]
        if math.isnan(value):  # cannot be ranked
            return True
        values = [value] + [
            t.intermediate_values[step]
            for t in study.get_trials(deepcopy=False)
            if t.number != trial.number
            and step in t.intermediate_values
            and t.state in (TrialState.RUNNING, TrialState.PRUNED, TrialState.COMPLETE)
            and not math.isnan(t.intermediate_values[step])
        ]
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        values.sort(reverse=maximize)
        threshold = values[max(1, len(values) // self.reduction_factor) - 1]
        return value < threshold if maximize else value > threshold


def prunes(pruner: optuna.pruners.BasePruner) -> bool:
    """Whether intermediate values are worth reporting to this pruner."""
    return not isinstance(pruner, optuna.pruners.NopPruner)


def describe(
    sampler: str | optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    schedule: str | None = None,
) -> str:
    """A short name of a strategy, such as ``"tpe + median"``, stored with a study.

    ``schedule`` names a schedule that replaces the pruner (the Hyperband tuner's
    brackets).

    >>> describe("tpe", optuna.pruners.MedianPruner())
    'tpe + median'
    >>> describe(optuna.samplers.RandomSampler(), optuna.pruners.NopPruner(), "hyperband")
    'RandomSampler + hyperband'
    >>> describe("grid", optuna.pruners.NopPruner())
    'grid'
    """
    name = sampler if isinstance(sampler, str) else type(sampler).__name__
    if schedule is None:
        schedule = type(pruner).__name__.removesuffix("Pruner").lower()
    return name if schedule == "nop" else f"{name} + {schedule}"


# -- Hyperband's arithmetic ----------------------------------------------------------------
# Two faces run Hyperband, two ways, and share only what is the same computation:
#
# * the Keras Tuner face (``tunefleet.tuners.hyperband.hyperband_plan``) plans synchronous
#   brackets before anything runs, as Keras Tuner does: from ``max_epochs`` (a minimum of
#   one epoch), round ``r`` of bracket ``s`` keeps ``ceil(end / (s + 1) * factor**(s - r))``
#   configurations (``end = ceil(1 + log_factor(max_epochs))``) and trains them to
#   ``ceil(max_epochs / factor**(s - r))`` epochs: its rung budgets count *down* from
#   ``max_epochs``, rounded up; the number of trials follows from the plan, and a round's
#   losers are pruned once the whole round is in;
# * the scikit-learn face (``HyperbandSearchCV``) uses Optuna's ``HyperbandPruner``
#   (:func:`make_pruner`): asynchronous successive halving over ``n_iter`` trials, each
#   put in a bracket by a hash of its number (bracket ``s`` weighted
#   ``ceil(n_brackets * factor**s / (s + 1))``), compared with the trials that reached
#   the same rung so far; its rung budgets count *up* from ``min_resource``
#   (``min_resource * factor**k``), and for a resource other than epochs a trial is
#   scored at :func:`rung_resources`.
#
# Both have ``floor(log_factor(max / min)) + 1`` brackets (Keras Tuner's ``min`` is one
# epoch): :func:`n_brackets`, computed in integers here for both. Their rungs agree when
# ``max / min`` is a power of ``factor`` (9 epochs, factor 3: 1, 3, 9 in both) and differ
# otherwise (10 epochs: Keras Tuner trains 2, 4, 10; Optuna compares at 1, 3, 9).


def n_brackets(min_resource: int, max_resource: int, factor: int) -> int:
    """Hyperband's number of brackets, ``floor(log_factor(max / min)) + 1``, exactly.

    Counted in integers: ``math.log(1000, 10)`` is ``2.9999999999999996``, which a
    ``floor`` would turn into one bracket too few.

    Example:

    >>> from tunefleet.strategies import n_brackets
    >>> n_brackets(1, 9, 3), n_brackets(1, 10, 3), n_brackets(1, 1000, 10), n_brackets(4, 4, 2)
    (3, 3, 4, 1)
    """
    if min_resource < 1 or max_resource < min_resource or factor < 2:
        raise ValueError(
            f"expected 1 <= min_resource <= max_resource and factor >= 2, got "
            f"min_resource={min_resource}, max_resource={max_resource}, factor={factor}."
        )
    k = 0
    while min_resource * factor ** (k + 1) <= max_resource:
        k += 1
    return k + 1


def rung_resources(min_resource: int, max_resource: int, factor: int) -> list[int]:
    """The budgets at which successive halving compares trials, smallest first.

    ``min_resource * factor**k`` below ``max_resource`` (one per bracket, see
    :func:`n_brackets`), then ``max_resource`` itself.

    Example:

    >>> from tunefleet.strategies import rung_resources
    >>> rung_resources(1, 9, 3), rung_resources(1, 10, 3), rung_resources(20, 100, 3)
    ([1, 3, 9], [1, 3, 9, 10], [20, 60, 100])
    """
    rungs = [
        min_resource * factor**k for k in range(n_brackets(min_resource, max_resource, factor))
    ]
    return [r for r in rungs if r < max_resource] + [max_resource]
