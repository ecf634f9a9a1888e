"""Steps of MoveClusterNodes. `detach` (a task of the source cluster): the node leaves its
group, its root and secondary volumes are replaced, and it is handed to the target group,
AttachInProgress in the target cluster; `attach` (a task of the target cluster): the target's
lifecycle scripts have run and the node is Running there, the same instance all along."""

from __future__ import annotations

from hyperpod_local.domain import moves
from hyperpod_local.domain.lifecycle import move_node
from hyperpod_local.domain.model import (
    Cluster,
    ClusterStatus,
    EventLevel,
    GroupStatus,
    InstanceGroup,
    Node,
    NodeStatus,
    Task,
)
from hyperpod_local.domain.software import desired_image
from hyperpod_local.engine.context import StepContext, reschedule, step
from hyperpod_local.engine.followups import (
    failure_event,
    group_ready,
    lifecycle_event,
    start_checks,
)
from hyperpod_local.engine.operations import DETECTION, schedule_relaunch
from hyperpod_local.engine.recovery import recheck_faults, resume_recoveries


@step("node_move")
def node_move(ctx: StepContext, task: Task) -> Task | None:
    if task.step == "detach":
        _detach(ctx, task)
        return None
    return _attach(ctx, task)


def _detach(ctx: StepContext, task: Task) -> None:
    node = ctx.tx.nodes.get(task.node_id or -1)
    source = ctx.tx.clusters.get(task.cluster_id)
    if node is None or source is None or node.status != NodeStatus.DETACH_IN_PROGRESS:
        return
    source_group = source.group(node.group_name)
    target = ctx.tx.clusters.get(task.data["target_cluster"])
    target_group = target.group(task.data["target_group"]) if target is not None else None
    assert node.instance_id is not None and source_group is not None
    if target is None or target_group is None or _leaving(target, target_group):
        _call_off(ctx, source, source_group, node, task)
        return
    log = ctx.log(source)
    metadata = {"Instance": {"NodeLogicalId": node.logical_id}}
    image_id, release = desired_image(target_group)
    ctx.provider.rejoin(ctx.tx, node.instance_id, target, target_group, image_id)
    # A fault's detection belongs to the source cluster; the target finds it once it serves.
    ctx.tx.tasks.remove_for_node(node.row_id or -1, kind=DETECTION)
    log.instance(
        source_group.name,
        node.instance_id,
        moves.detached(node.instance_id, source.name, source_group.name),
        metadata=metadata,
    )
    node.cluster_id, node.group_name = target.id, target_group.name
    node.image_id, node.image_release_version = image_id, release
    node.status_message = None
    move_node(node, "handed_off")
    ctx.tx.nodes.save(node)
    target_group.target_count += 1
    ctx.tx.clusters.save_group(target_group)
    resume_recoveries(ctx, source, source_group, log)
    ctx.tx.events.add_all(log.events)
    target_log = ctx.log(target)
    target_log.instance(
        target_group.name,
        node.instance_id,
        moves.attach_started(
            node.instance_id, target.name, target_group.name, source.name, source_group.name
        ),
        metadata=metadata,
    )
    lifecycle_event(target_log, target_group, node, "Started")
    ctx.tx.events.add_all(target_log.events)
    ctx.later(
        Task(
            cluster_id=target.id,
            kind="node_move",
            step="attach",
            due_at=0.0,
            node_id=node.row_id,
            data=task.data,
        ),
        ctx.durations.provision(node.instance_type),
    )


def _leaving(cluster: Cluster, group: InstanceGroup) -> bool:
    return cluster.status == ClusterStatus.DELETING or group.status == GroupStatus.DELETING


def _call_off(
    ctx: StepContext, source: Cluster, group: InstanceGroup, node: Node, task: Task
) -> None:
    """The target cluster or group went while the node detached: it serves its group again."""
    assert node.instance_id is not None
    move_node(node, "move_called_off")
    node.busy = None
    ctx.tx.nodes.save(node)
    group.target_count += 1
    ctx.tx.clusters.save_group(group)
    log = ctx.log(source)
    log.instance(
        group.name,
        node.instance_id,
        moves.move_called_off(
            node.instance_id,
            source.name,
            group.name,
            task.data.get("target_cluster", ""),
            task.data["target_group"],
        ),
        level=EventLevel.WARN,
    )
    ctx.tx.events.add_all(log.events)


def _attach(ctx: StepContext, task: Task) -> Task | None:
    found = ctx.node_context(task)
    if found is None:
        return None
    cluster, group, node = found
    if node.status != NodeStatus.ATTACH_IN_PROGRESS or node.instance_id is None:
        return None
    if ctx.provider.lifecycle_scripts_running(ctx.tx, cluster, group, [node]):
        return reschedule(ctx, task, "attach", ctx.durations.script_poll)
    log = ctx.log(cluster)
    failure = ctx.provider.run_lifecycle_scripts(ctx.tx, cluster, group, [node])
    if failure:
        # The node is the target group's now: like any of its nodes whose scripts fail, it
        # is tried again on a new instance (same NodeLogicalId).
        lifecycle_event(log, group, node, "Failed")
        move_node(node, "provisioning_failed")
        node.status_message = failure[node.row_id or -1]
        failure_event(log, cluster, group, node, node.status_message)
        schedule_relaunch(ctx.tx, cluster, node, ctx.now + ctx.durations.provision_retry)
        ctx.tx.events.add_all(log.events)
        return None
    lifecycle_event(log, group, node, "Succeeded")
    log.instance(
        group.name,
        node.instance_id,
        moves.move_completed(node.instance_id, cluster.name, group.name),
        metadata={"Instance": {"NodeLogicalId": node.logical_id}},
    )
    recheck_faults(ctx, cluster, node, cured_by_reboot=False)
    checks = group.spec.get("OnStartDeepHealthChecks") or []
    if checks:
        # The target checks a node that joins it before it serves, as it checks its own new
        # nodes; the checks' end brings it to Running.
        node.busy = None
        start_checks(ctx.tx, cluster, group, [node], checks, ctx.now, ctx.durations, log)
        ctx.tx.events.add_all(log.events)
        return None
    move_node(node, "joined")
    node.busy = None
    ctx.tx.nodes.save(node)
    group_ready(ctx, cluster, group, log)
    resume_recoveries(ctx, cluster, group, log)
    ctx.tx.events.add_all(log.events)
    return None
