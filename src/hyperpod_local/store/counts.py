"""Counts over the whole store, for /metrics: each one grouped query, run at scrape time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from hyperpod_local.store.schema import clusters, faults, nodes, tasks
from hyperpod_local.store.unit_of_work import Tx


@dataclass(frozen=True, slots=True)
class NodeCount:
    account_id: str
    region: str
    cluster: str
    group: str
    status: str
    count: int


def nodes_by_status(tx: Tx) -> list[NodeCount]:
    """How many nodes each group of each cluster has in each status."""
    # Grouped on the nodes alone, read from the index that covers DescribeCluster's counts;
    # the clusters (few) are joined to the groups, not to every node.
    counted = (
        select(nodes.c.cluster_id, nodes.c.group_name, nodes.c.status, func.count().label("n"))
        .group_by(nodes.c.cluster_id, nodes.c.group_name, nodes.c.status)
        .subquery()
    )
    rows = tx.conn.execute(
        select(
            clusters.c.account_id,
            clusters.c.region,
            clusters.c.name,
            counted.c.group_name,
            counted.c.status,
            counted.c.n,
        )
        .join(clusters, clusters.c.id == counted.c.cluster_id)
        .order_by(clusters.c.account_id, clusters.c.region, clusters.c.name)
    )
    return [NodeCount(*row) for row in rows]


def faults_by_kind(tx: Tx) -> dict[str, int]:
    rows = tx.conn.execute(select(faults.c.kind, func.count()).group_by(faults.c.kind))
    return {kind: count for kind, count in rows}


def tasks_due(tx: Tx, now: float) -> tuple[int, int]:
    """(steps due by `now`, steps scheduled in all)."""
    due = tx.conn.scalar(select(func.count()).select_from(tasks).where(tasks.c.due_at <= now))
    total = tx.conn.scalar(select(func.count()).select_from(tasks))
    return int(due or 0), int(total or 0)
