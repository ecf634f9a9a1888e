"""Task governance: cluster policies (ClusterSchedulerConfig) and compute allocations
(ComputeQuota) of EKS-orchestrated clusters.

Both are versioned documents with the same statuses (SchedulerResourceStatus): a create,
update or delete is accepted at once and applied by HyperPod a little later.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hyperpod_local.domain.errors import ConflictError, ResourceLimitExceeded, ValidationError
from hyperpod_local.domain.scope import Scope


class PolicyKind(StrEnum):
    SCHEDULER_CONFIG = "cluster-scheduler-config"
    COMPUTE_QUOTA = "compute-quota"


class PolicyStatus(StrEnum):
    CREATING = "Creating"
    CREATE_FAILED = "CreateFailed"
    CREATE_ROLLBACK_FAILED = "CreateRollbackFailed"
    CREATED = "Created"
    UPDATING = "Updating"
    UPDATE_FAILED = "UpdateFailed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"
    UPDATED = "Updated"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"
    DELETE_ROLLBACK_FAILED = "DeleteRollbackFailed"
    DELETED = "Deleted"


IN_PROGRESS = frozenset({PolicyStatus.CREATING, PolicyStatus.UPDATING, PolicyStatus.DELETING})
# What each change in progress becomes once HyperPod has applied it.
APPLIED = {
    PolicyStatus.CREATING: PolicyStatus.CREATED,
    PolicyStatus.UPDATING: PolicyStatus.UPDATED,
    PolicyStatus.DELETING: PolicyStatus.DELETED,
}
# What each change in progress becomes when HyperPod fails to apply it.
FAILED = {
    PolicyStatus.CREATING: PolicyStatus.CREATE_FAILED,
    PolicyStatus.UPDATING: PolicyStatus.UPDATE_FAILED,
    PolicyStatus.DELETING: PolicyStatus.DELETE_FAILED,
}
# How the API names each kind in its messages.
NOUN = {
    PolicyKind.SCHEDULER_CONFIG: "cluster policy",
    PolicyKind.COMPUTE_QUOTA: "compute allocation",
}
# One cluster policy per cluster (the console and the docs speak of "the cluster policy").
MAX_SCHEDULER_CONFIGS_PER_CLUSTER = 1
# The documented defaults, echoed by Describe as HyperPod fills them in.
DEFAULT_BORROW_LIMIT = 50
_QUOTA_RESOURCE_AMOUNTS = ("Count", "Accelerators", "VCpu", "MemoryInGiB", "AcceleratorPartition")


def policy_arn(scope: Scope, kind: PolicyKind, policy_id: str) -> str:
    return f"arn:aws:sagemaker:{scope.region}:{scope.account_id}:{kind}/{policy_id}"


@dataclass(slots=True)
class PolicyVersion:
    """One version of a policy: its document as it was then."""

    version: int
    # SchedulerConfig, or {"ComputeQuotaConfig", "ComputeQuotaTarget", "ActivationState"}.
    document: dict[str, Any]
    description: str | None
    time: float


@dataclass(slots=True)
class Policy:
    kind: str
    policy_id: str
    arn: str
    account_id: str
    region: str
    name: str
    cluster_id: str
    cluster_arn: str
    status: str
    creation_time: float
    last_modified_time: float
    versions: list[PolicyVersion] = field(default_factory=list)
    failure_reason: str | None = None
    seq: int = 0

    @property
    def current(self) -> PolicyVersion:
        return self.versions[-1]

    def version(self, number: int | None) -> PolicyVersion | None:
        if number is None:
            return self.current
        return next((v for v in self.versions if v.version == number), None)

    @property
    def live(self) -> bool:
        """Not deleted (nor being deleted): it counts against the cluster's limits."""
        return self.status not in (PolicyStatus.DELETED, PolicyStatus.DELETING)


def check_can_change(policy: Policy, target_version: int | None, verb: str) -> None:
    """An update (with the TargetVersion it names) or a deletion of `policy` may start."""
    noun = NOUN[PolicyKind(policy.kind)]
    if policy.status in IN_PROGRESS:
        raise ConflictError(
            f"The {noun} {policy.policy_id} is {policy.status}; it cannot be {verb} until that "
            "is done."
        )
    if target_version is not None and target_version != policy.current.version:
        raise ConflictError(
            f"TargetVersion {target_version} is not the current version of the {noun} "
            f"{policy.policy_id}, {policy.current.version}. Describe it and try again with its "
            "current version."
        )


def check_eks(cluster_is_eks: bool, cluster_name: str) -> None:
    if not cluster_is_eks:
        raise ValidationError(
            f"Task governance is supported only for clusters orchestrated by Amazon EKS; "
            f"cluster {cluster_name} is orchestrated by Slurm."
        )


def scheduler_document(config: dict[str, Any]) -> dict[str, Any]:
    """The SchedulerConfig checked, with the documented default filled in."""
    names = [priority["Name"] for priority in config.get("PriorityClasses", [])]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError(
            f"PriorityClasses must have unique names; {', '.join(repeated)} is given more "
            "than once."
        )
    document = copy.deepcopy(config)
    document.setdefault("FairShare", "Enabled")
    return document


def check_one_scheduler_config(existing: list[Policy], cluster_name: str) -> None:
    live = [policy for policy in existing if policy.live]
    if len(live) >= MAX_SCHEDULER_CONFIGS_PER_CLUSTER:
        raise ResourceLimitExceeded(
            f"Cluster {cluster_name} already has a cluster policy ({live[0].policy_id}); a "
            f"cluster can have {MAX_SCHEDULER_CONFIGS_PER_CLUSTER}. Update it or delete it."
        )


def quota_document(
    config: dict[str, Any], target: dict[str, Any], activation: str | None
) -> dict[str, Any]:
    """A compute allocation's document checked, with the documented defaults filled in."""
    config = copy.deepcopy(config)
    for where, resources in (
        ("ComputeQuotaResources", config.get("ComputeQuotaResources", [])),
        (
            "ResourceSharingConfig.AbsoluteBorrowLimits",
            (config.get("ResourceSharingConfig") or {}).get("AbsoluteBorrowLimits", []),
        ),
    ):
        types = [resource["InstanceType"] for resource in resources]
        repeated = sorted({t for t in types if types.count(t) > 1})
        if repeated:
            raise ValidationError(
                f"{where} must name each instance type once; {', '.join(repeated)} is given "
                "more than once."
            )
        for resource in resources:
            given = [key for key in _QUOTA_RESOURCE_AMOUNTS if key in resource]
            if not given:
                raise ValidationError(
                    f"{where} for {resource['InstanceType']} must give Count, or Accelerators, "
                    "VCpu, MemoryInGiB or AcceleratorPartition."
                )
            if "Count" in given and len(given) > 1:
                raise ValidationError(
                    f"{where} for {resource['InstanceType']} gives Count with "
                    f"{', '.join(k for k in given if k != 'Count')}: allocate whole instances "
                    "(Count) or resources, not both."
                )
    sharing = config.setdefault("ResourceSharingConfig", {"Strategy": "LendAndBorrow"})
    if sharing["Strategy"] == "LendAndBorrow":
        sharing.setdefault("BorrowLimit", DEFAULT_BORROW_LIMIT)
    else:
        for key in ("BorrowLimit", "AbsoluteBorrowLimits"):
            if key in sharing:
                raise ValidationError(
                    f"ResourceSharingConfig.{key} applies only to the LendAndBorrow strategy, "
                    f"not to {sharing['Strategy']}."
                )
    config.setdefault("PreemptTeamTasks", "LowerPriority")
    target = {"FairShareWeight": 0, **target}
    return {
        "ComputeQuotaConfig": config,
        "ComputeQuotaTarget": target,
        "ActivationState": activation or "Enabled",
    }


def check_quota_fits(
    document: dict[str, Any],
    others: list[Policy],
    capacity: dict[str, int],
    cluster_name: str,
    team_taken_by: str | None,
) -> None:
    """The team has no other allocation on the cluster, the instance types are the cluster's,
    and the enabled allocations' instance counts fit in the cluster's instance groups."""
    team = document["ComputeQuotaTarget"]["TeamName"]
    if team_taken_by is not None:
        raise ConflictError(
            f"Team {team} already has a compute allocation ({team_taken_by}) on cluster "
            f"{cluster_name}."
        )
    resources = document["ComputeQuotaConfig"].get("ComputeQuotaResources", [])
    for resource in resources:
        if resource["InstanceType"] not in capacity:
            raise ValidationError(
                f"Cluster {cluster_name} has no instance group of type {resource['InstanceType']}."
            )
    if document["ActivationState"] != "Enabled":
        return
    for resource in resources:
        if "Count" not in resource:
            continue
        instance_type = resource["InstanceType"]
        allocated = resource["Count"] + sum(
            r.get("Count", 0)
            for other in others
            if other.live and other.current.document["ActivationState"] == "Enabled"
            for r in other.current.document["ComputeQuotaConfig"].get("ComputeQuotaResources", [])
            if r["InstanceType"] == instance_type
        )
        if allocated > capacity[instance_type]:
            raise ResourceLimitExceeded(
                f"The compute allocations of cluster {cluster_name} would allocate {allocated} "
                f"{instance_type} instances; the cluster has {capacity[instance_type]}."
            )
