"""The health agent: an instance's hardware fault is noticed after its detection delay, and
the node goes to Failure with the fault's message; with NodeRecovery Automatic its recovery
starts (recovery.py).

Faults whose detection falls at the same instant are judged together: every node they hit
is in Failure before the circuit breaker looks at its group, so a fault on 3 nodes of 10 at
once is 30% unhealthy (over a 20% threshold: no automatic recovery at all), not 10%, 20% and
then 30% one detection at a time.
"""

from __future__ import annotations

from hyperpod_local.domain import events as text
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.faults import Fault
from hyperpod_local.domain.lifecycle import move_node
from hyperpod_local.domain.model import Cluster, EventLevel, InstanceGroup, Node, NodeStatus, Task
from hyperpod_local.engine.context import StepContext, step
from hyperpod_local.engine.operations import DETECTION as KIND
from hyperpod_local.engine.recovery import automatic, recover_detected


@step(KIND)
def health_check(ctx: StepContext, task: Task) -> Task | None:
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is None:
        return None
    found = _detectable(ctx, task, cluster)
    if not isinstance(found, tuple):
        return found
    log = ctx.log(cluster)
    _detect(ctx, cluster, *found, log)
    detected: dict[str, list[tuple[InstanceGroup, Node, Fault]]] = {found[0].name: [found]}
    for other in ctx.tx.tasks.due_of_kind(cluster.id, KIND, ctx.now):
        if other.id == task.id:
            continue
        # Its own step still runs, finds its node in Failure already, and ends: the runner may
        # hold it loaded, so it is not removed here (its id could be given to a new task).
        also = _detectable(ctx, other, cluster)
        if isinstance(also, tuple):
            _detect(ctx, cluster, *also, log)
            detected.setdefault(also[0].name, []).append(also)
    if automatic(cluster):
        for hits in detected.values():
            recover_detected(ctx, cluster, hits, log)
    ctx.tx.events.add_all(log.events)
    return None


def _detectable(
    ctx: StepContext, task: Task, cluster: Cluster
) -> tuple[InstanceGroup, Node, Fault] | Task | None:
    """What a detection finds: the group, node and fault; the task again, later, if the node
    is not Running yet; None if there is nothing left to find."""
    found = ctx.node_context(task, cluster)
    if found is None:
        return None
    _cluster, group, node = found
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
    return group, node, fault


def _detect(
    ctx: StepContext,
    cluster: Cluster,
    group: InstanceGroup,
    node: Node,
    fault: Fault,
    log: EventLog,
) -> None:
    assert node.instance_id is not None
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
