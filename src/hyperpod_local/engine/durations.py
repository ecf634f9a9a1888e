"""How long HyperPod takes, in HyperPod seconds (spec section 11). All configurable."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

# Families with accelerators take longer to provision and patch (drivers, EFA, health checks).
_ACCELERATED_FAMILIES = ("ml.p", "ml.g", "ml.trn", "ml.inf")


@dataclass(frozen=True, slots=True)
class Durations:
    # Cluster-level resources (VPC attachments, ENIs, orchestrator wiring) before nodes launch.
    cluster_setup: float = 300.0
    # Launch, boot and lifecycle scripts until Running.
    provision_cpu: float = 240.0
    provision_accelerated: float = 600.0
    # ShuttingDown until the instance and its volumes are gone.
    terminate: float = 120.0
    reboot: float = 120.0
    # Re-imaging the root volume and re-running the lifecycle scripts.
    software_update_cpu: float = 600.0
    software_update_accelerated: float = 1200.0
    cluster_teardown: float = 360.0
    # Deep health checks, each (run one after another when several are asked for).
    dhc_instance_stress: float = 1800.0
    dhc_instance_connectivity: float = 300.0
    dhc_multi_node_training_validation: float = 900.0
    # How soon an update waiting for a node another operation holds looks again.
    recovery_poll: float = 60.0
    # From a scale-up request (UpdateCluster, BatchAddClusterNodes) to its instances' launch.
    scale_setup: float = 60.0
    # The health agent notices a hardware fault this long after it happens (spec: 5 to 30 s).
    health_detection: float = 15.0
    # How soon a step waiting for a lifecycle script that takes its own real time (the process
    # provider's) looks again.
    script_poll: float = 30.0
    # A failed launch or lifecycle script is tried again, with a new instance, this much later.
    provision_retry: float = 300.0
    # How long a Continuous group has to reach its MinCount (and a Continuous Slurm cluster
    # its controller) before it rolls back (spec 4.2).
    min_count_window: float = 3 * 3600.0
    # MoveClusterNodes: DetachInProgress this long (the node drained, its volumes swapped),
    # then AttachInProgress for the target group's provisioning time (its lifecycle scripts).
    move_detach: float = 120.0
    # An EBS volume attaching to, or detaching from, a node (EC2 takes a few seconds).
    volume_attach: float = 5.0
    volume_detach: float = 5.0
    # Installing, changing and removing a cluster extension on every node.
    extension_install: float = 300.0
    extension_update: float = 180.0
    extension_remove: float = 120.0
    # A cluster policy or compute allocation created, updated or deleted, until it applies.
    task_governance: float = 30.0
    # HyperPod seconds per wall-clock second under the real clock: every duration above is
    # that much shorter in wall time (`scaled`); 1 under a manual clock.
    speed: float = 1.0

    def provision(self, instance_type: str) -> float:
        return self.provision_accelerated if accelerated(instance_type) else self.provision_cpu

    def software_update(self, instance_type: str) -> float:
        if accelerated(instance_type):
            return self.software_update_accelerated
        return self.software_update_cpu

    def deep_health_checks(self, checks: list[str]) -> float:
        per_check = {
            "InstanceStress": self.dhc_instance_stress,
            "InstanceConnectivity": self.dhc_instance_connectivity,
            "MultiNodeTrainingValidation": self.dhc_multi_node_training_validation,
        }
        return sum(per_check[check] for check in checks)

    def scaled(self, speed: float) -> Durations:
        """The durations under a real clock running `speed` times faster than HyperPod: the
        clock shows wall time, and everything HyperPod does takes 1/speed as long."""
        return replace(
            self,
            speed=speed,
            **{name: getattr(self, name) / speed for name in _DURATION_FIELDS},
        )

    def of(self, hyperpod_seconds: float) -> float:
        """A span given in HyperPod seconds (a request's WaitIntervalInSeconds, a fault's
        DetectionDelaySeconds), as the clock counts it."""
        return hyperpod_seconds / self.speed

    def nominal(self, name: str) -> float:
        """A duration in HyperPod seconds, as configured, before any scaling."""
        return float(getattr(self, name)) * self.speed

    def with_overrides(self, overrides: dict[str, Any]) -> Durations:
        known = set(_DURATION_FIELDS)
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(
                f"unknown durations: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        return replace(self, **{key: float(value) for key, value in overrides.items()})


_DURATION_FIELDS = tuple(field.name for field in fields(Durations) if field.name != "speed")


def accelerated(instance_type: str) -> bool:
    return instance_type.startswith(_ACCELERATED_FAMILIES)
