"""AttachClusterNodeVolume, DetachClusterNodeVolume and AttachClusterNodeNetworkInterface.

A volume attaches and detaches in the engine (`attaching`, then `attached`; `detaching`,
then detached), as EC2 does it; an interface is attached when the call answers.
"""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.domain import attachments as rules
from hyperpod_local.domain.attachments import NetworkInterfaceAttachment, VolumeAttachment
from hyperpod_local.domain.errors import ResourceLimitExceeded, ResourceNotFound, ValidationError
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.model import Cluster, ClusterStatus, Node, Task
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.unit_of_work import Tx

VOLUME_ATTACH = "volume_attach"
VOLUME_DETACH = "volume_detach"


def attach_volume(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    volume_id: str = params["VolumeId"]
    with services.store.write() as tx:
        cluster, node = _eks_node(tx, scope, params, "AttachClusterNodeVolume")
        assert node.instance_id is not None
        rules.check_attachable(node)
        now = services.clock.now()
        existing = tx.attachments.volume(scope, volume_id)
        if existing is not None:
            if existing.instance_id != node.instance_id:
                raise rules.volume_in_use(volume_id)
            if existing.status == rules.DETACHING:
                raise rules.ec2_error(
                    "IncorrectState", f"Volume '{volume_id}' is in the 'detaching' state."
                )
            # Asked again (a CSI driver's retry): the attachment as it is.
            return _volume_answer(cluster, existing)
        if tx.attachments.is_instance_volume(volume_id):
            raise rules.volume_in_use(volume_id)
        attachment = VolumeAttachment(
            account_id=scope.account_id,
            region=scope.region,
            volume_id=volume_id,
            instance_id=node.instance_id,
            device_name=rules.free_device(tx.attachments.volumes_of(node.instance_id)),
            status=rules.ATTACHING,
            attach_time=now,
        )
        tx.attachments.add_volume(attachment)
        after = services.durations.volume_attach
        _schedule(tx, cluster, node, VOLUME_ATTACH, volume_id, after, now)
        log = EventLog(cluster.id, now)
        log.instance(
            node.group_name,
            node.instance_id,
            rules.volume_attach_started(volume_id, node.instance_id, cluster.name, node.group_name),
            metadata={"Instance": {"NodeLogicalId": node.logical_id}},
        )
        tx.events.add_all(log.events)
    services.engine.notify()
    return _volume_answer(cluster, attachment)


def detach_volume(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    volume_id: str = params["VolumeId"]
    with services.store.write() as tx:
        cluster, node = _eks_node(tx, scope, params, "DetachClusterNodeVolume")
        assert node.instance_id is not None
        existing = tx.attachments.volume(scope, volume_id)
        if existing is None:
            raise rules.volume_available(volume_id)
        if existing.instance_id != node.instance_id:
            raise rules.not_attached_here(volume_id, node.instance_id)
        if existing.status == rules.DETACHING:
            return _volume_answer(cluster, existing)
        now = services.clock.now()
        # An attach still under way is overtaken: its step finds the volume detaching.
        tx.attachments.set_volume_status(existing, rules.DETACHING)
        after = services.durations.volume_detach
        _schedule(tx, cluster, node, VOLUME_DETACH, volume_id, after, now)
        log = EventLog(cluster.id, now)
        log.instance(
            node.group_name,
            node.instance_id,
            rules.volume_detach_started(volume_id, node.instance_id, cluster.name, node.group_name),
            metadata={"Instance": {"NodeLogicalId": node.logical_id}},
        )
        tx.events.add_all(log.events)
    services.engine.notify()
    return _volume_answer(cluster, existing)


def attach_network_interface(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    interface_id: str = params["NetworkInterfaceId"]
    with services.store.write() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"], with_groups=False)
        _check_in_service(cluster, "AttachClusterNodeNetworkInterface")
        node = _node(tx, cluster, params["NodeId"], params["ClusterName"])
        assert node.instance_id is not None
        rules.check_attachable(node)
        existing = tx.attachments.interface(scope, interface_id)
        if existing is not None:
            if existing.instance_id != node.instance_id:
                raise rules.interface_in_use(interface_id)
            return _interface_answer(cluster, existing)
        index = rules.free_device_index(tx.attachments.interfaces_of(node.instance_id))
        if index is None:
            raise ResourceLimitExceeded(
                f"Node {node.instance_id} of cluster {cluster.name} already has "
                f"{rules.MAX_ATTACHED_INTERFACES} network interfaces attached, the most it "
                "can take besides its primary one."
            )
        now = services.clock.now()
        attachment = NetworkInterfaceAttachment(
            account_id=scope.account_id,
            region=scope.region,
            network_interface_id=interface_id,
            attachment_id=rules.attachment_id(services.ids),
            instance_id=node.instance_id,
            device_index=index,
            attach_time=now,
        )
        tx.attachments.add_interface(attachment)
        log = EventLog(cluster.id, now)
        log.instance(
            node.group_name,
            node.instance_id,
            rules.interface_attached(
                interface_id,
                node.instance_id,
                attachment.attachment_id,
                cluster.name,
                node.group_name,
            ),
            metadata={"Instance": {"NodeLogicalId": node.logical_id}},
        )
        tx.events.add_all(log.events)
    return _interface_answer(cluster, attachment)


def _eks_node(tx: Tx, scope: Scope, params: dict[str, Any], operation: str) -> tuple[Cluster, Node]:
    given = params["ClusterArn"]
    cluster = find_cluster(tx, scope, given, with_groups=False)
    if not cluster.is_eks:
        raise ValidationError(
            f"{operation} is only supported for clusters orchestrated by Amazon EKS; cluster "
            f"{cluster.name} is not."
        )
    _check_in_service(cluster, operation)
    return cluster, _node(tx, cluster, params["NodeId"], given)


def _check_in_service(cluster: Cluster, operation: str) -> None:
    if cluster.status != ClusterStatus.IN_SERVICE:
        raise ValidationError(
            f"Cluster {cluster.name} is in {cluster.status} status; {operation} needs an "
            "InService cluster."
        )


def _node(tx: Tx, cluster: Cluster, node_id: str, given: str) -> Node:
    node = tx.nodes.by_instance_id(cluster.id, node_id)
    if node is None:
        raise ResourceNotFound(f"Could not find node '{node_id}' in cluster '{given}'.")
    return node


def _schedule(
    tx: Tx, cluster: Cluster, node: Node, kind: str, volume_id: str, after: float, now: float
) -> None:
    tx.tasks.add(
        Task(
            cluster_id=cluster.id,
            kind=kind,
            step="finish",
            due_at=round(now + after, 3),
            node_id=node.row_id,
            data={"volume_id": volume_id},
        )
    )


def _volume_answer(cluster: Cluster, attachment: VolumeAttachment) -> dict[str, Any]:
    return {
        "ClusterArn": cluster.arn,
        "NodeId": attachment.instance_id,
        "VolumeId": attachment.volume_id,
        "AttachTime": attachment.attach_time,
        "Status": attachment.status,
        "DeviceName": attachment.device_name,
    }


def _interface_answer(cluster: Cluster, attachment: NetworkInterfaceAttachment) -> dict[str, Any]:
    return {
        "ClusterArn": cluster.arn,
        "NodeId": attachment.instance_id,
        "NetworkInterfaceId": attachment.network_interface_id,
        "AttachmentId": attachment.attachment_id,
    }
