"""`group_node_counts` (schema.py), kept by the code that writes `nodes`, in the statement's
own unit of work: NodeRepository and ClusterRepository are the only writers of `nodes`, and
each of their writes moves the counts it changes.

Until revision 0010 triggers kept them, three statements for every row written: a settle of
a fleet wrote each node twice, and the triggers cost more than the writes. Here a batch of
rows costs one upsert per (group, type, release, status) it touches. Every change is
counted from what the store holds, read in the same transaction under its write lock, not
from what a node object remembers, so a stale copy cannot skew a count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, delete, select, text

from hyperpod_local.store import bulk
from hyperpod_local.store.schema import group_node_counts, nodes

# A node counts in the row of its (cluster, group, type, release, status).
COUNTED = ("cluster_id", "group_name", "instance_type", "image_release_version", "status")
Key = tuple[str, str, str, str, str]

_COLUMNS = ", ".join(COUNTED)
# Text, not a dialect's insert construct: SQLite and PostgreSQL spell the upsert alike.
_MOVE = text(
    f"INSERT INTO group_node_counts ({_COLUMNS}, count) "
    f"VALUES ({', '.join(f':{name}' for name in COUNTED)}, :delta) "
    f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET count = group_node_counts.count + excluded.count"
)
# A count of 0 has no row.
_DROP_EMPTY = text(
    "DELETE FROM group_node_counts WHERE "
    + " AND ".join(f"{name} = :{name}" for name in COUNTED)
    + " AND count <= 0"
)
_KEYS_OF = select(nodes.c.id, *(nodes.c[name] for name in COUNTED)).where(
    nodes.c.id.in_(bindparam("row_ids", expanding=True))
)
_CHUNK = 500


def move(conn: Connection, moves: Counter[Key]) -> None:
    """Add each key's delta to its count."""
    changed = [(*key, delta) for key, delta in moves.items() if delta]
    if not changed:
        return
    bulk.executemany(conn, _MOVE, (*COUNTED, "delta"), changed)
    emptied = [key for key, delta in moves.items() if delta < 0]
    if emptied:
        bulk.executemany(conn, _DROP_EMPTY, COUNTED, emptied)


def keys_of(conn: Connection, row_ids: Sequence[int]) -> dict[int, Key]:
    """What the store holds now of each node's counted columns, by row id."""
    found: dict[int, Key] = {}
    for start in range(0, len(row_ids), _CHUNK):
        chunk = list(row_ids[start : start + _CHUNK])
        for row in conn.execute(_KEYS_OF, {"row_ids": chunk}):
            found[row[0]] = (row[1], row[2], row[3], row[4], row[5])
    return found


def recount(conn: Connection, cluster_id: str) -> None:
    """Count the cluster's nodes afresh: after a statement that changed many at once."""
    conn.execute(delete(group_node_counts).where(group_node_counts.c.cluster_id == cluster_id))
    conn.execute(
        text(
            f"INSERT INTO group_node_counts ({_COLUMNS}, count) "
            f"SELECT {_COLUMNS}, count(*) FROM nodes WHERE cluster_id = :cluster_id "
            f"GROUP BY {_COLUMNS}"
        ),
        {"cluster_id": cluster_id},
    )


def forget(conn: Connection, cluster_id: str) -> None:
    """The cluster's nodes are gone."""
    conn.execute(delete(group_node_counts).where(group_node_counts.c.cluster_id == cluster_id))
