"""A live view of a study while a search runs: optuna-dashboard on the same storage.

optuna-dashboard reads the Optuna storage directly, so it shows tunefleet studies as
they grow: the history, parameter importances, parallel coordinates, slice and contour
plots, the intermediate values (the learning curves every epoch, fold or fleet member
reports), the trials table with each trial's user attributes (``tunefleet:cv``,
``tunefleet:error``...). tunefleet adds nothing on top; it only binds it safely (to
127.0.0.1 unless asked otherwise: the dashboard has no authentication and can write
notes and trial states) and runs it in a thread when a program or a test needs its
prompt back.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna

from tunefleet.storage import open_storage_for_reading
from tunefleet.urls import mask_url

logger = logging.getLogger("tunefleet")


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("dashboard: " + format, *args)


class DashboardServer:
    """A running optuna-dashboard (see :func:`start_dashboard`).

    Attributes:
        host: the address it is bound to.
        port: the port it listens on (the one chosen when ``port=0`` was asked for).
        url: ``http://host:port/dashboard``.

    Example:

    >>> import optuna
    >>> from tunefleet.report import start_dashboard
    >>> storage = optuna.storages.InMemoryStorage()  # a storage object serves too
    >>> _ = optuna.create_study(storage=storage, study_name="demo")
    >>> server = start_dashboard(storage, port=0)
    >>> server.url == f"http://127.0.0.1:{server.port}/dashboard"
    True
    >>> server.stop()  # or use it as a context manager
    """

    def __init__(self, server: WSGIServer, thread: threading.Thread | None) -> None:
        self._server = server
        self._thread = thread
        self.host: str = server.server_address[0]
        self.port: int = server.server_address[1]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}/dashboard"

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DashboardServer(url={self.url!r})"


def _make_server(
    storage: str | optuna.storages.BaseStorage, host: str, port: int, quiet: bool
) -> WSGIServer:
    from optuna_dashboard import wsgi

    opened = open_storage_for_reading(storage)
    if not _is_loopback(host):
        logger.warning(
            "The dashboard is served on %s, reachable from other machines; it has no "
            "authentication and can change trials. Bind to 127.0.0.1 unless that is meant.",
            host,
        )
    app = wsgi(opened)
    handler = _QuietHandler if quiet else WSGIRequestHandler
    try:
        return make_server(host, port, app, server_class=_ThreadingServer, handler_class=handler)
    except OSError as exc:
        raise OSError(
            f"the dashboard cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another port (port=0 picks a free one)."
        ) from exc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_dashboard(
    storage: str | optuna.storages.BaseStorage,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    quiet: bool = True,
) -> DashboardServer:
    """Serve optuna-dashboard for ``storage`` from a background thread and return at once.

    Args:
        storage: an Optuna storage URL (``"sqlite:///tune.db"``), a SQLite or journal file path,
            or an Optuna storage object. Nothing is created: a missing SQLite file is
            refused.
        host: the address to bind (default loopback only).
        port: the port (``0`` picks a free one; see ``DashboardServer.port``).
        quiet: log requests at DEBUG level instead of printing them.

    Returns:
        The running server; call ``.stop()`` (or use it as a context manager).

    Example:

    >>> import os, tempfile, urllib.request, optuna
    >>> from tunefleet.report import start_dashboard
    >>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "tune.db")
    >>> _ = optuna.create_study(storage=url, study_name="demo")
    >>> with start_dashboard(url, port=0) as server:  # port=0: any free port
    ...     with urllib.request.urlopen(server.url) as page:
    ...         print(server.host, page.status)
    127.0.0.1 200
    """
    server = _make_server(storage, host, port, quiet)
    thread = threading.Thread(target=server.serve_forever, name="tunefleet-dashboard", daemon=True)
    thread.start()
    return DashboardServer(server, thread)


def serve_dashboard(
    storage: str | optuna.storages.BaseStorage,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    quiet: bool = False,
) -> None:
    """Serve optuna-dashboard for ``storage`` until interrupted (what ``tunefleet dashboard`` does).

    Blocks; Ctrl-C stops it cleanly.

    Args:
        storage: an Optuna storage URL, a SQLite or journal file path, or a storage object.
        host: the address to bind (default loopback only: the dashboard has no
            authentication).
        port: the port.
        quiet: do not print a line per request.

    Example:

    >>> import os, tempfile
    >>> from tunefleet.report import serve_dashboard
    >>> missing = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "missing.db")
    >>> serve_dashboard(missing)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: storage='sqlite:///.../missing.db': no such SQLite file ...

    On an existing storage it prints ``Dashboard of sqlite:///tune.db on
    http://127.0.0.1:8080/dashboard (Ctrl-C to stop)`` and serves until Ctrl-C.
    """
    server = _make_server(storage, host, port, quiet)
    handle = DashboardServer(server, None)
    label = mask_url(storage) if isinstance(storage, str) else type(storage).__name__
    print(f"Dashboard of {label} on {handle.url} (Ctrl-C to stop)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
