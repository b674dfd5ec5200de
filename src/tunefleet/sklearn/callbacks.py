"""scikit-learn's fit callbacks (``search.set_callbacks(...)``, scikit-learn >= 1.9) in a search.

A search calls the hooks of the callbacks set on it on scikit-learn's task tree: the
root task (the whole ``fit``), its ``"search"`` task, one ``"candidate-split-evaluation"``
task per fit of a configuration on a fold, and the ``"refit-with-best-params"`` task;
auto-propagated callbacks reach each fitted clone of the estimator. ``setup`` and
``teardown`` are called once per ``fit`` (:func:`managed_callbacks`), also when it raises.

The per-fit tasks run where the fits run: hooks are called for the trials run in the
search's process (``n_jobs=1``). Trials run by worker processes or Ray actors call no
per-fit hook (a callback object lives in the search's process); the search logs a
warning saying so. Fleets fall back to one-by-one training when callbacks are set. With
scikit-learn before 1.9, nothing here does anything.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

__all__ = ["SearchCallbacks", "managed_callbacks"]

logger = logging.getLogger("tunefleet")


def managed_callbacks(search: Any) -> AbstractContextManager[Any]:
    """scikit-learn's ``setup``/``teardown`` management around a search's ``fit``."""
    try:
        from sklearn.callback._callback_support import callback_management_context
    except ImportError:  # scikit-learn < 1.9
        return nullcontext()
    return callback_management_context(search)


def _metadata(sample_weight: Any) -> dict[str, Any] | None:
    return None if sample_weight is None else {"sample_weight": sample_weight}


class SearchCallbacks:
    """The hooks of one ``fit`` of ``search``, on scikit-learn's task tree.

    Args:
        search: the search being fitted (every hook receives it as ``estimator``).
        X, y: the search's data.
        sample_weight: the ``sample_weight`` passed to ``fit``, if any (hooks receive it
            as ``metadata``).

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from tunefleet import GridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GridSearchCV(DecisionTreeClassifier(), {"max_depth": [2, 3]})
    >>> with managed_callbacks(search):
    ...     hooks = SearchCallbacks(search, X, y)
    ...     with hooks.search_task(n_fits=10):
    ...         pass
    ...     hooks.end()
    """

    def __init__(self, search: Any, X: Any, y: Any, sample_weight: Any = None) -> None:
        self.search = search
        self.X, self.y = X, y
        self.metadata = _metadata(sample_weight)
        self._ids = itertools.count()
        self._search_ctx: Any = None
        self.root: Any = None
        if hasattr(search, "_init_callback_context"):  # scikit-learn >= 1.9
            refit = search.refit is not False
            self.root = search._init_callback_context(max_subtasks=1 + refit)
            self.root.call_on_fit_task_begin(estimator=search, X=X, y=y, metadata=self.metadata)

    @property
    def active(self) -> bool:
        """Whether a callback is set (or propagated) on the search."""
        return self.root is not None and bool(self.root._callbacks)

    @contextmanager
    def search_task(self, n_fits: int | None) -> Iterator[None]:
        """The ``"search"`` task, around the trials; ``n_fits``: at most, if known."""
        if self.root is None:
            yield
            return
        self._search_ctx = self.root.subcontext(
            task_name="search", max_subtasks=n_fits, sequential_subtasks=False
        ).call_on_fit_task_begin(estimator=self.search)
        try:
            yield
        finally:
            self._search_ctx.call_on_fit_task_end(estimator=self.search)

    @contextmanager
    def fold_fit(
        self, estimator: Any, X: Any, y: Any, fit_params: dict[str, Any]
    ) -> Iterator[None]:
        """A ``"candidate-split-evaluation"`` task around one fold's ``estimator.fit``."""
        context = self._search_ctx.subcontext(
            task_name="candidate-split-evaluation", task_id=next(self._ids)
        )
        metadata = _metadata(fit_params.get("sample_weight"))
        try:
            with context.propagate_callback_context(estimator):
                context.call_on_fit_task_begin(estimator=self.search, X=X, y=y, metadata=metadata)
                yield
        finally:
            context.call_on_fit_task_end(estimator=self.search, X=X, y=y, metadata=metadata)

    @contextmanager
    def refit(self, estimator: Any) -> Iterator[None]:
        """The ``"refit-with-best-params"`` task around the refit of ``estimator``."""
        if self.root is None:
            yield
            return
        context = self.root.subcontext(task_name="refit-with-best-params")
        with context.propagate_callback_context(estimator):
            context.call_on_fit_task_begin(
                estimator=self.search, X=self.X, y=self.y, metadata=self.metadata
            )
            yield
        context.call_on_fit_task_end(
            estimator=self.search, X=self.X, y=self.y, metadata=self.metadata
        )

    def end(self) -> None:
        """The end of the root task (the search's ``fit`` returns)."""
        if self.root is not None:
            self.root.call_on_fit_task_end(
                estimator=self.search, X=self.X, y=self.y, metadata=self.metadata
            )

    def fold_hook(self, in_process: bool) -> Any:
        """What :class:`~tunefleet.trial.CrossValidation` takes as ``fit_hook``.

        ``None`` when no callback is set, or when the trials run outside this process
        (logged: their fits call no hook).
        """
        if not self.active:
            return None
        if not in_process:
            logger.warning(
                "%s: the callbacks set on the search receive no per-fit hooks for trials "
                "run by worker processes or Ray actors (only the search's own tasks); "
                "use n_jobs=1 for them.",
                type(self.search).__name__,
            )
            return None
        return self.fold_fit
