"""Rollbacks: a classic UpdateCluster that cannot get its nodes, and a Continuous group that
missed its MinCount in time, go back to the groups' last good values (spec 4.1, 4.2)."""

from __future__ import annotations

from hyperpod_local.domain import events as text
from hyperpod_local.domain.events import EventLog, scaling_metadata
from hyperpod_local.domain.lifecycle import move_cluster
from hyperpod_local.domain.model import (
    Cluster,
    ClusterStatus,
    EventLevel,
    GroupStatus,
    InstanceGroup,
    Task,
)
from hyperpod_local.domain.update_rules import pick_for_rollback
from hyperpod_local.engine.context import StepContext
from hyperpod_local.engine.followups import finish_scaling
from hyperpod_local.engine.operations import start_node_action

# Launches a classic update's node gets (the first and its retries) before the update rolls
# back: about what HyperPod gives a failing lifecycle script in a software update (spec 4.4).
UPDATE_ATTEMPTS = 4
# The step that ends a rollback (engine/cluster_steps.py).
ROLLBACK_STEP = "update_rollback"


def update_gives_up(
    ctx: StepContext, cluster: Cluster, task: Task, message: str, log: EventLog
) -> bool:
    """A node of a classic update failed once more: True when that was its last attempt and
    the update now rolls back (the caller's step then ends; its task is kept until it does)."""
    if cluster.continuous or cluster.status != ClusterStatus.UPDATING or not task.operation_id:
        return False
    attempts = int(task.data.get("attempts", 1)) + 1
    task.data = {**task.data, "attempts": attempts}
    if attempts < UPDATE_ATTEMPTS:
        return False
    roll_back_update(ctx, cluster, task.operation_id, message, log, keep=task.id)
    return True


def roll_back_update(
    ctx: StepContext,
    cluster: Cluster,
    operation_id: str,
    message: str,
    log: EventLog,
    *,
    keep: int | None,
) -> None:
    """RollingBack: every group the update grew goes back to its size before it (a new group
    to 0), its extra nodes terminated; the cluster is InService again when they are gone
    (settle_scaling), with FailureMessage saying why."""
    move_cluster(cluster, "roll_back")
    cluster.failure_message = message
    log.cluster(text.cluster_update_rolling_back(cluster.name), level=EventLevel.ERROR)
    operation = ctx.tx.events.get_operation(cluster.id, operation_id)
    for detail in operation.details.get("ScalingDetails", []) if operation else []:
        group = cluster.group(detail["InstanceGroupName"])
        original = detail["Original"]
        if group is None or group.target_count <= original["TargetCount"]:
            continue  # a scale-in of the same update stands: its nodes are gone already
        shrink_back(
            ctx, cluster, group, original["TargetCount"], original["MinCount"], operation_id, keep
        )
    # The rollback's own work (terminations, the groups' configuration put back) takes a
    # while even when the nodes to take out had no instance: RollingBack is seen.
    ctx.later(
        Task(
            cluster_id=cluster.id,
            kind=ROLLBACK_STEP,
            step="done",
            due_at=0,
            operation_id=operation_id,
        ),
        ctx.durations.terminate,
    )
    ctx.tx.clusters.save(cluster)


def shrink_back(
    ctx: StepContext,
    cluster: Cluster,
    group: InstanceGroup,
    target: int,
    minimum: int | None,
    operation_id: str | None,
    keep: int | None,
) -> None:
    """Take the group back to `target` nodes: its unhealthy nodes go first, then the newest.
    Their own pending steps (a launch retry) are cancelled; `keep` is the running step's."""
    group.target_count, group.min_count = target, minimum
    for node in pick_for_rollback(ctx.tx.nodes.in_group(cluster.id, group.name), target):
        ctx.tx.tasks.remove_for_node(node.row_id or -1, keep=keep)
        node.busy = None
        if node.instance_id is None:
            ctx.tx.nodes.remove(node.row_id or -1)
            continue
        start_node_action(
            ctx.tx,
            cluster,
            node,
            "delete",
            ctx.now,
            ctx.durations,
            busy="delete",
            operation_id=operation_id,
            event="rolled_back",
        )
    ctx.tx.clusters.save_group(group)


def roll_back_min_count(
    ctx: StepContext, cluster: Cluster, group: InstanceGroup, task: Task, log: EventLog
) -> None:
    """The group did not reach its MinCount in `min_count_window` (spec 4.2): back to its last
    InService values (a new group to 0 nodes and MinCount 0), InService. Scaling operations
    whose only work left was this group's retries end with it."""
    minimum = group.min_count or 0
    target, back_min = int(task.data["target"]), task.data["min"]
    log.group(
        group.name,
        text.group_min_count_missed(
            group.name, cluster.name, minimum, ctx.durations.nominal("min_count_window") / 3600
        ),
        level=EventLevel.ERROR,
        metadata=scaling_metadata(
            ctx.tx.nodes.serving_count(cluster.id, group.name), target, back_min
        ),
    )
    shrink_back(ctx, cluster, group, target, back_min, None, task.id)
    group.status = GroupStatus.IN_SERVICE
    ctx.tx.clusters.save_group(group)
    for operation_id in ctx.tx.events.operation_ids_in_progress(cluster.id, "Scaling"):
        if not ctx.tx.tasks.count(cluster.id, operation_id=operation_id):
            finish_scaling(ctx, cluster, operation_id, log)
