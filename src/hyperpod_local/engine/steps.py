"""The steps of every durable operation. Each step runs inside the engine's transaction with
the task that scheduled it, so its effects and the task's progress commit together: a crash
between two steps loses nothing and repeats nothing.

A step function takes the context and its task and returns the task rescheduled (for its
next step) or None when the operation is finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hyperpod_local.domain import events as text
from hyperpod_local.domain.cluster_rules import place_instance
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.domain.lifecycle import move_cluster, move_node
from hyperpod_local.domain.model import (
    LATEST_IMAGE_RELEASE,
    Cluster,
    ClusterStatus,
    EventLevel,
    GroupStatus,
    InstanceGroup,
    Node,
    NodeStatus,
    Task,
)
from hyperpod_local.engine.durations import Durations
from hyperpod_local.providers.sim import SimProvider
from hyperpod_local.store.unit_of_work import Tx


@dataclass(slots=True)
class StepContext:
    tx: Tx
    # The HyperPod time the step happens at: its due time, even if the engine runs it late.
    now: float
    durations: Durations
    provider: SimProvider
    ids: IdSource

    def log(self, cluster: Cluster) -> EventLog:
        return EventLog(self.ids, cluster.id, self.now)


Step = Callable[[StepContext, Task], Task | None]
STEPS: dict[str, Step] = {}


def step(kind: str) -> Callable[[Step], Step]:
    def register(function: Step) -> Step:
        STEPS[kind] = function
        return function

    return register


def schedule(ctx: StepContext, task: Task, step_name: str, after: float) -> Task:
    task.step = step_name
    task.due_at = round(ctx.now + after, 3)
    return task


def record_abandoned(ctx: StepContext, task: Task, error: Exception) -> None:
    """An internal failure the engine gave up on: say so where a user looks, in the events."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is None:
        return
    log = ctx.log(cluster)
    log.cluster(
        f"Internal error in {task.kind} ({task.step}) for cluster {cluster.name}: {error}",
        level=EventLevel.ERROR,
    )
    ctx.tx.events.add_all(log.events)


# Cluster creation ---------------------------------------------------------------------------


@step("cluster_create")
def cluster_create(ctx: StepContext, task: Task) -> Task | None:
    """Cluster-level resources are ready: launch every node's instance; each group's lifecycle
    scripts then run until the group's provision task."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is None:
        return None
    log = ctx.log(cluster)
    for group in cluster.groups:
        log.group(group.name, text.group_creation_started(group.name, cluster.name))
        launched = launch_waiting_nodes(ctx, cluster, group, log)
        if launched:
            ctx.tx.tasks.add(
                Task(
                    cluster_id=cluster.id,
                    group_name=group.name,
                    kind="group_provision",
                    step="ready",
                    due_at=round(ctx.now + ctx.durations.provision(group.instance_types[0]), 3),
                )
            )
        else:
            finish_group_creation(ctx, cluster, group, log)
    if cluster.continuous and cluster.status == ClusterStatus.CREATING:
        # Continuous clusters are InService once cluster-level resources are; nodes go on.
        move_cluster(cluster, "created")
        log.cluster(text.cluster_creation_completed(cluster.name))
    maybe_cluster_created(ctx, cluster, log)
    ctx.tx.clusters.save(cluster)
    ctx.tx.events.add_all(log.events)
    return None


def launch_waiting_nodes(
    ctx: StepContext, cluster: Cluster, group: InstanceGroup, log: EventLog
) -> list[Node]:
    waiting = [
        node for node in ctx.tx.nodes.in_group(cluster.id, group.name) if node.instance_id is None
    ]
    for node in waiting:
        instance_id = ctx.provider.launch(ctx.tx, cluster, group, ctx.now)
        place_instance(cluster, node, instance_id, ctx.now, keep_address=False)
        log.instance(group.name, None, text.instance_creation_started(cluster.name, group.name))
        log.instance(
            group.name, None, text.instance_provisioned(instance_id, cluster.name, group.name)
        )
        lifecycle_event(log, group, node, "Started")
    ctx.tx.nodes.save_all(waiting)
    return waiting


def lifecycle_event(log: EventLog, group: InstanceGroup, node: Node, state: str) -> None:
    assert node.instance_id is not None
    log.instance(
        group.name,
        node.instance_id,
        text.lifecycle_script(node.instance_id, state),
        metadata={"Instance": {"LcsExecutionState": state, "NodeLogicalId": node.logical_id}},
    )


@step("group_provision")
def group_provision(ctx: StepContext, task: Task) -> Task | None:
    """Lifecycle scripts finished: the group's launched nodes are Running."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(task.group_name or "") if cluster else None
    if cluster is None or group is None:
        return None
    log = ctx.log(cluster)
    ready = [
        node
        for node in ctx.tx.nodes.in_group(cluster.id, group.name)
        if node.status == NodeStatus.PENDING and node.instance_id and node.busy is None
    ]
    for node in ready:
        move_node(node, "provisioned")
        assert node.instance_id is not None
        lifecycle_event(log, group, node, "Succeeded")
        log.instance(
            group.name,
            node.instance_id,
            text.instance_creation_completed(node.instance_id, cluster.name, group.name),
        )
    ctx.tx.nodes.save_all(ready)
    if group.status == GroupStatus.CREATING:
        finish_group_creation(ctx, cluster, group, log)
    maybe_cluster_created(ctx, cluster, log)
    ctx.tx.clusters.save(cluster)
    ctx.tx.events.add_all(log.events)
    return None


def finish_group_creation(
    ctx: StepContext, cluster: Cluster, group: InstanceGroup, log: EventLog
) -> None:
    group.status = GroupStatus.IN_SERVICE
    ctx.tx.clusters.save_group(group)
    log.group(group.name, text.group_creation_completed(group.name, cluster.name))


def maybe_cluster_created(ctx: StepContext, cluster: Cluster, log: EventLog) -> None:
    """A classic cluster is InService when every group is: all or nothing."""
    if cluster.status == ClusterStatus.CREATING and all(
        group.status == GroupStatus.IN_SERVICE for group in cluster.groups
    ):
        move_cluster(cluster, "created")
        log.cluster(text.cluster_creation_completed(cluster.name))


# Cluster deletion ---------------------------------------------------------------------------


@step("cluster_delete")
def cluster_delete(ctx: StepContext, task: Task) -> Task | None:
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is None:
        return None
    ctx.provider.terminate(ctx.tx, ctx.tx.instances.ids_for_cluster(cluster.id))
    ctx.tx.tasks.remove_for_cluster(cluster.id, keep=task.id)
    ctx.tx.events.remove_for_cluster(cluster.id)
    ctx.tx.tags.remove(cluster.arn)
    ctx.tx.clusters.remove(cluster.id)
    return None


# Node operations ----------------------------------------------------------------------------


def _node_context(ctx: StepContext, task: Task) -> tuple[Cluster, InstanceGroup, Node] | None:
    node = ctx.tx.nodes.get(task.node_id or -1)
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(node.group_name) if cluster and node else None
    if node is None or cluster is None or group is None:
        return None
    return cluster, group, node


@step("node_replace")
def node_replace(ctx: StepContext, task: Task) -> Task | None:
    found = _node_context(ctx, task)
    if found is None:
        return None
    cluster, group, node = found
    log = ctx.log(cluster)
    if task.step == "terminate":
        old = node.instance_id
        if old is not None:
            ctx.provider.terminate(ctx.tx, [old])
            log.instance(group.name, old, text.instance_terminated(old, cluster.name, group.name))
        new = ctx.provider.launch(ctx.tx, cluster, group, ctx.now)
        place_instance(cluster, node, new, ctx.now, keep_address=not cluster.is_eks)
        move_node(node, "relaunched")
        log.instance(group.name, None, text.instance_provisioned(new, cluster.name, group.name))
        lifecycle_event(log, group, node, "Started")
        ctx.tx.nodes.save(node)
        ctx.tx.clusters.save(cluster)
        ctx.tx.events.add_all(log.events)
        return schedule(ctx, task, "ready", ctx.durations.provision(node.instance_type))
    move_node(node, "provisioned")
    node.busy = None
    assert node.instance_id is not None
    lifecycle_event(log, group, node, "Succeeded")
    log.instance(
        group.name,
        node.instance_id,
        text.instance_operation_completed(
            node.instance_id, "replacement", cluster.name, group.name
        ),
    )
    ctx.tx.nodes.save(node)
    ctx.tx.events.add_all(log.events)
    return None


@step("node_reboot")
def node_reboot(ctx: StepContext, task: Task) -> Task | None:
    found = _node_context(ctx, task)
    if found is None:
        return None
    cluster, group, node = found
    assert node.instance_id is not None
    ctx.provider.reboot(ctx.tx, node.instance_id)
    move_node(node, "booted")
    node.busy = None
    ctx.tx.nodes.save(node)
    log = ctx.log(cluster)
    log.instance(
        group.name,
        node.instance_id,
        text.instance_operation_completed(node.instance_id, "reboot", cluster.name, group.name),
    )
    ctx.tx.events.add_all(log.events)
    return None


@step("node_delete")
def node_delete(ctx: StepContext, task: Task) -> Task | None:
    found = _node_context(ctx, task)
    if found is None:
        return None
    cluster, group, node = found
    log = ctx.log(cluster)
    instance_id = node.instance_id
    if instance_id is not None:
        ctx.provider.terminate(ctx.tx, [instance_id])
        for description in (
            text.instance_terminated(instance_id, cluster.name, group.name),
            text.instance_deletion_completed(instance_id, cluster.name, group.name),
        ):
            log.instance(group.name, instance_id, description, operation_id=task.operation_id)
    ctx.tx.nodes.remove(node.row_id or -1)
    if task.operation_id and ctx.tx.tasks.count(cluster.id, operation_id=task.operation_id) <= 1:
        finish_scaling(ctx, cluster, task.operation_id, log)
    ctx.tx.events.add_all(log.events)
    return None


def finish_scaling(ctx: StepContext, cluster: Cluster, operation_id: str, log: EventLog) -> None:
    """The last node of a scaling operation is done: so is the operation, group by group."""
    operation = ctx.tx.events.get_operation(cluster.id, operation_id)
    if operation is None:
        return
    operation.status = "Done"
    for detail in operation.details.get("ScalingDetails", []):
        detail["Status"] = "Done"
        name = detail["InstanceGroupName"]
        log.group(name, text.group_scaling_completed(name, cluster.name), operation_id=operation_id)
    ctx.tx.events.save_operation(operation)


@step("software_update")
def software_update(ctx: StepContext, task: Task) -> Task | None:
    """One group re-imaged: new root volumes, lifecycle scripts re-run, nodes Running."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(task.group_name or "") if cluster else None
    if cluster is None or group is None:
        return None
    log = ctx.log(cluster)
    updated = [
        node for node in ctx.tx.nodes.in_group(cluster.id, group.name) if node.busy == "update"
    ]
    for node in updated:
        assert node.instance_id is not None
        ctx.provider.reimage(ctx.tx, node.instance_id, node.image_id)
        move_node(node, "updated")
        node.busy = None
        node.last_software_update_time = ctx.now
        node.image_release_version = group.spec.get("ImageReleaseVersion", LATEST_IMAGE_RELEASE)
        log.instance(
            group.name,
            node.instance_id,
            text.instance_operation_completed(
                node.instance_id, "software update", cluster.name, group.name
            ),
        )
    ctx.tx.nodes.save_all(updated)
    if ctx.tx.tasks.count(cluster.id, kind="software_update") <= 1:
        move_cluster(cluster, "software_updated")
        cluster.legacy = False
        for each in cluster.groups:
            each.status = GroupStatus.IN_SERVICE
            ctx.tx.clusters.save_group(each)
        log.cluster(text.cluster_software_update_completed(cluster.name))
        ctx.tx.clusters.save(cluster)
    ctx.tx.events.add_all(log.events)
    return None
