"""Starting node operations: the one place that knows which engine task carries each action,
for the Batch APIs, automatic recovery and provisioning retries alike."""

from __future__ import annotations

import random

from hyperpod_local.domain import events as text
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.faults import Fault
from hyperpod_local.domain.lifecycle import move_node
from hyperpod_local.domain.model import Cluster, GroupStatus, InstanceGroup, Node, Task
from hyperpod_local.engine.durations import Durations
from hyperpod_local.store.unit_of_work import Tx

# action -> (task kind, first step, lifecycle event, duration of the first step)
_ACTIONS = {
    "replace": ("node_replace", "terminate", "replace", "terminate"),
    "reboot": ("node_reboot", "boot", "reboot", "reboot"),
    "delete": ("node_delete", "terminate", "delete", "terminate"),
}
# What the started-event calls each action.
ACTION_WORDS = {"replace": "replacement", "reboot": "reboot", "delete": "deletion"}


def start_node_action(
    tx: Tx,
    cluster: Cluster,
    node: Node,
    action: str,
    now: float,
    durations: Durations,
    *,
    busy: str,
    operation_id: str | None = None,
    event: str | None = None,
) -> None:
    """Move the node into the action's first state (by `event`, if another than the
    action's own), mark who holds it, and schedule the action's first step."""
    kind, step, own_event, duration = _ACTIONS[action]
    move_node(node, event or own_event)
    node.busy = busy
    tx.nodes.save(node)
    tx.tasks.add(
        Task(
            cluster_id=cluster.id,
            kind=kind,
            step=step,
            due_at=round(now + getattr(durations, duration), 3),
            node_id=node.row_id,
            operation_id=operation_id,
        )
    )


def schedule_relaunch(
    tx: Tx, cluster: Cluster, node: Node, due_at: float, operation_id: str | None = None
) -> None:
    """Try a failed node again on a new instance (same NodeLogicalId) at `due_at`; a retry
    of a scaling operation's node keeps that operation in progress."""
    node.busy = "provision"
    tx.nodes.save(node)
    tx.tasks.add(
        Task(
            cluster_id=cluster.id,
            kind="node_replace",
            step="terminate",
            due_at=round(due_at, 3),
            node_id=node.row_id,
            operation_id=operation_id,
        )
    )


# The task kind of the health agent's detection of a fault (engine/health_agent.py).
DETECTION = "health_check"
# The task kind of a random_hardware fault's next strike (engine/random_faults.py). It never
# ends by itself (only the fault's removal ends it), so a settle does not wait for it.
RANDOM_STRIKE = "random_hardware"
BACKGROUND_KINDS = frozenset({RANDOM_STRIKE})


def schedule_random_faults(tx: Tx, source: Fault, now: float, durations: Durations) -> None:
    """The first strike of a random_hardware fault, a random gap after `now` (the gap, like
    every draw of it, from the fault's Seed: the same seed on the same fleet strikes the same
    nodes at the same times)."""
    tx.tasks.add(
        Task(
            cluster_id=source.cluster_id or "",
            kind=RANDOM_STRIKE,
            step="strike",
            due_at=round(
                now + random_gap(tx, source, random.Random(f"{source.params['Seed']}"), durations),
                3,
            ),
            data={"fault_id": source.fault_id, "draws": 0},
        )
    )


def random_gap(
    tx: Tx,
    source: Fault,
    draw: random.Random,
    durations: Durations,
    *,
    serving: int | None = None,
) -> float:
    """Clock seconds to the fault's next strike: the nodes it may strike each fail at the
    mean time between failures (HyperPod hours, which --speed shortens as it does every
    duration), so together at that many times the rate. With none Running, it looks again
    an hour later. `serving`: the nodes Running in its reach, when the caller has counted
    them."""
    if serving is None:
        serving = tx.nodes.running_count(source.cluster_id, source.group_name)
    if serving == 0:
        return durations.of(3600.0)
    return durations.of(draw.expovariate(serving / (float(source.params["MtbfHours"]) * 3600.0)))


def schedule_detection(tx: Tx, node: Node, fault: Fault, now: float, durations: Durations) -> None:
    """The health agent notices the fault on the node's instance after its detection delay
    (the fault's, in HyperPod seconds, else the configured one)."""
    given = fault.params.get("DetectionDelaySeconds")
    delay = durations.health_detection if given is None else durations.of(float(given))
    tx.tasks.add(
        Task(
            cluster_id=node.cluster_id,
            node_id=node.row_id,
            kind=DETECTION,
            step="detect",
            due_at=round(now + delay, 3),
            data={"instance_id": node.instance_id, "fault_id": fault.fault_id},
        )
    )


# The task kind of the deadline of a group's MinCount (engine/cluster_steps.py).
MIN_COUNT_DEADLINE = "min_count_deadline"


def schedule_min_count_deadline(
    tx: Tx,
    cluster: Cluster,
    group: InstanceGroup,
    now: float,
    durations: Durations,
    back_to: tuple[int, int | None],
) -> None:
    """The group is Creating or Updating until MinCount nodes serve; if they do not within
    `min_count_window`, it goes back to `back_to` (TargetCount, MinCount)."""
    tx.tasks.remove_for_group(cluster.id, group.name, MIN_COUNT_DEADLINE)
    tx.tasks.add(
        Task(
            cluster_id=cluster.id,
            group_name=group.name,
            kind=MIN_COUNT_DEADLINE,
            step="roll_back",
            due_at=round(now + durations.min_count_window, 3),
            data={"target": back_to[0], "min": back_to[1]},
        )
    )


def end_group_wait(tx: Tx, cluster: Cluster, group: InstanceGroup, log: EventLog) -> None:
    """A Creating group, or one waiting for its MinCount, is InService now: its rollback
    deadline goes, and a new group's creation is complete."""
    if group.status == GroupStatus.CREATING:
        log.group(group.name, text.group_creation_completed(group.name, cluster.name))
    group.status = GroupStatus.IN_SERVICE
    tx.clusters.save_group(group)
    tx.tasks.remove_for_group(cluster.id, group.name, MIN_COUNT_DEADLINE)


# A Continuous Slurm cluster whose controller (or login node) is not up this long after
# CreateCluster fails (engine/cluster_steps.py).
HEAD_DEADLINE = "slurm_head_deadline"


def schedule_head_deadline(tx: Tx, cluster: Cluster, now: float, durations: Durations) -> None:
    tx.tasks.add(
        Task(
            cluster_id=cluster.id,
            kind=HEAD_DEADLINE,
            step="fail",
            due_at=round(now + durations.min_count_window, 3),
        )
    )
