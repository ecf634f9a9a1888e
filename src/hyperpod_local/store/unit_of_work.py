"""A unit of work: one transaction and the repositories that work inside it."""

from __future__ import annotations

from sqlalchemy import Connection

from hyperpod_local.store.clusters import ClusterRepository
from hyperpod_local.store.events import EventRepository
from hyperpod_local.store.faults import FaultRepository
from hyperpod_local.store.instances import InstanceRepository
from hyperpod_local.store.nodes import NodeRepository
from hyperpod_local.store.outbox import OutboxRepository
from hyperpod_local.store.tags import TagRepository
from hyperpod_local.store.tasks import TaskRepository
from hyperpod_local.store.tokens import TokenRepository


class Tx:
    def __init__(self, conn: Connection, *, outbox: bool = False) -> None:
        self.conn = conn
        # Set by a unit of work that wrote nothing any API answer shows (the saved clock):
        # the response cache may then keep its answers.
        self.answers_unchanged = False
        self.clusters = ClusterRepository(conn)
        self.nodes = NodeRepository(conn)
        self.tags = TagRepository(conn)
        self.tasks = TaskRepository(conn)
        # `outbox`: this store keeps one (a server that delivers events, outlets/).
        self.outbox = OutboxRepository(conn, outbox)
        self.events = EventRepository(conn, self.outbox)
        self.instances = InstanceRepository(conn)
        self.faults = FaultRepository(conn)
        self.tokens = TokenRepository(conn)
