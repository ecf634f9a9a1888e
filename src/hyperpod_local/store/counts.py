"""Counts over the whole store, for /metrics: each one grouped query, run at scrape time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select

from hyperpod_local.store.schema import clusters, faults, group_node_counts, tasks
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
    # group_node_counts holds a few rows a group (node_counts.py): no node row is read.
    tx.moves.flush()
    columns = (group_node_counts.c.cluster_id, group_node_counts.c.group_name)
    counted: dict[tuple[str, str, str], int] = defaultdict(int)
    for cluster_id, group, status, n in tx.conn.execute(
        select(*columns, group_node_counts.c.status, group_node_counts.c.count)
    ):
        counted[(cluster_id, group, status)] += n
    names = {
        row.id: row
        for row in tx.conn.execute(
            select(clusters.c.id, clusters.c.account_id, clusters.c.region, clusters.c.name)
        )
    }
    found = [
        NodeCount(cluster.account_id, cluster.region, cluster.name, group, status, n)
        for (cluster_id, group, status), n in counted.items()
        if (cluster := names.get(cluster_id)) is not None
    ]
    return sorted(found, key=lambda c: (c.account_id, c.region, c.cluster, c.group, c.status))


def faults_by_kind(tx: Tx) -> dict[str, int]:
    rows = tx.conn.execute(select(faults.c.kind, func.count()).group_by(faults.c.kind))
    return {kind: count for kind, count in rows}


def tasks_due(tx: Tx, now: float) -> tuple[int, int]:
    """(steps due by `now`, steps scheduled in all)."""
    due = tx.conn.scalar(select(func.count()).select_from(tasks).where(tasks.c.due_at <= now))
    total = tx.conn.scalar(select(func.count()).select_from(tasks))
    return int(due or 0), int(total or 0)
