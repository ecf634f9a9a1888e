"""Cluster events and operation records."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    delete,
    exists,
    func,
    select,
    tuple_,
    update,
)

from hyperpod_local.domain.model import Event, Operation
from hyperpod_local.store import bulk
from hyperpod_local.store.event_ids import EventIds
from hyperpod_local.store.outbox import OutboxRepository
from hyperpod_local.store.paging import keyset
from hyperpod_local.store.schema import clusters, events, legacy_event_ids, operations

# Built once: every step that writes an event runs it. The seq is given, not left to the
# database: the event's id is made of it, and the outbox needs the id in the same unit of
# work.
_ADDED = (
    "seq",
    "cluster_id",
    "event_time",
    "resource_type",
    "group_name",
    "instance_id",
    "description",
    "level",
    "operation_id",
    "event_metadata",
)
_ADD = events.insert().values({name: bindparam(name) for name in _ADDED})
_CLUSTER_IDS = select(clusters.c.id)
_OLD_EVENTS = delete(events).where(
    events.c.cluster_id == bindparam("cluster_id"), events.c.event_time < bindparam("before")
)
# An event with the id it had before revision 0011, if it had one.
_READ = select(events, legacy_event_ids.c.event_id.label("legacy_id")).select_from(
    events.outerjoin(legacy_event_ids, legacy_event_ids.c.seq == events.c.seq)
)


@dataclass(frozen=True, slots=True)
class EventFilter:
    group_name: str | None = None
    instance_id: str | None = None
    after: float | None = None
    before: float | None = None
    resource_type: str | None = None
    operation_id: str | None = None


class EventSeqs(Protocol):
    """Gives new events their seqs, never one given before (the database's own way: in
    database.py for SQLite, postgresql.py for PostgreSQL)."""

    def __call__(self, conn: Connection, count: int) -> Sequence[int]: ...


class EventRepository:
    def __init__(
        self, conn: Connection, outbox: OutboxRepository, ids: EventIds, seqs: EventSeqs
    ) -> None:
        self.conn = conn
        self._outbox = outbox
        self._ids = ids
        self._seqs = seqs
        # Events written in this unit of work, by cluster: the engine trims a cluster to its
        # cap once enough have been written to it.
        self.added: Counter[str] = Counter()

    def add_all(self, new_events: Sequence[Event]) -> None:
        if not new_events:
            return
        seqs = self._seqs(self.conn, len(new_events))
        bulk.executemany(
            self.conn,
            _ADD,
            _ADDED,
            (
                (
                    seq,
                    event.cluster_id,
                    event.event_time,
                    event.resource_type,
                    event.group_name,
                    event.instance_id,
                    event.description,
                    str(event.level),
                    event.operation_id,
                    # Serialized here as the JSON type would: bulk rows skip the types.
                    _metadata_json(event.metadata),
                )
                for seq, event in zip(seqs, new_events, strict=True)
            ),
        )
        self.added.update(event.cluster_id for event in new_events)
        # In the same unit of work: the outlets deliver an event only if it committed.
        self._outbox.add(new_events, seqs, self._ids.id_of)

    def get(self, cluster_id: str, event_id: str) -> Event | None:
        seq = self._ids.seq_of(event_id)
        found = _READ.where(events.c.cluster_id == cluster_id)
        if seq is None:
            found = found.where(legacy_event_ids.c.event_id == event_id)
        else:
            found = found.where(events.c.seq == seq)
        row = self.conn.execute(found).first()
        if row is None or (seq is not None and row.legacy_id is not None):
            # An event from before 0011 answers to its own id only.
            return None
        return self._event(row)

    def page(
        self,
        cluster_id: str,
        event_filter: EventFilter,
        descending: bool,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[tuple[Event, list[Any]]]:
        stmt = _READ.where(events.c.cluster_id == cluster_id)
        conditions = {
            events.c.group_name: event_filter.group_name,
            events.c.instance_id: event_filter.instance_id,
            events.c.resource_type: event_filter.resource_type,
            events.c.operation_id: event_filter.operation_id,
        }
        for column, value in conditions.items():
            if value is not None:
                stmt = stmt.where(column == value)
        if event_filter.after is not None:
            stmt = stmt.where(events.c.event_time > event_filter.after)
        if event_filter.before is not None:
            stmt = stmt.where(events.c.event_time < event_filter.before)
        key = (events.c.event_time, events.c.seq)
        rows = self.conn.execute(keyset(stmt, key, after, descending=descending, limit=limit))
        return [(self._event(row), [row.event_time, row.seq]) for row in rows]

    def _event(self, row: Row[Any]) -> Event:
        return Event(
            row.legacy_id or self._ids.id_of(row.seq),
            row.cluster_id,
            row.event_time,
            row.resource_type,
            row.description,
            row.level,
            row.group_name,
            row.instance_id,
            row.operation_id,
            row.event_metadata,
        )

    def prune(self, before: float, cap: int | None) -> int:
        """Forget events and finished operations older than `before`, and, given a `cap`,
        each cluster's events beyond its newest `cap`; returns how many rows went."""
        gone = 0
        # Cluster by cluster: each a range of ix_events_cluster_time, where the table as a
        # whole has no index by time, and a scan of it stalled every writer (4 to 5 ms for
        # 20,000 events, hourly: every 3.6 s at --speed 1000).
        for cluster_id in self.conn.scalars(_CLUSTER_IDS):
            old = {"cluster_id": cluster_id, "before": before}
            gone += self.conn.execute(_OLD_EVENTS, old).rowcount
        gone += self.conn.execute(
            delete(operations).where(
                operations.c.creation_time < before, operations.c.status != "InProgress"
            )
        ).rowcount
        if cap is not None:
            crowded = self.conn.scalars(
                select(events.c.cluster_id).group_by(events.c.cluster_id).having(func.count() > cap)
            ).all()
            for cluster_id in crowded:
                gone += self.trim(cluster_id, cap)
        # The kept ids of events that went, the engine's trims' too: few, and fewer each time.
        self.conn.execute(
            delete(legacy_event_ids).where(~exists().where(events.c.seq == legacy_event_ids.c.seq))
        )
        return gone

    def trim(self, cluster_id: str, cap: int) -> int:
        """Forget the cluster's events beyond its newest `cap`; returns how many went."""
        # The cap-th newest event's key: everything older goes.
        edge = self.conn.execute(
            select(events.c.event_time, events.c.seq)
            .where(events.c.cluster_id == cluster_id)
            .order_by(events.c.event_time.desc(), events.c.seq.desc())
            .offset(cap - 1)
            .limit(1)
        ).first()
        if edge is None:
            return 0
        return int(
            self.conn.execute(
                delete(events).where(
                    events.c.cluster_id == cluster_id,
                    tuple_(events.c.event_time, events.c.seq) < tuple_(*edge),
                )
            ).rowcount
        )

    def remove_for_cluster(self, cluster_id: str) -> None:
        self.conn.execute(
            delete(legacy_event_ids).where(
                legacy_event_ids.c.seq.in_(
                    select(events.c.seq).where(events.c.cluster_id == cluster_id)
                )
            )
        )
        self.conn.execute(delete(events).where(events.c.cluster_id == cluster_id))
        self.conn.execute(delete(operations).where(operations.c.cluster_id == cluster_id))

    # Operations -------------------------------------------------------------------------

    def add_operation(self, operation: Operation) -> None:
        self.conn.execute(
            operations.insert(),
            dict(
                operation_id=operation.operation_id,
                cluster_id=operation.cluster_id,
                type=operation.type,
                status=operation.status,
                creation_time=operation.creation_time,
                details=operation.details,
            ),
        )

    def save_operation(self, operation: Operation) -> None:
        self.conn.execute(
            update(operations)
            .where(operations.c.operation_id == operation.operation_id)
            .values(status=operation.status, details=operation.details)
        )

    def operation_in_progress(self, cluster_id: str, type_: str) -> bool:
        found = self.conn.scalar(
            select(operations.c.seq)
            .where(
                operations.c.cluster_id == cluster_id,
                operations.c.type == type_,
                operations.c.status == "InProgress",
            )
            .limit(1)
        )
        return found is not None

    def operation_ids_in_progress(self, cluster_id: str, type_: str) -> list[str]:
        return list(
            self.conn.scalars(
                select(operations.c.operation_id).where(
                    operations.c.cluster_id == cluster_id,
                    operations.c.type == type_,
                    operations.c.status == "InProgress",
                )
            )
        )

    def get_operation(self, cluster_id: str, operation_id: str) -> Operation | None:
        row = self.conn.execute(
            select(operations).where(
                operations.c.cluster_id == cluster_id,
                operations.c.operation_id == operation_id,
            )
        ).first()
        return None if row is None else _operation(row)

    def operations_page(
        self,
        cluster_id: str,
        *,
        status: str | None,
        type_: str | None,
        after_time: float | None,
        before_time: float | None,
        descending: bool,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[tuple[Operation, list[Any]]]:
        stmt = select(operations).where(operations.c.cluster_id == cluster_id)
        if status is not None:
            stmt = stmt.where(operations.c.status == status)
        if type_ is not None:
            stmt = stmt.where(operations.c.type == type_)
        if after_time is not None:
            stmt = stmt.where(operations.c.creation_time > after_time)
        if before_time is not None:
            stmt = stmt.where(operations.c.creation_time < before_time)
        key = (operations.c.creation_time, operations.c.seq)
        rows = self.conn.execute(keyset(stmt, key, after, descending=descending, limit=limit))
        return [(_operation(row), [row.creation_time, row.seq]) for row in rows]


# The JSON of an event's metadata when it is the usual one empty subtree ({"Instance": {}}),
# by its key: made by json.dumps once, not once an event.
_EMPTY_SUBTREE: dict[str, str] = {}
_text = encode_basestring_ascii


def _metadata_json(metadata: dict[str, Any] | None) -> str | None:
    """json.dumps(metadata), written directly for the metadata of most events: one subtree of
    text (or null) members, such as a lifecycle script's {"Instance": {"LcsExecutionState":
    ..., "NodeLogicalId": ...}}; json.dumps' own setup cost more than the writing."""
    if metadata is None:
        return None
    if len(metadata) == 1:
        ((key, subtree),) = metadata.items()
        if type(key) is str and type(subtree) is dict:
            if not subtree:
                found = _EMPTY_SUBTREE.get(key)
                if found is None:
                    found = _EMPTY_SUBTREE[key] = json.dumps(metadata)
                return found
            members = []
            for name, value in subtree.items():
                if type(name) is not str or not (value is None or type(value) is str):
                    return json.dumps(metadata)
                members.append(f"{_text(name)}: {'null' if value is None else _text(value)}")
            return f"{{{_text(key)}: {{{', '.join(members)}}}}}"
    return json.dumps(metadata)


def _operation(row: Row[Any]) -> Operation:
    return Operation(
        operation_id=row.operation_id,
        cluster_id=row.cluster_id,
        type=row.type,
        status=row.status,
        creation_time=row.creation_time,
        details=row.details,
    )
