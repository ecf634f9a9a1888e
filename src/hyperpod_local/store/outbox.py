"""The event outbox: the EventBridge event of each cluster event, written in the unit of work
that writes the event, and each event target's place in it (outlets/ reads and trims it)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from hyperpod_local.domain.event_record import event_record
from hyperpod_local.domain.eventbridge import cluster_event_envelope, sends_cluster_events
from hyperpod_local.domain.model import Event
from hyperpod_local.store.clusters import ClusterMemory
from hyperpod_local.store.schema import clusters, event_outbox, event_outlets


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    seq: int
    event_id: str
    envelope: dict[str, Any]
    enqueued_at: float


@dataclass(frozen=True, slots=True)
class _Owner:
    arn: str
    name: str
    account_id: str
    region: str


_OWNERS = select(
    clusters.c.id,
    clusters.c.arn,
    clusters.c.name,
    clusters.c.account_id,
    clusters.c.region,
    clusters.c.spec,
).where(clusters.c.id.in_(bindparam("ids", expanding=True)))


class OutboxRepository:
    """`wall_clock` is the Store's: set when it keeps an outbox, which only a server that
    delivers events does (the in-process mock writes nothing for nobody)."""

    def __init__(
        self,
        conn: Connection,
        wall_clock: Callable[[], float] | None,
        memory: ClusterMemory | None = None,
    ) -> None:
        self.conn = conn
        self._wall_clock = wall_clock
        # The clusters earlier write transactions loaded (store/clusters.py), if kept: most
        # events are an engine step's, whose cluster is there.
        self._memory = memory
        # Set once this unit of work has added an entry: the Store wakes the outlets after
        # its commit.
        self.written = False

    def add(
        self, new_events: Sequence[Event], seqs: Sequence[int], id_of: Callable[[int], str]
    ) -> None:
        """Keep the events of clusters that send them, given their seqs and what makes an
        event's id of its seq: each event kept is given its id here."""
        if self._wall_clock is None or not new_events:
            return
        owners = self._owners({event.cluster_id for event in new_events})
        rows = []
        now = self._wall_clock()
        for seq, event in zip(seqs, new_events, strict=True):
            owner = owners.get(event.cluster_id)
            if owner is None:
                continue
            event.event_id = id_of(seq)
            record = event_record(owner.arn, owner.name, event)
            envelope = cluster_event_envelope(record, owner.account_id, owner.region)
            rows.append({"event_id": event.event_id, "envelope": envelope, "enqueued_at": now})
        if rows:
            self.conn.execute(event_outbox.insert(), rows)
            self.written = True

    def _owners(self, cluster_ids: set[str]) -> dict[str, _Owner]:
        """Of the clusters, those that send their events."""
        owners: dict[str, _Owner] = {}
        unknown = []
        for cluster_id in cluster_ids:
            kept = None if self._memory is None else self._memory.peek(cluster_id)
            if kept is None:
                unknown.append(cluster_id)
            elif sends_cluster_events(kept.spec):
                scope = kept.scope
                owners[cluster_id] = _Owner(kept.arn, kept.name, scope.account_id, scope.region)
        if unknown:
            found = self.conn.execute(_OWNERS, {"ids": unknown})
            for row in found:
                if sends_cluster_events(row.spec):
                    owners[row.id] = _Owner(row.arn, row.name, row.account_id, row.region)
        return owners

    def after(self, seq: int, limit: int) -> list[OutboxEntry]:
        """The entries after `seq`, oldest first."""
        found = self.conn.execute(
            select(event_outbox)
            .where(event_outbox.c.seq > seq)
            .order_by(event_outbox.c.seq)
            .limit(limit)
        )
        return [OutboxEntry(row.seq, row.event_id, row.envelope, row.enqueued_at) for row in found]

    def last_seq(self) -> int:
        """The newest entry's seq, 0 if there is none. Seqs only grow: one given out is never
        given again (AUTOINCREMENT), so 'after this' holds across a trim to nothing."""
        return int(self.conn.scalar(select(func.max(event_outbox.c.seq))) or 0)

    def count_after(self, seq: int) -> int:
        return int(
            self.conn.scalar(
                select(func.count()).select_from(event_outbox).where(event_outbox.c.seq > seq)
            )
            or 0
        )

    def overflow(self, seq: int, keep: int) -> tuple[int, int] | None:
        """With more than `keep` entries after `seq`: (the seq up to which the oldest of them
        must go so that `keep` are left, how many go); None if they fit."""
        floor = self.conn.scalar(
            select(event_outbox.c.seq)
            .where(event_outbox.c.seq > seq)
            .order_by(event_outbox.c.seq.desc())
            .limit(1)
            .offset(keep)
        )
        if floor is None:
            return None
        count = self.conn.scalar(
            select(func.count())
            .select_from(event_outbox)
            .where(event_outbox.c.seq > seq, event_outbox.c.seq <= floor)
        )
        return int(floor), int(count or 0)

    def trim(self, upto: int, *, enqueued_before: float | None = None) -> None:
        """Remove the entries every reader is done with (and, if given, older than that)."""
        stmt = delete(event_outbox).where(event_outbox.c.seq <= upto)
        if enqueued_before is not None:
            stmt = stmt.where(event_outbox.c.enqueued_at < enqueued_before)
        self.conn.execute(stmt)

    # The targets' places ---------------------------------------------------------------------

    def places(self) -> dict[str, int]:
        return {row.target: row.seq for row in self.conn.execute(select(event_outlets))}

    def set_place(self, target: str, seq: int) -> None:
        changed = self.conn.execute(
            update(event_outlets).where(event_outlets.c.target == target).values(seq=seq)
        )
        if changed.rowcount == 0:
            self.conn.execute(event_outlets.insert(), {"target": target, "seq": seq})

    def forget_places(self, keep: Collection[str]) -> None:
        """Targets no longer configured lose their place (and hold no entry back)."""
        stmt = delete(event_outlets)
        if keep:
            stmt = stmt.where(event_outlets.c.target.not_in(list(keep)))
        self.conn.execute(stmt)
