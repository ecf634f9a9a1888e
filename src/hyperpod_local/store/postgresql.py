"""What the Store does differently on PostgreSQL, where several servers (replicas) share one
database.

SQLite gives the Store one writer at a time (BEGIN IMMEDIATE); the repositories and the
engine's steps were written for that, and their correctness rests on it: a step that looks at
every node of a group, a ClientToken checked then recorded, an event's per-cluster order. On
PostgreSQL the same guarantee is one transaction-scoped advisory lock that every write
transaction takes first, in the database, so it holds across processes and machines:

- a replica killed in the middle of a unit of work (SIGKILL, a lost machine) drops its
  connection; PostgreSQL rolls the transaction back and the lock passes to the next writer:
  nothing half done, nothing to clean up, no lease to wait out;
- a replica that stops without dying (SIGSTOP, a paused VM) loses its transaction after
  `idle_in_transaction_session_timeout` (IDLE_LIMIT_MS), the lease's expiry;
- a writer waits at most LOCK_WAIT_MS for its turn and is then told the store is busy, as
  SQLite's busy_timeout does.

Readers take no lock: a read is one REPEATABLE READ snapshot, so a DescribeCluster never sees
half of a write, and any replica shows what another committed before the read began.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, text

# Advisory lock keys (any 64-bit numbers of our own; "hyperpod" and "migrate" in ASCII).
WRITE_LOCK = 0x6879706572706F64
MIGRATION_LOCK = 0x6D696772617465
# How long a writer waits for its turn before the request is answered as busy: SQLite's
# busy_timeout (store/database.py) is the same.
LOCK_WAIT_MS = 10_000
# A transaction left idle this long is ended by PostgreSQL: no unit of work waits between
# two statements for anything but Python (a lifecycle script never holds a transaction).
IDLE_LIMIT_MS = 60_000
# The SQLSTATEs of a lock that could not be had in time and of a transaction PostgreSQL ended.
_BUSY_STATES = frozenset({"55P03", "57014", "40P01", "25P03"})


def configure(engine: Engine, write_option: str) -> None:
    """Every write transaction holds the store's write lock from its first statement to its
    end (reads are snapshots: SNAPSHOT)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {IDLE_LIMIT_MS}")
            cursor.execute(f"SET lock_timeout = {LOCK_WAIT_MS}")
        dbapi_connection.commit()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(write_option):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")


# How Store.read() begins its transactions: one snapshot, and nothing written.
SNAPSHOT = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


def busy(error: BaseException) -> bool:
    """Whether a database error says the store was too busy (or the transaction was ended
    for holding it too long), rather than that something is wrong."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) in _BUSY_STATES


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Replicas starting together check and migrate the schema one after another: the first
    migrates, the others then find it current."""
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
            conn.commit()


def clock_offset(engine: Engine, samples: int = 5) -> tuple[float, float]:
    """How far the database server's clock is ahead of this machine's, in seconds, and the
    uncertainty of that (half the fastest round trip): every replica takes its time from the
    one database, so two replicas on two machines stamp in the database's time."""
    best: tuple[float, float] | None = None
    with engine.connect() as conn:
        for _ in range(samples):
            sent = time.time()
            server = float(conn.scalar(text("SELECT extract(epoch FROM clock_timestamp())")))
            received = time.time()
            half_trip = (received - sent) / 2
            if best is None or half_trip < best[1]:
                best = (server - (sent + half_trip), half_trip)
        conn.rollback()
    assert best is not None
    return best


def snapshot(engine: Engine) -> str:
    """The database's current snapshot (its transactions committed and in flight): the same
    text only while no transaction has begun writing or ended since."""
    with engine.connect() as conn:
        return str(
            conn.execution_options(isolation_level="AUTOCOMMIT").scalar(
                text("SELECT pg_current_snapshot()")
            )
        )


# From the serial's sequence, which no two replicas draw alike.
_NEXT_EVENT_SEQS = text(
    "SELECT nextval(pg_get_serial_sequence('events', 'seq')) FROM generate_series(1, :count)"
)


def event_seqs(conn: Connection, count: int) -> list[int]:
    """Seqs for `count` new events (store/events.py)."""
    return sorted(conn.scalars(_NEXT_EVENT_SEQS, {"count": count}))


class SessionClaim:
    """One thing only one replica does at a time (delivering to one event target): held while
    this replica's connection holds a session advisory lock, let go with the connection, so
    a replica that dies passes it on at once."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        # A stable 63-bit key from the name: every replica derives the same one.
        self._key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1
        self._conn: Connection | None = None

    def held(self) -> bool:
        """Whether this replica holds it, taking it if no replica does."""
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                if not self._conn.scalar(text(f"SELECT pg_try_advisory_lock({self._key})")):
                    self._let_go()
                    return False
                return True
            # Still connected, so still held: a lost connection took the lock with it.
            self._conn.scalar(text("SELECT 1"))
            return True
        except Exception:
            self._let_go()
            return False

    def release(self) -> None:
        self._let_go()

    def _let_go(self) -> None:
        if self._conn is not None:
            # A connection already broken: PostgreSQL ended the session and its lock.
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
