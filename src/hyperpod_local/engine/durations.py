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
    # A failed launch or lifecycle script is tried again, with a new instance, this much later.
    provision_retry: float = 300.0

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

    def with_overrides(self, overrides: dict[str, Any]) -> Durations:
        known = {field.name for field in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(
                f"unknown durations: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        return replace(self, **{key: float(value) for key, value in overrides.items()})


def accelerated(instance_type: str) -> bool:
    return instance_type.startswith(_ACCELERATED_FAMILIES)
