"""Every engine step, by operation kind. Each step runs inside the engine's transaction with
the task that scheduled it, so its effects and the task's progress commit together: a crash
between two steps loses nothing and repeats nothing."""

from __future__ import annotations

from hyperpod_local.domain.model import EventLevel, Task
from hyperpod_local.engine import cluster_steps, health_steps, node_steps
from hyperpod_local.engine.context import STEPS, StepContext

# The step modules register their steps when imported.
_MODULES = (cluster_steps, node_steps, health_steps)

__all__ = ["STEPS", "StepContext", "record_abandoned"]


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
