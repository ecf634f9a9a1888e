"""Which nodes a Batch node operation may act on, and the per-node error codes if not."""

from __future__ import annotations

from dataclasses import dataclass

from hyperpod_local.domain.lifecycle import node_allows
from hyperpod_local.domain.model import Cluster, InstanceGroup, Node, in_min_count_phase

# action -> (event of the node lifecycle, codes for not found / in use / status, verb)
_ACTIONS = {
    "replace": ("replace", "InstanceIdNotFound", "InstanceIdInUse", "InvalidInstanceStatus"),
    "reboot": ("reboot", "InstanceIdNotFound", "InstanceIdInUse", "InvalidInstanceStatus"),
    "delete": ("delete", "NodeIdNotFound", "NodeIdInUse", "InvalidNodeStatus"),
}
_VERBS = {"replace": "replaced", "reboot": "rebooted", "delete": "deleted"}
_BUSY = {
    "replace": "being replaced",
    "reboot": "being rebooted",
    "delete": "being deleted",
    "update": "being updated",
    "recover": "being recovered automatically",
    "provision": "being provisioned again",
    "dhc": "under a deep health check",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


def busy_message(given: str, cluster: str, busy: str | None) -> str:
    return (
        f"Node {given} of cluster {cluster} is {_BUSY.get(busy or '', 'busy')} by another "
        "operation; retry when it has finished."
    )


def is_controller(cluster: Cluster, group: InstanceGroup) -> bool:
    """The Slurm controller group: SlurmConfig NodeType Controller, or, on clusters configured
    through provisioning_parameters.json (no SlurmConfig), a group named like a controller."""
    if cluster.is_eks:
        return False
    node_type = (group.spec.get("SlurmConfig") or {}).get("NodeType")
    if node_type is not None:
        return node_type == "Controller"
    return "controller" in group.name.lower()


def slurm_head_groups(cluster: Cluster) -> list[str]:
    """The groups a Continuous Slurm cluster needs up before it is InService (spec 4.1, 8): its
    controller group and, if it has one, its login group; none for EKS."""
    if cluster.is_eks:
        return []
    return [
        group.name
        for group in cluster.groups
        if is_controller(cluster, group)
        or (group.spec.get("SlurmConfig") or {}).get("NodeType") == "Login"
    ]


def refusal(
    action: str, cluster: Cluster, node: Node | None, given: str, group: InstanceGroup | None
) -> Refusal | None:
    """None if `action` may start on the node; else the per-node error of the response."""
    event, not_found, in_use, bad_status = _ACTIONS[action]
    if node is None or group is None:
        return Refusal(not_found, f"Node {given} was not found in cluster {cluster.name}.")
    if action == "delete" and in_min_count_phase(cluster, group):
        return Refusal(
            bad_status,
            f"Instance group {group.name} of cluster {cluster.name} is {group.status} until "
            f"{group.min_count} of its nodes are up (its MinCount); its nodes can be deleted "
            "when it is InService.",
        )
    if node.busy is not None:
        return Refusal(in_use, busy_message(given, cluster.name, node.busy))
    if action in ("replace", "delete") and is_controller(cluster, group):
        # AWS documents NODE_ID_IN_USE for deleting the Slurm controller; replace follows it.
        return Refusal(
            in_use,
            f"Node {given} is the Slurm controller of cluster {cluster.name}; controller "
            f"nodes cannot be {_VERBS[action]}.",
        )
    if not node_allows(node.status, event):
        return Refusal(
            bad_status,
            f"Node {given} of cluster {cluster.name} is in {node.status} status and cannot be "
            f"{_VERBS[action]}; wait for ongoing changes to finish.",
        )
    return None
