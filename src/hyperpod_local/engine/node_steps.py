"""Steps of operations on single nodes: replace (also a failed node's retry), reboot, delete."""

from __future__ import annotations

from hyperpod_local.domain import events as text
from hyperpod_local.domain.cluster_rules import place_instance
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.lifecycle import move_node
from hyperpod_local.domain.model import Cluster, GroupStatus, InstanceGroup, Node, Task
from hyperpod_local.domain.software import desired_image
from hyperpod_local.engine.context import StepContext, batch_step, reschedule, step
from hyperpod_local.engine.followups import (
    failure_event,
    group_gone,
    group_ready,
    lifecycle_event,
    maybe_cluster_created,
    settle_scaling,
    start_checks,
)
from hyperpod_local.engine.operations import DETECTION
from hyperpod_local.engine.recovery import recheck_faults, resume_recoveries
from hyperpod_local.engine.rollback import update_gives_up
from hyperpod_local.providers.base import LaunchError

# What a replace is for, by the operation holding the node: its completion event's words.
_COMPLETION_WORDS = {"provision": "creation", "recover": "replacement", "replace": "replacement"}


@step("node_replace")
def node_replace(ctx: StepContext, task: Task) -> Task | None:
    """`terminate`: the old instance and its volumes go, a new one launches (Pending);
    `ready`: its lifecycle scripts have run (Running). A launch or script that fails leaves
    the node in Failure and is tried again later."""
    found = ctx.node_context(task)
    if found is None:
        # The node went while its step waited: a scaling operation it belonged to still ends.
        return group_gone(ctx, ctx.tx.clusters.get(task.cluster_id), task)
    cluster, group, node = found
    log = ctx.log(cluster)
    try:
        if task.step == "terminate":
            return _relaunch(ctx, task, cluster, group, node, log)
        return _finish_replace(ctx, task, cluster, group, node, log)
    finally:
        ctx.tx.clusters.save(cluster)
        ctx.tx.events.add_all(log.events)


def _failed_again(
    ctx: StepContext, task: Task, cluster: Cluster, node: Node, message: str, log: EventLog
) -> Task | None:
    """The node's launch or scripts failed: it is tried again later, unless it was a classic
    update's last attempt and the update rolls back (which then owns the node)."""
    ctx.tx.nodes.save(node)
    if update_gives_up(ctx, cluster, task, message, log):
        return None
    return reschedule(ctx, task, "terminate", ctx.durations.provision_retry)


def _relaunch(
    ctx: StepContext,
    task: Task,
    cluster: Cluster,
    group: InstanceGroup,
    node: Node,
    log: EventLog,
) -> Task:
    old = node.instance_id
    if old is not None:
        ctx.provider.terminate(ctx.tx, [old])
        # Its faults went with it: no detection of them may stay due.
        ctx.tx.tasks.remove_for_node(node.row_id or -1, kind=DETECTION)
        log.instance(group.name, old, text.instance_terminated(old, cluster.name, group.name))
        node.instance_id = None
    if node.busy == "provision":
        # Each retry of a failed provisioning is a creation of its own (spec 13).
        log.instance(group.name, None, text.instance_creation_started(cluster.name, group.name))
    # New instances come up on the image the group wants now (an update's target).
    image_id, release = desired_image(group)
    try:
        new = ctx.provider.launch(ctx.tx, cluster, group, ctx.now, image_id=image_id)
    except LaunchError as error:
        move_node(node, "launch_failed")
        node.status_message = str(error)
        failure_event(log, cluster, group, node, str(error))
        return _failed_again(ctx, task, cluster, node, str(error), log)
    _came_up(ctx, cluster, group, node, new, (image_id, release), log)
    ctx.tx.nodes.save(node)
    return reschedule(ctx, task, "ready", ctx.durations.provision(node.instance_type))


def _came_up(
    ctx: StepContext,
    cluster: Cluster,
    group: InstanceGroup,
    node: Node,
    instance_id: str,
    image: tuple[str, str],
    log: EventLog,
) -> None:
    """The node's new instance is launched (Pending): its lifecycle scripts start."""
    place_instance(cluster, node, instance_id, ctx.now, keep_address=not cluster.is_eks)
    node.image_id, node.image_release_version = image
    move_node(node, "relaunched")
    node.status_message = None
    log.instance(group.name, None, text.instance_provisioned(instance_id, cluster.name, group.name))
    lifecycle_event(log, group, node, "Started")


@batch_step("node_replace", "terminate")
def relaunch_together(ctx: StepContext, tasks: list[Task]) -> list[Task | None] | None:
    """Replacements due at one instant in one cluster (a Batch call's 25, a burst of
    recoveries): the old instances go in one call, the new ones come in one launch per group,
    and the nodes, events and tasks are written in bulk, each node as node_replace's
    `terminate` would. Declined (each runs alone) where a launch may fail: no capacity for a
    group, or a node or group gone."""
    cluster = ctx.tx.clusters.get(tasks[0].cluster_id)
    found = ctx.tx.nodes.get_many([task.node_id or -1 for task in tasks])
    if cluster is None or len(found) != len(tasks):
        return None
    members: list[tuple[Task, InstanceGroup, Node]] = []
    for task in tasks:
        node = found[task.node_id or -1]
        group = cluster.group(node.group_name)
        if group is None:
            return None
        members.append((task, group, node))
    groups = {group.name: group for _task, group, _node in members}
    for group in groups.values():
        try:
            ctx.provider.check_capacity(ctx.tx, cluster, group)
        except LaunchError:
            return None
    old = [node.instance_id for _task, _group, node in members if node.instance_id]
    if old:
        ctx.provider.terminate(ctx.tx, old)
        # Their faults went with them: no detection of them may stay due.
        ctx.tx.tasks.remove_for_nodes([node.row_id or -1 for *_, node in members], DETECTION)
    images = {name: desired_image(group) for name, group in groups.items()}
    launched = {
        name: iter(
            ctx.provider.launch_many(
                ctx.tx,
                cluster,
                group,
                ctx.now,
                sum(1 for _task, g, _node in members if g.name == name),
                image_id=images[name][0],
            )
        )
        for name, group in groups.items()
    }
    log = ctx.log(cluster)
    done: list[Task | None] = []
    for task, group, node in members:
        if node.instance_id is not None:
            instance = node.instance_id
            log.instance(
                group.name, instance, text.instance_terminated(instance, cluster.name, group.name)
            )
            node.instance_id = None
        if node.busy == "provision":
            log.instance(group.name, None, text.instance_creation_started(cluster.name, group.name))
        _came_up(ctx, cluster, group, node, next(launched[group.name]), images[group.name], log)
        done.append(reschedule(ctx, task, "ready", ctx.durations.provision(node.instance_type)))
    ctx.tx.nodes.save_all([node for *_, node in members])
    ctx.tx.clusters.save(cluster)
    ctx.tx.events.add_all(log.events)
    return done


def _finish_replace(
    ctx: StepContext,
    task: Task,
    cluster: Cluster,
    group: InstanceGroup,
    node: Node,
    log: EventLog,
) -> Task | None:
    assert node.instance_id is not None
    if ctx.provider.lifecycle_scripts_running(ctx.tx, cluster, group, [node]):
        return reschedule(ctx, task, "ready", ctx.durations.script_poll)
    failure = ctx.provider.run_lifecycle_scripts(ctx.tx, cluster, group, [node])
    if failure:
        lifecycle_event(log, group, node, "Failed")
        move_node(node, "provisioning_failed")
        node.status_message = failure[node.row_id or -1]
        failure_event(log, cluster, group, node, node.status_message)
        return _failed_again(ctx, task, cluster, node, node.status_message, log)
    _scripts_succeeded(cluster, group, node, log)
    # A fault put on the new instance while it provisioned is found once it runs.
    recheck_faults(ctx, cluster, node, cured_by_reboot=False)
    checks = group.spec.get("OnStartDeepHealthChecks") or []
    if checks:
        # A new instance is checked before it serves; the check's end brings it to Running
        # and settles the operation it was retried for.
        start_checks(
            ctx.tx,
            cluster,
            group,
            [node],
            checks,
            ctx.now,
            ctx.durations,
            log,
            operation_id=task.operation_id,
        )
        return None
    move_node(node, "provisioned")
    node.busy = None
    ctx.tx.nodes.save(node)
    # A retried node may be the one that brings a group to its MinCount, or a Continuous
    # Slurm cluster its controller.
    group_ready(ctx, cluster, group, log)
    maybe_cluster_created(ctx, cluster, log)
    resume_recoveries(ctx, cluster, group, log)
    if task.operation_id:
        # A node of a scaling operation that had to be retried: the operation may be over.
        settle_scaling(ctx, cluster, task.operation_id, log)
    return None


def _scripts_succeeded(cluster: Cluster, group: InstanceGroup, node: Node, log: EventLog) -> None:
    """The new instance's lifecycle scripts succeeded: so say its events."""
    assert node.instance_id is not None
    words = _COMPLETION_WORDS.get(node.busy or "", "replacement")
    lifecycle_event(log, group, node, "Succeeded")
    log.instance(
        group.name,
        node.instance_id,
        text.instance_operation_completed(node.instance_id, words, cluster.name, group.name),
    )


@step("node_reboot")
def node_reboot(ctx: StepContext, task: Task) -> Task | None:
    """The reboot is over: same instance, same volumes, Running. A reboot clears the faults a
    reboot cures; a hardware fault that needs a new instance is still there and the health
    agent finds it again."""
    found = ctx.node_context(task)
    if found is None:
        return None
    cluster, group, node = found
    assert node.instance_id is not None
    ctx.provider.reboot(ctx.tx, node.instance_id)
    move_node(node, "booted")
    node.busy = None
    node.status_message = None
    recheck_faults(ctx, cluster, node)
    ctx.tx.nodes.save(node)
    log = ctx.log(cluster)
    log.instance(
        group.name,
        node.instance_id,
        text.instance_operation_completed(node.instance_id, "reboot", cluster.name, group.name),
    )
    resume_recoveries(ctx, cluster, group, log)
    ctx.tx.events.add_all(log.events)
    return None


@step("node_delete")
def node_delete(ctx: StepContext, task: Task) -> Task | None:
    found = ctx.node_context(task)
    if found is None:
        return None
    cluster, group, node = found
    log = ctx.log(cluster)
    instance_id = node.instance_id
    if instance_id is not None:
        ctx.provider.terminate(ctx.tx, [instance_id])
        ctx.tx.tasks.remove_for_node(node.row_id or -1, kind=DETECTION)
        for description in (
            text.instance_terminated(instance_id, cluster.name, group.name),
            text.instance_deletion_completed(instance_id, cluster.name, group.name),
        ):
            log.instance(group.name, instance_id, description, operation_id=task.operation_id)
    ctx.tx.nodes.remove(node.row_id or -1)
    if group.status == GroupStatus.DELETING and not ctx.tx.nodes.some_in_group(
        cluster.id, group.name, 1
    ):
        ctx.tx.clusters.remove_group(cluster.id, group.name)
    else:
        resume_recoveries(ctx, cluster, group, log)
    if task.operation_id:
        settle_scaling(ctx, cluster, task.operation_id, log)
    ctx.tx.events.add_all(log.events)
    return None


@step("resume_recoveries")
def resume_recoveries_step(ctx: StepContext, task: Task) -> Task | None:
    """Look again at a group's held-back automatic recoveries (NodeRecovery turned on)."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(task.group_name or "") if cluster else None
    if cluster is not None and group is not None:
        log = ctx.log(cluster)
        resume_recoveries(ctx, cluster, group, log)
        ctx.tx.events.add_all(log.events)
    return None


@batch_step("node_replace", "ready")
def ready_together(ctx: StepContext, tasks: list[Task]) -> list[Task | None] | None:
    """New instances of one cluster whose lifecycle scripts finish at one instant: each is
    Running as node_replace's `ready` would make it, in bulk. Declined (each runs alone) for
    what only that step does: a script that fails, deep health checks, a scaling operation's
    retried node, a node or group gone."""
    if any(task.operation_id for task in tasks):
        return None
    cluster = ctx.tx.clusters.get(tasks[0].cluster_id)
    found = ctx.tx.nodes.get_many([task.node_id or -1 for task in tasks])
    if cluster is None or len(found) != len(tasks):
        return None
    members: list[tuple[InstanceGroup, Node]] = []
    for task in tasks:
        node = found[task.node_id or -1]
        group = cluster.group(node.group_name)
        if group is None or node.instance_id is None or group.spec.get("OnStartDeepHealthChecks"):
            return None
        members.append((group, node))
    groups = {group.name: group for group, _node in members}
    for name, group in groups.items():
        mine = [node for g, node in members if g.name == name]
        if ctx.provider.lifecycle_scripts_running(ctx.tx, cluster, group, mine):
            return None  # scripts that take their real time: each node waits on its own
        if ctx.provider.run_lifecycle_scripts(ctx.tx, cluster, group, mine):
            return None  # rolled back, strikes and all: each runs alone and fails as its own
    health = ctx.provider.health(ctx.tx, [node.instance_id or "" for _group, node in members])
    log = ctx.log(cluster)
    for group, node in members:
        assert node.instance_id is not None
        _scripts_succeeded(cluster, group, node, log)
        recheck_faults(ctx, cluster, node, health.get(node.instance_id, []), cured_by_reboot=False)
        move_node(node, "provisioned")
        node.busy = None
    ctx.tx.nodes.save_all([node for _group, node in members])
    for group in groups.values():
        group_ready(ctx, cluster, group, log)
    maybe_cluster_created(ctx, cluster, log)
    # Once a node, as each node's own step would: each may free a held-back recovery.
    for group, _node in members:
        resume_recoveries(ctx, cluster, group, log)
    ctx.tx.clusters.save(cluster)
    ctx.tx.events.add_all(log.events)
    return [None] * len(tasks)
