"""Random hardware faults (FaultKind.RANDOM_HARDWARE): the fault's nodes (a group's, a
cluster's, or every cluster's) each fail at its mean time between failures, with a fault
type drawn from its mix, so a month of a fleet's failures runs without a driver script.

Each strike k draws from its own generator, seeded by the fault's Seed and k, so a run is
reproducible and a restart resumes the same sequence. A strike is a hardware fault like an
injected one: the health agent notices it after the detection delay, and automatic recovery
answers it. When the engine runs late, the strikes it owes are made at their own times.
"""

from __future__ import annotations

import random

from hyperpod_local.domain.faults import Fault, FaultKind
from hyperpod_local.domain.model import Node, Task
from hyperpod_local.engine.context import StepContext, step
from hyperpod_local.engine.operations import RANDOM_STRIKE, random_gap, schedule_detection

# Strikes owed by one late run, at most: the rest wait for the next run.
_MAX_STRIKES_A_RUN = 1000


@step(RANDOM_STRIKE)
def strike(ctx: StepContext, task: Task) -> Task | None:
    source = ctx.tx.faults.get(str(task.data.get("fault_id")))
    if source is None:
        return None  # the fault was removed
    draws = int(task.data.get("draws", 0))
    strikes = int(source.params.get("Strikes", 0))
    at = task.due_at
    # The Running nodes by group, counted once a run: a strike leaves its node Running (the
    # health agent has not noticed it yet), so they stay as counted until the run ends.
    buckets = ctx.tx.nodes.running_by_group(source.cluster_id, source.group_name)
    serving = sum(bucket[-1] for bucket in buckets)
    for _ in range(_MAX_STRIKES_A_RUN):
        draw = random.Random(f"{source.params['Seed']}:{draws}")
        draws += 1
        node = _pick(ctx, buckets, serving, draw)
        if node is not None:
            _strike(ctx, source, node, draw, at)
            strikes += 1
        gap = random_gap(ctx.tx, source, draw, ctx.durations, serving=serving)
        at = round(at + gap, 3)
        if at > ctx.now:
            break
    # Strikes counts the faults made; a draw that found no Running node made none.
    ctx.tx.faults.set_params(source.fault_id, {**source.params, "Strikes": strikes})
    task.data = {**task.data, "draws": draws}
    # Past now only when this run made its most strikes: then the rest are due at once.
    task.due_at = at
    return task


def _pick(
    ctx: StepContext,
    buckets: list[tuple[str, str, int]],
    total: int,
    draw: random.Random,
) -> Node | None:
    """A Running node of the fault's reach, each as likely as another: a group, by its
    Running nodes (`buckets`, `total` of them), then one of them."""
    if total == 0:
        return None
    index = int(draw.random() * total)
    for cluster_id, group_name, count in buckets:
        if index < count:
            return ctx.tx.nodes.nth_running(cluster_id, group_name, index)
        index -= count
    return None


def _strike(ctx: StepContext, source: Fault, node: Node, draw: random.Random, at: float) -> None:
    mix = source.params["Types"]
    names = sorted(mix)
    [fault_type] = draw.choices(names, weights=[float(mix[name]) for name in names])
    fault = Fault(
        fault_id=str(ctx.ids.uuid()),
        kind=FaultKind.HARDWARE,
        created_at=at,
        cluster_id=node.cluster_id,
        group_name=node.group_name,
        instance_id=node.instance_id,
        params={
            "Type": fault_type,
            "DetectionDelaySeconds": source.params["DetectionDelaySeconds"],
            "RandomFaultId": source.fault_id,
        },
    )
    ctx.tx.faults.add(fault)
    schedule_detection(ctx.tx, node, fault, at, ctx.durations)
