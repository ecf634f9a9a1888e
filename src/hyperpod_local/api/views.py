"""Entities as the response members of DescribeCluster, ListClusterNodes and friends.

The wire serializer keeps only members of the output shape, so these may carry more.
"""

from __future__ import annotations

from typing import Any

from hyperpod_local.domain.model import LATEST_IMAGE_RELEASE, Cluster, InstanceGroup, Node

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


def cluster_view(cluster: Cluster) -> dict[str, Any]:
    spec = cluster.spec
    view: dict[str, Any] = {key: spec[key] for key in _CLUSTER_ECHO if key in spec}
    view.update(
        ClusterArn=cluster.arn,
        ClusterName=cluster.name,
        ClusterStatus=cluster.status,
        CreationTime=cluster.creation_time,
        FailureMessage=cluster.failure_message,
        InstanceGroups=[group_view(group) for group in cluster.groups],
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


def group_view(group: InstanceGroup) -> dict[str, Any]:
    spec = group.spec
    view: dict[str, Any] = {key: spec[key] for key in _GROUP_ECHO if key in spec}
    image_id = spec.get("ImageId", "default")
    release = spec.get("ImageReleaseVersion", LATEST_IMAGE_RELEASE)
    view.update(
        CurrentCount=group.current_count,
        TargetCount=group.target_count,
        MinCount=group.min_count,
        Status=group.status,
        CurrentImageId=image_id,
        DesiredImageId=image_id,
        CurrentImageReleaseVersion=release,
        DesiredImageReleaseVersion=release,
        ImageVersionStatus=UP_TO_DATE,
    )
    if group.active_scaling:
        view["ActiveOperations"] = {"Scaling": group.active_scaling}
    requirements = spec.get("InstanceRequirements")
    if requirements:
        types = requirements["InstanceTypes"]
        view["InstanceRequirements"] = {
            "CurrentInstanceTypes": types,
            "DesiredInstanceTypes": types,
        }
        # New nodes take the first type of the priority list while it has capacity.
        view["InstanceTypeDetails"] = [
            {
                "InstanceType": instance_type,
                "CurrentCount": group.current_count if index == 0 else 0,
                "ThreadsPerCore": spec.get("ThreadsPerCore"),
            }
            for index, instance_type in enumerate(types)
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


def _kubernetes_view(kubernetes: dict[str, Any]) -> dict[str, Any]:
    return {
        "CurrentLabels": kubernetes.get("Labels"),
        "DesiredLabels": kubernetes.get("Labels"),
        "CurrentTaints": kubernetes.get("Taints"),
        "DesiredTaints": kubernetes.get("Taints"),
    }


def node_summary(node: Node) -> dict[str, Any]:
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
        "ImageVersionStatus": UP_TO_DATE,
    }


def node_details(group: InstanceGroup, node: Node) -> dict[str, Any]:
    spec = group.spec
    details = node_summary(node)
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
        DesiredImageId=spec.get("ImageId", node.image_id),
        DesiredImageReleaseVersion=spec.get("ImageReleaseVersion", node.image_release_version),
        CapacityType="Spot" if "Spot" in (spec.get("CapacityRequirements") or {}) else "OnDemand",
        NetworkInterface=spec.get("NetworkInterface"),
    )
    if spec.get("KubernetesConfig"):
        details["KubernetesConfig"] = _kubernetes_view(spec["KubernetesConfig"])
    return details
