"""MoveClusterNodes: which clusters, groups and nodes a move may take, with the per-node error
codes of the model (NodeIdNotFound, InvalidNodeStatus, NodeIdInUse, NodeInstanceTypeMismatch)
and the event texts on both clusters."""

from __future__ import annotations

from hyperpod_local.domain.eligibility import Refusal, busy_message
from hyperpod_local.domain.errors import ValidationError
from hyperpod_local.domain.model import (
    Cluster,
    ClusterStatus,
    GroupStatus,
    InstanceGroup,
    Node,
    NodeStatus,
)

OPERATION = "MoveClusterNodes"


def check_clusters(source: Cluster, target: Cluster, source_group: str, target_group: str) -> None:
    """Both clusters InService, EKS and Continuous; two different groups."""
    for cluster in (source, target) if source.id != target.id else (source,):
        if cluster.status != ClusterStatus.IN_SERVICE:
            raise ValidationError(
                f"Cluster {cluster.name} is in {cluster.status} status; {OPERATION} needs both "
                "clusters InService."
            )
        if not cluster.is_eks:
            raise ValidationError(
                f"{OPERATION} is only supported for clusters orchestrated by Amazon EKS; "
                f"cluster {cluster.name} is not."
            )
        if not cluster.continuous:
            raise ValidationError(
                f"{OPERATION} is only supported for clusters with NodeProvisioningMode set to "
                f"Continuous; cluster {cluster.name} is not."
            )
    if source.id == target.id and source_group == target_group:
        raise ValidationError(
            "The target instance group must be different from the source instance group when "
            "the target cluster is the source cluster."
        )


def check_target_group(target: Cluster, group: InstanceGroup) -> None:
    if group.status != GroupStatus.IN_SERVICE:
        raise ValidationError(
            f"Instance group {group.name} of cluster {target.name} is {group.status}; "
            f"{OPERATION} needs an InService target instance group."
        )


def subnets(cluster: Cluster, group: InstanceGroup) -> frozenset[str] | None:
    """The subnets the group's instances are in: its OverrideVpcConfig's, else its cluster's
    VpcConfig's; None when neither names any (the default subnets)."""
    config = group.spec.get("OverrideVpcConfig") or cluster.spec.get("VpcConfig") or {}
    return frozenset(config["Subnets"]) if config.get("Subnets") else None


def refusal(
    node: Node | None,
    given: str,
    source: Cluster,
    source_group: str,
    target: Cluster,
    target_group: InstanceGroup,
    *,
    has_volumes: bool,
) -> Refusal | None:
    """None if the node may move; else its per-node error, checked in this order: not in the
    source group, held by another operation, not Running, a type the target does not take,
    outside the target's subnets, an EBS volume still attached."""
    if node is None or node.group_name != source_group or node.instance_id is None:
        return Refusal(
            "NodeIdNotFound",
            f"Node {given} was not found in instance group {source_group} of cluster "
            f"{source.name}.",
        )
    if node.busy is not None:
        return Refusal("NodeIdInUse", busy_message(given, source.name, node.busy))
    if node.status != NodeStatus.RUNNING:
        return Refusal(
            "InvalidNodeStatus",
            f"Node {given} of cluster {source.name} is in {node.status} status; only Running "
            "nodes can be moved.",
        )
    if node.instance_type not in target_group.instance_types:
        return Refusal(
            "NodeInstanceTypeMismatch",
            f"Instance group {target_group.name} of cluster {target.name} does not support "
            f"the instance type {node.instance_type} of node {given}.",
        )
    source_subnets = subnets(source, source.group(source_group) or target_group)
    target_subnets = subnets(target, target_group)
    if source_subnets and target_subnets and not source_subnets & target_subnets:
        return Refusal(
            "InvalidNodeStatus",
            f"Node {given} is not in a subnet of instance group {target_group.name} of cluster "
            f"{target.name}.",
        )
    if has_volumes:
        return Refusal(
            "InvalidNodeStatus",
            f"Node {given} has an Amazon EBS volume attached; detach it with "
            "DetachClusterNodeVolume before you move the node.",
        )
    return None


def below_min_count(group: InstanceGroup, serving: int, leaving: int) -> ValidationError | None:
    if group.min_count and serving - leaving < group.min_count:
        return ValidationError(
            f"Moving {leaving} node(s) would reduce instance group {group.name} to "
            f"{serving - leaving} serving nodes, below its MinCount of {group.min_count}."
        )
    return None


# Event texts (ours: HyperPod does not publish its own for moves).
def move_started(i: str, c: str, g: str, tc: str, tg: str) -> str:
    return (
        f"Instance {i} move from Cluster {c} and InstanceGroup {g} to Cluster {tc} and "
        f"InstanceGroup {tg} started successfully"
    )


def detached(i: str, c: str, g: str) -> str:
    return f"EC2 Instance {i} successfully detached from Cluster {c} and InstanceGroup {g}"


def attach_started(i: str, c: str, g: str, sc: str, sg: str) -> str:
    return (
        f"EC2 Instance {i} from Cluster {sc} and InstanceGroup {sg} attaching to Cluster {c} "
        f"and InstanceGroup {g}"
    )


def move_completed(i: str, c: str, g: str) -> str:
    return f"Instance {i} move to Cluster {c} and InstanceGroup {g} completed successfully"


def move_called_off(i: str, c: str, g: str, tc: str, tg: str) -> str:
    return (
        f"Instance {i} move to Cluster {tc} and InstanceGroup {tg} was called off: the target "
        f"is gone; the instance serves Cluster {c} and InstanceGroup {g} again"
    )
