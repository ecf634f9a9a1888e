"""Deep health checks: on new nodes (OnStartDeepHealthChecks) and on demand
(StartClusterHealthCheck). A node under a check is DeepHealthCheckInProgress for as long as
its checks take; a node with a hardware fault fails the check and is replaced."""

from __future__ import annotations

from hyperpod_local.domain import events as text
from hyperpod_local.domain.lifecycle import move_node
from hyperpod_local.domain.model import EventLevel, GroupStatus, NodeStatus, Task
from hyperpod_local.engine.context import StepContext, step
from hyperpod_local.engine.followups import (
    group_gone,
    group_ready,
    maybe_cluster_created,
    settle_scaling,
)
from hyperpod_local.engine.operations import start_node_action
from hyperpod_local.engine.recovery import resume_recoveries


@step("deep_health_check")
def deep_health_check(ctx: StepContext, task: Task) -> Task | None:
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(task.group_name or "") if cluster else None
    if cluster is None or group is None:
        return group_gone(ctx, cluster, task)
    log = ctx.log(cluster)
    checks: list[str] = task.data["checks"]
    checked = [
        node
        for row_id in task.data["node_ids"]
        if (node := ctx.tx.nodes.get(row_id)) is not None
        and node.status == NodeStatus.DEEP_HEALTH_CHECK_IN_PROGRESS
    ]
    health = ctx.provider.health(ctx.tx, [node.instance_id for node in checked if node.instance_id])
    for node in checked:
        assert node.instance_id is not None
        faults = health.get(node.instance_id, [])
        node.busy = None
        if not faults:
            move_node(node, "check_passed")
            node.status_message = None
            ctx.tx.nodes.save(node)
            log.instance(
                group.name,
                node.instance_id,
                text.deep_health_check_passed(node.instance_id, cluster.name, group.name),
                operation_id=task.operation_id,
            )
            continue
        reason = faults[0].hardware.message
        move_node(node, "check_failed")
        node.status_message = f"Deep health check {checks[0]} failed: {reason}"
        log.instance(
            group.name,
            node.instance_id,
            text.deep_health_check_failed(
                checks[0], reason, node.instance_id, cluster.name, group.name
            ),
            level=EventLevel.ERROR,
            operation_id=task.operation_id,
        )
        # A node that fails a deep health check is replaced, whatever NodeRecovery says.
        start_node_action(ctx.tx, cluster, node, "replace", ctx.now, ctx.durations, busy="recover")
    resume_recoveries(ctx, cluster, group, log)
    if group.status in (GroupStatus.CREATING, GroupStatus.UPDATING):
        group_ready(ctx, cluster, group, log)
        maybe_cluster_created(ctx, cluster, log)
        ctx.tx.clusters.save(cluster)
    if task.operation_id:
        settle_scaling(ctx, cluster, task.operation_id, log)
    ctx.tx.events.add_all(log.events)
    return None
