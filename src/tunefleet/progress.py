"""A progress bar for searches: trials done / total, best score, ETA; silent off a TTY."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SearchProgress:
    """Show a rich progress bar while a search runs, only on an interactive terminal.

    Args:
        total: the number of trials the search will run in all.
        done: trials already stored (a resumed search).
        description: the label in front of the bar.
        enabled: ``None`` = on when standard error is a terminal.

    Example:

    >>> from tunefleet.progress import SearchProgress
    >>> with SearchProgress(total=20, done=5) as bar:
    ...     bar.update(done=6, best=0.93)
    """

    def __init__(
        self, total: int, *, done: int = 0, description: str = "trials", enabled: bool | None = None
    ) -> None:
        self.total = total
        self.done = done
        self.description = description
        console = Console(stderr=True)
        self.enabled = console.is_terminal and sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: Any = None
        self._console = console

    def __enter__(self) -> SearchProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("best {task.fields[best]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self._console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.description, total=self.total, completed=self.done, best="-"
            )
        return self

    def update(self, *, done: int, best: float | None = None) -> None:
        """Move the bar to ``done`` trials and show the ``best`` score so far."""
        self.done = done
        if self._progress is not None:
            shown = "-" if best is None else f"{best:.4g}"
            self._progress.update(self._task, completed=done, best=shown)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
