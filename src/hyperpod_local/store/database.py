"""The Store: one SQLAlchemy engine, its schema kept at the newest revision, and units of work.

Everything that depends on the database being SQLite lives in this module: the data dir's
file and its one-process lock, the pragmas, BEGIN IMMEDIATE for writers, and how a busy
database is recognised. What PostgreSQL needs instead (one write lock for every replica on
the database, snapshot reads, the database's clock) is in store/postgresql.py. The
repositories (store/*.py) use only portable SQLAlchemy Core, so another database is another
configuration of the same Store."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

from hyperpod_local.domain.model import LATEST_IMAGE_RELEASE
from hyperpod_local.startup import StartupError, os_failure
from hyperpod_local.store import postgresql, schema
from hyperpod_local.store.clusters import ClusterMemory
from hyperpod_local.store.data_dir_lock import DataDirLock
from hyperpod_local.store.errors import Busy
from hyperpod_local.store.event_ids import KEY_SETTING as EVENT_ID_KEY
from hyperpod_local.store.event_ids import EventIds
from hyperpod_local.store.events import EventSeqs
from hyperpod_local.store.sqlite_failures import unusable_database
from hyperpod_local.store.unit_of_work import Tx

log = logging.getLogger(__name__)

# Every Alembic revision this release has, oldest first, the last one the head; a test checks
# them against the migration scripts. Kept here so a start-up needs no Alembic to know them.
REVISIONS = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
)
HEAD_REVISION = REVISIONS[-1]
_WRITE_OPTION = "hyperpod_write"
DATABASE_FILE = "hyperpod.db"
RELEASE_SETTING = "latest_image_release"
# HyperPod time as the engine last saved it: where a restarted server's clock goes on from,
# and, in a shared store, the manual clock every replica reads.
CLOCK_SETTING = "clock_time"
# The databases a store may be in, by SQLAlchemy dialect, and the extra that brings a driver.
DIALECTS = {"sqlite": None, "postgresql": "postgresql"}


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DATABASE_FILE}"


class NewerStoreError(StartupError):
    """The store was written by a newer release: one whose revision this one does not know.
    Migrating or using it could lose what that release keeps, so it is refused."""

    def __init__(self, url: str, revision: str) -> None:
        super().__init__(
            f"the store at {url} was written by a newer hyperpod-local (revision {revision}); "
            f"this release knows up to {HEAD_REVISION}: run that release, or use another "
            "data dir"
        )
        self.revision = revision


class Store:
    """The single source of truth. Every change happens in a unit of work from `write()`."""

    def __init__(
        self, url: str, *, lock: DataDirLock | None = None, database: Path | None = None
    ) -> None:
        self.url = url
        self._lock = lock
        # The data dir's SQLite file, to name in a StartupError (None: some other database).
        self._database = database
        self.engine: Engine = _create_engine(url)
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine)
        else:
            postgresql.configure(self.engine, _WRITE_OPTION)
        # Writers of this process, one after another in the order they came (write()).
        self._turns = _TurnTaking()
        # What write transactions loaded of clusters, for the next ones (store/clusters.py):
        # kept only while this process is the store's sole writer, forgotten on any rollback.
        self._cluster_memory = ClusterMemory()
        event.listen(self.engine, "rollback", self._cluster_memory.forget)
        event.listen(self.engine, "rollback_savepoint", self._cluster_memory.forget)
        self._ensure_schema()
        # Made with the store's schema (a new store's, or revision 0011's): every event's id
        # is made with it.
        self.event_ids = EventIds(str(self._scalar(_EVENT_ID_KEY)))
        self._generation = 0
        self._latest_release: str | None = None
        self._generation_lock = threading.Lock()
        # Events each committed unit of work of this process wrote, by cluster, until the
        # engine trims the cluster to its cap (engine/runner.py): a hint of when to look,
        # not a count to trust (another replica's are its own).
        self.events_written: Counter[str] = Counter()
        # Set by enable_outbox: then every unit of work keeps the event outbox, and the first
        # is called after each one that added to it commits.
        self._outbox: tuple[Callable[[], None], Callable[[], float]] | None = None

    @classmethod
    def open(cls, data_dir: Path, url: str | None = None) -> Store:
        """The store a server runs on: the database at `url`, or else the data dir's own
        SQLite file, locked for this process (one server per data dir). The data dir is made
        either way: the server keeps more than the store there (the admin token, the
        process provider's nodes)."""
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError as error:  # exist_ok covers a directory only
            raise StartupError(
                f"cannot use the data dir {data_dir}: it is a file, not a directory; "
                "choose another --data-dir, or move the file away"
            ) from error
        except OSError as error:
            raise os_failure("create the data dir", data_dir, error) from error
        if url is not None:
            return cls(url)
        lock = DataDirLock(data_dir)
        database = data_dir / DATABASE_FILE
        if _emptied(database):
            lock.release()
            raise StartupError(
                f"cannot use the database {database}: it is empty (0 bytes), so its data is "
                "gone; restore it from a backup, or delete it to start with an empty store"
            )
        try:
            store = cls(sqlite_url(data_dir), lock=lock, database=database)
            try:
                store._prove_writable()
            except BaseException:
                store.close()
                raise
            return store
        except BaseException as error:
            lock.release()
            unusable = unusable_database(error, database)
            if unusable is None:
                raise  # no known state of the file: a bug, whose traceback helps
            raise unusable from error

    def _prove_writable(self) -> None:
        """Write once now: sqlite opens a file it may not write (an immutable one, say)
        read-only without a word, and the engine's first step would fail, then every one."""
        with self.write() as tx:
            tx.conn.execute(text("UPDATE alembic_version SET version_num = version_num"))

    def unusable(self, error: BaseException) -> StartupError | None:
        """Why the data dir's database cannot be used, when `error` says so: for the first
        reads after `open`, which may find a page that it did not (a corrupt one)."""
        return None if self._database is None else unusable_database(error, self._database)

    @property
    def sole_writer(self) -> bool:
        """Whether this process is sure to be the store's only writer: it holds the data
        dir's lock. The response cache relies on it, and so does what this process keeps of
        the store in memory (the latest release); on PostgreSQL other replicas write too."""
        return self._lock is not None and self._lock.held

    @property
    def shared(self) -> bool:
        """Whether other servers may use this store at the same time: a PostgreSQL one,
        whose replicas then share its clock too (engine/clock.py)."""
        return self.engine.dialect.name != "sqlite"

    def claim(self, name: str) -> Claim:
        """Something only one server of the store may do at a time (deliver events to one
        target): always this one's on SQLite, whose data dir has one server."""
        return postgresql.SessionClaim(self.engine, name) if self.shared else _Sole()

    def clock_offset(self) -> tuple[float, float]:
        """How far ahead of this machine's clock the store's own clock is, and how sure that
        is, in seconds: every replica of a shared store takes its time from the database's
        clock. (0, 0) for SQLite, whose clock is this machine's."""
        return postgresql.clock_offset(self.engine) if self.shared else (0.0, 0.0)

    @property
    def generation(self) -> int | str:
        """A value that changes after every unit of work from `write()` ends (but one that
        says `answers_unchanged`). A read that began while it had one value saw no change
        made after it took that value: what the response cache relies on. This process is
        the data dir's only writer.

        In a shared store, every replica writes: the value is then the database's own
        snapshot (PostgreSQL's transactions committed and in flight), which moves with any
        replica's write, the saved clock's too."""
        if self.shared:
            return postgresql.snapshot(self.engine)
        return self._generation

    def enable_outbox(self, written: Callable[[], None], wall_clock: Callable[[], float]) -> None:
        """Keep the event outbox from now on (store/outbox.py), its entries stamped with
        `wall_clock`; `written` is called, on the writer's thread and so quickly, after each
        commit that added to it."""
        self._outbox = (written, wall_clock)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A transaction that holds the write lock from its first statement to its commit.
        This process's writers take turns first, in the order they came (`_TurnTaking`): the
        database's own lock is no queue, and the engine, writing again the moment it has
        committed, would keep a request waiting for seconds."""
        with self._turns, self._write() as tx:
            yield tx

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        tx: Tx | None = None
        committed = False
        outbox = self._outbox
        try:
            with _busy_as_error(), self.engine.connect() as conn:
                conn.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    tx = Tx(
                        conn,
                        self.event_ids,
                        self._event_seqs(),
                        outbox_clock=outbox[1] if outbox else None,
                        cluster_memory=self._cluster_memory if self.sole_writer else None,
                    )
                    yield tx
                    tx.before_commit()
                committed = True
        finally:
            if not committed:
                self._cluster_memory.forget()
            # After the commit (or rollback), never before: a reader that takes the new
            # value is sure to see what was written.
            if tx is None or not tx.answers_unchanged:
                with self._generation_lock:
                    self._generation += 1
        if committed and tx is not None and tx.events.added:
            # Still the writers' turn (write()): no other writer counts at the same time.
            self.events_written.update(tx.events.added)
        if committed and outbox is not None and tx is not None and tx.outbox.written:
            outbox[0]()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A transaction that sees one consistent snapshot and changes nothing."""
        with _busy_as_error(), self.engine.connect() as conn:
            if self.shared:
                # Said in the BEGIN itself (the driver's connection settings): no round trip.
                conn = conn.execution_options(**postgresql.SNAPSHOT)
            with conn.begin():
                yield Tx(conn, self.event_ids, self._event_seqs())

    def _event_seqs(self) -> EventSeqs:
        return postgresql.event_seqs if self.shared else _SqliteEventSeqs()

    def setting(self, key: str, default_factory: Any) -> str:
        """A value kept in the store for the life of the data dir, made on first use."""
        with self.write() as tx:
            value = tx.conn.scalar(
                select(schema.settings.c.value).where(schema.settings.c.key == key)
            )
            if value is None:
                value = default_factory()
                tx.conn.execute(schema.settings.insert(), dict(key=key, value=value))
            return str(value)

    def latest_release(self) -> str:
        """The newest HyperPod platform image release: new nodes get it, and a node on another
        is UpdateAvailable. Published through the admin API; kept in the store."""
        if self._latest_release is not None and self.sole_writer:
            return self._latest_release
        stored = self._scalar(_LATEST_RELEASE)
        self._latest_release = stored or LATEST_IMAGE_RELEASE
        return self._latest_release

    def publish_release(self, version: str) -> None:
        with self.write() as tx:
            self.put_setting(RELEASE_SETTING, version, tx=tx)
        self._latest_release = version

    def latest_time(self) -> float | None:
        """The latest HyperPod time anything in the store was stamped with."""
        columns = (
            schema.events.c.event_time,
            schema.clusters.c.creation_time,
            schema.nodes.c.sort_time,
            schema.operations.c.creation_time,
        )
        with self.read() as tx:
            found = [tx.conn.scalar(select(func.max(column))) for column in columns]
        return max((value for value in found if value is not None), default=None)

    def saved_time(self) -> float | None:
        """HyperPod time as last saved (`save_time`), None in a store that never saved one."""
        value = self._scalar(_SAVED_TIME)
        return None if value is None else float(value)

    def _scalar(self, query: Any) -> Any:
        """One value read in one statement. In a shared store, read on its own (autocommit):
        one statement sees one snapshot anyway, and this is read on every request (the
        manual clock, the latest release), so no BEGIN and COMMIT are spent on it."""
        with _busy_as_error(), self.engine.connect() as conn:
            if self.shared:
                return conn.execution_options(isolation_level="AUTOCOMMIT").scalar(query)
            with conn.begin():
                return conn.scalar(query)

    def save_time(self, now: float, *, tx: Tx | None = None) -> None:
        """Save HyperPod time `now`, unless a later time is saved already: replicas saving
        their own now one after another never move it back."""
        if tx is None:
            with self.write() as own:
                self.save_time(now, tx=own)
                own.answers_unchanged = True
            return
        value = repr(round(now, 3))
        raised = tx.conn.execute(_RAISE_TIME, {"time_text": value, "now": now})
        if raised.rowcount == 0 and tx.conn.scalar(_SAVED_TIME) is None:
            tx.conn.execute(schema.settings.insert(), dict(key=CLOCK_SETTING, value=value))

    def put_setting(self, key: str, value: str, *, tx: Tx | None = None) -> None:
        if tx is None:
            with self.write() as own:
                self.put_setting(key, value, tx=own)
            return
        updated = tx.conn.execute(
            schema.settings.update().where(schema.settings.c.key == key).values(value=value)
        )
        if updated.rowcount == 0:
            tx.conn.execute(schema.settings.insert(), dict(key=key, value=value))

    def close(self) -> None:
        self.engine.dispose()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _ensure_schema(self) -> None:
        if not self.shared:
            self._migrate()
            return
        try:
            with postgresql.migration_lock(self.engine):
                self._migrate()
        except OperationalError as error:
            # The driver's message runs over several lines: the start-up error is one.
            reason = " ".join(str(error.orig).split())
            raise StartupError(
                f"cannot use the store at {_without_password(self.engine)}: {reason}"
            ) from error

    def _migrate(self) -> None:
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                tables = set(inspect(conn).get_table_names())
                if "alembic_version" not in tables and "clusters" not in tables:
                    # A new store gets the whole schema at once: quicker than replaying
                    # every revision, and a test checks that both give the same schema.
                    schema.metadata.create_all(conn)
                    conn.execute(
                        text(
                            "CREATE TABLE alembic_version "
                            "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"
                        )
                    )
                    conn.execute(
                        text("INSERT INTO alembic_version VALUES (:v)"), {"v": HEAD_REVISION}
                    )
                    conn.execute(
                        schema.settings.insert(),
                        {"key": EVENT_ID_KEY, "value": secrets.token_hex(32)},
                    )
                    return
                current = conn.scalar(text("SELECT version_num FROM alembic_version"))
        if current == HEAD_REVISION:
            return
        # No row is Alembic's base: a store whose first revision never ran.
        if current is not None and current not in REVISIONS:
            raise NewerStoreError(_without_password(self.engine), str(current))
        log.info("migrating the store from revision %s to %s", current, HEAD_REVISION)
        try:
            upgrade(self.engine)
        except (RuntimeError, IntegrityError) as error:
            # The migration met a schema or rows it cannot bring to the head; its
            # transaction rolled back, so the store is as it was.
            raise StartupError(
                f"cannot upgrade the store at {_without_password(self.engine)} from revision "
                f"{current} to {HEAD_REVISION}: {error}; it is left as it was: run the "
                "release that wrote it, or move it away to start with an empty store"
            ) from error


_SAVED_TIME = select(schema.settings.c.value).where(schema.settings.c.key == CLOCK_SETTING)
_EVENT_ID_KEY = select(schema.settings.c.value).where(schema.settings.c.key == EVENT_ID_KEY)
_LATEST_RELEASE = select(schema.settings.c.value).where(schema.settings.c.key == RELEASE_SETTING)
_RAISE_TIME = (
    schema.settings.update()
    .where(schema.settings.c.key == CLOCK_SETTING)
    .where(cast(schema.settings.c.value, Float) < bindparam("now", type_=Float))
    .values(value=bindparam("time_text"))
)


# The last seq SQLite gave an event: AUTOINCREMENT keeps it, whatever rows went since.
_LAST_EVENT_SEQ = text("SELECT seq FROM sqlite_sequence WHERE name = 'events'")


class _SqliteEventSeqs:
    """Seqs for one unit of work's new events, after the last one given: read once, as the
    unit of work holds the write lock, so no one else gives any until it ends."""

    def __init__(self) -> None:
        self._next: int | None = None

    def __call__(self, conn: Connection, count: int) -> range:
        first = self._next
        if first is None:
            first = int(conn.scalar(_LAST_EVENT_SEQ) or 0) + 1
        # A step rolled back to its savepoint leaves these unused: a gap, never a reuse.
        self._next = first + count
        return range(first, first + count)


class Claim(Protocol):
    def held(self) -> bool:
        """Whether this server holds it, taking it if no other does."""
        ...

    def release(self) -> None: ...


class _Sole:
    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


class _TurnTaking:
    """A lock that threads get in the order they asked for it (a ticket lock), and that the
    thread holding it may take again (a unit of work opened inside another)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._changed:
            if self._owner == me:
                self._depth += 1
                return
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._changed.wait()
            self._owner, self._depth = me, 1

    def __exit__(self, *_exc: object) -> None:
        with self._changed:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._changed.notify_all()


def _emptied(database: Path) -> bool:
    """A database file cut to nothing. SQLite would take it for a new, empty store and start
    without a word; a store that was never written has no file at all, or its first pages
    still in the write-ahead log beside it."""
    try:
        if database.stat().st_size != 0:
            return False
    except OSError:
        return False
    wal = database.with_name(database.name + "-wal")
    return not (wal.exists() and wal.stat().st_size > 0)


@contextmanager
def _busy_as_error() -> Iterator[None]:
    try:
        yield
    except OperationalError as error:
        if "locked" in str(error.orig) or "busy" in str(error.orig) or postgresql.busy(error):
            raise Busy(str(error.orig)) from None
        raise


def _create_engine(url: str) -> Engine:
    """The SQLAlchemy engine of a store's URL: SQLite or PostgreSQL, with a clear word for
    another database or a driver that is not installed."""
    try:
        dialect = make_url(url).get_backend_name()
    except ArgumentError as error:
        raise StartupError(f"cannot use the store {url!r}: {error}") from error
    if dialect not in DIALECTS:
        raise StartupError(
            f"cannot use the store {url!r}: hyperpod-local keeps its store in SQLite or "
            f"PostgreSQL (postgresql+psycopg://USER@HOST:PORT/DATABASE), not {dialect}"
        )
    try:
        # No pre-ping: a round trip on every checkout; a connection PostgreSQL dropped fails
        # its request once, and SQLAlchemy then throws away the pool's other connections.
        return create_engine(url, pool_size=8, max_overflow=16)
    except ModuleNotFoundError as error:
        raise StartupError(
            f"cannot use the store {make_url(url).render_as_string()}: its driver "
            f"({error.name}) is not installed; pip install 'hyperpod-local[{DIALECTS[dialect]}]'"
        ) from error


def _without_password(engine: Engine) -> str:
    url = engine.url
    return str(url.database) if url.drivername.startswith("sqlite") else url.render_as_string()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations on the engine's database, in one transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with _foreign_keys_off(conn), conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, revision)


@contextmanager
def _foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite changes a table by making a new one and dropping the old, and with foreign
    keys on, dropping it would first delete every row that refers to it (ON DELETE CASCADE).
    The pragma is ignored inside a transaction, so it is set on the driver's connection
    before the migration's transaction begins, and put back after it ends; a revision that
    rebuilds a table runs foreign_key_check before it commits."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    was_on = driver.execute("PRAGMA foreign_keys").fetchone()[0]
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA foreign_keys={'ON' if was_on else 'OFF'}")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so sqlite3 must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only a power cut can lose the tail.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY when
        # another writer got in first; IMMEDIATE waits for the lock (busy_timeout) instead.
        # Said to the driver's connection: through exec_driver_sql it took 40 µs of every
        # transaction, a DescribeCluster's tenth. Its failure (the lock's busy timeout) is
        # raised as SQLAlchemy would have raised it.
        driver = conn.connection.driver_connection
        assert driver is not None
        begin = "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "BEGIN"
        try:
            driver.execute(begin)
        except sqlite3.Error as error:
            raise OperationalError(begin, None, error) from error
