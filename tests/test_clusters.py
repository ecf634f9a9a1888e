"""CreateCluster, DescribeCluster, ListClusters, DeleteCluster through boto3 (server and mock)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import ROLE, cluster_names, cluster_summaries, error_of, group

FULL_GROUP: dict[str, Any] = {
    "InstanceGroupName": "workers",
    "InstanceType": "ml.p5.48xlarge",
    "InstanceCount": 3,
    "ExecutionRole": ROLE,
    "LifeCycleConfig": {
        "SourceS3Uri": "s3://sagemaker-lcs-bucket/scripts/",
        "OnCreate": "on_create.sh",
        "OnInitComplete": "on_init_complete.sh",
    },
    "ThreadsPerCore": 2,
    "InstanceStorageConfigs": [
        {"EbsVolumeConfig": {"VolumeSizeInGB": 500}},
        {
            "FsxLustreConfig": {
                "DnsName": "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com",
                "MountName": "abcdefgh",
                "MountPath": "/fsx",
            }
        },
    ],
    "OnStartDeepHealthChecks": ["InstanceStress", "InstanceConnectivity"],
    "TrainingPlanArn": "arn:aws:sagemaker:us-east-1:123456789012:training-plan/plan-one-0001",
    "OverrideVpcConfig": {"SecurityGroupIds": ["sg-0aa"], "Subnets": ["subnet-0bb"]},
    "ScheduledUpdateConfig": {
        "ScheduleExpression": "cron(0 3 ? * SUN *)",
        "DeploymentConfig": {
            "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}},
            "WaitIntervalInSeconds": 120,
        },
    },
    "ImageId": "ami-0123456789abcdef0",
    "KubernetesConfig": {
        "Labels": {"team": "ml"},
        "Taints": [{"Key": "gpu", "Value": "true", "Effect": "NoSchedule"}],
    },
    "CapacityRequirements": {"OnDemand": {}},
    "NetworkInterface": {"InterfaceType": "efa"},
}
EKS_ARN = "arn:aws:eks:us-east-1:123456789012:cluster/my-eks"


def eks_request(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "ClusterName": name,
        "InstanceGroups": [FULL_GROUP],
        "Orchestrator": {"Eks": {"ClusterArn": f"{EKS_ARN}-{name}"}},
        "VpcConfig": {"SecurityGroupIds": ["sg-0123"], "Subnets": ["subnet-0456", "subnet-0789"]},
        "NodeRecovery": "None",
        "TieredStorageConfig": {"Mode": "Enable", "InstanceMemoryAllocationPercentage": 20},
        "ClusterRole": "arn:aws:iam::123456789012:role/HyperPodAutoscaling",
        "Tags": [{"Key": "team", "Value": "ml"}, {"Key": "env", "Value": "test"}],
        **extra,
    }


def test_create_returns_an_arn_with_a_12_character_id(sm: Any, name: str) -> None:
    arn = sm.create_cluster(ClusterName=name, InstanceGroups=[group("g")])["ClusterArn"]
    assert re.fullmatch(r"arn:aws:sagemaker:us-east-1:123456789012:cluster/[a-z0-9]{12}", arn)


def test_every_create_field_comes_back_from_describe(sm: Any, name: str, settle: Any) -> None:
    request = eks_request(name)
    arn = sm.create_cluster(**request)["ClusterArn"]
    settle()
    described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterArn"] == arn
    assert described["ClusterName"] == name
    assert described["ClusterStatus"] == "InService"
    assert described["CreationTime"].year >= 2025
    for key in ("Orchestrator", "VpcConfig", "NodeRecovery", "TieredStorageConfig", "ClusterRole"):
        assert described[key] == request[key], key
    [details] = described["InstanceGroups"]
    for key, value in FULL_GROUP.items():
        if key in ("InstanceCount", "ImageId", "KubernetesConfig"):
            continue
        assert details[key] == value, key
    assert details["TargetCount"] == 3
    assert details["CurrentCount"] == 3
    assert details["Status"] == "InService"
    assert details["CurrentImageId"] == details["DesiredImageId"] == "ami-0123456789abcdef0"
    assert details["KubernetesConfig"] == {
        "CurrentLabels": {"team": "ml"},
        "DesiredLabels": {"team": "ml"},
        "CurrentTaints": FULL_GROUP["KubernetesConfig"]["Taints"],
        "DesiredTaints": FULL_GROUP["KubernetesConfig"]["Taints"],
    }
    assert sm.list_tags(ResourceArn=arn)["Tags"] == request["Tags"]


def test_continuous_flexible_group_round_trips(sm: Any, name: str) -> None:
    flexible = {
        "InstanceGroupName": "flex",
        "InstanceRequirements": {"InstanceTypes": ["ml.g5.8xlarge", "ml.g6.8xlarge"]},
        "InstanceCount": 2,
        "MinInstanceCount": 1,
        "ExecutionRole": ROLE,
    }
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[flexible],
        Orchestrator={"Eks": {"ClusterArn": f"{EKS_ARN}-{name}"}},
        NodeProvisioningMode="Continuous",
        AutoScaling={"Mode": "Enable", "AutoScalerType": "Karpenter"},
    )
    described = sm.describe_cluster(ClusterName=name)
    assert described["NodeProvisioningMode"] == "Continuous"
    assert described["AutoScaling"] == {
        "Mode": "Enable",
        "AutoScalerType": "Karpenter",
        "Status": "InService",
    }
    [details] = described["InstanceGroups"]
    assert details["MinCount"] == 1
    assert details["InstanceRequirements"] == {
        "CurrentInstanceTypes": ["ml.g5.8xlarge", "ml.g6.8xlarge"],
        "DesiredInstanceTypes": ["ml.g5.8xlarge", "ml.g6.8xlarge"],
    }
    assert "InstanceType" not in details


def test_defaults_a_user_sees_without_asking(sm: Any, name: str) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    described = sm.describe_cluster(ClusterName=name)
    assert described["NodeRecovery"] == "Automatic"
    assert "Orchestrator" not in described
    assert "NodeProvisioningMode" not in described
    assert "FailureMessage" not in described


def test_describe_accepts_the_arn(sm: Any, name: str) -> None:
    arn = sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])["ClusterArn"]
    assert sm.describe_cluster(ClusterName=arn)["ClusterName"] == name


@pytest.mark.parametrize(
    "given", ["no-such-cluster", "arn:aws:sagemaker:us-east-1:123456789012:cluster/abcdefabcdef"]
)
def test_unknown_cluster_is_resource_not_found_naming_it(sm: Any, given: str) -> None:
    with pytest.raises(sm.exceptions.ResourceNotFound) as excinfo:
        sm.describe_cluster(ClusterName=given)
    assert error_of(excinfo) == ("ResourceNotFound", f"Could not find cluster '{given}'.")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    "call",
    [
        lambda sm, n: sm.delete_cluster(ClusterName=n),
        lambda sm, n: sm.list_cluster_nodes(ClusterName=n),
        lambda sm, n: sm.describe_cluster_node(ClusterName=n, NodeId="i-0123456789abcdef0"),
    ],
)
def test_every_cluster_operation_reports_an_unknown_cluster(sm: Any, call: Any) -> None:
    with pytest.raises(sm.exceptions.ResourceNotFound) as excinfo:
        call(sm, "ghost")
    assert error_of(excinfo)[1] == "Could not find cluster 'ghost'."


def test_a_taken_name_is_resource_in_use(sm: Any, name: str) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    with pytest.raises(sm.exceptions.ResourceInUse) as excinfo:
        sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    assert name in error_of(excinfo)[1]


def test_delete_removes_the_cluster_its_nodes_and_tags(sm: Any, name: str, settle: Any) -> None:
    arn = sm.create_cluster(
        ClusterName=name, InstanceGroups=[group("g", 2)], Tags=[{"Key": "k", "Value": "v"}]
    )["ClusterArn"]
    settle()
    assert sm.delete_cluster(ClusterName=arn)["ClusterArn"] == arn
    # Deleting, with every node shutting down; a second delete answers the same.
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "Deleting"
    nodes = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert {n["InstanceStatus"]["Status"] for n in nodes} == {"ShuttingDown"}
    assert sm.delete_cluster(ClusterName=name)["ClusterArn"] == arn
    assert name in cluster_names(sm)
    settle()
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster(ClusterName=name)
    assert name not in cluster_names(sm)
    with pytest.raises(ClientError) as excinfo:
        sm.list_tags(ResourceArn=arn)
    assert error_of(excinfo)[0] == "ResourceNotFound"
    # The name is free again.
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])


@pytest.mark.parametrize("setup_done", [False, True], ids=["before-setup", "after-setup"])
def test_a_classic_cluster_deleted_while_creating_goes_with_its_nodes(
    sm: Any, name: str, advance: Any, settle: Any, setup_done: bool
) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("a", 3), group("b", 2)])
    if setup_done:
        advance(300)  # cluster_setup: every node launched, Pending
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "Creating"
    sm.delete_cluster(ClusterName=name)
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "Deleting"
    nodes = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    # Before cluster_setup a classic cluster has no node yet to shut down.
    assert [n["InstanceStatus"]["Status"] for n in nodes] == ["ShuttingDown"] * (
        5 if setup_done else 0
    )
    settle()
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster(ClusterName=name)
    assert name not in cluster_names(sm)


RULES = [
    (
        {"InstanceGroups": [group("a"), group("a")]},
        "Instance group names must be unique within a cluster; 'a' appears more than once.",
    ),
    (
        {"InstanceGroups": [group("a")], "Orchestrator": {}},
        "Orchestrator must specify exactly one of Eks or Slurm",
    ),
    (
        {
            "InstanceGroups": [group("a")],
            "Orchestrator": {"Eks": {"ClusterArn": EKS_ARN}, "Slurm": {}},
        },
        "Orchestrator must specify exactly one of Eks or Slurm",
    ),
    (
        {
            "InstanceGroups": [
                group("a", InstanceRequirements={"InstanceTypes": ["ml.c5.xlarge"]})
            ],
            "NodeProvisioningMode": "Continuous",
        },
        "Instance group 'a' specifies both InstanceType and InstanceRequirements",
    ),
    (
        {"InstanceGroups": [{"InstanceGroupName": "a", "InstanceCount": 1, "ExecutionRole": ROLE}]},
        "Instance group 'a' must specify either InstanceType or InstanceRequirements.",
    ),
    (
        {"InstanceGroups": [group("a", MinInstanceCount=1)]},
        "MinInstanceCount (instance group 'a') is only supported when NodeProvisioningMode is "
        "Continuous.",
    ),
    (
        {
            "InstanceGroups": [
                {
                    "InstanceGroupName": "a",
                    "InstanceRequirements": {"InstanceTypes": ["ml.c5.xlarge"]},
                    "InstanceCount": 1,
                    "ExecutionRole": ROLE,
                }
            ]
        },
        "InstanceRequirements (instance group 'a') is only supported when NodeProvisioningMode "
        "is Continuous.",
    ),
    (
        {
            "InstanceGroups": [group("a")],
            "Orchestrator": {"Eks": {"ClusterArn": EKS_ARN}},
            "AutoScaling": {"Mode": "Enable"},
        },
        "AutoScaling is only supported when NodeProvisioningMode is Continuous.",
    ),
    (
        {
            "InstanceGroups": [group("a", 1, MinInstanceCount=2)],
            "NodeProvisioningMode": "Continuous",
        },
        "MinInstanceCount (2) of instance group 'a' must be less than or equal to "
        "InstanceCount (1).",
    ),
    (
        {
            "InstanceGroups": [group("a")],
            "RestrictedInstanceGroups": [
                {
                    "InstanceGroupName": "r",
                    "InstanceType": "ml.p5.48xlarge",
                    "InstanceCount": 1,
                    "ExecutionRole": ROLE,
                    "EnvironmentConfig": {
                        "FSxLustreConfig": {"SizeInGiB": 1200, "PerUnitStorageThroughput": 125}
                    },
                }
            ],
        },
        "Found RestrictedInstanceGroups in the cluster input. Please remove "
        "RestrictedInstanceGroups from the request and try again.",
    ),
    ({}, "A cluster needs at least one instance group in InstanceGroups."),
]


@pytest.mark.parametrize(("extra", "message"), RULES)
def test_business_rules_are_validation_exceptions(
    sm: Any, name: str, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.create_cluster(ClusterName=name, **extra)
    code, text = error_of(excinfo)
    assert code == "ValidationException"
    assert text.startswith(message)
    # Nothing of a refused cluster is stored.
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster(ClusterName=name)


def test_one_eks_cluster_serves_one_hyperpod_cluster(sm: Any, name: str) -> None:
    eks = {"Eks": {"ClusterArn": f"{EKS_ARN}-shared-{name}"}}
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)], Orchestrator=eks)
    with pytest.raises(ClientError) as excinfo:
        sm.create_cluster(ClusterName=f"{name}-b", InstanceGroups=[group("g", 1)], Orchestrator=eks)
    assert error_of(excinfo) == (
        "ValidationException",
        f"Specified cluster external resource id {EKS_ARN}-shared-{name} already in use",
    )


def test_list_clusters_sorts_filters_and_pages(sm: Any, name: str) -> None:
    names = [f"{name}-b", f"{name}-a", f"{name}-c"]
    for n in names:
        sm.create_cluster(ClusterName=n, InstanceGroups=[group("g", 1)])
    mine = lambda summaries: [s["ClusterName"] for s in summaries if s["ClusterName"] in names]  # noqa: E731
    everything = sm.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2})
    by_time = mine(s for page in everything for s in page["ClusterSummaries"])
    assert by_time == names
    by_name = cluster_summaries(sm, SortBy="NAME", SortOrder="Descending")
    assert mine(by_name) == sorted(names, reverse=True)
    summary = by_name[0]
    assert set(summary) >= {"ClusterArn", "ClusterName", "CreationTime", "ClusterStatus"}
    assert cluster_names(sm, NameContains=f"{name}-A".upper()) == [f"{name}-a"]


def test_list_clusters_filters_by_creation_time(sm: Any, name: str) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    # botocore sends whole seconds, so the bounds are a second away from the creation time.
    created = sm.describe_cluster(ClusterName=name)["CreationTime"].timestamp()
    assert name not in cluster_names(sm, CreationTimeAfter=created + 1)
    assert name not in cluster_names(sm, CreationTimeBefore=created - 1)
    pages = sm.get_paginator("list_clusters").paginate(
        CreationTimeAfter=created - 1, CreationTimeBefore=created + 1
    )
    assert name in [s["ClusterName"] for page in pages for s in page["ClusterSummaries"]]


def test_list_clusters_filters_by_training_plan(sm: Any, name: str) -> None:
    plan = f"arn:aws:sagemaker:us-east-1:123456789012:training-plan/{name}-plan-0000000000"
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1, TrainingPlanArn=plan)])
    sm.create_cluster(ClusterName=f"{name}-other", InstanceGroups=[group("g", 1)])
    pages = sm.get_paginator("list_clusters").paginate(TrainingPlanArn=plan)
    found = [s for page in pages for s in page["ClusterSummaries"]]
    assert [s["ClusterName"] for s in found] == [name]
    assert found[0]["TrainingPlanArns"] == [plan]


def test_slurm_and_patching_fields_round_trip(sm: Any, name: str, settle: Any) -> None:
    patching = {
        "PatchingStrategy": "DrainFirst",
        "PatchSchedule": {"NextPatchDate": 1798761600},
        "IdleWaitWindowInSeconds": 7200,
        "DrainPolicy": {"DrainTimeoutInSeconds": 600, "OnDrainTimeout": "Force"},
    }
    database = {
        "Endpoint": "slurmdb.cluster-abc.us-east-1.rds.amazonaws.com",
        "Port": 3306,
        "Name": "slurm_acct_db",
        "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:slurmdb-AbCdEf",
    }
    shared = {
        "FSxLustreDeletionPolicy": "Keep",
        "FSxLustreConfig": {"SizeInGiB": 1200, "PerUnitStorageThroughput": 125},
    }
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[
            group("controller", 1, SlurmConfig={"NodeType": "Controller"}),
            group(
                "compute",
                2,
                SlurmConfig={"NodeType": "Compute", "PartitionNames": ["gpu"]},
                ImageReleaseVersion="2025.10.1",
                AutoPatchConfig=patching,
            ),
        ],
        Orchestrator={"Slurm": {"SlurmConfigStrategy": "Merge", "AccountingDatabase": database}},
        NodeProvisioningMode="Continuous",
        RestrictedInstanceGroupsConfig={"SharedEnvironmentConfig": shared},
    )
    settle()
    described = sm.describe_cluster(ClusterName=name)
    assert described["Orchestrator"]["Slurm"] == {
        "SlurmConfigStrategy": "Merge",
        "AccountingDatabase": database,
    }
    controller, compute = described["InstanceGroups"]
    assert controller["SlurmConfig"] == {"NodeType": "Controller"}
    assert compute["SlurmConfig"] == {"NodeType": "Compute", "PartitionNames": ["gpu"]}
    assert compute["CurrentImageReleaseVersion"] == compute["DesiredImageReleaseVersion"]
    assert compute["DesiredImageReleaseVersion"] == "2025.10.1"
    auto_patch = compute["AutoPatchConfig"]
    assert auto_patch["PatchingStrategy"] == "DrainFirst"
    assert auto_patch["CurrentPatchSchedule"]["NextPatchDate"].timestamp() == 1798761600
    assert auto_patch["DesiredPatchSchedule"] == auto_patch["CurrentPatchSchedule"]
    assert auto_patch["DrainPolicy"] == patching["DrainPolicy"]
    shared_view = described["RestrictedInstanceGroupsConfig"]["SharedEnvironmentConfig"]
    assert shared_view["CurrentFSxLustreConfig"] == shared["FSxLustreConfig"]
    assert shared_view["DesiredFSxLustreDeletionPolicy"] == "Keep"
    nodes = sm.list_cluster_nodes(ClusterName=name, SortBy="NAME")["ClusterNodeSummaries"]
    assert {
        n["CurrentImageReleaseVersion"] for n in nodes if n["InstanceGroupName"] == "compute"
    } == {"2025.10.1"}


@pytest.mark.parametrize(
    ("sort_by", "order"),
    [("NAME", "Descending"), ("CREATION_TIME", "Descending"), ("NAME", "Ascending")],
)
def test_list_clusters_pages_walk_every_cluster_once_in_order(
    sm: Any, name: str, sort_by: str, order: str
) -> None:
    names = [f"{name}-{i:02d}" for i in range(9)]
    for n in names:
        sm.create_cluster(ClusterName=n, InstanceGroups=[group("g", 1)])
    pages = sm.get_paginator("list_clusters").paginate(
        SortBy=sort_by, SortOrder=order, NameContains=name, PaginationConfig={"PageSize": 2}
    )
    listed = [s["ClusterName"] for page in pages for s in page["ClusterSummaries"]]
    # Same-millisecond creations keep their creation order.
    assert listed == (names[::-1] if order == "Descending" else names)
