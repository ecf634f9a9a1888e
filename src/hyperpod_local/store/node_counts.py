"""`group_node_counts` (schema.py), kept by the code that writes `nodes`, in the statement's
own unit of work: NodeRepository and ClusterRepository are the only writers of `nodes`, and
each of their writes moves the counts it changes.

Until revision 0010 triggers kept them, three statements for every row written: a settle of
a fleet wrote each node twice, and the triggers cost more than the writes. Here the moves of
a unit of work are summed (`Moves`) and written once, at most one upsert per (group, type,
release, status) they touch, before anything reads the table and before the commit; a step
that takes a node from Pending to Running and another that takes one back cancel out. Every
change is counted from what the store holds, read in the same transaction under its write
lock (or known from a read of it since which nothing wrote that row), not from what a node
object remembers, so a stale copy cannot skew a count.
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


Group = tuple[str, str]


class Moves:
    """The count moves of one unit of work not yet written, and the rows whose counted key it
    knows from a read. Shared by the repositories that write `nodes`: a write by any of them
    may change what the others know."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # By (cluster, group): a read asks for one group's. Only ever the moves made since
        # the innermost savepoint open began (savepoint_began writes the others), so a
        # rollback to it drops them all, and a release leaves them to its parent as they are.
        self._pending: dict[Group, Counter[Key]] = {}
        # Row id -> id() of the node object (NodeRepository keeps it, and so its identity)
        # whose last read or write is what the store holds of that row.
        self.fresh: dict[int, int] = {}

    def add(self, moves: Counter[Key]) -> None:
        pending = self._pending
        for key, delta in moves.items():
            if delta:
                group = pending.get((key[0], key[1]))
                if group is None:
                    group = pending[(key[0], key[1])] = Counter()
                group[key] += delta

    def flush(self) -> None:
        """Write what is pending: before group_node_counts is read, before a savepoint, and
        before the commit."""
        if not self._pending:
            return
        summed: Counter[Key] = Counter()
        for moves in self._pending.values():
            summed.update(moves)
        self._pending = {}
        move(self.conn, summed)

    def pending_in(self, cluster_id: str, group_name: str) -> list[tuple[Key, int]]:
        """The moves not yet written to the group's counts: a read of the table adds them
        rather than writing them first."""
        moves = self._pending.get((cluster_id, group_name))
        return list(moves.items()) if moves else []

    def recount(self, cluster_id: str) -> None:
        self._drop(cluster_id)
        recount(self.conn, cluster_id)

    def forget(self, cluster_id: str) -> None:
        self._drop(cluster_id)
        forget(self.conn, cluster_id)

    def _drop(self, cluster_id: str) -> None:
        """The cluster's counts are about to be made afresh from its nodes (or dropped): its
        pending moves are in them, and what was known of its rows may have changed."""
        self._pending = {g: m for g, m in self._pending.items() if g[0] != cluster_id}
        self.fresh.clear()

    def savepoint_began(self) -> None:
        self.flush()

    def savepoint_rolled_back(self) -> None:
        self._pending = {}
        self.fresh.clear()


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
