"""UpdateCluster's rules (spec 6.4, 19.4): what may change, and how a group's size changes."""

from __future__ import annotations

import random
from typing import Any

from hyperpod_local.domain.cluster_rules import RESTRICTED_GROUPS_MESSAGE, check_group
from hyperpod_local.domain.errors import ConflictError, ValidationError
from hyperpod_local.domain.lifecycle import node_allows
from hyperpod_local.domain.model import Cluster, ClusterStatus, Node, NodeStatus

# Fields of an existing group that UpdateCluster cannot change.
IMMUTABLE_GROUP_FIELDS = (
    "InstanceType",
    "InstanceRequirements",
    "ExecutionRole",
    "ThreadsPerCore",
    "OverrideVpcConfig",
)

# Of those, the ones an update that leaves them out keeps as they are: ThreadsPerCore is
# optional with a default, so leaving it out is no change of it.
LEFT_OUT_IS_KEPT = frozenset({"ThreadsPerCore"})


def check_update_request(cluster: Cluster, params: dict[str, Any]) -> None:
    if cluster.status == ClusterStatus.FAILED:
        raise ValidationError(
            f"Cluster {cluster.name} is Failed and cannot be updated; delete it and create it "
            "again."
        )
    if cluster.status != ClusterStatus.IN_SERVICE:
        raise ConflictError(
            f"Cluster {cluster.name} is in {cluster.status} status; it can be updated only when "
            "it is InService."
        )
    if params.get("RestrictedInstanceGroups"):
        raise ValidationError(RESTRICTED_GROUPS_MESSAGE)
    mode = params.get("NodeProvisioningMode")
    continuous = cluster.continuous or mode == "Continuous"
    groups: list[dict[str, Any]] = params.get("InstanceGroups") or []
    to_delete: list[str] = params.get("InstanceGroupsToDelete") or []
    names = [g["InstanceGroupName"] for g in groups]
    if len(set(names)) != len(names):
        raise ValidationError("Instance group names must be unique within a request.")
    both = sorted(set(names) & set(to_delete))
    if both:
        raise ValidationError(
            f"Instance groups cannot be both updated and deleted: {', '.join(both)}."
        )
    unknown = [name for name in to_delete if cluster.group(name) is None]
    if unknown:
        raise ValidationError(
            f"InstanceGroupsToDelete names groups that are not in cluster {cluster.name}: "
            f"{', '.join(unknown)}."
        )
    remaining = {g.name for g in cluster.groups} - set(to_delete) | set(names)
    if not remaining:
        raise ValidationError("A cluster must keep at least one instance group.")
    orchestrator = params.get("Orchestrator")
    if orchestrator is not None:
        kinds = [key for key in ("Eks", "Slurm") if orchestrator.get(key) is not None]
        current = "Eks" if cluster.is_eks else "Slurm"
        if kinds != [current]:
            raise ValidationError("The orchestrator of a cluster cannot be changed.")
    for spec in groups:
        existing = cluster.group(spec["InstanceGroupName"])
        if existing is None:
            check_group(spec, continuous=continuous, is_eks=cluster.is_eks)
            continue
        changed = [
            field
            for field in IMMUTABLE_GROUP_FIELDS
            if field not in LEFT_OUT_IS_KEPT or field in spec
            if _normal(field, spec.get(field)) != _normal(field, existing.spec.get(field))
        ]
        if changed:
            raise ValidationError(
                f"Updating fields {', '.join(changed)} on an InstanceGroup not supported"
            )
        check_group(spec, continuous=continuous, is_eks=cluster.is_eks)


def _normal(field: str, value: Any) -> Any:
    return 1 if field == "ThreadsPerCore" and value is None else value


def pick_for_scale_down(nodes: list[Node], count: int, rng: random.Random) -> list[Node]:
    """Nodes UpdateCluster removes when a group shrinks: AWS picks at random; nodes that have
    no instance yet, have failed or are still provisioning go first, as the remediation
    anchors do. Nodes another operation holds are not taken."""
    # A node waiting to retry its launch is the first to go: it serves nothing.
    retrying = [n for n in nodes if n.busy == "provision"]
    unlaunched = [n for n in nodes if n.instance_id is None and n.busy is None]
    free = [
        n for n in nodes if n.busy is None and n.instance_id and node_allows(n.status, "scaled_in")
    ]
    failed = [n for n in free if n.status == NodeStatus.FAILURE]
    provisioning = [n for n in free if n.status == NodeStatus.PENDING]
    rest = [n for n in free if n not in failed and n not in provisioning]
    rng.shuffle(rest)
    return (retrying + unlaunched + failed + provisioning + rest)[:count]


def pick_for_rollback(nodes: list[Node], target: int) -> list[Node]:
    """Nodes a rollback takes out so that `target` stay (spec 4.2): unhealthy ones first (no
    instance, Failure, still provisioning), then the newest. Nodes already being deleted
    are neither counted nor taken again."""
    staying = [n for n in nodes if n.busy != "delete"]
    unhealthy = [
        n
        for n in staying
        if n.instance_id is None or n.status in (NodeStatus.FAILURE, NodeStatus.PENDING)
    ]
    healthy = [n for n in staying if n not in unhealthy]
    healthy.sort(key=lambda n: (n.launch_time or 0.0, n.row_id or 0), reverse=True)
    return (unhealthy + healthy)[: max(0, len(staying) - target)]
