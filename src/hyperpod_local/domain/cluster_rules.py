"""CreateCluster's business rules (spec 6.1 and 19.4) and the plan of a new cluster.

The wire layer has already checked every shape constraint of the model; what is left here is
what the model cannot say: combinations of members, and limits of this service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hyperpod_local.domain.errors import ResourceLimitExceeded, ValidationError
from hyperpod_local.domain.ids import (
    IdSource,
    availability_zone,
    availability_zone_id,
    cluster_arn,
    private_dns_hostname,
    private_ip,
)
from hyperpod_local.domain.model import (
    DEFAULT_IMAGE_ID,
    LATEST_IMAGE_RELEASE,
    Cluster,
    ClusterStatus,
    GroupStatus,
    InstanceGroup,
    Node,
    NodeStatus,
)
from hyperpod_local.domain.scope import Scope

# Cluster-level members of CreateCluster kept as the cluster's spec (groups and tags live apart).
CLUSTER_SPEC_MEMBERS = (
    "VpcConfig",
    "Orchestrator",
    "NodeRecovery",
    "NodeProvisioningMode",
    "TieredStorageConfig",
    "ClusterRole",
    "AutoScaling",
    "RestrictedInstanceGroupsConfig",
)
RESTRICTED_GROUPS_MESSAGE = (
    "Found RestrictedInstanceGroups in the cluster input. Please remove "
    "RestrictedInstanceGroups from the request and try again."
)


@dataclass(frozen=True, slots=True)
class Limits:
    max_instances_per_cluster: int = 100_000
    # What sets the limit, as the refusal names it.
    set_by: str = "--max-instances-per-cluster"


def check_create_request(params: dict[str, Any], limits: Limits) -> None:
    """Raise ValidationError (or ResourceLimitExceeded) for a request no cluster can come of."""
    continuous = params.get("NodeProvisioningMode") == "Continuous"
    groups: list[dict[str, Any]] = params.get("InstanceGroups") or []
    if params.get("RestrictedInstanceGroups"):
        raise ValidationError(RESTRICTED_GROUPS_MESSAGE)
    if not groups:
        raise ValidationError("A cluster needs at least one instance group in InstanceGroups.")
    _check_unique_names(g["InstanceGroupName"] for g in groups)
    orchestrator = params.get("Orchestrator")
    if orchestrator is not None:
        present = [key for key in ("Eks", "Slurm") if orchestrator.get(key) is not None]
        if len(present) != 1:
            raise ValidationError(
                "Orchestrator must specify exactly one of Eks or Slurm; "
                "specifying both or providing an empty configuration is not valid."
            )
    is_eks = orchestrator is not None and orchestrator.get("Eks") is not None
    slurm = (orchestrator or {}).get("Slurm")
    if slurm and slurm.get("AccountingDatabase") and not continuous:
        raise _continuous_only("Orchestrator.Slurm.AccountingDatabase")
    autoscaling = params.get("AutoScaling")
    if autoscaling and autoscaling.get("Mode") == "Enable":
        if not continuous:
            raise _continuous_only("AutoScaling")
        if not is_eks:
            raise ValidationError("AutoScaling is only supported for EKS orchestrated clusters.")
    for group in groups:
        check_group(group, continuous=continuous, is_eks=is_eks)
    if continuous and not is_eks and orchestrator is not None:
        missing = [g["InstanceGroupName"] for g in groups if not g.get("SlurmConfig")]
        if missing:
            raise ValidationError(
                "Instance groups of a Continuous Slurm cluster need SlurmConfig: "
                + ", ".join(missing)
                + "."
            )
    controllers = [
        g["InstanceGroupName"]
        for g in groups
        if g.get("SlurmConfig", {}).get("NodeType") == "Controller"
    ]
    if len(controllers) > 1:
        raise ValidationError(
            "A Slurm cluster can have only one instance group with SlurmConfig NodeType "
            f"Controller; found {len(controllers)}: {', '.join(controllers)}."
        )
    total = sum(g["InstanceCount"] for g in groups)
    if total > limits.max_instances_per_cluster:
        raise ResourceLimitExceeded(
            f"The request asks for {total} instances in one cluster; the limit is "
            f"{limits.max_instances_per_cluster} (set with {limits.set_by})."
        )


def _continuous_only(member: str) -> ValidationError:
    return ValidationError(f"{member} is only supported when NodeProvisioningMode is Continuous.")


def _check_unique_names(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationError(
                f"Instance group names must be unique within a cluster; '{name}' appears "
                "more than once."
            )
        seen.add(name)


def check_group(group: dict[str, Any], *, continuous: bool, is_eks: bool) -> None:
    """The rules of one instance group, in CreateCluster or UpdateCluster."""
    name = group["InstanceGroupName"]
    has_type = group.get("InstanceType") is not None
    has_requirements = group.get("InstanceRequirements") is not None
    if has_type and has_requirements:
        raise ValidationError(
            f"Instance group '{name}' specifies both InstanceType and InstanceRequirements; "
            "specify exactly one."
        )
    if not has_type and not has_requirements:
        raise ValidationError(
            f"Instance group '{name}' must specify either InstanceType or InstanceRequirements."
        )
    if has_requirements and not continuous:
        raise _continuous_only(f"InstanceRequirements (instance group '{name}')")
    if has_requirements:
        types = group["InstanceRequirements"]["InstanceTypes"]
        if len(set(types)) != len(types):
            raise ValidationError(
                f"InstanceRequirements.InstanceTypes of instance group '{name}' has duplicates."
            )
    min_count = group.get("MinInstanceCount")
    if min_count is not None:
        if not continuous:
            raise _continuous_only(f"MinInstanceCount (instance group '{name}')")
        if min_count > group["InstanceCount"]:
            raise ValidationError(
                f"MinInstanceCount ({min_count}) of instance group '{name}' must be less than "
                f"or equal to InstanceCount ({group['InstanceCount']})."
            )
    if group.get("KubernetesConfig") is not None and not is_eks:
        raise ValidationError(
            f"KubernetesConfig (instance group '{name}') is only supported for EKS "
            "orchestrated clusters."
        )
    if group.get("SlurmConfig") is not None and is_eks:
        raise ValidationError(
            f"SlurmConfig (instance group '{name}') is not supported for EKS orchestrated clusters."
        )
    for index, storage in enumerate(group.get("InstanceStorageConfigs") or [], start=1):
        _check_storage(name, index, storage)


def _check_storage(group: str, index: int, storage: dict[str, Any]) -> None:
    where = f"InstanceStorageConfigs[{index}] of instance group '{group}'"
    kinds = [key for key, value in storage.items() if value is not None]
    if len(kinds) != 1:
        raise ValidationError(
            f"{where} must set exactly one of EbsVolumeConfig, FsxLustreConfig, FsxOpenZfsConfig."
        )
    ebs = storage.get("EbsVolumeConfig")
    if ebs and ebs.get("RootVolume"):
        if ebs.get("VolumeSizeInGB") is not None:
            raise ValidationError(f"{where}: VolumeSizeInGB cannot be set when RootVolume is true.")
        if not ebs.get("VolumeKmsKeyId"):
            raise ValidationError(f"{where}: VolumeKmsKeyId is required when RootVolume is true.")


def eks_cluster_arn(params: dict[str, Any]) -> str | None:
    return ((params.get("Orchestrator") or {}).get("Eks") or {}).get("ClusterArn")


@dataclass(slots=True)
class NewCluster:
    cluster: Cluster
    nodes: list[Node]
    tags: list[dict[str, str]]


def plan_cluster(
    scope: Scope, params: dict[str, Any], ids: IdSource, now: float, release: str
) -> NewCluster:
    """The cluster, groups and nodes a valid CreateCluster request asks for, as they are the
    moment it is accepted: Creating. A Continuous cluster's nodes are there from the start,
    with their NodeLogicalIds and no instance yet (the engine launches them). A classic
    cluster has none yet: HyperPod shows a classic node only once it has an instance, so the
    engine makes each as it launches (cluster_create) and no client can tell. Every group is
    on `release`, the platform's latest now (a later one published does not move it)."""
    cluster_id = ids.cluster_id()
    spec = {key: params[key] for key in CLUSTER_SPEC_MEMBERS if params.get(key) is not None}
    spec.setdefault("NodeRecovery", "Automatic")
    cluster = Cluster(
        id=cluster_id,
        scope=scope,
        name=params["ClusterName"],
        arn=cluster_arn(scope, cluster_id),
        status=ClusterStatus.CREATING,
        creation_time=now,
        spec=spec,
        ip_base=ids.ip_base(),
    )
    nodes: list[Node] = []
    for position, group_params in enumerate(params["InstanceGroups"]):
        group_spec = dict(group_params)
        group_spec.setdefault("ThreadsPerCore", 1)
        group_spec.setdefault("ImageReleaseVersion", release)
        group = InstanceGroup(
            cluster_id=cluster_id,
            name=group_spec["InstanceGroupName"],
            position=position,
            spec=group_spec,
            target_count=group_spec["InstanceCount"],
            min_count=group_spec.get("MinInstanceCount"),
            status=GroupStatus.CREATING,
        )
        cluster.groups.append(group)
        if cluster.continuous:
            nodes.extend(new_node(cluster, group, ids, now) for _ in range(group.target_count))
    return NewCluster(cluster, nodes, list(params.get("Tags") or []))


def new_node(cluster: Cluster, group: InstanceGroup, ids: IdSource, now: float) -> Node:
    """A node asked for but not launched: Pending, with no instance."""
    return Node(
        cluster_id=cluster.id,
        group_name=group.name,
        instance_type=group.instance_types[0],
        status=NodeStatus.PENDING,
        sort_time=now,
        logical_id=ids.uuid() if cluster.continuous else None,
        image_id=group.spec.get("ImageId", DEFAULT_IMAGE_ID),
        image_release_version=group.spec.get("ImageReleaseVersion", LATEST_IMAGE_RELEASE),
    )


def place_instance(
    cluster: Cluster, node: Node, instance_id: str, now: float, *, keep_address: bool
) -> None:
    """Put a freshly launched instance under the node. A Slurm node replaced in place keeps
    its address and hostname (Slurm knows nodes by hostname); any other gets the next one."""
    node.instance_id = instance_id
    node.launch_time = now
    node.sort_time = now
    if not (keep_address and node.private_ip):
        ip = private_ip(cluster.ip_base, cluster.next_ip)
        cluster.next_ip += 1
        node.private_ip = ip
        node.hostname = private_dns_hostname(ip, cluster.scope.region)
    region = cluster.scope.region
    node.availability_zone = availability_zone(region)
    node.availability_zone_id = availability_zone_id(region)
