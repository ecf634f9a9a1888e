"""Cluster extensions installed, changed and removed on the cluster's running nodes.

Each is one step: when it is due, HyperPod has done the work on every node, except where an
`extension` fault makes it fail (on one node, or on all of them).
"""

from __future__ import annotations

from hyperpod_local.domain.extensions import DEFAULT_ISSUE, Extension, ExtensionStatus, installed
from hyperpod_local.domain.faults import Fault, FaultKind
from hyperpod_local.domain.model import Task
from hyperpod_local.engine.context import StepContext, step

# The API verb each step carries out, as an extension fault's Action names it.
_ACTIONS = {"install": "Create", "update": "Update", "remove": "Delete"}


def _strike(ctx: StepContext, extension: Extension, action: str) -> Fault | None:
    """Use up the first extension fault aimed at this extension and action, if any."""
    for fault in ctx.tx.faults.all(FaultKind.EXTENSION):
        if fault.cluster_id != extension.cluster_id:
            continue
        if fault.params.get("ExtensionName") not in (None, extension.name):
            continue
        if fault.params.get("Action") not in (None, action):
            continue
        return ctx.tx.faults.take(
            FaultKind.EXTENSION, extension.cluster_id, fault_id=fault.fault_id
        )
    return None


@step("extension")
def extension_step(ctx: StepContext, task: Task) -> Task | None:
    extension = ctx.tx.extensions.get(str(task.data.get("ExtensionArn")))
    if extension is None:
        return None
    action = _ACTIONS[task.step]
    fault = _strike(ctx, extension, action)
    if task.step == "remove":
        if fault is None:
            ctx.tx.tags.remove(extension.arn)
            ctx.tx.extensions.remove(extension.arn)
            return None
        # The extension stays on the nodes, running as it did before.
        extension.status = ExtensionStatus.DELETE_FAILED
    else:
        node_running = bool(
            fault is not None
            and fault.instance_id
            and ctx.tx.extensions.running_among(extension.cluster_id, [fault.instance_id])
        )
        extension.status, extension.failed_all, extension.failed_nodes = installed(
            action, fault, node_running
        )
        failed = extension.failed_all or extension.failed_nodes
        extension.issue_code = (
            str(fault.params.get("Code", DEFAULT_ISSUE)) if fault is not None and failed else None
        )
    extension.last_modified_time = ctx.now
    ctx.tx.extensions.save(extension)
    return None
