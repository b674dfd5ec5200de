import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

# Tests build many identical tiny Keras models; JAX's persistent compilation cache
# (a fresh directory per test session) turns the repeated XLA compilations into
# cache hits. Set before JAX is imported; an explicit setting by the user wins.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _jax_cache_dir = tempfile.mkdtemp(prefix="tunefleet-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _jax_cache_dir
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    atexit.register(shutil.rmtree, _jax_cache_dir, ignore_errors=True)


def _throwaway_postgres_server():
    """Start a PostgreSQL server in a temporary folder (``tests/postgres.py``); yield it.

    Skipped where PostgreSQL is not installed, except in CI (``CI=true``), which must
    run these tests: ``.ci/run`` installs Debian's ``postgresql``.
    """
    import postgres

    if postgres.binaries() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must test PostgreSQL storage: apt-get install postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="tunefleet-pg-"))
    server = postgres.start_server(base)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session: the running one ``TUNEFLEET_TEST_POSTGRES_URL``
    names (CI starts one, ``.ci/start-services``), else a throwaway one."""
    import postgres

    server = postgres.from_environment()
    if server is not None:
        yield server
        return
    yield from _throwaway_postgres_server()


@pytest.fixture(scope="module")
def own_postgres_server():
    """A throwaway PostgreSQL server that a test may stop and start again (never the shared
    one of ``TUNEFLEET_TEST_POSTGRES_URL``)."""
    yield from _throwaway_postgres_server()


@pytest.fixture(params=["sqlite", "journal", "postgresql"])
def shared_storage(request, tmp_path):
    """A fresh storage URL that processes share: SQLite, an Optuna journal, PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tune.db'}"
    if request.param == "journal":
        return f"journal:///{tmp_path / 'tune.log'}"
    return request.getfixturevalue("postgres_server").create_database()
