"""ListClusterNodes and DescribeClusterNode through boto3 (server and mock)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import error_of, group

INSTANCE_ID = re.compile(r"i-[0-9a-f]{17}")
EKS = {"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/nodes"}}


def all_nodes(sm: Any, cluster: str, **kwargs: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster, **kwargs)
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def test_nodes_look_like_real_ones(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(
        ClusterName=name, InstanceGroups=[group("ctl", 1, "ml.m5.xlarge"), group("gpu", 3)]
    )
    settle()
    nodes = all_nodes(sm, name)
    assert len(nodes) == 4
    assert {n["InstanceGroupName"] for n in nodes} == {"ctl", "gpu"}
    for node in nodes:
        assert INSTANCE_ID.fullmatch(node["InstanceId"])
        assert node["InstanceStatus"]["Status"] == "Running"
        assert "NodeLogicalId" not in node  # classic clusters have none
        hostname = node["PrivateDnsHostname"]
        assert re.fullmatch(r"ip-10-\d+-\d+-\d+\.ec2\.internal", hostname)
    assert len({n["InstanceId"] for n in nodes}) == 4
    assert len({n["PrivateDnsHostname"] for n in nodes}) == 4
    assert {n["InstanceType"] for n in nodes if n["InstanceGroupName"] == "ctl"} == {"ml.m5.xlarge"}


def test_continuous_nodes_have_uuid_logical_ids(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[group("g", 3)],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": f"{EKS['Eks']['ClusterArn']}-{name}"}},
    )
    settle()
    nodes = all_nodes(sm, name, IncludeNodeLogicalIds=True)
    logical = [n["NodeLogicalId"] for n in nodes]
    assert len(set(logical)) == 3
    for value in logical:
        assert str(uuid.UUID(value)) == value


def test_describe_node_by_id_and_by_logical_id(sm: Any, name: str, settle: Any) -> None:
    storage = [{"EbsVolumeConfig": {"VolumeSizeInGB": 200}}]
    lifecycle = {"SourceS3Uri": "s3://sagemaker-b/lcs/", "OnCreate": "on_create.sh"}
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[group("g", 1, InstanceStorageConfigs=storage, LifeCycleConfig=lifecycle)],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": f"{EKS['Eks']['ClusterArn']}-d-{name}"}},
        VpcConfig={"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
    )
    settle()
    [summary] = all_nodes(sm, name)
    details = sm.describe_cluster_node(ClusterName=name, NodeId=summary["InstanceId"])[
        "NodeDetails"
    ]
    by_logical = sm.describe_cluster_node(ClusterName=name, NodeLogicalId=summary["NodeLogicalId"])[
        "NodeDetails"
    ]
    assert details == by_logical
    assert details["InstanceId"] == summary["InstanceId"]
    assert details["InstanceGroupName"] == "g"
    assert details["InstanceStatus"] == {"Status": "Running"}
    assert details["LaunchTime"] == summary["LaunchTime"]
    assert details["InstanceStorageConfigs"] == storage
    assert details["LifeCycleConfig"] == lifecycle
    assert details["ThreadsPerCore"] == 1
    assert ipaddress.ip_address(details["PrivatePrimaryIp"]).is_private
    assert details["PrivateDnsHostname"].startswith(
        "ip-" + details["PrivatePrimaryIp"].replace(".", "-") + "."
    )
    assert details["Placement"] == {
        "AvailabilityZone": "us-east-1a",
        "AvailabilityZoneId": "use1-az1",
    }
    assert details["CapacityType"] == "OnDemand"


def test_describe_node_needs_exactly_one_id(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    settle()
    [node] = all_nodes(sm, name)
    with pytest.raises(ClientError) as excinfo:
        sm.describe_cluster_node(ClusterName=name)
    assert error_of(excinfo) == (
        "ValidationException",
        "Either NodeId or NodeLogicalId must be specified.",
    )
    with pytest.raises(ClientError) as excinfo:
        sm.describe_cluster_node(
            ClusterName=name, NodeId=node["InstanceId"], NodeLogicalId="abc-def"
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "Specify either NodeId or NodeLogicalId, not both.",
    )


def test_unknown_node_names_the_node_and_cluster(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    settle()
    with pytest.raises(sm.exceptions.ResourceNotFound) as excinfo:
        sm.describe_cluster_node(ClusterName=name, NodeId="i-0123456789abcdef0")
    assert error_of(excinfo)[1] == (
        f"Could not find node 'i-0123456789abcdef0' in cluster '{name}'."
    )


def test_a_node_of_another_cluster_is_not_found(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    sm.create_cluster(ClusterName=f"{name}-2", InstanceGroups=[group("g", 1)])
    settle()
    [other] = all_nodes(sm, f"{name}-2")
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster_node(ClusterName=name, NodeId=other["InstanceId"])


def test_paginator_walks_250_nodes_in_pages_of_7_exactly_once(
    sm: Any, name: str, settle: Any
) -> None:
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[group("a", 100), group("b", 100), group("c", 50)],
    )
    settle()
    pages = list(
        sm.get_paginator("list_cluster_nodes").paginate(
            ClusterName=name, PaginationConfig={"PageSize": 7}
        )
    )
    assert len(pages) == 36
    assert all(len(page["ClusterNodeSummaries"]) == 7 for page in pages[:-1])
    assert len(pages[-1]["ClusterNodeSummaries"]) == 5
    assert "NextToken" not in pages[-1]
    ids = [n["InstanceId"] for page in pages for n in page["ClusterNodeSummaries"]]
    assert len(ids) == len(set(ids)) == 250


def test_default_page_is_ten_nodes_with_a_token(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 12)])
    settle()
    first = sm.list_cluster_nodes(ClusterName=name)
    assert len(first["ClusterNodeSummaries"]) == 10
    second = sm.list_cluster_nodes(ClusterName=name, NextToken=first["NextToken"])
    assert len(second["ClusterNodeSummaries"]) == 2
    assert "NextToken" not in second


def test_sort_by_name_is_group_then_instance_id(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("zeta", 3), group("alpha", 3)])
    settle()
    ascending = all_nodes(sm, name, SortBy="NAME", SortOrder="Ascending")
    keys = [(n["InstanceGroupName"], n["InstanceId"]) for n in ascending]
    assert keys == sorted(keys)
    descending = all_nodes(sm, name, SortBy="NAME", SortOrder="Descending")
    assert [n["InstanceId"] for n in descending] == [n["InstanceId"] for n in ascending][::-1]
    paged = all_nodes(sm, name, SortBy="NAME", PaginationConfig={"PageSize": 2})
    assert [n["InstanceId"] for n in paged] == [n["InstanceId"] for n in ascending]


def test_filter_by_group_name_and_launch_time(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("workers-a", 2), group("login", 1)])
    settle()
    workers = all_nodes(sm, name, InstanceGroupNameContains="WORKERS")
    assert {n["InstanceGroupName"] for n in workers} == {"workers-a"}
    launched = all_nodes(sm, name)[0]["LaunchTime"].timestamp()
    assert all_nodes(sm, name, CreationTimeAfter=launched + 1) == []
    assert all_nodes(sm, name, CreationTimeBefore=launched - 1) == []
    assert len(all_nodes(sm, name, CreationTimeAfter=launched - 1)) == 3


def test_a_token_for_another_request_is_refused(sm: Any, name: str, settle: Any) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 3)])
    sm.create_cluster(ClusterName=f"{name}-x", InstanceGroups=[group("g", 3)])
    settle()
    token = sm.list_cluster_nodes(ClusterName=name, MaxResults=1)["NextToken"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for kwargs in (
        {"ClusterName": f"{name}-x", "NextToken": token},  # another cluster
        {"ClusterName": name, "NextToken": token, "SortBy": "NAME"},  # another sort
        {"ClusterName": name, "NextToken": forged},
        {"ClusterName": name, "NextToken": "not-a-token"},
    ):
        with pytest.raises(ClientError) as excinfo:
            sm.list_cluster_nodes(**kwargs)
        assert error_of(excinfo) == (
            "ValidationException",
            "Invalid pagination token: it was not issued for this request.",
        )
    # ... and so is a ListClusterNodes token given to ListClusters.
    with pytest.raises(ClientError) as excinfo:
        sm.list_clusters(NextToken=token)
    assert error_of(excinfo)[0] == "ValidationException"


def test_a_classic_cluster_shows_its_nodes_once_their_instances_launch(
    sm: Any, name: str, advance: Any, settle: Any
) -> None:
    # More nodes than the engine launches in one transaction (500), in two groups.
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("big", 1100), group("small", 3)])

    def counts() -> list[tuple[str, int, int]]:
        groups = sm.describe_cluster(ClusterName=name)["InstanceGroups"]
        return [(g["InstanceGroupName"], g["CurrentCount"], g["TargetCount"]) for g in groups]

    assert counts() == [("big", 0, 1100), ("small", 0, 3)]
    # HyperPod lists a classic node only once it has an instance: none before cluster_setup.
    assert all_nodes(sm, name) == []
    launched_at = advance(300)
    nodes = all_nodes(sm, name)
    assert [n["InstanceGroupName"] for n in nodes] == ["big"] * 1100 + ["small"] * 3
    assert {n["InstanceStatus"]["Status"] for n in nodes} == {"Pending"}
    assert {n["LaunchTime"].timestamp() for n in nodes} == {launched_at}
    assert all(INSTANCE_ID.fullmatch(n["InstanceId"]) for n in nodes)
    assert len({n["InstanceId"] for n in nodes}) == 1103
    # Each with its own address, in launch order, as every node is given one.
    details = [
        sm.describe_cluster_node(ClusterName=name, NodeId=n["InstanceId"])["NodeDetails"]
        for n in (nodes[0], nodes[499], nodes[500], nodes[-1])
    ]
    addresses = [int(ipaddress.ip_address(d["PrivatePrimaryIp"])) for d in details]
    assert [a - addresses[0] for a in addresses] == [0, 499, 500, 1102]
    for detail in details:
        assert detail["PrivateDnsHostname"] == "ip-{}.ec2.internal".format(
            detail["PrivatePrimaryIp"].replace(".", "-")
        )
        assert detail["Placement"] == {
            "AvailabilityZone": "us-east-1a",
            "AvailabilityZoneId": "use1-az1",
        }
    assert counts() == [("big", 0, 1100), ("small", 0, 3)]
    settle()
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "InService"
    assert counts() == [("big", 1100, 1100), ("small", 3, 3)]
    assert [n["InstanceId"] for n in all_nodes(sm, name)] == [n["InstanceId"] for n in nodes]
