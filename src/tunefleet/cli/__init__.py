"""The ``tunefleet`` command: run a search from a script, and read what storages hold.

Commands:

* ``tunefleet tune SCRIPT.py``: import the script (as a module, not as ``__main__``),
  take its ``search`` (a tunefleet tuner such as ``RandomSearch``, or a ``*SearchCV``)
  and its ``data()`` (returning ``(X, y)`` or ``(x, y, fit_kwargs)``), apply the
  command's options, run the search with a progress bar and print the trials.
* ``tunefleet studies [STORAGE]``, ``tunefleet trials [STORAGE]``, ``tunefleet best
  [STORAGE]``, ``tunefleet delete STORAGE --study NAME``: read (or delete from) a
  storage only; nothing is imported from the scripts that filled it.

``STORAGE`` is a database URL (``sqlite:///tune.db``, ``postgresql://...``) or the path
of a SQLite file; the default is ``sqlite:///tunefleet.db`` in the current folder.
A search interrupted by Ctrl-C (or killed) keeps every completed trial: run the same
command again to resume it.
"""

from tunefleet.cli.commands import DEFAULT_STORAGE, app, main, storage_url
from tunefleet.cli.output import trial_rows

__all__ = ["DEFAULT_STORAGE", "app", "main", "storage_url", "trial_rows"]
