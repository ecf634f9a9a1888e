"""Nodes: one row per node of a cluster, with or without an instance yet."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    case,
    delete,
    func,
    select,
    text,
    union_all,
    update,
)

from hyperpod_local.domain.model import SERVING_STATUSES, Node, NodeStatus
from hyperpod_local.store import bulk, node_counts
from hyperpod_local.store.node_counts import Key
from hyperpod_local.store.paging import keyset
from hyperpod_local.store.schema import group_node_counts, instance_groups, nodes

NODE_SORT_KEYS = {
    "CREATION_TIME": (nodes.c.sort_time, nodes.c.id),
    "NAME": (nodes.c.group_name, nodes.c.name_key, nodes.c.id),
}


@dataclass(frozen=True, slots=True)
class GroupHealth:
    members: int
    unhealthy: int
    recovering: int


@dataclass(frozen=True, slots=True)
class NodeFilter:
    launched_after: float | None = None
    launched_before: float | None = None
    group_name_contains: str | None = None
    include_without_instance: bool = False


class NodeRepository:
    def __init__(self, conn: Connection, moves: node_counts.Moves | None = None) -> None:
        self.conn = conn
        self.moves = node_counts.Moves(conn) if moves is None else moves
        # What each node object read or written in this unit of work holds in the store, by
        # the object's identity (kept with it, so that identity is not reused): save_all
        # writes only the columns that changed since, and nothing for a node unchanged.
        # Rewriting every column moved every index of the table for each node saved.
        self._stored: dict[int, tuple[Node, Any]] = {}

    def _changed_in_bulk(self) -> None:
        """Rows change under the nodes read so far: each is written whole if saved again, as
        it was before this unit of work knew what the store held."""
        self._stored.clear()
        self.moves.fresh.clear()

    def rolled_back(self) -> None:
        """A savepoint was rolled back: what was read or written since may not be what the
        store holds."""
        self._changed_in_bulk()

    def _node(self, row: Row[Any]) -> Node:
        node = Node(*row[:_FIELDS])
        # The row itself: made into _row's values only if the node is saved.
        self._stored[id(node)] = (node, row)
        self.moves.fresh[row[_ROW_ID]] = id(node)
        return node

    def add_all(self, new_nodes: Sequence[Node]) -> None:
        rows = [_row(node) for node in new_nodes]
        bulk.executemany(self.conn, _INSERT_NODE, _COLUMN_NAMES, rows)
        self.moves.add(Counter(map(_counted, rows)))

    def get(self, row_id: int) -> Node | None:
        row = self.conn.execute(_BY_ID, {"row_id": row_id}).first()
        return None if row is None else self._node(row)

    def get_many(self, row_ids: Sequence[int]) -> dict[int, Node]:
        """The nodes that still exist, by row id."""
        found: dict[int, Node] = {}
        for start in range(0, len(row_ids), 500):
            rows = self.conn.execute(_BY_IDS, {"row_ids": list(row_ids[start : start + 500])})
            for row in rows:
                node = self._node(row)
                found[node.row_id or -1] = node
        return found

    def save(self, node: Node) -> None:
        self.save_all([node])

    def claim(self, node: Node, operation: str) -> bool:
        """Mark the node busy with `operation` unless another operation holds it. The
        condition is in the UPDATE, so two requests racing for one node cannot both win."""
        result = self.conn.execute(
            update(nodes)
            .where(nodes.c.id == node.row_id, nodes.c.busy.is_(None))
            .values(busy=operation)
        )
        if result.rowcount == 1:
            node.busy = operation
            known = self._stored.get(id(node))
            if known is not None and known[0] is node:
                # Only `busy` was written: a change to the object not saved yet is not stored.
                held = list(_as_row(known[1]))
                held[_BUSY] = operation
                self._stored[id(node)] = (node, tuple(held))
            return True
        return False

    def some_in_group(
        self, cluster_id: str, group_name: str, limit: int, **conditions: Any
    ) -> list[Node]:
        """Up to `limit` nodes of the group, in creation order, matching the conditions:
        `launched` (has an instance or not), `status`, `busy` (None for free)."""
        stmt = select(*_SELECTED).where(
            nodes.c.cluster_id == cluster_id, nodes.c.group_name == group_name
        )
        if "launched" in conditions:
            launched = nodes.c.instance_id.is_not(None)
            stmt = stmt.where(launched if conditions["launched"] else ~launched)
        if "status" in conditions:
            stmt = stmt.where(nodes.c.status == conditions["status"])
        if "busy" in conditions:
            busy = conditions["busy"]
            stmt = stmt.where(nodes.c.busy.is_(None) if busy is None else nodes.c.busy == busy)
        rows = self.conn.execute(stmt.order_by(nodes.c.id).limit(limit))
        return [self._node(row) for row in rows]

    def claim_group(
        self, cluster_id: str, group_name: str, operation: str, statuses: Sequence[str], status: str
    ) -> list[Node]:
        """Mark every free node of the group with an instance in one of `statuses` as held by
        `operation`, in `status`; in bulk, so a group of thousands costs one statement."""
        condition = (
            (nodes.c.cluster_id == cluster_id)
            & (nodes.c.group_name == group_name)
            & nodes.c.busy.is_(None)
            & nodes.c.instance_id.is_not(None)
            & nodes.c.status.in_(list(statuses))
        )
        claimed = [
            self._node(row) for row in self.conn.execute(select(*_SELECTED).where(condition))
        ]
        self._changed_in_bulk()
        self.conn.execute(update(nodes).where(condition).values(busy=operation, status=status))
        # Read in this transaction just before, under its write lock: what the store held.
        moves: Counter[Key] = Counter()
        for node in claimed:
            old = _key(node)
            moves[old] -= 1
            moves[(*old[:4], status)] += 1
            node.busy, node.status = operation, status
        self.moves.add(moves)
        return claimed

    def set_image(self, cluster_id: str, group_name: str, image_id: str) -> None:
        self._changed_in_bulk()
        self.conn.execute(
            update(nodes)
            .where(nodes.c.cluster_id == cluster_id, nodes.c.group_name == group_name)
            .values(image_id=image_id)
        )

    def failed_idle(self, cluster_id: str, group_name: str) -> list[Node]:
        """The group's nodes in Failure that no operation holds."""
        # Asked after every node a step finishes: the counts answer "none" without a scan
        # of the group.
        if not self.serving_count(cluster_id, group_name, _FAILURE):
            return []
        rows = self.conn.execute(
            select(*_SELECTED)
            .where(
                nodes.c.cluster_id == cluster_id,
                nodes.c.group_name == group_name,
                nodes.c.status == "Failure",
                nodes.c.busy.is_(None),
            )
            .order_by(nodes.c.id)
        )
        return [self._node(row) for row in rows]

    def serving_count(
        self, cluster_id: str, group_name: str, statuses: Iterable[str] = SERVING_STATUSES
    ) -> int:
        """The group's CurrentCount as it is now, inside the transaction (or its nodes in
        other `statuses`): read off group_node_counts, whatever the group's size."""
        wanted = sorted(statuses)
        found = self.conn.scalar(
            _COUNT_IN_STATUSES,
            {"cluster_id": cluster_id, "group_name": group_name, "statuses": wanted},
        )
        pending = self.moves.pending_in(cluster_id, group_name)
        return int(found or 0) + sum(delta for key, delta in pending if key[4] in wanted)

    def running_by_group(
        self, cluster_id: str | None, group_name: str | None
    ) -> list[tuple[str, str, int]]:
        """(cluster, group, nodes Running) for every group of the cluster (None: of every
        cluster), or the one group; in a stable order, from group_node_counts."""
        # Written first, not added here: a strike's draw picks by the order the database
        # sorts the rows in, its collation's. Asked once a strike run, not once a step.
        self.moves.flush()
        stmt = _RUNNING_BY_GROUP[(cluster_id is not None, group_name is not None)]
        rows = self.conn.execute(stmt, {"cluster_id": cluster_id, "group_name": group_name})
        return [(row[0], row[1], int(row[2])) for row in rows]

    def running_count(self, cluster_id: str | None, group_name: str | None) -> int:
        return sum(row[-1] for row in self.running_by_group(cluster_id, group_name))

    def nth_running(self, cluster_id: str, group_name: str, index: int) -> Node | None:
        """The `index`-th Running node (in creation order) of the group, if no operation
        holds it. The offset walks ix_nodes_running alone: no node row is read but the one
        found."""
        row = self.conn.execute(
            _NTH_RUNNING_NODE,
            {"cluster_id": cluster_id, "group_name": group_name, "index": index},
        ).first()
        node = None if row is None else self._node(row)
        return None if node is None or node.busy is not None else node

    def member_count(self, cluster_id: str, group_name: str) -> int:
        """The group's nodes in any status, read off group_node_counts."""
        return self._members_and_failed(cluster_id, group_name)[0]

    def _members_and_failed(self, cluster_id: str, group_name: str) -> tuple[int, int]:
        key = {"cluster_id": cluster_id, "group_name": group_name}
        counted = self.conn.execute(_MEMBERS_AND_FAILED, key).one()
        members, failed = int(counted[0] or 0), int(counted[1] or 0)
        for moved, delta in self.moves.pending_in(cluster_id, group_name):
            members += delta
            failed += delta if moved[4] == NodeStatus.FAILURE else 0
        return members, failed

    def group_health(self, cluster_id: str, group_name: str) -> GroupHealth:
        """The group's members and nodes in Failure from its counts, and the few nodes an
        operation holds from ix_nodes_busy: a check costs the same in a group of any size."""
        key = {"cluster_id": cluster_id, "group_name": group_name}
        members, unhealthy = self._members_and_failed(cluster_id, group_name)
        recovering = 0
        for status, busy in self.conn.execute(_HELD, key):
            # Down is down, whoever is fixing it: a node under any reboot or replacement counts.
            if busy in _DOWN_WHILE and status != NodeStatus.FAILURE:
                unhealthy += 1
            recovering += busy == "recover"
        return GroupHealth(members=members, unhealthy=unhealthy, recovering=recovering)

    def set_status_all(self, cluster_id: str, status: str) -> None:
        self._changed_in_bulk()
        self.conn.execute(
            update(nodes).where(nodes.c.cluster_id == cluster_id).values(status=status)
        )
        self.moves.recount(cluster_id)

    def remove(self, row_id: int) -> None:
        key = self._held_key(row_id) or node_counts.keys_of(self.conn, [row_id]).get(row_id)
        self.conn.execute(delete(nodes).where(nodes.c.id == row_id))
        self.moves.fresh.pop(row_id, None)
        if key is not None:
            self.moves.add(Counter({key: -1}))

    def _held_key(self, row_id: int) -> Key | None:
        """The row's counted key, if a node object read or written last holds it."""
        owner = self.moves.fresh.get(row_id)
        known = None if owner is None else self._stored.get(owner)
        if known is None or known[0].row_id != row_id:
            return None
        return _counted(_as_row(known[1]))

    def in_group(self, cluster_id: str, group_name: str | None = None) -> list[Node]:
        stmt = select(*_SELECTED).where(nodes.c.cluster_id == cluster_id)
        if group_name is not None:
            stmt = stmt.where(nodes.c.group_name == group_name)
        return [self._node(row) for row in self.conn.execute(stmt.order_by(nodes.c.id))]

    def save_all(self, changed: Sequence[Node]) -> None:
        """Write back many nodes: for a node read in this unit of work, only the columns it
        changed since (nodes that changed the same columns in one executemany); for any
        other, every column."""
        # Per set of columns: the rows to write, and for each its node's id() and the counted
        # key the store holds of it if known without asking (None: asked before the write).
        by_columns: dict[tuple[int, ...], tuple[list[tuple[Any, ...]], list[Any]]] = {}
        stored, fresh = self._stored, self.moves.fresh
        for node in changed:
            new = _row(node)
            known = stored.get(id(node))
            held: Key | None = None
            if known is not None and known[0] is node:
                old = _as_row(known[1])
                if old == new:
                    continue
                columns = tuple(i for i, value in enumerate(new) if value != old[i])
                if fresh.get(node.row_id or -1) == id(node):
                    # Read or written last through this very object: that is the stored row.
                    held = _counted(old)
            else:
                columns = _ALL_COLUMNS
            rows, owners = by_columns.setdefault(columns, ([], []))
            rows.append((node.row_id, *(new[i] for i in columns)))
            owners.append((id(node), held))
            stored[id(node)] = (node, new)
        moves: Counter[Key] = Counter()
        # What the rows written so far in this call hold now, in the order they are written.
        written: dict[int, Key] = {}
        for columns, (rows, owners) in by_columns.items():
            counted = [(place, i) for place, i in enumerate(columns, 1) if i in _COUNTED_AT]
            if counted:
                self._move_counted(rows, owners, counted, written, moves)
            bulk.executemany(
                self.conn,
                _update_of(columns),
                ("_row_id", *(_COLUMN_NAMES[i] for i in columns)),
                rows,
            )
            for row, (owner, _held) in zip(rows, owners, strict=True):
                fresh[row[0]] = owner
        self.moves.add(moves)

    def _move_counted(
        self,
        rows: list[tuple[Any, ...]],
        owners: list[Any],
        counted: list[tuple[int, int]],
        written: dict[int, Key],
        moves: Counter[Key],
    ) -> None:
        """The moves of writing `rows` (their counted columns at `counted`), from what the
        store holds, not from the objects: another copy of a node may have been saved since
        this one was read. Asked of the store only for rows not known (`owners`, `written`)."""
        unknown = [
            row[0]
            for row, (_owner, held) in zip(rows, owners, strict=True)
            if held is None and row[0] not in written
        ]
        asked = node_counts.keys_of(self.conn, unknown) if unknown else {}
        for row, (_owner, held) in zip(rows, owners, strict=True):
            row_id = row[0]
            old = written.get(row_id) or held or asked.get(row_id)
            if old is None:
                continue  # no such row: the UPDATE writes nothing
            key = list(old)
            for place, i in counted:
                key[_COUNTED_AT[i]] = row[place]
            # As the rows are written, one after another (a node twice, in turn).
            moved = written[row_id] = (key[0], key[1], key[2], key[3], key[4])
            moves[old] -= 1
            moves[moved] += 1

    def by_instance_id(self, cluster_id: str, instance_id: str) -> Node | None:
        row = self.conn.execute(
            select(*_SELECTED).where(
                nodes.c.cluster_id == cluster_id, nodes.c.instance_id == instance_id
            )
        ).first()
        return None if row is None else self._node(row)

    def by_logical_id(self, cluster_id: str, logical_id: str) -> Node | None:
        row = self.conn.execute(
            select(*_SELECTED).where(
                nodes.c.cluster_id == cluster_id, nodes.c.logical_id == logical_id
            )
        ).first()
        return None if row is None else self._node(row)

    def page(
        self,
        cluster_id: str,
        node_filter: NodeFilter,
        sort_by: str,
        descending: bool,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[Node]:
        """One page in keyset order. A group-name filter becomes one indexed range per
        matching group, so a filtered page costs the same however many nodes it skips."""
        groups: list[str] | None = None
        if node_filter.group_name_contains:
            groups = list(
                self.conn.scalars(
                    select(instance_groups.c.name).where(
                        instance_groups.c.cluster_id == cluster_id,
                        func.lower(instance_groups.c.name).contains(
                            node_filter.group_name_contains.lower(), autoescape=True
                        ),
                    )
                )
            )
            if not groups:
                return []
        key = NODE_SORT_KEYS[sort_by]
        selects = [
            keyset(
                self._filtered(cluster_id, node_filter, group),
                key,
                after,
                descending=descending,
                limit=limit,
            )
            for group in (groups or [None])
        ]
        if len(selects) == 1:
            return [self._node(row) for row in self.conn.execute(selects[0])]
        merged = union_all(*(stmt.subquery().select() for stmt in selects)).subquery()
        order = [merged.c[column.name] for column in key]
        stmt = select(merged).order_by(
            *(column.desc() if descending else column.asc() for column in order)
        )
        return [self._node(row) for row in self.conn.execute(stmt.limit(limit + 1))]

    def _filtered(self, cluster_id: str, node_filter: NodeFilter, group: str | None) -> Any:
        stmt = select(*_SELECTED).where(nodes.c.cluster_id == cluster_id)
        if group is not None:
            stmt = stmt.where(nodes.c.group_name == group)
        if node_filter.include_without_instance:
            # Only a Continuous cluster's nodes can be named before they have an instance.
            stmt = stmt.where(nodes.c.instance_id.is_not(None) | nodes.c.logical_id.is_not(None))
        else:
            stmt = stmt.where(nodes.c.instance_id.is_not(None))
        # sort_time is LaunchTime for every node with an instance, and it is indexed.
        if node_filter.launched_after is not None:
            stmt = stmt.where(nodes.c.sort_time > node_filter.launched_after)
        if node_filter.launched_before is not None:
            stmt = stmt.where(nodes.c.sort_time < node_filter.launched_before)
        return stmt


_FAILURE = (NodeStatus.FAILURE,)
_DOWN_WHILE = frozenset({"recover", "replace", "reboot"})


def sort_key(node: Node, sort_by: str) -> list[Any]:
    """The keyset position of a node, as a page's NextToken remembers it."""
    if sort_by == "NAME":
        return [node.group_name, node.instance_id or "", node.row_id]
    return [node.sort_time, node.row_id]


_COLUMN_NAMES = (
    "cluster_id",
    "group_name",
    "instance_id",
    "name_key",
    "logical_id",
    "status",
    "status_message",
    "instance_type",
    "launch_time",
    "sort_time",
    "private_ip",
    "hostname",
    "availability_zone",
    "availability_zone_id",
    "image_id",
    "image_release_version",
    "last_software_update_time",
    "busy",
)
# The table's columns but `id`, in the table's order (tests/test_store.py checks): _row's.
_ALL_COLUMNS = tuple(range(len(_COLUMN_NAMES)))
# Where each counted column is in a _row (key) and its place in a count's key (value).
_COUNTED_AT = {_COLUMN_NAMES.index(name): place for place, name in enumerate(node_counts.COUNTED)}
_counted = operator.itemgetter(*_COUNTED_AT)
_INSERT_NODE = nodes.insert().values({name: bindparam(name) for name in _COLUMN_NAMES})
# An UPDATE of a node's row by id, of some of its columns (indices into _COLUMN_NAMES): one
# statement per set of columns, built once and kept (bulk.py caches it by identity).
_UPDATES: dict[tuple[int, ...], Any] = {}


def _update_of(columns: tuple[int, ...]) -> Any:
    stmt = _UPDATES.get(columns)
    if stmt is None:
        names = [_COLUMN_NAMES[i] for i in columns]
        stmt = (
            update(nodes)
            .where(nodes.c.id == bindparam("_row_id"))
            .values({name: bindparam(name) for name in names})
        )
        _UPDATES[columns] = stmt
    return stmt


def _as_row(held: Any) -> tuple[Any, ...]:
    """A node's snapshot in _stored (a row read, or _row's values) as _row's values."""
    return held if type(held) is tuple else _AS_STORED(held)


def _key(node: Node) -> Key:
    return (
        node.cluster_id,
        node.group_name,
        node.instance_type,
        node.image_release_version,
        node.status,
    )


def _row(node: Node) -> tuple[Any, ...]:
    """The node's values for _COLUMN_NAMES, in their order."""
    return (
        node.cluster_id,
        node.group_name,
        node.instance_id,
        node.instance_id or "",
        node.logical_id,
        node.status,
        node.status_message,
        node.instance_type,
        node.launch_time,
        node.sort_time,
        node.private_ip,
        node.hostname,
        node.availability_zone,
        node.availability_zone_id,
        node.image_id,
        node.image_release_version,
        node.last_software_update_time,
        node.busy,
    )


# The columns a Node is made of, in the order of its fields (`id` is `row_id`), so a row
# becomes a Node by position: reading two dozen Row attributes by name cost more than the
# query. tests/test_store.py checks the order against the dataclass.
NODE_COLUMNS = (
    nodes.c.cluster_id,
    nodes.c.group_name,
    nodes.c.instance_type,
    nodes.c.status,
    nodes.c.sort_time,
    nodes.c.instance_id,
    nodes.c.logical_id,
    nodes.c.status_message,
    nodes.c.launch_time,
    nodes.c.private_ip,
    nodes.c.hostname,
    nodes.c.availability_zone,
    nodes.c.availability_zone_id,
    nodes.c.image_id,
    nodes.c.image_release_version,
    nodes.c.last_software_update_time,
    nodes.c.busy,
    nodes.c.id,
)
# name_key is not a field, but a page sorted by NAME orders by it.
_SELECTED = (*NODE_COLUMNS, nodes.c.name_key)
_FIELDS = len(NODE_COLUMNS)
_ROW_ID = [column.name for column in NODE_COLUMNS].index("id")
_BUSY = _COLUMN_NAMES.index("busy")
# A row read (in _SELECTED's order) as _row's values (in _COLUMN_NAMES').
_AS_STORED = operator.itemgetter(
    *([column.name for column in _SELECTED].index(name) for name in _COLUMN_NAMES)
)
# Statements a step runs every time, built once: building one costs more than running it.
_BY_ID = select(*_SELECTED).where(nodes.c.id == bindparam("row_id"))
_BY_IDS = select(*_SELECTED).where(nodes.c.id.in_(bindparam("row_ids", expanding=True)))
# `busy IS NOT NULL` as ix_nodes_busy has it, so that the planner takes that index.
_HELD = select(nodes.c.status, nodes.c.busy).where(
    nodes.c.cluster_id == bindparam("cluster_id"),
    nodes.c.group_name == bindparam("group_name"),
    text("busy IS NOT NULL"),
)
# `status = 'Running'` as ix_nodes_running has it, so that the planner takes that index.
_NTH_RUNNING = (
    select(nodes.c.id)
    .where(
        nodes.c.cluster_id == bindparam("cluster_id"),
        nodes.c.group_name == bindparam("group_name"),
        text("status = 'Running'"),
    )
    .order_by(nodes.c.id)
    .limit(1)
    .offset(bindparam("index"))
)
# The node itself in the same statement: the offset still walks the index alone.
_NTH_RUNNING_NODE = select(*_SELECTED).where(nodes.c.id == _NTH_RUNNING.scalar_subquery())
# By (a cluster given, a group given): a random_hardware strike asks every time.
_RUNNING = (
    select(
        group_node_counts.c.cluster_id,
        group_node_counts.c.group_name,
        func.sum(group_node_counts.c.count),
    )
    .where(group_node_counts.c.status == NodeStatus.RUNNING)
    .group_by(group_node_counts.c.cluster_id, group_node_counts.c.group_name)
)
_IN_CLUSTER = group_node_counts.c.cluster_id == bindparam("cluster_id")
_IN_GROUP = group_node_counts.c.group_name == bindparam("group_name")
_RUNNING_BY_GROUP = {
    (in_cluster, in_group): _RUNNING.where(
        *([_IN_CLUSTER] if in_cluster else []), *([_IN_GROUP] if in_group else [])
    ).order_by(group_node_counts.c.cluster_id, group_node_counts.c.group_name)
    for in_cluster in (False, True)
    for in_group in (False, True)
}
# Every automatic recovery asks both: one statement.
_MEMBERS_AND_FAILED = select(
    func.sum(group_node_counts.c.count),
    func.sum(
        case((group_node_counts.c.status == NodeStatus.FAILURE, group_node_counts.c.count), else_=0)
    ),
).where(
    group_node_counts.c.cluster_id == bindparam("cluster_id"),
    group_node_counts.c.group_name == bindparam("group_name"),
)
_COUNT_IN_STATUSES = select(func.sum(group_node_counts.c.count)).where(
    group_node_counts.c.cluster_id == bindparam("cluster_id"),
    group_node_counts.c.group_name == bindparam("group_name"),
    group_node_counts.c.status.in_(bindparam("statuses", expanding=True)),
)
