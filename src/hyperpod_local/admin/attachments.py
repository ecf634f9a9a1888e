"""The admin API's view of what customers attached to an instance (EBS volumes, network
interfaces): the AWS API shows it in no Describe call."""

from __future__ import annotations

from typing import Any

from hyperpod_local.store.unit_of_work import Tx


def attached_view(tx: Tx, instance_id: str) -> dict[str, Any]:
    """A node view's `AttachedVolumes` and `NetworkInterfaces`, as the attach calls answer."""
    return {
        "AttachedVolumes": [
            {
                "VolumeId": volume.volume_id,
                "DeviceName": volume.device_name,
                "Status": volume.status,
                "AttachTime": volume.attach_time,
            }
            for volume in tx.attachments.volumes_of(instance_id)
        ],
        "NetworkInterfaces": [
            {
                "NetworkInterfaceId": interface.network_interface_id,
                "AttachmentId": interface.attachment_id,
                "DeviceIndex": interface.device_index,
                "AttachTime": interface.attach_time,
            }
            for interface in tx.attachments.interfaces_of(instance_id)
        ],
    }


def attached_ids(tx: Tx, instance_id: str) -> dict[str, list[str]]:
    """The inventory's lines: the ids of the volumes and interfaces attached."""
    return {
        "AttachedVolumeIds": [v.volume_id for v in tx.attachments.volumes_of(instance_id)],
        "NetworkInterfaceIds": [
            i.network_interface_id for i in tx.attachments.interfaces_of(instance_id)
        ],
    }
