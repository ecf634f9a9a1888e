"""Cluster policies and compute allocations applied: a create, update or delete that the API
accepted is in force once its step runs."""

from __future__ import annotations

from hyperpod_local.domain.model import Task
from hyperpod_local.domain.task_governance import APPLIED, PolicyStatus
from hyperpod_local.engine.context import StepContext, step


@step("task_governance")
def apply_policy(ctx: StepContext, task: Task) -> Task | None:
    policy = ctx.tx.policies.by_id(str(task.data.get("PolicyId")))
    # A change made since this step was scheduled has a step of its own.
    if policy is None or policy.status != task.data.get("Status"):
        return None
    applied = APPLIED.get(PolicyStatus(policy.status))
    if applied is None:
        return None
    policy.status = applied
    policy.last_modified_time = ctx.now
    ctx.tx.policies.save(policy)
    return None
