"""Cluster policies and compute allocations applied: a create, update or delete that the API
accepted is in force once its step runs."""

from __future__ import annotations

from hyperpod_local.domain.faults import FaultKind
from hyperpod_local.domain.model import Task
from hyperpod_local.domain.task_governance import (
    APPLIED,
    FAILED,
    NOUN,
    PolicyKind,
    PolicyStatus,
)
from hyperpod_local.engine.context import StepContext, step

# How a task_governance fault's Resource and Action name what they strike.
_RESOURCES = {
    PolicyKind.SCHEDULER_CONFIG: "ClusterSchedulerConfig",
    PolicyKind.COMPUTE_QUOTA: "ComputeQuota",
}
_ACTIONS = {
    PolicyStatus.CREATING: "Create",
    PolicyStatus.UPDATING: "Update",
    PolicyStatus.DELETING: "Delete",
}


def _strike(ctx: StepContext, cluster_id: str, kind: str, status: str) -> PolicyStatus | None:
    """The failed status of the change, if a task_governance fault aimed at it is used up."""
    for fault in ctx.tx.faults.all(FaultKind.TASK_GOVERNANCE):
        if fault.cluster_id != cluster_id:
            continue
        if fault.params.get("Resource") not in (None, _RESOURCES[PolicyKind(kind)]):
            continue
        if fault.params.get("Action") not in (None, _ACTIONS[PolicyStatus(status)]):
            continue
        ctx.tx.faults.take(FaultKind.TASK_GOVERNANCE, cluster_id, fault_id=fault.fault_id)
        return FAILED[PolicyStatus(status)]
    return None


@step("task_governance")
def apply_policy(ctx: StepContext, task: Task) -> Task | None:
    policy = ctx.tx.policies.by_id(str(task.data.get("PolicyId")))
    # A change made since this step was scheduled has a step of its own.
    if policy is None or policy.status != task.data.get("Status"):
        return None
    applied = APPLIED.get(PolicyStatus(policy.status))
    if applied is None:
        return None
    failed = _strike(ctx, policy.cluster_id, policy.kind, policy.status)
    if failed is not None:
        policy.status = failed
        policy.failure_reason = (
            f"HyperPod could not apply the change to the {NOUN[PolicyKind(policy.kind)]} "
            f"{policy.policy_id} (an injected task_governance fault)."
        )
    else:
        policy.status = applied
        policy.failure_reason = None
    policy.last_modified_time = ctx.now
    ctx.tx.policies.save(policy)
    return None
