"""Cluster events, worded as HyperPod words them (spec section 13)."""

from __future__ import annotations

from typing import Any

from hyperpod_local.domain.model import Event, EventLevel, ResourceType

_METADATA_KEY = {
    ResourceType.CLUSTER: "Cluster",
    ResourceType.INSTANCE_GROUP: "InstanceGroup",
    ResourceType.INSTANCE: "Instance",
}
# Looked up once: an enum member's attribute access is a descriptor call each time.
_CLUSTER, _INSTANCE_GROUP, _INSTANCE = (
    ResourceType.CLUSTER,
    ResourceType.INSTANCE_GROUP,
    ResourceType.INSTANCE,
)


class EventLog:
    """Collects the events of one unit of work, all stamped with its HyperPod time."""

    def __init__(self, cluster_id: str, now: float) -> None:
        self._cluster_id = cluster_id
        self._now = now
        self.events: list[Event] = []

    def _add(
        self,
        resource_type: str,
        description: str,
        group: str | None,
        instance_id: str | None,
        level: str,
        operation_id: str | None,
        metadata: dict[str, Any] | None,
    ) -> Event:
        # Positional all the way down: five events a node in a settle, and keyword passing
        # through three calls cost more than the rest of making an event.
        if metadata is None:
            # EventMetadata is a union: exactly one subtree, the one of the resource type.
            metadata = {_METADATA_KEY[resource_type]: {}}
        # The id comes with the event's seq when the store writes it (store/event_ids.py).
        event = Event(
            "",
            self._cluster_id,
            self._now,
            resource_type,
            description,
            level,
            group,
            instance_id,
            operation_id,
            metadata,
        )
        self.events.append(event)
        return event

    def cluster(
        self,
        text: str,
        level: str = EventLevel.INFO,
        *,
        operation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Event:
        return self._add(_CLUSTER, text, None, None, level, operation_id, metadata)

    def group(
        self,
        group: str,
        text: str,
        level: str = EventLevel.INFO,
        *,
        operation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Event:
        return self._add(_INSTANCE_GROUP, text, group, None, level, operation_id, metadata)

    def scaling_completed(
        self,
        cluster: str,
        group: str,
        operation_id: str,
        counts: tuple[int, int, int | None],
    ) -> Event:
        """A group's part of a scaling operation is done; `counts`: its instances now, its
        target and its MinCount (scaling_metadata)."""
        return self.group(
            group,
            group_scaling_completed(group, cluster),
            operation_id=operation_id,
            metadata=scaling_metadata(*counts),
        )

    def instance(
        self,
        group: str,
        instance_id: str | None,
        text: str,
        level: str = EventLevel.INFO,
        *,
        operation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Event:
        return self._add(_INSTANCE, text, group, instance_id, level, operation_id, metadata)


def scaling_metadata(
    instance_count: int,
    target_count: int,
    min_count: int | None,
    failure_message: str | None = None,
) -> dict[str, Any]:
    """EventMetadata of a scaling event (spec 6.14): the InstanceGroupScaling subtree, not an
    empty InstanceGroup one. InstanceCount is the group's instances when the event happens,
    TargetCount the count the scaling aims at; MinCount only for a group that has one."""
    subtree: dict[str, Any] = {"InstanceCount": instance_count, "TargetCount": target_count}
    if min_count is not None:
        subtree["MinCount"] = min_count
    if failure_message is not None:
        subtree["FailureMessage"] = failure_message
    return {"InstanceGroupScaling": subtree}


# Templates. <c> cluster, <g> instance group, <i> instance id.
def cluster_creation_started(c: str) -> str:
    return f"Cluster {c} creation started successfully"


def cluster_creation_completed(c: str) -> str:
    return f"Cluster {c} creation completed successfully"


def cluster_deletion_started(c: str) -> str:
    return f"Cluster {c} deletion started successfully"


def cluster_software_update_started(c: str) -> str:
    return f"Cluster {c} software update started successfully"


def cluster_software_update_completed(c: str) -> str:
    return f"Cluster {c} software update completed successfully"


def group_creation_started(g: str, c: str) -> str:
    return f"InstanceGroup {g} creation started successfully in Cluster {c}"


def group_creation_completed(g: str, c: str) -> str:
    return f"Instance Group {g} creation in Cluster {c} completed successfully"


def group_scaling_started(g: str, c: str) -> str:
    return f"InstanceGroup {g} scaling started successfully in Cluster {c}"


def group_scaling_completed(g: str, c: str) -> str:
    return f"Instance Group {g} scaling in Cluster {c} completed successfully"


def instance_creation_started(c: str, g: str) -> str:
    return f"Instance creation started successfully in Cluster {c} and InstanceGroup {g}"


def instance_provisioned(i: str, c: str, g: str) -> str:
    return f"EC2 Instance {i} successfully provisioned in Cluster {c} and InstanceGroup {g}"


def lifecycle_script(i: str, state: str) -> str:
    return f"Instance lifecycle script execution for EC2 Instance {i} has {state}"


def instance_creation_completed(i: str, c: str, g: str) -> str:
    return f"Instance {i} creation in Cluster {c} and InstanceGroup {g} completed successfully"


def instance_terminated(i: str, c: str, g: str) -> str:
    return f"EC2 Instance {i} successfully terminated in Cluster {c} and InstanceGroup {g}"


def instance_deletion_completed(i: str, c: str, g: str) -> str:
    return f"Instance {i} deletion in Cluster {c} and InstanceGroup {g} completed successfully"


def provisioning_failed(c: str, g: str) -> str:
    return f"Failed to provision EC2 Instance in Cluster {c} and InstanceGroup {g}"


def instance_creation_failed(c: str, g: str) -> str:
    return f"Instance creation in Cluster {c} and InstanceGroup {g} failed"


def cluster_update_rolling_back(c: str) -> str:
    return f"Cluster {c} update failed; rolling back to the last good configuration"


def cluster_rollback_completed(c: str) -> str:
    return f"Cluster {c} rollback completed successfully"


def group_min_count_missed(g: str, c: str, minimum: int, hours: float) -> str:
    return (
        f"Instance Group {g} in Cluster {c} did not reach its MinCount of {minimum} within "
        f"{hours:g} hours; rolling back"
    )


def health_check_failed(i: str, c: str, g: str, reason: str) -> str:
    return f"Instance {i} in Cluster {c} and InstanceGroup {g} failed a health check: {reason}"


def recovery_started(words: str, i: str, c: str, g: str) -> str:
    return (
        f"Automatic node recovery started: {words} of instance {i} in Cluster {c} and "
        f"InstanceGroup {g}"
    )


def recovery_paused(g: str, c: str, unhealthy: int, size: int, allowed: int, share: float) -> str:
    return (
        f"Automatic node recovery paused in InstanceGroup {g} of Cluster {c}: {unhealthy} of "
        f"{size} nodes are unhealthy, more than the {allowed} allowed ({share:.0%})"
    )


def deep_health_check_started(checks: list[str], i: str, c: str, g: str) -> str:
    return (
        f"Deep health check ({', '.join(checks)}) started for instance {i} in Cluster {c} and "
        f"InstanceGroup {g}"
    )


def deep_health_check_passed(i: str, c: str, g: str) -> str:
    return f"Deep health check passed for instance {i} in Cluster {c} and InstanceGroup {g}"


def deep_health_check_failed(check: str, reason: str, i: str, c: str, g: str) -> str:
    return (
        f"Deep health check {check} failed for instance {i} in Cluster {c} and InstanceGroup "
        f"{g}: {reason}"
    )


def instance_operation_started(operation: str, c: str, g: str) -> str:
    return f"Instance {operation} started successfully in Cluster {c} and InstanceGroup {g}"


def instance_operation_completed(i: str, operation: str, c: str, g: str) -> str:
    return f"Instance {i} {operation} in Cluster {c} and InstanceGroup {g} completed successfully"
