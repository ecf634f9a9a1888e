"""Steps of EBS volume attachments (AttachClusterNodeVolume, DetachClusterNodeVolume): EC2
finishes attaching or detaching a few seconds after the call."""

from __future__ import annotations

from hyperpod_local.domain import attachments as rules
from hyperpod_local.domain.model import Task
from hyperpod_local.domain.scope import Scope
from hyperpod_local.engine.context import StepContext, step


@step("volume_attach")
def volume_attach(ctx: StepContext, task: Task) -> Task | None:
    """`attaching` becomes `attached`, unless a detach overtook it or the instance went."""
    found = ctx.node_context(task)
    if found is None or found[2].instance_id is None:
        return None
    cluster, group, node = found
    attachment = ctx.tx.attachments.volume(cluster.scope, task.data["volume_id"])
    if attachment is None or attachment.instance_id != node.instance_id:
        return None
    if attachment.status == rules.ATTACHING:
        ctx.tx.attachments.set_volume_status(attachment, rules.ATTACHED)
        log = ctx.log(cluster)
        log.instance(
            group.name,
            node.instance_id,
            rules.volume_attached(attachment.volume_id, node.instance_id, attachment.device_name),
            metadata={"Instance": {"NodeLogicalId": node.logical_id}},
        )
        ctx.tx.events.add_all(log.events)
    return None


@step("volume_detach")
def volume_detach(ctx: StepContext, task: Task) -> Task | None:
    """A `detaching` volume is detached: it is the customer's again, attached to nothing."""
    found = ctx.node_context(task)
    if found is None or found[2].instance_id is None:
        return None
    cluster, group, node = found
    scope: Scope = cluster.scope
    attachment = ctx.tx.attachments.volume(scope, task.data["volume_id"])
    if attachment is None or attachment.instance_id != node.instance_id:
        return None
    if attachment.status == rules.DETACHING:
        ctx.tx.attachments.remove_volume(attachment)
        log = ctx.log(cluster)
        log.instance(
            group.name,
            node.instance_id,
            rules.volume_detached(attachment.volume_id, node.instance_id),
            metadata={"Instance": {"NodeLogicalId": node.logical_id}},
        )
        ctx.tx.events.add_all(log.events)
    return None
