"""Follow-ups that several kinds of step end with: a group or a cluster finished or failed, a
scaling operation settled, a node's lifecycle events, deep health checks started. The step
modules call these and never each other, so a new kind of step is one new module that
imports from here."""

from __future__ import annotations

from hyperpod_local.domain import events as text
from hyperpod_local.domain.eligibility import slurm_head_groups
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.lifecycle import move_cluster, move_node
from hyperpod_local.domain.model import (
    Cluster,
    ClusterStatus,
    EventLevel,
    GroupStatus,
    InstanceGroup,
    Node,
    NodeStatus,
    Task,
    in_min_count_phase,
)
from hyperpod_local.engine.context import StepContext
from hyperpod_local.engine.durations import Durations
from hyperpod_local.engine.operations import (
    HEAD_DEADLINE,
    end_group_wait,
    schedule_relaunch,
)
from hyperpod_local.store.unit_of_work import Tx

# Groups and clusters -------------------------------------------------------------------------


def group_gone(ctx: StepContext, cluster: Cluster | None, task: Task) -> None:
    """The group or node a step was for is gone: its scaling operation still ends."""
    if cluster is not None and task.operation_id:
        log = ctx.log(cluster)
        settle_scaling(ctx, cluster, task.operation_id, log)
        ctx.tx.events.add_all(log.events)
    return None


def fail_creation(
    ctx: StepContext, cluster: Cluster, message: str, log: EventLog, *, keep: int | None
) -> None:
    """Classic creation is all or nothing: one failure fails the cluster, and what was
    launched for it is terminated. The cluster stays, Failed, until it is deleted."""
    move_cluster(cluster, "failed")
    cluster.failure_message = message
    ctx.provider.terminate(ctx.tx, ctx.provider.instances(ctx.tx, cluster.id))
    for node in ctx.tx.nodes.in_group(cluster.id):
        ctx.tx.nodes.remove(node.row_id or -1)
    for group in cluster.groups:
        group.status = GroupStatus.FAILED
        ctx.tx.clusters.save_group(group)
    ctx.tx.tasks.remove_for_cluster(cluster.id, keep=keep)
    log.cluster(f"Cluster {cluster.name} creation failed", level=EventLevel.ERROR)
    ctx.tx.clusters.save(cluster)


def group_ready(ctx: StepContext, cluster: Cluster, group: InstanceGroup, log: EventLog) -> None:
    """Nodes of a Creating group came up: it is InService; a Continuous group with a MinCount
    only once that many of its nodes serve (then its rollback deadline goes)."""
    if in_min_count_phase(cluster, group):
        if ctx.tx.nodes.serving_count(cluster.id, group.name) < (group.min_count or 0):
            return
    elif group.status != GroupStatus.CREATING:
        return
    end_group_wait(ctx.tx, cluster, group, log)


def maybe_cluster_created(ctx: StepContext, cluster: Cluster, log: EventLog) -> None:
    """A classic cluster is InService when every group is: all or nothing. A Continuous
    Slurm cluster is once a node of its controller group, and of its login group if it has
    one, is Running (spec 4.1, 8); its other groups then start provisioning. (A Continuous
    EKS cluster is InService when its cluster-level setup is done: cluster_create.)"""
    if cluster.status != ClusterStatus.CREATING:
        return
    if cluster.continuous:
        heads = slurm_head_groups(cluster)
        if not heads or any(
            not ctx.tx.nodes.serving_count(cluster.id, name, (NodeStatus.RUNNING,))
            for name in heads
        ):
            return
        ctx.tx.tasks.remove_for_group(cluster.id, None, HEAD_DEADLINE)
        ctx.later(
            Task(
                cluster_id=cluster.id,
                kind="cluster_create",
                step="setup",
                due_at=0,
                data={"started": heads, "done": heads},
            ),
            0,
        )
    elif not all(group.status == GroupStatus.IN_SERVICE for group in cluster.groups):
        return
    move_cluster(cluster, "created")
    log.cluster(text.cluster_creation_completed(cluster.name))


# Scaling operations --------------------------------------------------------------------------


def settle_scaling(ctx: StepContext, cluster: Cluster, operation_id: str, log: EventLog) -> None:
    """Called by the last steps of scaling work: when the operation has no step left it is
    Done, and a classic cluster whose update this was is InService again."""
    if ctx.tx.tasks.count(cluster.id, operation_id=operation_id) > 1:
        return
    finish_scaling(ctx, cluster, operation_id, log)
    if (
        cluster.status in (ClusterStatus.UPDATING, ClusterStatus.ROLLING_BACK)
        and ctx.tx.tasks.count(cluster.id, any_operation=True) <= 1
    ):
        # A group the rolled-back update created is left at 0 nodes, InService.
        settling = {GroupStatus.UPDATING}
        if cluster.status == ClusterStatus.ROLLING_BACK:
            move_cluster(cluster, "rolled_back")
            log.cluster(text.cluster_rollback_completed(cluster.name))
            settling.add(GroupStatus.CREATING)
        else:
            move_cluster(cluster, "updated")
        for group in cluster.groups:
            if group.status in settling:
                group.status = GroupStatus.IN_SERVICE
                ctx.tx.clusters.save_group(group)
        ctx.tx.clusters.save(cluster)


def finish_scaling(ctx: StepContext, cluster: Cluster, operation_id: str, log: EventLog) -> None:
    """The last node of a scaling operation is done: so is the operation, group by group."""
    operation = ctx.tx.events.get_operation(cluster.id, operation_id)
    if operation is None:
        return
    operation.status = "Done"
    for detail in operation.details.get("ScalingDetails", []):
        detail["Status"] = "Done"
        name = detail["InstanceGroupName"]
        group = cluster.group(name)
        # Counted now: this step may have just added or removed a node of the group.
        members = ctx.tx.nodes.group_health(cluster.id, name).members if group else 0
        log.scaling_completed(
            cluster.name,
            name,
            operation_id,
            (members, group.target_count, group.min_count) if group else (0, 0, None),
        )
    ctx.tx.events.save_operation(operation)


# Nodes ---------------------------------------------------------------------------------------


def lifecycle_event(log: EventLog, group: InstanceGroup, node: Node, state: str) -> None:
    assert node.instance_id is not None
    log.instance(
        group.name,
        node.instance_id,
        text.lifecycle_script(node.instance_id, state),
        level=EventLevel.ERROR if state == "Failed" else EventLevel.INFO,
        metadata={"Instance": {"LcsExecutionState": state, "NodeLogicalId": node.logical_id}},
    )


def provisioning_failed(
    ctx: StepContext,
    cluster: Cluster,
    group: InstanceGroup,
    node: Node,
    message: str,
    log: EventLog,
    operation_id: str | None = None,
) -> None:
    """A node whose launch or lifecycle scripts failed: Failure, with the reason, and tried
    again on a new instance (same NodeLogicalId) after `provision_retry`."""
    node.status_message = message
    failure_event(log, cluster, group, node, message)
    if node.busy is None:
        schedule_relaunch(
            ctx.tx, cluster, node, ctx.now + ctx.durations.provision_retry, operation_id
        )


def failure_event(
    log: EventLog, cluster: Cluster, group: InstanceGroup, node: Node, message: str
) -> None:
    """A failed provisioning, as HyperPod reports it: the EC2 failure, then the paired
    "Instance creation ... failed" (spec 13)."""
    metadata = {"Instance": {"FailureMessage": message, "NodeLogicalId": node.logical_id}}
    for description in (
        text.provisioning_failed(cluster.name, group.name),
        text.instance_creation_failed(cluster.name, group.name),
    ):
        log.instance(group.name, None, description, level=EventLevel.ERROR, metadata=metadata)


def start_checks(
    tx: Tx,
    cluster: Cluster,
    group: InstanceGroup,
    nodes: list[Node],
    checks: list[str],
    now: float,
    durations: Durations,
    log: EventLog,
    *,
    operation_id: str | None = None,
) -> None:
    """Put the nodes under deep health checks and schedule their verdict."""
    for node in nodes:
        move_node(node, "deep_health_check")
        # A check that is part of an automatic recovery still counts for the recovery limits.
        node.busy = "recover" if node.busy == "recover" else "dhc"
        assert node.instance_id is not None
        log.instance(
            group.name,
            node.instance_id,
            text.deep_health_check_started(checks, node.instance_id, cluster.name, group.name),
            operation_id=operation_id,
        )
    tx.nodes.save_all(nodes)
    tx.tasks.add(
        Task(
            cluster_id=cluster.id,
            group_name=group.name,
            kind="deep_health_check",
            step="verdict",
            due_at=round(now + durations.deep_health_checks(checks), 3),
            operation_id=operation_id,
            data={"node_ids": [node.row_id for node in nodes], "checks": checks},
        )
    )
