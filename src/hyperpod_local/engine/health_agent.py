"""The health agent: an instance's hardware fault is noticed after its detection delay, and
the node goes to Failure with the fault's message; with NodeRecovery Automatic its recovery
starts (recovery.py)."""

from __future__ import annotations

from hyperpod_local.domain import events as text
from hyperpod_local.domain.lifecycle import move_node
from hyperpod_local.domain.model import EventLevel, NodeStatus, Task
from hyperpod_local.engine.context import StepContext, step
from hyperpod_local.engine.recovery import attempt_recovery, automatic


@step("health_check")
def health_check(ctx: StepContext, task: Task) -> Task | None:
    found = ctx.node_context(task)
    if found is None:
        return None
    cluster, group, node = found
    fault = ctx.tx.faults.get(task.data.get("fault_id", ""))
    if fault is None or node.instance_id != task.data.get("instance_id"):
        return None  # the fault was lifted, or the instance is gone with it
    if node.busy is not None or node.status == NodeStatus.FAILURE:
        # An operation is under way and looks at the faults again when it ends; or the node
        # has already failed.
        return None
    if node.status != NodeStatus.RUNNING:
        task.due_at = round(ctx.now + ctx.durations.health_detection, 3)
        return task
    log = ctx.log(cluster)
    move_node(node, "fault_detected")
    node.status_message = fault.hardware.message
    log.instance(
        group.name,
        node.instance_id,
        text.health_check_failed(node.instance_id, cluster.name, group.name, node.status_message),
        level=EventLevel.ERROR,
        metadata={
            "Instance": {"FailureMessage": fault.hardware.message, "NodeLogicalId": node.logical_id}
        },
    )
    ctx.tx.nodes.save(node)
    if automatic(cluster):
        attempt_recovery(ctx, cluster, group, node, fault.hardware.action, log, first=True)
    ctx.tx.events.add_all(log.events)
    return None
