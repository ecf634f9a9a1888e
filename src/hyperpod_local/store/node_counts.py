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
# Moves by (cluster, group): a read asks for one group's, whatever else is pending.
Layer = dict[Group, Counter[Key]]


class Moves:
    """The count moves of one unit of work not yet written, and the rows whose counted key it
    knows from a read. Shared by the repositories that write `nodes`: a write by any of them
    may change what the others know."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # The moves made outside any savepoint, then those of each savepoint open (an engine
        # step's), innermost last: a rollback drops the innermost.
        self._layers: list[Layer] = [{}]
        # For each savepoint open, the moves of the layers below it written since it began
        # (layer index, moves): a rollback to it undoes those writes, so they are pending
        # again.
        self._written_inside: list[list[tuple[int, Layer]]] = []
        # Row id -> id() of the node object (NodeRepository keeps it, and so its identity)
        # whose last read or write is what the store holds of that row.
        self.fresh: dict[int, int] = {}

    def add(self, moves: Counter[Key]) -> None:
        layer = self._layers[-1]
        for key, delta in moves.items():
            if delta:
                group = layer.get((key[0], key[1]))
                if group is None:
                    group = layer[(key[0], key[1])] = Counter()
                group[key] += delta

    def flush(self) -> None:
        """Write what is pending: before group_node_counts is read, and before the commit."""
        if not any(self._layers):
            return
        summed: Counter[Key] = Counter()
        for index, layer in enumerate(self._layers):
            for moves in layer.values():
                summed.update(moves)
            if self._written_inside and index < len(self._layers) - 1 and layer:
                self._written_inside[-1].append((index, layer))
            self._layers[index] = {}
        move(self.conn, summed)

    def pending_in(self, cluster_id: str, group_name: str) -> list[tuple[Key, int]]:
        """The moves not yet written to the group's counts: a read of the table adds them
        rather than writing them first."""
        found: list[tuple[Key, int]] = []
        for layer in self._layers:
            moves = layer.get((cluster_id, group_name))
            if moves:
                found.extend(moves.items())
        return found

    def recount(self, cluster_id: str) -> None:
        self._drop(cluster_id)
        recount(self.conn, cluster_id)

    def forget(self, cluster_id: str) -> None:
        self._drop(cluster_id)
        forget(self.conn, cluster_id)

    def _drop(self, cluster_id: str) -> None:
        """The cluster's counts are about to be made afresh from its nodes (or dropped): its
        pending moves are in them, and what was known of its rows may have changed."""
        for index, layer in enumerate(self._layers):
            dropped = {group: moves for group, moves in layer.items() if group[0] == cluster_id}
            if not dropped:
                continue
            if self._written_inside and index < len(self._layers) - 1:
                # Counted inside the savepoint, and so pending again if it rolls back.
                self._written_inside[-1].append((index, dropped))
            self._layers[index] = {g: m for g, m in layer.items() if g[0] != cluster_id}
        self.fresh.clear()

    def savepoint_began(self) -> None:
        self._layers.append({})
        self._written_inside.append([])

    def savepoint_released(self) -> None:
        """What the savepoint did is now its parent's: so are its moves, and the writes made
        inside it of those below, which a rollback of the parent undoes too."""
        layer = self._layers.pop()
        written = self._written_inside.pop()
        if layer:
            self._merge(len(self._layers) - 1, layer)
        if self._written_inside:
            parent = len(self._layers) - 1
            self._written_inside[-1].extend(item for item in written if item[0] < parent)

    def savepoint_rolled_back(self) -> None:
        self._layers.pop()
        for index, layer in self._written_inside.pop():
            self._merge(index, layer)
        self.fresh.clear()

    def _merge(self, index: int, layer: Layer) -> None:
        into = self._layers[index]
        for group, moves in layer.items():
            mine = into.get(group)
            if mine is None:
                into[group] = Counter(moves)
            else:
                mine.update(moves)


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
