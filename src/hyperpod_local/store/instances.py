"""The simulated provider's instances and volumes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from hyperpod_local.store import bulk
from hyperpod_local.store.schema import sim_instances, sim_volumes

# Every termination runs these: built once.
_REMOVE_VOLUMES = delete(sim_volumes).where(
    sim_volumes.c.instance_id.in_(bindparam("ids", expanding=True))
)
_REMOVE_INSTANCES = delete(sim_instances).where(
    sim_instances.c.instance_id.in_(bindparam("ids", expanding=True))
)
_INSTANCE_COLUMNS = ("instance_id", "cluster_id", "launched_at", "image_id", "boot_count")
_ADD_INSTANCES = sim_instances.insert().values(
    {name: bindparam(name) for name in _INSTANCE_COLUMNS}
)
_VOLUME_COLUMNS = ("volume_id", "instance_id", "position", "kind", "size_gb", "marker")
_ADD_VOLUMES = sim_volumes.insert().values({name: bindparam(name) for name in _VOLUME_COLUMNS})


class InstanceRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(
        self,
        launched: dict[str, Sequence[dict[str, Any]]],
        cluster_id: str,
        launched_at: float,
        image_id: str,
    ) -> None:
        """New instances of one cluster and image, each with its volumes; in bulk."""
        if not launched:
            return
        bulk.executemany(
            self.conn,
            _ADD_INSTANCES,
            _INSTANCE_COLUMNS,
            [(instance_id, cluster_id, launched_at, image_id, 1) for instance_id in launched],
        )
        bulk.executemany(
            self.conn,
            _ADD_VOLUMES,
            _VOLUME_COLUMNS,
            [
                (
                    volume["volume_id"],
                    instance_id,
                    volume["position"],
                    volume["kind"],
                    volume["size_gb"],
                    volume.get("marker"),
                )
                for instance_id, attached in launched.items()
                for volume in attached
            ],
        )

    def add_volumes(self, instance_id: str, volumes: Sequence[dict[str, Any]]) -> None:
        if volumes:
            self.conn.execute(
                sim_volumes.insert(),
                [{"instance_id": instance_id, "marker": None, **volume} for volume in volumes],
            )

    def get(self, instance_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(sim_instances).where(sim_instances.c.instance_id == instance_id)
        ).first()
        return None if row is None else dict(row._mapping)

    def volumes(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(sim_volumes)
            .where(sim_volumes.c.instance_id == instance_id)
            .order_by(sim_volumes.c.position)
        )
        return [dict(row._mapping) for row in rows]

    def set_marker(self, instance_id: str, volume_id: str, marker: str) -> bool:
        result = self.conn.execute(
            update(sim_volumes)
            .where(sim_volumes.c.instance_id == instance_id, sim_volumes.c.volume_id == volume_id)
            .values(marker=marker)
        )
        return result.rowcount == 1

    def count_boot(self, instance_id: str) -> None:
        self.conn.execute(_COUNT_BOOT, {"key": instance_id})

    def replace_roots(self, roots: dict[str, dict[str, Any]], image_id: str) -> None:
        """Give each instance a new root volume and the image, and count the boot; in bulk."""
        ids = list(roots)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self.conn.execute(
                delete(sim_volumes).where(
                    sim_volumes.c.instance_id.in_(chunk), sim_volumes.c.kind == "root"
                )
            )
            self.conn.execute(
                update(sim_instances)
                .where(sim_instances.c.instance_id.in_(chunk))
                .values(image_id=image_id, boot_count=sim_instances.c.boot_count + 1)
            )
        if ids:
            self.conn.execute(
                sim_volumes.insert(),
                [{"instance_id": i, "marker": None, **volume} for i, volume in roots.items()],
            )

    def hand_over(
        self,
        instance_id: str,
        cluster_id: str,
        image_id: str,
        volumes: Sequence[dict[str, Any]],
    ) -> None:
        """The instance serves another cluster (or group), on new volumes: the old ones go."""
        self.conn.execute(delete(sim_volumes).where(sim_volumes.c.instance_id == instance_id))
        self.conn.execute(
            update(sim_instances)
            .where(sim_instances.c.instance_id == instance_id)
            .values(
                cluster_id=cluster_id,
                image_id=image_id,
                boot_count=sim_instances.c.boot_count + 1,
            )
        )
        self.add_volumes(instance_id, volumes)

    def remove(self, instance_ids: Sequence[str]) -> None:
        ids = list(instance_ids)
        for start in range(0, len(ids), 500):
            chunk = {"ids": ids[start : start + 500]}
            self.conn.execute(_REMOVE_VOLUMES, chunk)
            self.conn.execute(_REMOVE_INSTANCES, chunk)

    def ids_for_cluster(self, cluster_id: str) -> list[str]:
        return list(
            self.conn.scalars(
                select(sim_instances.c.instance_id).where(sim_instances.c.cluster_id == cluster_id)
            )
        )

    def all_ids(self) -> list[str]:
        return list(self.conn.scalars(select(sim_instances.c.instance_id)))

    def orphan_volume_count(self) -> int:
        known = select(sim_instances.c.instance_id)
        rows = self.conn.execute(
            select(sim_volumes.c.volume_id).where(sim_volumes.c.instance_id.not_in(known))
        )
        return len(rows.all())


# Every reboot runs it: built once.
_COUNT_BOOT = (
    update(sim_instances)
    .where(sim_instances.c.instance_id == bindparam("key"))
    .values(boot_count=sim_instances.c.boot_count + 1)
)
