"""Every engine step, by operation kind. Each step runs inside the engine's transaction with
the task that scheduled it, so its effects and the task's progress commit together: a crash
between two steps loses nothing and repeats nothing."""

from __future__ import annotations

from hyperpod_local.domain.lifecycle import cluster_allows, move_cluster, move_node
from hyperpod_local.domain.model import ClusterStatus, EventLevel, GroupStatus, Task
from hyperpod_local.engine import (
    attachment_steps,
    cluster_steps,
    deep_health_checks,
    extension_steps,
    health_agent,
    move_steps,
    node_steps,
    random_faults,
    software_steps,
    task_governance_steps,
)
from hyperpod_local.engine.context import BATCH_STEPS, STEPS, StepContext
from hyperpod_local.engine.followups import fail_creation, finish_scaling

# The step modules register their steps when imported; a new kind of step is a new module
# here, importing only context, followups, recovery and operations.
_MODULES = (
    cluster_steps,
    node_steps,
    health_agent,
    deep_health_checks,
    software_steps,
    random_faults,
    extension_steps,
    task_governance_steps,
)
# MoveClusterNodes, and EBS volumes attaching and detaching.
_NODE_MOVE_MODULES = (move_steps, attachment_steps)

__all__ = ["BATCH_STEPS", "STEPS", "StepContext", "record_abandoned"]


def record_abandoned(ctx: StepContext, task: Task, error: Exception) -> None:
    """The engine gave up on a step that kept failing. Leave nothing held: the node is in
    Failure with the reason and free for a client to act on, its scaling operation is closed,
    a creation fails, an update ends, a deletion fails (and can be called again); and say so
    where a user looks, in the events."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is None:
        return
    message = f"Internal error in {task.kind} ({task.step}): {error}"
    log = ctx.log(cluster)
    node = ctx.tx.nodes.get(task.node_id) if task.node_id is not None else None
    if node is not None:
        move_node(node, "abandoned")
        node.busy = None
        node.status_message = message
        ctx.tx.nodes.save(node)
    if task.operation_id and ctx.tx.tasks.count(cluster.id, operation_id=task.operation_id) <= 1:
        finish_scaling(ctx, cluster, task.operation_id, log)
    if task.kind in ("cluster_create", "group_provision") and cluster_allows(
        cluster.status, "failed"
    ):
        fail_creation(ctx, cluster, message, log, keep=task.id)
    elif task.kind == "software_update":
        for member in ctx.tx.nodes.in_group(cluster.id, task.group_name):
            if member.busy == "update":
                move_node(member, "abandoned")
                member.busy, member.status_message = None, message
                ctx.tx.nodes.save(member)
        if ctx.tx.tasks.count(cluster.id, kind="software_update") <= 1:
            move_cluster(cluster, "software_updated")
            for group in cluster.groups:
                if group.status == GroupStatus.SYSTEM_UPDATING:
                    group.status = GroupStatus.IN_SERVICE
                    ctx.tx.clusters.save_group(group)
    elif task.kind == "cluster_delete" and cluster.status == ClusterStatus.DELETING:
        move_cluster(cluster, "delete_failed")
        cluster.failure_message = message
    ctx.tx.clusters.save(cluster)
    log.cluster(f"{message} (cluster {cluster.name})", level=EventLevel.ERROR)
    ctx.tx.events.add_all(log.events)
