"""A pytest plugin: scikit-learn's own search tests, run against tunefleet's searches.

``pytest -p tests.sklearn_swap --pyargs sklearn.model_selection.tests.test_search`` runs
the ``test_search.py`` shipped with the installed scikit-learn, with
``tunefleet.GridSearchCV`` and ``tunefleet.RandomizedSearchCV`` in place of
scikit-learn's: the plugin swaps the names in ``sklearn.model_selection`` when pytest is
configured, before the test module is imported (it imports them from there).

Tests that fail by design are marked ``xfail`` (not strict) with their reason, listed in
:data:`BY_DESIGN` and in ``docs/conformance.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import pytest

#: test name (without parameters) -> why it fails for tunefleet's searches by design.
BY_DESIGN: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Put tunefleet's searches where scikit-learn's test module imports them from."""
    import sklearn.model_selection

    import tunefleet

    sklearn.model_selection.GridSearchCV = tunefleet.GridSearchCV
    sklearn.model_selection.RandomizedSearchCV = tunefleet.RandomizedSearchCV


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the by-design differences as expected failures, with their reasons."""
    for item in items:
        reason = BY_DESIGN.get(item.originalname if hasattr(item, "originalname") else item.name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
