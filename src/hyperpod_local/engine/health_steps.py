"""The health agent and automatic node recovery.

An injected hardware fault is noticed after its detection delay: the node goes to Failure with
the fault's message. With NodeRecovery Automatic the platform then reboots or replaces the
node, as the fault needs, within the safety limits of the recovery policy (spec 7, anchors 4):
at most `max_in_flight` automatic recoveries per group at once, and none at all while more
than the threshold share of the group is unhealthy (a node being recovered counts as
unhealthy). Held-back recoveries go when a node of the group is healthy again; manual Batch
calls are not limited.
"""

from __future__ import annotations

from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.lifecycle import move_node
from hyperpod_local.domain.model import (
    Cluster,
    EventLevel,
    InstanceGroup,
    Node,
    NodeStatus,
    Task,
)
from hyperpod_local.engine.context import StepContext, step


@step("health_check")
def health_check(ctx: StepContext, task: Task) -> Task | None:
    found = ctx.node_context(task)
    if found is None:
        return None
    cluster, group, node = found
    fault = ctx.tx.faults.get(task.data.get("fault_id", ""))
    if fault is None or node.instance_id != task.data.get("instance_id"):
        return None  # the fault was lifted, or the instance is gone with it
    if node.busy is not None:
        # An operation is under way; the one that ends it looks at the faults again.
        return None
    if node.status != NodeStatus.RUNNING:
        if node.status == NodeStatus.FAILURE:
            return None
        task.due_at = round(ctx.now + ctx.durations.health_detection, 3)
        return task
    log = ctx.log(cluster)
    move_node(node, "fault_detected")
    node.status_message = fault.hardware.message
    log.instance(
        group.name,
        node.instance_id,
        f"Instance {node.instance_id} in Cluster {cluster.name} and InstanceGroup {group.name} "
        f"failed a health check: {fault.hardware.message}",
        level=EventLevel.ERROR,
        metadata={
            "Instance": {"FailureMessage": fault.hardware.message, "NodeLogicalId": node.logical_id}
        },
    )
    ctx.tx.nodes.save(node)
    if cluster.spec.get("NodeRecovery", "Automatic") == "Automatic":
        attempt_recovery(ctx, cluster, group, node, fault.hardware.action, log, first=True)
    ctx.tx.events.add_all(log.events)
    return None


def resume_recoveries(
    ctx: StepContext, cluster: Cluster, group: InstanceGroup, log: EventLog
) -> None:
    """A node of the group became healthy or left it: automatic recoveries held back by the
    in-flight cap or the circuit breaker may go now. Event-driven, so nothing polls while
    recovery is paused (and settle() ends)."""
    if cluster.spec.get("NodeRecovery", "Automatic") != "Automatic":
        return
    for node in ctx.tx.nodes.in_group(cluster.id, group.name):
        if node.status != NodeStatus.FAILURE or node.busy is not None or not node.instance_id:
            continue
        faults = ctx.tx.faults.on_instance(node.instance_id)
        if faults and not attempt_recovery(
            ctx, cluster, group, node, faults[0].hardware.action, log, first=False
        ):
            return


def attempt_recovery(
    ctx: StepContext,
    cluster: Cluster,
    group: InstanceGroup,
    node: Node,
    action: str,
    log: EventLog,
    *,
    first: bool,
) -> bool:
    """Start the node's automatic recovery if the policy lets it; False if held back."""
    members = ctx.tx.nodes.in_group(cluster.id, group.name)
    size = max(group.target_count, len(members))
    in_flight = sum(member.busy == "recover" for member in members)
    unhealthy = sum(
        member.status == NodeStatus.FAILURE or member.busy == "recover" for member in members
    )
    allowed = ctx.policy.allowed_unhealthy(size)
    if unhealthy > allowed or in_flight >= ctx.policy.max_in_flight:
        if first and unhealthy > allowed:
            log.group(
                group.name,
                f"Automatic node recovery paused in InstanceGroup {group.name} of Cluster "
                f"{cluster.name}: {unhealthy} of {size} nodes are unhealthy, more than the "
                f"{allowed} allowed ({ctx.policy.unhealthy_threshold:.0%})",
                level=EventLevel.WARN,
            )
        return False
    node.busy = "recover"
    if action == "reboot":
        move_node(node, "reboot")
        kind, step_name, after, words = "node_reboot", "boot", ctx.durations.reboot, "reboot"
    else:
        move_node(node, "replace")
        kind, step_name = "node_replace", "terminate"
        after, words = ctx.durations.terminate, "replacement"
    ctx.later(
        Task(cluster_id=cluster.id, node_id=node.row_id, kind=kind, step=step_name, due_at=0),
        after,
    )
    log.instance(
        group.name,
        node.instance_id,
        f"Automatic node recovery started: {words} of instance {node.instance_id} in Cluster "
        f"{cluster.name} and InstanceGroup {group.name}",
    )
    ctx.tx.nodes.save(node)
    return True
