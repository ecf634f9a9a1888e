"""Entities as the response members of DescribeCluster, ListClusterNodes and friends.

The wire serializer keeps only members of the output shape, so these may carry more.
"""

from __future__ import annotations

from typing import Any

from hyperpod_local.domain.model import (
    LATEST_IMAGE_RELEASE,
    Cluster,
    InstanceGroup,
    Node,
    shown_group_status,
)
from hyperpod_local.domain.software import UPDATE_KEY

# Group members that DescribeCluster returns as CreateCluster took them.
_GROUP_ECHO = (
    "InstanceGroupName",
    "InstanceType",
    "LifeCycleConfig",
    "ExecutionRole",
    "ThreadsPerCore",
    "InstanceStorageConfigs",
    "OnStartDeepHealthChecks",
    "TrainingPlanArn",
    "OverrideVpcConfig",
    "ScheduledUpdateConfig",
    "CapacityRequirements",
    "SlurmConfig",
    "NetworkInterface",
)
_CLUSTER_ECHO = (
    "VpcConfig",
    "Orchestrator",
    "TieredStorageConfig",
    "NodeRecovery",
    "NodeProvisioningMode",
    "ClusterRole",
)
UP_TO_DATE = "UpToDate"


def cluster_view(cluster: Cluster, latest: str) -> dict[str, Any]:
    """`latest`: the platform's newest image release (Store.latest_release)."""
    spec = cluster.spec
    view: dict[str, Any] = {key: spec[key] for key in _CLUSTER_ECHO if key in spec}
    view.update(
        ClusterArn=cluster.arn,
        ClusterName=cluster.name,
        ClusterStatus=cluster.status,
        CreationTime=cluster.creation_time,
        FailureMessage=cluster.failure_message,
        InstanceGroups=[group_view(group, cluster.status, latest) for group in cluster.groups],
    )
    if "AutoScaling" in spec:
        view["AutoScaling"] = {**spec["AutoScaling"], "Status": "InService"}
    shared = (spec.get("RestrictedInstanceGroupsConfig") or {}).get("SharedEnvironmentConfig")
    if shared:
        view["RestrictedInstanceGroupsConfig"] = {
            "SharedEnvironmentConfig": {
                "CurrentFSxLustreConfig": shared.get("FSxLustreConfig"),
                "DesiredFSxLustreConfig": shared.get("FSxLustreConfig"),
                "CurrentFSxLustreDeletionPolicy": shared.get("FSxLustreDeletionPolicy"),
                "DesiredFSxLustreDeletionPolicy": shared.get("FSxLustreDeletionPolicy"),
            }
        }
    return view


def group_view(group: InstanceGroup, cluster_status: str, latest: str) -> dict[str, Any]:
    spec = group.spec
    view: dict[str, Any] = {key: spec[key] for key in _GROUP_ECHO if key in spec}
    current, desired = _images(spec)
    view.update(
        CurrentCount=group.current_count,
        TargetCount=group.target_count,
        MinCount=group.min_count,
        Status=shown_group_status(cluster_status, group),
        CurrentImageId=current["ImageId"],
        DesiredImageId=desired["ImageId"],
        CurrentImageReleaseVersion=current["Release"],
        DesiredImageReleaseVersion=desired["Release"],
        ImageVersionStatus=version_status(current["Release"], latest),
    )
    update = spec.get(UPDATE_KEY)
    if update:
        view["SoftwareUpdateStatus"] = update["Status"]
        view["TargetStateCount"] = group.release_counts.get(desired["Release"], 0)
        if update["Status"] in ("InProgress", "RollbackInProgress"):
            view["ActiveSoftwareUpdateConfig"] = update.get("Config")
    if group.active_scaling:
        view["ActiveOperations"] = {"Scaling": group.active_scaling}
    requirements = spec.get("InstanceRequirements")
    if requirements:
        types = requirements["InstanceTypes"]
        view["InstanceRequirements"] = {
            "CurrentInstanceTypes": types,
            "DesiredInstanceTypes": types,
        }
        view["InstanceTypeDetails"] = [
            {
                "InstanceType": instance_type,
                "CurrentCount": group.type_counts.get(instance_type, 0),
                "ThreadsPerCore": spec.get("ThreadsPerCore"),
            }
            for instance_type in types
        ]
    patch = spec.get("AutoPatchConfig")
    if patch:
        view["AutoPatchConfig"] = {
            **{key: value for key, value in patch.items() if key != "PatchSchedule"},
            "CurrentPatchSchedule": patch.get("PatchSchedule"),
            "DesiredPatchSchedule": patch.get("PatchSchedule"),
        }
    kubernetes = spec.get("KubernetesConfig")
    if kubernetes:
        view["KubernetesConfig"] = _kubernetes_view(kubernetes)
    return view


def _images(spec: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(current, desired) image of a group: during a software update the desired one is the
    update's target, and on rollback the two swap (spec 4.4)."""
    settled = {
        "ImageId": spec.get("ImageId", "default"),
        "Release": spec.get("ImageReleaseVersion", LATEST_IMAGE_RELEASE),
    }
    update = spec.get(UPDATE_KEY)
    if update is None or update["Status"] not in ("InProgress", "RollbackInProgress"):
        return settled, settled
    if update["Status"] == "RollbackInProgress":
        return update["To"], update["From"]
    return update["From"], update["To"]


def version_status(release: str, latest: str) -> str:
    return UP_TO_DATE if release == latest else "UpdateAvailable"


def _kubernetes_view(kubernetes: dict[str, Any]) -> dict[str, Any]:
    return {
        "CurrentLabels": kubernetes.get("Labels"),
        "DesiredLabels": kubernetes.get("Labels"),
        "CurrentTaints": kubernetes.get("Taints"),
        "DesiredTaints": kubernetes.get("Taints"),
    }


def node_summary(node: Node, latest: str) -> dict[str, Any]:
    return {
        "InstanceGroupName": node.group_name,
        "InstanceId": node.instance_id,
        "NodeLogicalId": node.logical_id,
        "InstanceType": node.instance_type,
        "LaunchTime": node.launch_time,
        "LastSoftwareUpdateTime": node.last_software_update_time,
        "InstanceStatus": {"Status": node.status, "Message": node.status_message},
        "PrivateDnsHostname": node.hostname,
        "CurrentImageReleaseVersion": node.image_release_version,
        "ImageVersionStatus": version_status(node.image_release_version, latest),
    }


def node_details(group: InstanceGroup, node: Node, latest: str) -> dict[str, Any]:
    spec = group.spec
    details = node_summary(node, latest)
    details.update(
        LifeCycleConfig=spec.get("LifeCycleConfig"),
        OverrideVpcConfig=spec.get("OverrideVpcConfig"),
        ThreadsPerCore=spec.get("ThreadsPerCore"),
        InstanceStorageConfigs=spec.get("InstanceStorageConfigs"),
        PrivatePrimaryIp=node.private_ip,
        Placement={
            "AvailabilityZone": node.availability_zone,
            "AvailabilityZoneId": node.availability_zone_id,
        }
        if node.availability_zone
        else None,
        CurrentImageId=node.image_id,
        DesiredImageId=_images(spec)[1]["ImageId"],
        DesiredImageReleaseVersion=_images(spec)[1]["Release"],
        CapacityType="Spot" if "Spot" in (spec.get("CapacityRequirements") or {}) else "OnDemand",
        NetworkInterface=spec.get("NetworkInterface"),
    )
    if spec.get("KubernetesConfig"):
        details["KubernetesConfig"] = _kubernetes_view(spec["KubernetesConfig"])
    return details
