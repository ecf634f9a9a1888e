"""Cluster extensions, one row each, their changing fields kept together as one document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, text, update

from hyperpod_local.domain.extensions import Extension
from hyperpod_local.store.schema import cluster_extensions, nodes

_COLUMNS = ("arn", "cluster_id", "name", "creation_time", "seq")


class ExtensionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, extension: Extension) -> None:
        extension.seq = (
            int(self.conn.scalar(select(func.coalesce(func.max(cluster_extensions.c.seq), 0))) or 0)
            + 1
        )
        self.conn.execute(cluster_extensions.insert(), _row(extension))

    def save(self, extension: Extension) -> None:
        self.conn.execute(
            update(cluster_extensions)
            .where(cluster_extensions.c.arn == extension.arn)
            .values(state=_row(extension)["state"])
        )

    def get(self, arn: str) -> Extension | None:
        row = self.conn.execute(
            select(cluster_extensions).where(cluster_extensions.c.arn == arn)
        ).first()
        return None if row is None else _extension(row)

    def by_name(self, cluster_id: str, name: str) -> Extension | None:
        row = self.conn.execute(
            select(cluster_extensions).where(
                cluster_extensions.c.cluster_id == cluster_id, cluster_extensions.c.name == name
            )
        ).first()
        return None if row is None else _extension(row)

    def of_cluster(self, cluster_id: str) -> list[Extension]:
        """The cluster's extensions, oldest first."""
        rows = self.conn.execute(
            select(cluster_extensions)
            .where(cluster_extensions.c.cluster_id == cluster_id)
            .order_by(cluster_extensions.c.creation_time, cluster_extensions.c.seq)
        )
        return [_extension(row) for row in rows]

    def page(
        self,
        cluster_id: str,
        after: tuple[float, int] | None,
        limit: int,
        created_after: float | None,
        created_before: float | None,
    ) -> list[Extension]:
        """Up to `limit` of the cluster's extensions after the keyset position, oldest first."""
        table = cluster_extensions
        stmt = select(table).where(table.c.cluster_id == cluster_id)
        if after is not None:
            stmt = stmt.where(
                (table.c.creation_time > after[0])
                | ((table.c.creation_time == after[0]) & (table.c.seq > after[1]))
            )
        if created_after is not None:
            stmt = stmt.where(table.c.creation_time >= created_after)
        if created_before is not None:
            stmt = stmt.where(table.c.creation_time <= created_before)
        stmt = stmt.order_by(table.c.creation_time, table.c.seq).limit(limit)
        return [_extension(row) for row in self.conn.execute(stmt)]

    def running_among(self, cluster_id: str, instance_ids: list[str] | None = None) -> int:
        """How many of the cluster's nodes are Running (of `instance_ids`, if given): the
        nodes an extension targets, counted in the database whatever the cluster's size."""
        # `status = 'Running'` as ix_nodes_running has it: the count reads that index alone.
        running = (nodes.c.cluster_id == cluster_id) & text("status = 'Running'")
        if instance_ids is None:
            return int(self.conn.scalar(select(func.count()).where(running)) or 0)
        total = 0
        for start in range(0, len(instance_ids), 500):
            chunk = instance_ids[start : start + 500]
            stmt = select(func.count()).where(running, nodes.c.instance_id.in_(chunk))
            total += int(self.conn.scalar(stmt) or 0)
        return total

    def remove(self, arn: str) -> None:
        self.conn.execute(delete(cluster_extensions).where(cluster_extensions.c.arn == arn))

    def arns_of_cluster(self, cluster_id: str) -> list[str]:
        return list(
            self.conn.scalars(
                select(cluster_extensions.c.arn).where(
                    cluster_extensions.c.cluster_id == cluster_id
                )
            )
        )

    def forget_cluster(self, cluster_id: str) -> None:
        self.conn.execute(
            delete(cluster_extensions).where(cluster_extensions.c.cluster_id == cluster_id)
        )


def _row(extension: Extension) -> dict[str, Any]:
    fields = asdict(extension)
    return {
        **{name: fields.pop(name) for name in _COLUMNS},
        "state": fields,
    }


def _extension(row: Row[Any]) -> Extension:
    return Extension(**{name: getattr(row, name) for name in _COLUMNS}, **row.state)
