"""What every engine step gets, and the registry of steps by operation kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.faults import RecoveryPolicy
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.domain.model import Cluster, InstanceGroup, Node, Task
from hyperpod_local.engine.durations import Durations
from hyperpod_local.engine.reports import Tally
from hyperpod_local.providers.base import Provider
from hyperpod_local.store.unit_of_work import Tx


@dataclass(slots=True)
class StepContext:
    tx: Tx
    # The HyperPod time the step happens at: its due time, even if the engine runs it late.
    now: float
    durations: Durations
    provider: Provider
    ids: IdSource
    policy: RecoveryPolicy
    # What the step counts for the metrics (engine/reports.py), published once it commits.
    tally: Tally = field(default_factory=Tally)

    def log(self, cluster: Cluster) -> EventLog:
        return EventLog(cluster.id, self.now)

    def later(self, task: Task, after: float) -> None:
        """Add a new task, due `after` HyperPod seconds from this step."""
        task.due_at = round(self.now + after, 3)
        self.tx.tasks.add(task)

    def node_context(
        self, task: Task, cluster: Cluster | None = None
    ) -> tuple[Cluster, InstanceGroup, Node] | None:
        """The cluster, group and node a node task is about, if they all still exist;
        `cluster`: the task's cluster, when the caller has loaded it already."""
        node = self.tx.nodes.get(task.node_id or -1)
        if cluster is None or cluster.id != task.cluster_id:
            cluster = self.tx.clusters.get(task.cluster_id)
        group = cluster.group(node.group_name) if cluster and node else None
        if node is None or cluster is None or group is None:
            return None
        return cluster, group, node


# A step takes its context and task and returns the task rescheduled for its next step, or
# None when the operation is finished.
Step = Callable[[StepContext, Task], Task | None]
# Filled once, at import, by the @step decorators of the step modules; read-only afterwards.
STEPS: dict[str, Step] = {}


def step(kind: str) -> Callable[[Step], Step]:
    def register(function: Step) -> Step:
        STEPS[kind] = function
        return function

    return register


# The same step of many tasks due at one instant in one cluster, done at once: the tasks
# rescheduled (or None for each finished), in the order given; or None when the batch cannot
# be done together (a launch that may fail, a node gone), and each task then runs alone.
BatchStep = Callable[[StepContext, list[Task]], list[Task | None] | None]
# By (kind, step); filled at import, like STEPS.
BATCH_STEPS: dict[tuple[str, str], BatchStep] = {}


def batch_step(kind: str, step_name: str) -> Callable[[BatchStep], BatchStep]:
    def register(function: BatchStep) -> BatchStep:
        BATCH_STEPS[(kind, step_name)] = function
        return function

    return register


def reschedule(ctx: StepContext, task: Task, step_name: str, after: float) -> Task:
    task.step = step_name
    task.due_at = round(ctx.now + after, 3)
    return task
