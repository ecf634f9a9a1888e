"""Faults on demand: what can be made to go wrong, and what HyperPod does about each.

Hardware faults sit on an instance until the health agent notices them (after a detection
delay); the action HyperPod's agent takes depends on the fault, as its health agent decides:
faults of the hardware itself need a new instance, faults of the software on it a reboot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hyperpod_local.domain.errors import ValidationError

CAPACITY_MESSAGE = (
    "We currently do not have sufficient capacity for the requested instance type(s). "
    "Please try again."
)


class FaultKind(StrEnum):
    HARDWARE = "hardware"
    LIFECYCLE_SCRIPT = "lifecycle_script"
    CAPACITY = "capacity"
    INTERNAL_ERROR = "internal_error"
    THROTTLING = "throttling"
    LATENCY = "latency"
    # A CloudWatch alarm in ALARM, for AutoRollbackConfiguration of UpdateClusterSoftware.
    ALARM = "alarm"
    # Hardware faults at random, each serving node failing at a mean time between failures:
    # a fleet's month of failures without a driver script (engine/random_faults.py).
    RANDOM_HARDWARE = "random_hardware"
    # A cluster extension's next install, update or removal fails (on one node, or on all).
    EXTENSION = "extension"
    # The next create, update or deletion of a cluster policy or compute allocation fails.
    TASK_GOVERNANCE = "task_governance"


_CLUSTER = ("Cluster", "Account", "Region")
# The fields a fault spec of each kind may hold: the admin API, `hp.inject()` and the CLI's
# `fault add` options all follow this one table.
FAULT_FIELDS: dict[FaultKind, frozenset[str]] = {
    FaultKind.HARDWARE: frozenset(
        (*_CLUSTER, "InstanceId", "InstanceGroupName", "Type", "DetectionDelaySeconds")
    ),
    FaultKind.LIFECYCLE_SCRIPT: frozenset((*_CLUSTER, "InstanceGroupName", "Count")),
    FaultKind.CAPACITY: frozenset((*_CLUSTER, "InstanceType")),
    FaultKind.INTERNAL_ERROR: frozenset((*_CLUSTER, "InstanceId", "Count")),
    FaultKind.THROTTLING: frozenset(("Operations", "Rate")),
    FaultKind.LATENCY: frozenset(("Operations", "Seconds")),
    FaultKind.ALARM: frozenset(("AlarmName",)),
    FaultKind.RANDOM_HARDWARE: frozenset(
        (*_CLUSTER, "InstanceGroupName", "MtbfHours", "Types", "Seed", "DetectionDelaySeconds")
    ),
    FaultKind.EXTENSION: frozenset(
        (*_CLUSTER, "ExtensionName", "Action", "InstanceId", "Code", "Count")
    ),
    FaultKind.TASK_GOVERNANCE: frozenset((*_CLUSTER, "Resource", "Action", "Count")),
}
# What an extension fault's Action may name: the API verb whose work fails.
EXTENSION_ACTIONS = ("Create", "Update", "Delete")
# What a task_governance fault's Resource may name.
GOVERNANCE_RESOURCES = ("ClusterSchedulerConfig", "ComputeQuota")


def a_fault(kind: str) -> str:
    """'a hardware fault', 'an alarm fault': how messages name a fault of a kind."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind} fault"


@dataclass(frozen=True, slots=True)
class HardwareFault:
    message: str
    # "reboot" clears it; "replace" needs a new instance.
    action: str


HARDWARE_FAULTS: dict[str, HardwareFault] = {
    "GpuXid79": HardwareFault("GPU has fallen off the bus (NVIDIA Xid 79)", "replace"),
    "GpuXid74": HardwareFault("NVLink error (NVIDIA Xid 74)", "replace"),
    "GpuXid48": HardwareFault("GPU double-bit ECC error (NVIDIA Xid 48)", "replace"),
    "GpuXid73": HardwareFault("NVENC engine error (NVIDIA Xid 73)", "reboot"),
    "GpuXid13": HardwareFault("Graphics engine exception (NVIDIA Xid 13)", "reboot"),
    "EfaDown": HardwareFault("EFA network interface is down", "reboot"),
    "DiskFull": HardwareFault("Root volume is full", "replace"),
    "NodeUnresponsive": HardwareFault("Node stopped responding to the health agent", "reboot"),
    # The process provider's: a node that stops answering again right after the reboot
    # that was to bring it back.
    "NodeUnresponsiveAfterReboot": HardwareFault(
        "Node did not come back after a reboot", "replace"
    ),
}


@dataclass(slots=True)
class Fault:
    fault_id: str
    kind: str
    created_at: float
    cluster_id: str | None = None
    group_name: str | None = None
    instance_id: str | None = None
    instance_type: str | None = None
    # Faults that act a number of times (lifecycle scripts, internal errors); None: until removed.
    remaining: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def hardware(self) -> HardwareFault:
        return HARDWARE_FAULTS[self.params["Type"]]


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    """The anchors' safety features for automatic recovery, per instance group."""

    # At most this many nodes of a group under automatic reboot or replacement at once.
    max_in_flight: int = 2
    # Automatic recovery stops while more than this share of a group is unhealthy (faulty or
    # being recovered), rounded up so one bad node of a small group can still be repaired.
    unhealthy_threshold: float = 0.2

    def allowed_unhealthy(self, group_size: int) -> int:
        return max(1, math.ceil(self.unhealthy_threshold * group_size))


def check_hardware_type(fault_type: str) -> HardwareFault:
    found = HARDWARE_FAULTS.get(fault_type)
    if found is None:
        raise ValidationError(
            f"Unknown hardware fault type '{fault_type}'; known: {', '.join(HARDWARE_FAULTS)}."
        )
    return found
