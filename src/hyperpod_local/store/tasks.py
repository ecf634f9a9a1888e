"""The engine's queue: durable steps due at HyperPod times."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, select, update

from hyperpod_local.domain.model import Task
from hyperpod_local.store.schema import tasks


@dataclass(frozen=True, slots=True)
class DueTasks:
    """What TaskRepository.due_together found: the tasks of the earliest instant, if it is
    due, and the due time of the first task after them (inf: there is none; None: not known
    without looking again)."""

    tasks: list[Task]
    later: float | None


class TaskRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # Bulk removals so far: the runner looks again at the tasks it loaded when a step
        # removed others (SQLite reuses a removed task's id for the next one added).
        self.removals = 0
        # The earliest due time of the tasks added or saved since due_together last looked:
        # the runner knows from it whether what it saw then is still the next work.
        self.earliest_written = math.inf

    def add(self, task: Task) -> None:
        self.earliest_written = min(self.earliest_written, task.due_at)
        task.id = self.conn.execute(
            _ADD,
            dict(
                cluster_id=task.cluster_id,
                node_id=task.node_id,
                group_name=task.group_name,
                kind=task.kind,
                step=task.step,
                due_at=task.due_at,
                data=task.data,
                operation_id=task.operation_id,
            ),
        ).inserted_primary_key[0]

    def next_due_at(self, besides: frozenset[str] = frozenset()) -> float | None:
        """The earliest due time, of the tasks not of the kinds `besides`."""
        if not besides:
            return self.conn.scalar(_NEXT_DUE)
        return self.conn.scalar(_NEXT_DUE_BESIDES, {"kinds": sorted(besides)})

    def due_together(self, now: float, limit: int) -> DueTasks:
        """The tasks of the earliest due time if it is not after `now` (they happen at one
        instant, at most `limit` of them), and when the next task after them is due."""
        # One statement, whether they are due or not, and the first task after them with
        # them: the engine asks after every instant, and then knows when to look again.
        # Claimed for this transaction where the database can (PostgreSQL): the step runs in
        # it, so it runs once, whichever replica takes it. SQLite has one writer anyway.
        self.earliest_written = math.inf
        instant: list[Task] = []
        after: Task | None = None
        result = self.conn.execute(_EARLIEST, {"limit": limit + 1})
        # Read only as far as the first task after the instant: the rest stay unread.
        for row in result:
            task = _task(row)
            if len(instant) == limit or (instant and task.due_at != instant[0].due_at):
                after = task
                break
            instant.append(task)
        result.close()
        if not instant:
            return DueTasks([], math.inf)
        first = instant[0].due_at
        if first > now:
            return DueTasks([], first)
        # Past the instant: the next task found, none at all, or not known (the limit cut
        # the instant short).
        if after is None:
            return DueTasks(instant, math.inf)
        return DueTasks(instant, after.due_at if after.due_at != first else None)

    def save(self, task: Task) -> None:
        self.earliest_written = min(self.earliest_written, task.due_at)
        self.conn.execute(
            _SAVE, {"task_id": task.id, "step": task.step, "due_at": task.due_at, "data": task.data}
        )

    def remove(self, task_id: int) -> None:
        self.conn.execute(_REMOVE, {"task_id": task_id})

    def get(self, task_id: int) -> Task | None:
        row = self.conn.execute(_GET, {"task_id": task_id}).first()
        return None if row is None else _task(row)

    def remove_for_node(
        self, node_id: int, kind: str | None = None, *, keep: int | None = None
    ) -> None:
        self.removals += 1
        if kind is not None and keep is None:
            self.conn.execute(_REMOVE_FOR_NODE_OF_KIND, {"node_id": node_id, "kind": kind})
            return
        stmt = delete(tasks).where(tasks.c.node_id == node_id)
        if kind is not None:
            stmt = stmt.where(tasks.c.kind == kind)
        if keep is not None:
            stmt = stmt.where(tasks.c.id != keep)
        self.conn.execute(stmt)

    def remove_for_nodes(self, node_ids: Sequence[int], kind: str) -> None:
        """remove_for_node(kind=...) for many nodes at once."""
        self.removals += 1
        for start in range(0, len(node_ids), 500):
            self.conn.execute(
                _REMOVE_FOR_NODES_OF_KIND,
                {"node_ids": list(node_ids[start : start + 500]), "kind": kind},
            )

    def remove_for_group(self, cluster_id: str, group_name: str | None, kind: str) -> None:
        """The cluster's tasks of one kind for a group (None: the cluster's own)."""
        self.removals += 1
        group = (
            tasks.c.group_name.is_(None) if group_name is None else tasks.c.group_name == group_name
        )
        self.conn.execute(
            delete(tasks).where(tasks.c.cluster_id == cluster_id, group, tasks.c.kind == kind)
        )

    def due_of_kind(self, cluster_id: str, kind: str, now: float) -> list[Task]:
        """The cluster's tasks of one kind due by `now`, in order."""
        rows = self.conn.execute(_DUE_OF_KIND, {"cluster_id": cluster_id, "kind": kind, "now": now})
        return [_task(row) for row in rows]

    def remove_for_cluster(self, cluster_id: str, *, keep: int | None = None) -> None:
        stmt = delete(tasks).where(tasks.c.cluster_id == cluster_id)
        if keep is not None:
            stmt = stmt.where(tasks.c.id != keep)
        self.removals += 1
        self.conn.execute(stmt)

    def count(
        self,
        cluster_id: str,
        kind: str | None = None,
        operation_id: str | None = None,
        *,
        any_operation: bool = False,
    ) -> int:
        stmt = select(func.count()).select_from(tasks).where(tasks.c.cluster_id == cluster_id)
        if any_operation:
            stmt = stmt.where(tasks.c.operation_id.is_not(None))
        if kind is not None:
            stmt = stmt.where(tasks.c.kind == kind)
        if operation_id is not None:
            stmt = stmt.where(tasks.c.operation_id == operation_id)
        return int(self.conn.scalar(stmt) or 0)

    def cluster_ids(self, besides: frozenset[str] = frozenset()) -> list[str]:
        """The clusters with work scheduled (not counting the kinds `besides`)."""
        stmt = select(tasks.c.cluster_id).where(tasks.c.cluster_id.is_not(None))
        if besides:
            stmt = stmt.where(tasks.c.kind.not_in(sorted(besides)))
        return sorted(self.conn.scalars(stmt.distinct()))

    def kinds(self, besides: frozenset[str] = frozenset()) -> list[str]:
        """The kinds of work scheduled (provision, health_check, ...)."""
        stmt = select(tasks.c.kind)
        if besides:
            stmt = stmt.where(tasks.c.kind.not_in(sorted(besides)))
        return sorted(self.conn.scalars(stmt.distinct()))

    def total(self, besides: frozenset[str] = frozenset()) -> int:
        stmt = select(func.count()).select_from(tasks)
        if besides:
            stmt = stmt.where(tasks.c.kind.not_in(sorted(besides)))
        return int(self.conn.scalar(stmt) or 0)


# Statements each step runs, built once: building one costs more than SQLite takes to run it.
_SAVE = (
    update(tasks)
    .where(tasks.c.id == bindparam("task_id"))
    .values(step=bindparam("step"), due_at=bindparam("due_at"), data=bindparam("data"))
)
_REMOVE = delete(tasks).where(tasks.c.id == bindparam("task_id"))
_GET = select(tasks).where(tasks.c.id == bindparam("task_id"))
_ADD = tasks.insert()
_NEXT_DUE = select(func.min(tasks.c.due_at))
_NEXT_DUE_BESIDES = _NEXT_DUE.where(tasks.c.kind.not_in(bindparam("kinds", expanding=True)))
_DUE_OF_KIND = (
    select(tasks)
    .where(
        tasks.c.cluster_id == bindparam("cluster_id"),
        tasks.c.kind == bindparam("kind"),
        tasks.c.due_at <= bindparam("now"),
    )
    .order_by(tasks.c.due_at, tasks.c.id)
)
_EARLIEST = (
    select(tasks)
    .order_by(tasks.c.due_at, tasks.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_REMOVE_FOR_NODES_OF_KIND = delete(tasks).where(
    tasks.c.node_id.in_(bindparam("node_ids", expanding=True)), tasks.c.kind == bindparam("kind")
)
_REMOVE_FOR_NODE_OF_KIND = delete(tasks).where(
    tasks.c.node_id == bindparam("node_id"), tasks.c.kind == bindparam("kind")
)


def _task(row: Row[Any]) -> Task:
    return Task(
        id=row.id,
        cluster_id=row.cluster_id,
        node_id=row.node_id,
        group_name=row.group_name,
        kind=row.kind,
        step=row.step,
        due_at=row.due_at,
        data=row.data,
        operation_id=row.operation_id,
    )
