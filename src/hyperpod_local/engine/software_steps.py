"""UpdateClusterSoftware, rolling: each targeted group's nodes are re-imaged in batches
(DeploymentConfig.RollingUpdatePolicy), with a wait between batches; an alarm of
AutoRollbackConfiguration in ALARM, or a lifecycle script that fails, turns the update around
and the nodes already updated go back to the previous image (spec 4.4, 6.6)."""

from __future__ import annotations

import math
from typing import Any

from hyperpod_local.domain import events as text
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.faults import FaultKind
from hyperpod_local.domain.lifecycle import move_cluster, move_node, node_allows
from hyperpod_local.domain.model import (
    DEFAULT_IMAGE_ID,
    Cluster,
    ClusterStatus,
    EventLevel,
    GroupStatus,
    InstanceGroup,
    Node,
    Task,
)
from hyperpod_local.domain.software import UPDATE_KEY
from hyperpod_local.engine.context import StepContext, reschedule, step
from hyperpod_local.engine.durations import Durations
from hyperpod_local.engine.recovery import recheck_faults
from hyperpod_local.store.unit_of_work import Tx


@step("software_update")
def software_update(ctx: StepContext, task: Task) -> Task | None:
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(task.group_name or "") if cluster else None
    if cluster is None or group is None or UPDATE_KEY not in group.spec:
        return None
    log = ctx.log(cluster)
    try:
        if task.step == "batch":
            if not start_batch(ctx.tx, cluster, group, task, ctx.now, ctx.durations, log):
                _finish_group(ctx, cluster, group, log)
                return None
            return task
        return _reimage(ctx, task, cluster, group, log)
    finally:
        ctx.tx.clusters.save_group(group)
        ctx.tx.events.add_all(log.events)


def batch_size(config: dict[str, Any] | None, group_size: int, rollback: bool) -> int:
    policy = (config or {}).get("RollingUpdatePolicy")
    if not policy:
        return max(1, group_size)  # no policy: the whole group at once
    size = policy["MaximumBatchSize"]
    if rollback and policy.get("RollbackMaximumBatchSize"):
        size = policy["RollbackMaximumBatchSize"]
    if size["Type"] == "INSTANCE_COUNT":
        return max(1, int(size["Value"]))
    return max(1, math.ceil(group_size * size["Value"] / 100))


def start_batch(
    tx: Tx,
    cluster: Cluster,
    group: InstanceGroup,
    task: Task,
    now: float,
    durations: Durations,
    log: EventLog,
) -> bool:
    """Put the next batch of the group's nodes under the update (or its rollback) and point
    the task at their re-image; False when no node is left to do."""
    update = group.spec[UPDATE_KEY]
    rollback = update["Status"] == "RollbackInProgress"
    target = update["From"] if rollback else update["To"]
    members = tx.nodes.in_group(cluster.id, group.name)
    waiting = [
        node
        for node in members
        if node.instance_id
        and node.busy is None
        and node_allows(node.status, "update")
        and (_on(node, update["To"]) if rollback else not _on(node, target))
    ]
    if not waiting:
        held = [node for node in members if node.busy is not None and not _on(node, target)]
        if held:
            # Nodes another operation holds are patched once it lets them go.
            task.data = {"node_ids": []}
            task.step = "batch"
            task.due_at = round(now + durations.recovery_poll, 3)
            return True
        return False
    batch = waiting[: batch_size(update.get("Config"), len(members), rollback)]
    words = "software rollback" if rollback else "software update"
    for node in batch:
        move_node(node, "update")
        node.busy = "update"
        log.instance(
            group.name,
            node.instance_id,
            text.instance_operation_started(words, cluster.name, group.name),
        )
    tx.nodes.save_all(batch)
    task.data = {"node_ids": [node.row_id for node in batch]}
    task.step = "reimage"
    task.due_at = round(now + durations.software_update(group.instance_types[0]), 3)
    return True


def _on(node: Node, image: dict[str, str]) -> bool:
    """Whether the node runs the image (a custom AMI or `default`) at the release."""
    return (node.image_id, node.image_release_version) == (image["ImageId"], image["Release"])


def _reimage(
    ctx: StepContext, task: Task, cluster: Cluster, group: InstanceGroup, log: EventLog
) -> Task:
    update = group.spec[UPDATE_KEY]
    rollback = update["Status"] == "RollbackInProgress"
    target = update["From"] if rollback else update["To"]
    nodes: list[Node] = [
        node
        for row_id in task.data.get("node_ids", [])
        if (node := ctx.tx.nodes.get(row_id)) is not None and node.busy == "update"
    ]
    instance_ids = [node.instance_id for node in nodes if node.instance_id]
    if not task.data.get("reimaged"):
        ctx.provider.reimage(ctx.tx, instance_ids, target["ImageId"])
    if ctx.provider.lifecycle_scripts_running(ctx.tx, cluster, group, nodes):
        # The re-imaged instances run the lifecycle script again, in their real time.
        task.data = {**task.data, "reimaged": True}
        return reschedule(ctx, task, "reimage", ctx.durations.script_poll)
    faults = ctx.provider.health(ctx.tx, instance_ids)
    words = "software rollback" if rollback else "software update"
    for node in nodes:
        assert node.instance_id is not None
        move_node(node, "updated")
        node.busy = None
        node.image_id = target["ImageId"]
        node.image_release_version = target["Release"]
        node.last_software_update_time = ctx.now
        recheck_faults(ctx, cluster, node, faults.get(node.instance_id, []))
        log.instance(
            group.name,
            node.instance_id,
            text.instance_operation_completed(node.instance_id, words, cluster.name, group.name),
        )
    ctx.tx.nodes.save_all(nodes)
    if not rollback:
        reason = _reason_to_roll_back(ctx, cluster, group, update, nodes)
        if reason is not None:
            update["Status"] = "RollbackInProgress"
            update["FailureMessage"] = reason
            log.group(
                group.name,
                f"Software update of InstanceGroup {group.name} in Cluster {cluster.name} is "
                f"rolling back: {reason}",
                level=EventLevel.WARN,
            )
            return reschedule(ctx, task, "batch", 0)
    wait = float((update.get("Config") or {}).get("WaitIntervalInSeconds", 0))
    return reschedule(ctx, task, "batch", ctx.durations.of(wait))


def _reason_to_roll_back(
    ctx: StepContext,
    cluster: Cluster,
    group: InstanceGroup,
    update: dict[str, Any],
    nodes: list[Node],
) -> str | None:
    alarms = [
        a["AlarmName"] for a in (update.get("Config") or {}).get("AutoRollbackConfiguration") or []
    ]
    for fault in ctx.tx.faults.all(FaultKind.ALARM):
        if fault.params.get("AlarmName") in alarms:
            return f"alarm {fault.params['AlarmName']} is in ALARM"
    # A re-imaged instance runs the group's lifecycle script again.
    failed = ctx.provider.run_lifecycle_scripts(ctx.tx, cluster, group, nodes)
    if failed:
        first = next(node for node in nodes if (node.row_id or -1) in failed)
        script = (group.spec.get("LifeCycleConfig") or {}).get("OnCreate", "on_create.sh")
        return f"lifecycle script {script} failed on instance {first.instance_id}"
    return None


def _finish_group(ctx: StepContext, cluster: Cluster, group: InstanceGroup, log: EventLog) -> None:
    update = group.spec[UPDATE_KEY]
    rolled_back = update["Status"] == "RollbackInProgress"
    update["Status"] = "RollbackComplete" if rolled_back else "Succeeded"
    if not rolled_back:
        group.spec["ImageReleaseVersion"] = update["To"]["Release"]
        if update["To"]["ImageId"] != DEFAULT_IMAGE_ID:
            group.spec["ImageId"] = update["To"]["ImageId"]
        else:
            group.spec.pop("ImageId", None)
    if group.status == GroupStatus.SYSTEM_UPDATING:
        group.status = GroupStatus.IN_SERVICE
    if ctx.tx.tasks.count(cluster.id, kind="software_update") > 1:
        return
    # The last group is done: so is the update.
    if cluster.status == ClusterStatus.SYSTEM_UPDATING:
        move_cluster(cluster, "software_updated")
    statuses = [
        (each.spec if each.name != group.name else group.spec).get(UPDATE_KEY, {}).get("Status")
        for each in cluster.groups
    ]
    if "RollbackComplete" not in statuses:
        cluster.legacy = False
        log.cluster(text.cluster_software_update_completed(cluster.name))
    else:
        reasons = [
            (each.spec if each.name != group.name else group.spec)
            .get(UPDATE_KEY, {})
            .get("FailureMessage")
            for each in cluster.groups
        ]
        cluster.failure_message = "Software update rolled back: " + "; ".join(
            reason for reason in reasons if reason
        )
        log.cluster(f"Cluster {cluster.name} software update rolled back", level=EventLevel.WARN)
    ctx.tx.clusters.save(cluster)
