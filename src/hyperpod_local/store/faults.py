"""Injected faults."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, select, update

from hyperpod_local.domain.faults import Fault, FaultKind
from hyperpod_local.store.schema import faults


class FaultRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, fault: Fault) -> None:
        self.conn.execute(
            _ADD,
            dict(
                fault_id=fault.fault_id,
                kind=fault.kind,
                created_at=fault.created_at,
                cluster_id=fault.cluster_id,
                group_name=fault.group_name,
                instance_id=fault.instance_id,
                instance_type=fault.instance_type,
                remaining=fault.remaining,
                params=fault.params,
            ),
        )

    def all(self, kind: str | None = None) -> list[Fault]:
        stmt = select(faults).order_by(faults.c.seq)
        if kind is not None:
            stmt = stmt.where(faults.c.kind == kind)
        return [_fault(row) for row in self.conn.execute(stmt)]

    def get(self, fault_id: str) -> Fault | None:
        row = self.conn.execute(_GET, {"fault_id": fault_id}).first()
        return None if row is None else _fault(row)

    def remove(self, fault_id: str) -> bool:
        return self.conn.execute(_REMOVE, {"fault_id": fault_id}).rowcount == 1

    def on_instance(self, instance_id: str) -> list[Fault]:
        """The hardware faults sitting on an instance."""
        rows = self.conn.execute(
            select(faults)
            .where(faults.c.kind == FaultKind.HARDWARE, faults.c.instance_id == instance_id)
            .order_by(faults.c.seq)
        )
        return [_fault(row) for row in rows]

    def on_instances(self, instance_ids: list[str]) -> dict[str, list[Fault]]:
        """The hardware faults of many instances, in one query per 500."""
        found: dict[str, list[Fault]] = {}
        for start in range(0, len(instance_ids), 500):
            rows = self.conn.execute(_ON_INSTANCES, {"ids": instance_ids[start : start + 500]})
            for row in rows:
                found.setdefault(row.instance_id, []).append(_fault(row))
        return found

    def forget_instances(self, instance_ids: list[str]) -> None:
        """Faults of instances that no longer exist go with them."""
        for start in range(0, len(instance_ids), 500):
            self.conn.execute(_FORGET, {"ids": instance_ids[start : start + 500]})

    def capacity_short(self, instance_type: str, cluster_id: str) -> Fault | None:
        row = self.conn.execute(
            _CAPACITY_SHORT, {"instance_type": instance_type, "cluster_id": cluster_id}
        ).first()
        return None if row is None else _fault(row)

    def aimed_at(self, kind: str, cluster_id: str, group_name: str) -> bool:
        """Whether any fault of the kind targets the group (one query for a whole batch)."""
        found = self.conn.scalar(
            _AIMED_AT, {"kind": kind, "cluster_id": cluster_id, "group_name": group_name}
        )
        return found is not None

    def take(self, kind: str, cluster_id: str, **target: Any) -> Fault | None:
        """Use up one occurrence of a counted fault aimed at the target, if there is one."""
        stmt = select(faults).where(faults.c.kind == kind, faults.c.cluster_id == cluster_id)
        for column, value in target.items():
            stmt = stmt.where(faults.c[column] == value)
        row = self.conn.execute(stmt.order_by(faults.c.seq).limit(1)).first()
        if row is None:
            return None
        fault = _fault(row)
        if fault.remaining is not None and fault.remaining <= 1:
            self.remove(fault.fault_id)
        elif fault.remaining is not None:
            self.conn.execute(
                update(faults)
                .where(faults.c.fault_id == fault.fault_id)
                .values(remaining=fault.remaining - 1)
            )
        return fault

    def set_params(self, fault_id: str, params: dict[str, Any]) -> None:
        self.conn.execute(_SET_PARAMS, {"key": fault_id, "new_params": params})

    def forget_cluster(self, cluster_id: str) -> None:
        self.conn.execute(delete(faults).where(faults.c.cluster_id == cluster_id))


# What every launch, lifecycle script and termination asks, built once.
_ADD = faults.insert()
_GET = select(faults).where(faults.c.fault_id == bindparam("fault_id"))
_REMOVE = delete(faults).where(faults.c.fault_id == bindparam("fault_id"))
_SET_PARAMS = (
    update(faults)
    .where(faults.c.fault_id == bindparam("key"))
    .values(params=bindparam("new_params"))
)
_ON_INSTANCES = (
    select(faults)
    .where(
        faults.c.kind == FaultKind.HARDWARE,
        faults.c.instance_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(faults.c.seq)
)
_FORGET = delete(faults).where(faults.c.instance_id.in_(bindparam("ids", expanding=True)))
_CAPACITY_SHORT = (
    select(faults)
    .where(
        faults.c.kind == FaultKind.CAPACITY,
        faults.c.instance_type == bindparam("instance_type"),
        (faults.c.cluster_id.is_(None)) | (faults.c.cluster_id == bindparam("cluster_id")),
    )
    .limit(1)
)
_AIMED_AT = (
    select(faults.c.seq)
    .where(
        faults.c.kind == bindparam("kind"),
        faults.c.cluster_id == bindparam("cluster_id"),
        faults.c.group_name == bindparam("group_name"),
    )
    .limit(1)
)


def _fault(row: Row[Any]) -> Fault:
    return Fault(
        fault_id=row.fault_id,
        kind=row.kind,
        created_at=row.created_at,
        cluster_id=row.cluster_id,
        group_name=row.group_name,
        instance_id=row.instance_id,
        instance_type=row.instance_type,
        remaining=row.remaining,
        params=row.params,
    )
