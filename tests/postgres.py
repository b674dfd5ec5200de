"""A throwaway PostgreSQL server for the storage tests (Debian's ``postgresql`` package).

``start_server`` runs ``initdb`` into a temporary folder and starts ``postgres`` on
127.0.0.1 at a free port with password authentication (so the tests see real logins
and real passwords to mask). As root, the server runs as the ``postgres`` user, which
Debian's package creates: PostgreSQL refuses to run as root.
``TUNEFLEET_TEST_POSTGRES_URL`` (a URL whose user may create databases) uses a running
server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

USER = "tunefleet"
PASSWORD = "pg-s3cret-pw"


@dataclass
class Server:
    """A PostgreSQL server: ``url(db)`` logs in to database ``db``."""

    host: str
    port: int
    user: str = USER
    password: str = PASSWORD
    data: Path | None = None
    bindir: str | None = None
    options: str = ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def start(self) -> None:
        assert self.data is not None
        self._ctl("start", "-w", "-o", self.options, "-l", str(self.data.parent / "server.log"))

    def _ctl(self, *args: str) -> None:
        assert self.data is not None and self.bindir is not None, "not a server we started"
        _run([os.path.join(self.bindir, "pg_ctl"), "-D", str(self.data), *args])


def binaries() -> str | None:
    """The folder of PostgreSQL's server programs, or ``None`` when not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _as_server_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(command: list[str]) -> None:
    subprocess.run(
        _as_server_user() + command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base: Path) -> Server:
    """initdb + start a server under ``base`` (which it owns); stop it with ``stop()``.

    ``base`` and its parents must be readable by the ``postgres`` user when run as root
    (a ``tempfile.mkdtemp()`` folder is; pytest's ``tmp_path`` is not).
    """
    bindir = binaries()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    password_file = base / "password"
    password_file.write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres", "postgres")
    data = base / "data"
    _run(
        [
            os.path.join(bindir, "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
        ]
    )
    port = _free_port()
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    server = Server("127.0.0.1", port, data=data, bindir=bindir, options=options)
    server.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not start: {(base / 'server.log').read_text()}")


def from_environment() -> Server | None:
    """The server ``TUNEFLEET_TEST_POSTGRES_URL`` names, if set."""
    url = os.environ.get("TUNEFLEET_TEST_POSTGRES_URL")
    if not url:
        return None
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Server(
        parsed.host or "127.0.0.1",
        parsed.port or 5432,
        parsed.username or "",
        parsed.password or "",
    )
