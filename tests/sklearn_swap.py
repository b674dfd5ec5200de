"""A pytest plugin: scikit-learn's own search tests, run against tunefleet's searches.

``pytest -p tests.sklearn_swap --pyargs sklearn.model_selection.tests.test_search`` runs
the ``test_search.py`` shipped with the installed scikit-learn, with
``tunefleet.GridSearchCV`` and ``tunefleet.RandomizedSearchCV`` in place of
scikit-learn's: the plugin swaps the names in ``sklearn.model_selection`` when pytest is
configured, before the test module is imported (it imports them from there).

Tests that fail by design (:data:`BY_DESIGN`) and those that fail because tunefleet does
not do yet what they check (:data:`NOT_YET`) are marked ``xfail`` (not strict) with their
reason; both lists are in ``docs/conformance.md``. Any other failure fails the run.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import pytest

_KEYS = (
    "cv_results_ has two more keys, trial_number and state, that trace each row to its "
    "Optuna trial (the reports, best_trials_ and trials_dataframe use them)"
)
_RUN_SEARCH = (
    "trials are asked from and told to an Optuna study (persistent, resumable, parallel "
    "workers); a subclass's _run_search(evaluate_candidates) is not called"
)

_ORDER = (
    "RandomizedSearchCV draws part of a space of lists, or a space with a distribution, "
    "in the order of its Optuna sampler, not of scikit-learn's ParameterSampler generator "
    "(a space of lists drawn whole runs in scikit-learn's grid order); the test reads rows "
    "by position"
)

#: test name (without parameters) -> why it fails for tunefleet's searches by design.
BY_DESIGN: dict[str, str] = {
    "test_grid_search_cv_results": _KEYS,
    "test_random_search_cv_results": _KEYS,
    "test_custom_run_search": _RUN_SEARCH,
    "test_search_with_2d_array": _ORDER,
}

_ROUTING = "metadata routing (sample_weight, scorer params) is not implemented yet"
_CALLBACKS = "scikit-learn 1.9's search callbacks are not implemented yet"

#: test name -> what tunefleet does not do yet (open work, not by design).
NOT_YET: dict[str, str] = {
    "test_unsupported_sample_weight_scorer": _ROUTING,
    "test_search_cv_sample_weight_equivalence": _ROUTING,
    "test_search_cv_verbose_3": "verbose=3 prints per trial, not scikit-learn's per fit lines",
    "test_multi_metric_search_forwards_metadata": _ROUTING,
    "test_search_callbacks_no_propagation": _CALLBACKS,
    "test_search_callbacks_propagation": _CALLBACKS,
    "test_search_callbacks_receive_sample_weight": _CALLBACKS,
    "test_search_callbacks_with_partial_fit_failures": _CALLBACKS,
}

#: every listed test, by design or not yet.
LISTED: dict[str, str] = {**BY_DESIGN, **NOT_YET}


def pytest_configure(config: pytest.Config | None) -> None:
    """Put tunefleet's searches where scikit-learn's test module imports them from."""
    import sklearn.model_selection

    import tunefleet

    sklearn.model_selection.GridSearchCV = tunefleet.GridSearchCV
    sklearn.model_selection.RandomizedSearchCV = tunefleet.RandomizedSearchCV


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the by-design differences as expected failures, with their reasons."""
    for item in items:
        name = getattr(item, "originalname", item.name)
        if name in BY_DESIGN:
            item.add_marker(pytest.mark.xfail(reason=f"by design: {BY_DESIGN[name]}", strict=False))
        elif name in NOT_YET:
            item.add_marker(pytest.mark.xfail(reason=f"not yet: {NOT_YET[name]}", strict=False))
