"""The entities of a HyperPod cluster, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hyperpod_local.domain.scope import Scope

# The platform image release every new node gets until software updates exist.
LATEST_IMAGE_RELEASE = "2025.11.20"
# What a cluster put on old platform software (admin API) runs.
LEGACY_IMAGE_RELEASE = "2024.06.20"
DEFAULT_IMAGE_ID = "default"


class ClusterStatus(StrEnum):
    CREATING = "Creating"
    DELETING = "Deleting"
    FAILED = "Failed"
    IN_SERVICE = "InService"
    ROLLING_BACK = "RollingBack"
    SYSTEM_UPDATING = "SystemUpdating"
    UPDATING = "Updating"


class GroupStatus(StrEnum):
    IN_SERVICE = "InService"
    CREATING = "Creating"
    UPDATING = "Updating"
    FAILED = "Failed"
    DEGRADED = "Degraded"
    SYSTEM_UPDATING = "SystemUpdating"
    DELETING = "Deleting"


class NodeStatus(StrEnum):
    RUNNING = "Running"
    FAILURE = "Failure"
    PENDING = "Pending"
    SHUTTING_DOWN = "ShuttingDown"
    SYSTEM_UPDATING = "SystemUpdating"
    DEEP_HEALTH_CHECK_IN_PROGRESS = "DeepHealthCheckInProgress"
    NOT_FOUND = "NotFound"
    DETACH_IN_PROGRESS = "DetachInProgress"
    ATTACH_IN_PROGRESS = "AttachInProgress"


# Nodes in these states have an instance that serves the group, so they count in CurrentCount.
SERVING_STATUSES = frozenset(
    {
        NodeStatus.RUNNING,
        NodeStatus.SYSTEM_UPDATING,
        NodeStatus.DEEP_HEALTH_CHECK_IN_PROGRESS,
    }
)


@dataclass(slots=True)
class InstanceGroup:
    cluster_id: str
    name: str
    position: int
    spec: dict[str, Any]
    target_count: int
    status: str = GroupStatus.IN_SERVICE
    min_count: int | None = None
    current_count: int = 0
    # Scaling operations in progress on the group (DescribeCluster's ActiveOperations).
    active_scaling: int = 0
    # Serving nodes per instance type (DescribeCluster's InstanceTypeDetails).
    type_counts: dict[str, int] = field(default_factory=dict)
    # Nodes per image release version (DescribeCluster's TargetStateCount).
    release_counts: dict[str, int] = field(default_factory=dict)
    # Nodes in Failure; and whether every node failed with nothing under way to fix one.
    failed_count: int = 0
    stranded: bool = False

    @property
    def instance_types(self) -> list[str]:
        """The group's types in priority order: one, or the flexible group's list."""
        if self.spec.get("InstanceType"):
            return [self.spec["InstanceType"]]
        return list(self.spec.get("InstanceRequirements", {}).get("InstanceTypes", []))


def in_min_count_phase(cluster: Cluster, group: InstanceGroup) -> bool:
    """A Continuous group with a MinCount it has not reached yet (spec 4.2): Creating or
    Updating (a Continuous cluster's groups are Updating for nothing else)."""
    return (
        cluster.continuous
        and bool(group.min_count)
        and group.status in (GroupStatus.CREATING, GroupStatus.UPDATING)
    )


def shown_group_status(cluster_status: str, group: InstanceGroup) -> str:
    """The status DescribeCluster shows (spec 4.2): Deleting with its cluster; an InService
    group with failed nodes is Degraded, or Failed when none is left and none is being
    fixed (no retry, recovery or replacement under way)."""
    if cluster_status == ClusterStatus.DELETING:
        return GroupStatus.DELETING
    if group.status == GroupStatus.IN_SERVICE and group.failed_count:
        return GroupStatus.FAILED if group.stranded else GroupStatus.DEGRADED
    return group.status


@dataclass(slots=True)
class Cluster:
    id: str
    scope: Scope
    name: str
    arn: str
    status: str
    creation_time: float
    spec: dict[str, Any]
    ip_base: int
    next_ip: int = 0
    seq: int = 0
    legacy: bool = False
    failure_message: str | None = None
    groups: list[InstanceGroup] = field(default_factory=list)

    @property
    def continuous(self) -> bool:
        return self.spec.get("NodeProvisioningMode") == "Continuous"

    @property
    def is_eks(self) -> bool:
        return "Eks" in (self.spec.get("Orchestrator") or {})

    def group(self, name: str) -> InstanceGroup | None:
        return next((group for group in self.groups if group.name == name), None)


@dataclass(slots=True)
class Node:
    cluster_id: str
    group_name: str
    instance_type: str
    status: str
    sort_time: float
    instance_id: str | None = None
    logical_id: str | None = None
    status_message: str | None = None
    launch_time: float | None = None
    private_ip: str | None = None
    hostname: str | None = None
    availability_zone: str | None = None
    availability_zone_id: str | None = None
    image_id: str = DEFAULT_IMAGE_ID
    image_release_version: str = LATEST_IMAGE_RELEASE
    last_software_update_time: float | None = None
    busy: str | None = None
    row_id: int | None = None

    @property
    def label(self) -> str:
        """How a message names the node: its instance id, else its NodeLogicalId (a node still
        waiting for an instance), never "None"."""
        if self.instance_id:
            return self.instance_id
        if self.logical_id:
            return self.logical_id
        return f"a node of instance group {self.group_name} without an instance yet"


@dataclass(slots=True)
class Task:
    """The next step of a durable operation, due at a HyperPod time (the engine runs it)."""

    cluster_id: str
    kind: str
    step: str
    due_at: float
    node_id: int | None = None
    group_name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    operation_id: str | None = None
    id: int | None = None


class EventLevel(StrEnum):
    INFO = "Info"
    WARN = "Warn"
    ERROR = "Error"


class ResourceType(StrEnum):
    CLUSTER = "Cluster"
    INSTANCE_GROUP = "InstanceGroup"
    INSTANCE = "Instance"


@dataclass(slots=True)
class Event:
    # Made from the seq the store gives the event as it writes it (store/event_ids.py): ""
    # until then, and filled in on a written event only where it is sent on (the outbox).
    event_id: str
    cluster_id: str
    event_time: float
    resource_type: str
    description: str
    level: str = EventLevel.INFO
    group_name: str | None = None
    instance_id: str | None = None
    operation_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class Operation:
    operation_id: str
    cluster_id: str
    type: str
    status: str
    creation_time: float
    details: dict[str, Any] = field(default_factory=dict)
