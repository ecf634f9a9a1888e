"""The triggers that keep `group_node_counts` (schema.py) in step with `nodes`, for SQLite.

A node counts in the row of its (cluster, group, type, release, status); each insert,
delete or change of one of those columns moves it between rows in the same statement's
transaction, so no code path that writes nodes can forget it.
"""

from __future__ import annotations

from sqlalchemy import DDL

_KEY = ("cluster_id", "group_name", "instance_type", "image_release_version", "status")


def _match(row: str) -> str:
    return " AND ".join(f"{column} = {row}.{column}" for column in _KEY)


def _count_in(row: str) -> str:
    columns = ", ".join(_KEY)
    values = ", ".join(f"{row}.{column}" for column in _KEY)
    return (
        f"INSERT INTO group_node_counts ({columns}, count) VALUES ({values}, 1) "
        f"ON CONFLICT ({columns}) DO UPDATE SET count = count + 1;"
    )


def _count_out(row: str) -> str:
    return (
        f"UPDATE group_node_counts SET count = count - 1 WHERE {_match(row)}; "
        f"DELETE FROM group_node_counts WHERE {_match(row)} AND count <= 0;"
    )


_CHANGED = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in _KEY)

TRIGGERS = (
    DDL(f"CREATE TRIGGER nodes_counted_in AFTER INSERT ON nodes BEGIN {_count_in('NEW')} END"),
    DDL(f"CREATE TRIGGER nodes_counted_out AFTER DELETE ON nodes BEGIN {_count_out('OLD')} END"),
    DDL(
        f"CREATE TRIGGER nodes_counted_moved AFTER UPDATE OF {', '.join(_KEY)} ON nodes "
        f"WHEN {_CHANGED} BEGIN {_count_out('OLD')} {_count_in('NEW')} END"
    ),
)
