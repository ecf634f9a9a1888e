"""A unit of work: one transaction and the repositories that work inside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from hyperpod_local.store.attachments import AttachmentRepository
from hyperpod_local.store.clusters import ClusterMemory, ClusterRepository
from hyperpod_local.store.event_ids import EventIds
from hyperpod_local.store.events import EventRepository, EventSeqs
from hyperpod_local.store.extensions import ExtensionRepository
from hyperpod_local.store.faults import FaultRepository
from hyperpod_local.store.instances import InstanceRepository
from hyperpod_local.store.node_counts import Moves
from hyperpod_local.store.nodes import NodeRepository
from hyperpod_local.store.outbox import OutboxRepository
from hyperpod_local.store.tags import TagRepository
from hyperpod_local.store.task_governance import PolicyRepository
from hyperpod_local.store.tasks import TaskRepository
from hyperpod_local.store.tokens import TokenRepository


class Tx:
    def __init__(
        self,
        conn: Connection,
        event_ids: EventIds,
        event_seqs: EventSeqs,
        *,
        outbox_clock: Callable[[], float] | None = None,
        cluster_memory: ClusterMemory | None = None,
    ) -> None:
        self.conn = conn
        # Set by a unit of work that wrote nothing any API answer shows (the saved clock):
        # the response cache may then keep its answers.
        self.answers_unchanged = False
        # group_node_counts' moves, written once (before the commit, or a read of them).
        self.moves = Moves(conn)
        self.clusters = ClusterRepository(conn, cluster_memory, self.moves)
        self.nodes = NodeRepository(conn, self.moves)
        self.tags = TagRepository(conn)
        self.tasks = TaskRepository(conn)
        # `outbox_clock`: this store keeps an event outbox (a server that delivers events,
        # outlets/), its entries stamped with this wall clock.
        self.outbox = OutboxRepository(conn, outbox_clock, cluster_memory)
        self.events = EventRepository(conn, self.outbox, event_ids, event_seqs)
        self.instances = InstanceRepository(conn)
        self.faults = FaultRepository(conn)
        self.tokens = TokenRepository(conn)
        self.attachments = AttachmentRepository(conn)
        self.extensions = ExtensionRepository(conn)
        self.policies = PolicyRepository(conn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A savepoint, rolled back if the block raises (an engine step's). Said to the
        driver's connection: SQLAlchemy's begin_nested compiles its SAVEPOINT anew every
        time, and even its exec_driver_sql costs ten times the driver's own call (10 µs a
        pair against 1, every step). The same SQL on SQLite and PostgreSQL; nothing of
        SQLAlchemy's keeps track of savepoints it did not make."""
        driver = self.conn.connection.driver_connection
        assert driver is not None
        # Before the SAVEPOINT: what was pending is the parent's, and no rollback undoes it.
        self.moves.savepoint_began()
        driver.execute("SAVEPOINT hyperpod_step")
        try:
            yield
        except BaseException:
            driver.execute("ROLLBACK TO SAVEPOINT hyperpod_step")
            driver.execute("RELEASE SAVEPOINT hyperpod_step")
            self.moves.savepoint_rolled_back()
            self.nodes.rolled_back()
            self.clusters.rolled_back()
            raise
        driver.execute("RELEASE SAVEPOINT hyperpod_step")

    def before_commit(self) -> None:
        """What the unit of work kept to write once is written."""
        self.moves.flush()
