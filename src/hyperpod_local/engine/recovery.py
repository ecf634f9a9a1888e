"""Automatic node recovery, and what a reboot or a new instance does to a node's faults.

Once the health agent (health_agent.py) has put a node in Failure, NodeRecovery Automatic
reboots or replaces it, as its fault needs, within the safety limits of the recovery policy
(spec 7, anchors 4): at most `max_in_flight` automatic recoveries per group at once, and none
at all while more than the threshold share of the group is unhealthy (a node being recovered
counts as unhealthy). Held-back recoveries go when a node of the group is healthy again;
manual Batch calls are not limited.
"""

from __future__ import annotations

from hyperpod_local.domain import events as text
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.faults import Fault
from hyperpod_local.domain.model import Cluster, EventLevel, InstanceGroup, Node
from hyperpod_local.engine.context import StepContext
from hyperpod_local.engine.operations import ACTION_WORDS, schedule_detection, start_node_action
from hyperpod_local.engine.reports import RECOVERIES_HELD_BACK, RECOVERIES_STARTED

# Why a recovery is held back: too much of the group unhealthy, or enough already under way.
BREAKER = "breaker"
IN_FLIGHT = "in_flight"


def automatic(cluster: Cluster) -> bool:
    return cluster.spec.get("NodeRecovery", "Automatic") == "Automatic"


def recheck_faults(
    ctx: StepContext,
    cluster: Cluster,
    node: Node,
    faults: list[Fault] | None = None,
    *,
    cured_by_reboot: bool = True,
) -> None:
    """After a reboot or re-image: the faults a reboot cures are gone; a fault that needs a
    new instance is still there, and the health agent will find it again (after a fresh
    launch, `cured_by_reboot=False`: every fault on the instance is found). `faults`: the
    node's hardware faults, when the caller has them already."""
    assert node.instance_id is not None
    if faults is None:
        faults = ctx.provider.health(ctx.tx, [node.instance_id]).get(node.instance_id, [])
    remaining = []
    for fault in faults:
        if cured_by_reboot and fault.hardware.action == "reboot":
            ctx.tx.faults.remove(fault.fault_id)
        else:
            remaining.append(fault)
    if remaining:
        fault = remaining[0]
        schedule_detection(ctx.tx, node, fault, ctx.now, ctx.durations)


def resume_recoveries(
    ctx: StepContext, cluster: Cluster, group: InstanceGroup, log: EventLog
) -> None:
    """A node of the group became healthy or left it: automatic recoveries held back by the
    in-flight cap or the circuit breaker may go now. Event-driven, so nothing polls while
    recovery is paused (and settle() ends)."""
    if not automatic(cluster):
        return
    for node in ctx.tx.nodes.failed_idle(cluster.id, group.name):
        if not node.instance_id:
            continue  # a provisioning failure: its own retry brings it back
        faults = ctx.provider.health(ctx.tx, [node.instance_id]).get(node.instance_id, [])
        # A node whose fault has been lifted is still down: a reboot brings it back.
        action = faults[0].hardware.action if faults else "reboot"
        if attempt_recovery(ctx, cluster, group, node, action, log, first=False) is not None:
            return


def recover_detected(
    ctx: StepContext,
    cluster: Cluster,
    found: list[tuple[InstanceGroup, Node, Fault]],
    log: EventLog,
) -> None:
    """Nodes of one group the health agent has just put in Failure, judged together: their
    recoveries start in order until the policy holds one back, and every later one is held
    back with it (nothing along the list makes the group healthier). The held-back nodes are
    counted here, once each: resume_recoveries holding one again is not a new hold."""
    for index, (group, node, fault) in enumerate(found):
        reason = attempt_recovery(
            ctx, cluster, group, node, fault.hardware.action, log, first=index == 0
        )
        if reason is not None:
            ctx.tally.add(RECOVERIES_HELD_BACK, reason, len(found) - index)
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
) -> str | None:
    """Start the node's automatic recovery if the policy lets it; if it holds it back, why
    (BREAKER or IN_FLIGHT)."""
    health = ctx.tx.nodes.group_health(cluster.id, group.name)
    size = max(group.target_count, health.members)
    allowed = ctx.policy.allowed_unhealthy(size)
    if health.unhealthy > allowed or health.recovering >= ctx.policy.max_in_flight:
        if first and health.unhealthy > allowed:
            log.group(
                group.name,
                text.recovery_paused(
                    group.name,
                    cluster.name,
                    health.unhealthy,
                    size,
                    allowed,
                    ctx.policy.unhealthy_threshold,
                ),
                level=EventLevel.WARN,
            )
        return BREAKER if health.unhealthy > allowed else IN_FLIGHT
    start_node_action(ctx.tx, cluster, node, action, ctx.now, ctx.durations, busy="recover")
    assert node.instance_id is not None
    log.instance(
        group.name,
        node.instance_id,
        text.recovery_started(ACTION_WORDS[action], node.instance_id, cluster.name, group.name),
    )
    ctx.tally.add(RECOVERIES_STARTED, action)
    return None
