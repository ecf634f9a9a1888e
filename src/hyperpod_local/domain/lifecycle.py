"""Node and cluster lifecycles as explicit transition tables (h11 style): an event that the
table does not allow from the current state is an error, never a silent change."""

from __future__ import annotations

from hyperpod_local.domain.model import Cluster, ClusterStatus, Node, NodeStatus

N = NodeStatus
C = ClusterStatus


class InvalidTransition(Exception):
    pass


NODE_TRANSITIONS: dict[tuple[str, str], str] = {
    (N.PENDING, "provisioned"): N.RUNNING,
    (N.PENDING, "provisioning_failed"): N.FAILURE,
    (N.RUNNING, "reboot"): N.PENDING,
    (N.FAILURE, "reboot"): N.PENDING,
    (N.PENDING, "booted"): N.RUNNING,
    (N.RUNNING, "replace"): N.SHUTTING_DOWN,
    (N.FAILURE, "replace"): N.SHUTTING_DOWN,
    (N.SHUTTING_DOWN, "relaunched"): N.PENDING,
    (N.RUNNING, "delete"): N.SHUTTING_DOWN,
    (N.FAILURE, "delete"): N.SHUTTING_DOWN,
    (N.RUNNING, "update"): N.SYSTEM_UPDATING,
    (N.FAILURE, "update"): N.SYSTEM_UPDATING,
    (N.SYSTEM_UPDATING, "updated"): N.RUNNING,
    (N.RUNNING, "fault_detected"): N.FAILURE,
    (N.PENDING, "deep_health_check"): N.DEEP_HEALTH_CHECK_IN_PROGRESS,
    (N.RUNNING, "deep_health_check"): N.DEEP_HEALTH_CHECK_IN_PROGRESS,
    (N.DEEP_HEALTH_CHECK_IN_PROGRESS, "check_passed"): N.RUNNING,
    (N.DEEP_HEALTH_CHECK_IN_PROGRESS, "check_failed"): N.FAILURE,
    # A launch that finds no capacity leaves the node without an instance, in Failure.
    (N.PENDING, "launch_failed"): N.FAILURE,
    (N.SHUTTING_DOWN, "launch_failed"): N.FAILURE,
    (N.FAILURE, "launch_failed"): N.FAILURE,
    # A failed node is tried again on a new instance.
    (N.FAILURE, "relaunched"): N.PENDING,
    # MoveClusterNodes: leaving the source group, joining the target, serving there; a node
    # whose target went away while it detached goes back to serving its source group.
    (N.RUNNING, "move"): N.DETACH_IN_PROGRESS,
    (N.DETACH_IN_PROGRESS, "handed_off"): N.ATTACH_IN_PROGRESS,
    (N.DETACH_IN_PROGRESS, "move_called_off"): N.RUNNING,
    (N.ATTACH_IN_PROGRESS, "joined"): N.RUNNING,
    (N.ATTACH_IN_PROGRESS, "deep_health_check"): N.DEEP_HEALTH_CHECK_IN_PROGRESS,
    (N.ATTACH_IN_PROGRESS, "provisioning_failed"): N.FAILURE,
}
# Deleting a cluster takes every node down, whatever it was doing; an operation the engine
# had to give up on leaves its node in Failure, whatever state it had reached.
NODE_TRANSITIONS.update({(status, "cluster_deleted"): N.SHUTTING_DOWN for status in N})
NODE_TRANSITIONS.update({(status, "abandoned"): N.FAILURE for status in N})
# A scale-in (UpdateCluster lowering a count) may take a node still provisioning, as the
# desired-state model of Continuous clusters has it; BatchDelete may not.
NODE_TRANSITIONS.update(
    {(status, "scaled_in"): N.SHUTTING_DOWN for status in (N.PENDING, N.RUNNING, N.FAILURE)}
)
# Deleting a whole group takes its nodes down from any state, as deleting a cluster does;
# so does a rollback taking a group back to its last good size.
NODE_TRANSITIONS.update({(status, "group_deleted"): N.SHUTTING_DOWN for status in N})
NODE_TRANSITIONS.update({(status, "rolled_back"): N.SHUTTING_DOWN for status in N})

CLUSTER_TRANSITIONS: dict[tuple[str, str], str] = {
    (C.CREATING, "created"): C.IN_SERVICE,
    (C.CREATING, "failed"): C.FAILED,
    (C.CREATING, "delete"): C.DELETING,
    (C.IN_SERVICE, "delete"): C.DELETING,
    (C.FAILED, "delete"): C.DELETING,
    (C.SYSTEM_UPDATING, "delete"): C.DELETING,
    (C.IN_SERVICE, "update_software"): C.SYSTEM_UPDATING,
    (C.IN_SERVICE, "update"): C.UPDATING,
    (C.UPDATING, "updated"): C.IN_SERVICE,
    (C.UPDATING, "delete"): C.DELETING,
    # A classic update that cannot get its nodes goes back to the groups' last good values.
    (C.UPDATING, "roll_back"): C.ROLLING_BACK,
    (C.ROLLING_BACK, "rolled_back"): C.IN_SERVICE,
    (C.ROLLING_BACK, "delete"): C.DELETING,
    (C.SYSTEM_UPDATING, "software_updated"): C.IN_SERVICE,
    # A delete can fail; the cluster is then Failed and DeleteCluster can be called again.
    (C.DELETING, "delete_failed"): C.FAILED,
}


def node_sources(event: str) -> tuple[list[str], str]:
    """The node states an event may start from, and the state it leads to (for bulk moves;
    every source must lead to the same state)."""
    moves = {source: target for (source, name), target in NODE_TRANSITIONS.items() if name == event}
    targets = set(moves.values())
    if len(targets) != 1:
        raise InvalidTransition(f"'{event}' has no single target state")
    return list(moves), targets.pop()


def node_allows(status: str, event: str) -> bool:
    return (status, event) in NODE_TRANSITIONS


def move_node(node: Node, event: str) -> None:
    try:
        node.status = NODE_TRANSITIONS[(node.status, event)]
    except KeyError:
        raise InvalidTransition(f"node in {node.status} cannot take '{event}'") from None


def cluster_allows(status: str, event: str) -> bool:
    return (status, event) in CLUSTER_TRANSITIONS


def move_cluster(cluster: Cluster, event: str) -> None:
    try:
        cluster.status = CLUSTER_TRANSITIONS[(cluster.status, event)]
    except KeyError:
        raise InvalidTransition(f"cluster in {cluster.status} cannot take '{event}'") from None
