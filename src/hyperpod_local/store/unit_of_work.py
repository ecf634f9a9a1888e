"""A unit of work: one transaction and the repositories that work inside it."""

from __future__ import annotations

from sqlalchemy import Connection

from hyperpod_local.store.clusters import ClusterRepository
from hyperpod_local.store.nodes import NodeRepository
from hyperpod_local.store.tags import TagRepository


class Tx:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.clusters = ClusterRepository(conn)
        self.nodes = NodeRepository(conn)
        self.tags = TagRepository(conn)
