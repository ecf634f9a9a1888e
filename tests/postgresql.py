"""The PostgreSQL the tests run on: 127.0.0.1:5432, trust auth, database `test` (what CI has).

Each store gets a database of its own, made from `test`'s server and dropped when the test
process ends, so runs in parallel never meet. Without a PostgreSQL there the tests that need
one are skipped with a message; with HYPERPOD_REQUIRE_POSTGRESQL=1 (set by .ci/run, whose
machine always has one) they fail instead.

HYPERPOD_TEST_STORE=postgresql runs the integration tests on PostgreSQL: every server a test
starts (tests/support.ServerProcess) and every `sm` mock keep their store there.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import threading
from pathlib import Path

import pytest

HOST = os.environ.get("HYPERPOD_TEST_POSTGRESQL_HOST", "127.0.0.1")
PORT = int(os.environ.get("HYPERPOD_TEST_POSTGRESQL_PORT", "5432"))
USER = os.environ.get("HYPERPOD_TEST_POSTGRESQL_USER", "postgres")
ADMIN_DATABASE = "test"
REQUIRED = os.environ.get("HYPERPOD_REQUIRE_POSTGRESQL") == "1"
ON_POSTGRESQL = os.environ.get("HYPERPOD_TEST_STORE") == "postgresql"

_lock = threading.Lock()
# The databases this process made, by name: what each was made for.
_made: dict[str, str] = {}


def url_of(database: str) -> str:
    return f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{database}"


def _admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        host=HOST, port=PORT, user=USER, dbname=ADMIN_DATABASE, autocommit=True, connect_timeout=5
    )


@functools.cache
def unavailable() -> str | None:
    """Why there is no PostgreSQL to test on, or None if there is one (looked for once)."""
    try:
        _admin().close()
    except Exception as error:  # ImportError, or the server not there
        return f"no PostgreSQL at {HOST}:{PORT} ({error})".strip()
    return None


def require() -> None:
    """Skip the test (fail it on CI) when there is no PostgreSQL."""
    why = unavailable()
    if why is None:
        return
    if REQUIRED:
        pytest.fail(f"HYPERPOD_REQUIRE_POSTGRESQL=1 but {why}")
    pytest.skip(f"{why}: start one (trust auth, database {ADMIN_DATABASE}) to run these")


def database_for(key: str | Path) -> str:
    """The URL of the database of `key` (a data dir, say), made on first use: a server
    restarted on the same data dir finds its store again."""
    require()
    digest = hashlib.sha256(f"{os.getpid()}:{key}".encode()).hexdigest()[:16]
    name = f"hp_{os.getpid()}_{digest}"
    with _lock:
        if name not in _made:
            with _admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            _made[name] = str(key)
    return url_of(name)


def fresh_database() -> str:
    """The URL of a new, empty database."""
    return database_for(os.urandom(8).hex())


def drop(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _lock:
        _made.pop(name, None)
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@atexit.register
def drop_all() -> None:
    """Drop every database this process made (conftest.py calls it at the session's end:
    a pytest-xdist worker's process may end without running atexit)."""
    with _lock:
        names = list(_made)
        _made.clear()
    if not names:
        return
    try:
        with _admin() as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:
        pass  # the server went away: nothing of ours is left to drop
