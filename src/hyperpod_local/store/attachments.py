"""What customers attached to nodes: EBS volumes and elastic network interfaces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from hyperpod_local.domain.attachments import NetworkInterfaceAttachment, VolumeAttachment
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.schema import network_interface_attachments as enis
from hyperpod_local.store.schema import sim_volumes
from hyperpod_local.store.schema import volume_attachments as volumes


class AttachmentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # EBS volumes -------------------------------------------------------------------------

    def volume(self, scope: Scope, volume_id: str) -> VolumeAttachment | None:
        row = self.conn.execute(
            select(volumes).where(
                volumes.c.account_id == scope.account_id,
                volumes.c.region == scope.region,
                volumes.c.volume_id == volume_id,
            )
        ).first()
        return None if row is None else _volume(row)

    def volumes_of(self, instance_id: str) -> list[VolumeAttachment]:
        rows = self.conn.execute(
            select(volumes)
            .where(volumes.c.instance_id == instance_id)
            .order_by(volumes.c.device_name)
        )
        return [_volume(row) for row in rows]

    def add_volume(self, attachment: VolumeAttachment) -> None:
        self.conn.execute(
            volumes.insert(),
            dict(
                account_id=attachment.account_id,
                region=attachment.region,
                volume_id=attachment.volume_id,
                instance_id=attachment.instance_id,
                device_name=attachment.device_name,
                status=attachment.status,
                attach_time=attachment.attach_time,
            ),
        )

    def set_volume_status(self, attachment: VolumeAttachment, status: str) -> None:
        self.conn.execute(
            update(volumes)
            .where(
                volumes.c.account_id == attachment.account_id,
                volumes.c.region == attachment.region,
                volumes.c.volume_id == attachment.volume_id,
                volumes.c.instance_id == attachment.instance_id,
            )
            .values(status=status)
        )
        attachment.status = status

    def remove_volume(self, attachment: VolumeAttachment) -> None:
        self.conn.execute(
            delete(volumes).where(
                volumes.c.account_id == attachment.account_id,
                volumes.c.region == attachment.region,
                volumes.c.volume_id == attachment.volume_id,
                volumes.c.instance_id == attachment.instance_id,
            )
        )

    def is_instance_volume(self, volume_id: str) -> bool:
        """A root or secondary volume HyperPod made for one of its instances."""
        found = self.conn.scalar(
            select(sim_volumes.c.volume_id).where(sim_volumes.c.volume_id == volume_id)
        )
        return found is not None

    # Network interfaces ------------------------------------------------------------------

    def interface(self, scope: Scope, interface_id: str) -> NetworkInterfaceAttachment | None:
        row = self.conn.execute(
            select(enis).where(
                enis.c.account_id == scope.account_id,
                enis.c.region == scope.region,
                enis.c.network_interface_id == interface_id,
            )
        ).first()
        return None if row is None else _interface(row)

    def interfaces_of(self, instance_id: str) -> list[NetworkInterfaceAttachment]:
        rows = self.conn.execute(
            select(enis).where(enis.c.instance_id == instance_id).order_by(enis.c.device_index)
        )
        return [_interface(row) for row in rows]

    def add_interface(self, attachment: NetworkInterfaceAttachment) -> None:
        self.conn.execute(
            enis.insert(),
            dict(
                account_id=attachment.account_id,
                region=attachment.region,
                network_interface_id=attachment.network_interface_id,
                attachment_id=attachment.attachment_id,
                instance_id=attachment.instance_id,
                device_index=attachment.device_index,
                attach_time=attachment.attach_time,
            ),
        )

    # Instances going away ----------------------------------------------------------------

    def release(self, instance_ids: Sequence[str]) -> None:
        """The instances terminated: everything attached to them is detached (the volumes
        and interfaces are the customer's, and outlive the instance)."""
        ids = list(instance_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self.conn.execute(_RELEASE_VOLUMES, {"ids": chunk})
            self.conn.execute(_RELEASE_INTERFACES, {"ids": chunk})


def _volume(row: Any) -> VolumeAttachment:
    return VolumeAttachment(
        account_id=row.account_id,
        region=row.region,
        volume_id=row.volume_id,
        instance_id=row.instance_id,
        device_name=row.device_name,
        status=row.status,
        attach_time=row.attach_time,
    )


def _interface(row: Any) -> NetworkInterfaceAttachment:
    return NetworkInterfaceAttachment(
        account_id=row.account_id,
        region=row.region,
        network_interface_id=row.network_interface_id,
        attachment_id=row.attachment_id,
        instance_id=row.instance_id,
        device_index=row.device_index,
        attach_time=row.attach_time,
    )


# Every termination runs them: built once.
_RELEASE_VOLUMES = delete(volumes).where(
    volumes.c.instance_id.in_(bindparam("ids", expanding=True))
)
_RELEASE_INTERFACES = delete(enis).where(enis.c.instance_id.in_(bindparam("ids", expanding=True)))
