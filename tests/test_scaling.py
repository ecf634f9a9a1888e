"""UpdateCluster and BatchAddClusterNodes: groups scaled up and down, added and deleted,
NodeRecovery changed, what AWS refuses, Continuous clusters that stay InService while they
scale, BatchAddClusterNodes' per-group failures and its ClientToken replay; through boto3
(against the server and the mock) and the AWS CLI, under the manual clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import ROLE, Aws, ServerProcess, error_of, group

INSTANCE_ID = re.compile(r"i-[0-9a-f]{17}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# HyperPod seconds (engine/durations.py); a second of slack keeps rounding out of the way.
SCALE_SETUP = 60
PROVISION_CPU = 240
PROVISION_ACCELERATED = 600
TERMINATE = 120
TOKEN_LIFETIME = 8 * 3600
GPU = "ml.g5.xlarge"
RESTRICTED_MESSAGE = (
    "Found RestrictedInstanceGroups in the cluster input. Please remove "
    "RestrictedInstanceGroups from the request and try again."
)


# Helpers --------------------------------------------------------------------------------------


def eks_cluster(sm: Any, name: str, groups: list[dict[str, Any]], **extra: Any) -> None:
    """A Continuous EKS cluster on an EKS cluster ARN of its own."""
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=groups,
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}},
        **extra,
    )


def groups_of(sm: Any, cluster: str) -> dict[str, dict[str, Any]]:
    described = sm.describe_cluster(ClusterName=cluster)
    return {g["InstanceGroupName"]: g for g in described["InstanceGroups"]}


def cluster_status(sm: Any, cluster: str) -> str:
    return str(sm.describe_cluster(ClusterName=cluster)["ClusterStatus"])


def shape(sm: Any, cluster: str) -> dict[str, tuple[str, int, int, dict[str, int] | None]]:
    """Each group as (Status, CurrentCount, TargetCount, ActiveOperations)."""
    return {
        name: (g["Status"], g["CurrentCount"], g["TargetCount"], g.get("ActiveOperations"))
        for name, g in groups_of(sm, cluster).items()
    }


def nodes_of(sm: Any, cluster: str, **kwargs: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster, **kwargs)
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def statuses_by_id(sm: Any, cluster: str, group_name: str | None = None) -> dict[str, str]:
    """InstanceId -> status of every listed node (of one group, if named)."""
    return {
        n["InstanceId"]: n["InstanceStatus"]["Status"]
        for n in nodes_of(sm, cluster)
        if group_name is None or n["InstanceGroupName"] == group_name
    }


def by_logical(sm: Any, cluster: str) -> dict[str, dict[str, Any]]:
    """Every node of a Continuous cluster, instance or not, by NodeLogicalId."""
    return {n["NodeLogicalId"]: n for n in nodes_of(sm, cluster, IncludeNodeLogicalIds=True)}


def operations(sm: Any, cluster: str) -> list[dict[str, Any]]:
    """Every operation record, oldest first, as DescribeClusterOperation gives it."""
    listed = sm.list_cluster_operations(ClusterName=cluster, SortOrder="Ascending")
    summaries = listed.get("ClusterOperationSummaries", [])
    return [
        sm.describe_cluster_operation(ClusterName=cluster, OperationId=s["OperationId"])
        for s in summaries
    ]


def scaling_details(operation: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], Any]]:
    return [
        (d["InstanceGroupName"], d["Status"], d["Original"], d["Desired"])
        for d in operation["ScalingDetails"]
    ]


def group_events(sm: Any, cluster: str) -> list[tuple[str | None, str]]:
    """(OperationId, Description) of the cluster's InstanceGroup events, oldest first."""
    pages = sm.get_paginator("list_cluster_events").paginate(
        ClusterName=cluster, ResourceType="InstanceGroup", SortOrder="Ascending"
    )
    return [(e.get("OperationId"), e["Description"]) for page in pages for e in page["Events"]]


def add(name: str, count: int, **extra: Any) -> dict[str, Any]:
    return {"InstanceGroupName": name, "IncrementTargetCountBy": count, **extra}


def refused(call: Callable[..., Any], **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as excinfo:
        call(**params)
    return error_of(excinfo)


# Classic clusters -----------------------------------------------------------------------------


def test_a_classic_cluster_scales_a_group_up_then_down(
    sm: Any, name: str, settle: Callable[[], float], advance: Callable[[float], float]
) -> None:
    arn = sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 2), group("x", 1)])[
        "ClusterArn"
    ]
    settle()
    before = statuses_by_id(sm, name)
    [x_node] = statuses_by_id(sm, name, "x")

    assert sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 4)])["ClusterArn"] == arn
    assert cluster_status(sm, name) == "Updating"
    assert shape(sm, name) == {
        "w": ("Updating", 2, 4, {"Scaling": 1}),
        "x": ("InService", 1, 1, None),
    }
    # The new nodes have no instance yet, so a classic cluster does not list them.
    assert statuses_by_id(sm, name) == before

    advance(SCALE_SETUP + 1)
    listed = nodes_of(sm, name)
    new = [n for n in listed if n["InstanceId"] not in before]
    assert len(new) == 2
    assert all(INSTANCE_ID.fullmatch(n["InstanceId"]) for n in new)
    assert {(n["InstanceGroupName"], n["InstanceType"]) for n in new} == {("w", "ml.c5.xlarge")}
    assert {n["InstanceStatus"]["Status"] for n in new} == {"Pending"}
    assert cluster_status(sm, name) == "Updating"

    advance(PROVISION_CPU)
    assert cluster_status(sm, name) == "InService"
    assert shape(sm, name) == {"w": ("InService", 4, 4, None), "x": ("InService", 1, 1, None)}
    four = statuses_by_id(sm, name, "w")
    assert set(four.values()) == {"Running"} and len(four) == 4
    [grown] = operations(sm, name)
    assert (grown["Type"], grown["Status"], grown["ClusterArn"]) == ("Scaling", "Done", arn)
    assert scaling_details(grown) == [
        ("w", "Done", {"CurrentCount": 2, "TargetCount": 2}, {"TargetCount": 4})
    ]

    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 1)])
    assert cluster_status(sm, name) == "Updating"
    # ShuttingDown nodes no longer count as serving the group.
    assert shape(sm, name) == {
        "w": ("Updating", 1, 1, {"Scaling": 1}),
        "x": ("InService", 1, 1, None),
    }
    during = statuses_by_id(sm, name, "w")
    assert sorted(during.values()) == ["Running", "ShuttingDown", "ShuttingDown", "ShuttingDown"]
    leaving = [i for i, status in during.items() if status == "ShuttingDown"]
    [staying] = [i for i, status in during.items() if status == "Running"]
    details = sm.describe_cluster_node(ClusterName=name, NodeId=leaving[0])["NodeDetails"]
    assert details["InstanceStatus"]["Status"] == "ShuttingDown"

    advance(TERMINATE + 1)
    assert cluster_status(sm, name) == "InService"
    assert shape(sm, name) == {"w": ("InService", 1, 1, None), "x": ("InService", 1, 1, None)}
    assert statuses_by_id(sm, name) == {staying: "Running", x_node: "Running"}
    for instance_id in leaving:
        with pytest.raises(sm.exceptions.ResourceNotFound):
            sm.describe_cluster_node(ClusterName=name, NodeId=instance_id)
    shrunk = operations(sm, name)[1]
    assert shrunk["Status"] == "Done"
    assert scaling_details(shrunk) == [
        ("w", "Done", {"CurrentCount": 4, "TargetCount": 4}, {"TargetCount": 1})
    ]


def test_a_scale_down_takes_a_failed_node_before_healthy_ones(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 4)], NodeRecovery="None")
    server.settle()
    healthy = list(statuses_by_id(sm, name))
    broken = healthy.pop(2)
    status, body = server.admin(
        "POST",
        "/_hyperpod/faults",
        {"Kind": "hardware", "Cluster": name, "InstanceId": broken, "Type": "GpuXid79"},
    )
    assert status == 201, body
    server.advance(16)
    assert statuses_by_id(sm, name)[broken] == "Failure"

    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 3)])
    assert statuses_by_id(sm, name) == {
        **{i: "Running" for i in healthy},
        broken: "ShuttingDown",
    }
    server.settle()
    assert statuses_by_id(sm, name) == {i: "Running" for i in healthy}
    assert cluster_status(sm, name) == "InService"


def test_one_update_adds_a_group_and_deletes_another(
    sm: Any, name: str, settle: Callable[[], float], advance: Callable[[float], float]
) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 1), group("x", 2)])
    settle()
    [w_node] = statuses_by_id(sm, name, "w")
    x_nodes = list(statuses_by_id(sm, name, "x"))

    sm.update_cluster(
        ClusterName=name, InstanceGroups=[group("gpu", 1, GPU)], InstanceGroupsToDelete=["x"]
    )
    assert cluster_status(sm, name) == "Updating"
    assert shape(sm, name) == {
        "w": ("InService", 1, 1, None),
        "x": ("Deleting", 0, 0, {"Scaling": 1}),
        "gpu": ("Creating", 0, 1, {"Scaling": 1}),
    }
    assert groups_of(sm, name)["gpu"]["InstanceType"] == GPU
    assert statuses_by_id(sm, name) == {
        w_node: "Running",
        **{i: "ShuttingDown" for i in x_nodes},
    }

    advance(TERMINATE + 1)
    assert list(groups_of(sm, name)) == ["w", "gpu"]
    for instance_id in x_nodes:
        with pytest.raises(sm.exceptions.ResourceNotFound):
            sm.describe_cluster_node(ClusterName=name, NodeId=instance_id)
    [gpu_node] = nodes_of(sm, name, InstanceGroupNameContains="gpu")
    assert (gpu_node["InstanceType"], gpu_node["InstanceStatus"]["Status"]) == (GPU, "Pending")
    assert cluster_status(sm, name) == "Updating"

    # An accelerated instance takes provision_accelerated after the launch.
    advance(SCALE_SETUP + PROVISION_ACCELERATED - TERMINATE - 3)
    assert statuses_by_id(sm, name, "gpu") == {gpu_node["InstanceId"]: "Pending"}
    assert cluster_status(sm, name) == "Updating"
    advance(2)
    assert statuses_by_id(sm, name, "gpu") == {gpu_node["InstanceId"]: "Running"}
    assert cluster_status(sm, name) == "InService"
    assert shape(sm, name) == {"w": ("InService", 1, 1, None), "gpu": ("InService", 1, 1, None)}
    [operation] = operations(sm, name)
    assert operation["Status"] == "Done"
    assert sorted(scaling_details(operation)) == [
        ("gpu", "Done", {"CurrentCount": 0, "TargetCount": 0}, {"TargetCount": 1}),
        ("x", "Done", {"CurrentCount": 2, "TargetCount": 2}, {"TargetCount": 0}),
    ]


def test_node_recovery_and_unchanged_groups_update_without_scaling(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 2)])
    settle()
    assert sm.describe_cluster(ClusterName=name)["NodeRecovery"] == "Automatic"
    nodes = statuses_by_id(sm, name)

    sm.update_cluster(ClusterName=name, NodeRecovery="None")
    described = sm.describe_cluster(ClusterName=name)
    assert (described["ClusterStatus"], described["NodeRecovery"]) == ("InService", "None")

    # The same count, with the default ThreadsPerCore spelled out and an empty new group:
    # nothing to scale, so no Updating and no operation.
    sm.update_cluster(
        ClusterName=name,
        NodeRecovery="Automatic",
        InstanceGroups=[group("w", 2, ThreadsPerCore=1), group("spare", 0)],
    )
    described = sm.describe_cluster(ClusterName=name)
    assert (described["ClusterStatus"], described["NodeRecovery"]) == ("InService", "Automatic")
    assert shape(sm, name) == {"w": ("InService", 2, 2, None), "spare": ("InService", 0, 0, None)}
    assert statuses_by_id(sm, name) == nodes
    assert operations(sm, name) == []
    assert settle() == 0


def test_update_cluster_refuses_what_aws_refuses(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 2), group("x", 1)])
    assert refused(sm.update_cluster, ClusterName=name, NodeRecovery="None") == (
        "ConflictException",
        f"Cluster {name} is in Creating status; it can be updated only when it is InService.",
    )
    settle()
    before = sm.describe_cluster(ClusterName=name)

    other_role = "arn:aws:iam::123456789012:role/Other"
    flexible = {
        "InstanceGroupName": "w",
        "InstanceCount": 2,
        "ExecutionRole": ROLE,
        "InstanceRequirements": {"InstanceTypes": ["ml.c5.xlarge"]},
    }
    vpc = {"SecurityGroupIds": ["sg-12345678"], "Subnets": ["subnet-12345678"]}
    for spec, fields in [
        (group("w", 3, "ml.c5.2xlarge"), "InstanceType"),
        (flexible, "InstanceType, InstanceRequirements"),
        (group("w", 3, ExecutionRole=other_role), "ExecutionRole"),
        (group("w", 3, ThreadsPerCore=2), "ThreadsPerCore"),
        (group("w", 3, OverrideVpcConfig=vpc), "OverrideVpcConfig"),
    ]:
        assert refused(sm.update_cluster, ClusterName=name, InstanceGroups=[spec]) == (
            "ValidationException",
            f"Updating fields {fields} on an InstanceGroup not supported",
        ), fields

    assert refused(
        sm.update_cluster,
        ClusterName=name,
        InstanceGroups=[group("x", 2)],
        InstanceGroupsToDelete=["x"],
    ) == ("ValidationException", "Instance groups cannot be both updated and deleted: x.")
    assert refused(sm.update_cluster, ClusterName=name, InstanceGroupsToDelete=["nope"]) == (
        "ValidationException",
        f"InstanceGroupsToDelete names groups that are not in cluster {name}: nope.",
    )
    assert refused(sm.update_cluster, ClusterName=name, InstanceGroupsToDelete=["w", "x"]) == (
        "ValidationException",
        "A cluster must keep at least one instance group.",
    )
    restricted = {
        "InstanceGroupName": "r",
        "InstanceType": "ml.p5.48xlarge",
        "InstanceCount": 1,
        "ExecutionRole": ROLE,
        "EnvironmentConfig": {
            "FSxLustreConfig": {"SizeInGiB": 1200, "PerUnitStorageThroughput": 250}
        },
    }
    assert refused(sm.update_cluster, ClusterName=name, RestrictedInstanceGroups=[restricted]) == (
        "ValidationException",
        RESTRICTED_MESSAGE,
    )
    code, message = refused(
        sm.update_cluster, ClusterName=name, InstanceGroups=[group("new", 1, MinInstanceCount=1)]
    )
    assert (code, "MinInstanceCount" in message) == ("ValidationException", True)
    assert refused(sm.batch_add_cluster_nodes, ClusterName=name, NodesToAdd=[add("w", 1)]) == (
        "ValidationException",
        "BatchAddClusterNodes is only supported for clusters with NodeProvisioningMode set to "
        f"Continuous; cluster {name} is not.",
    )
    for call, params in [
        (sm.update_cluster, {"NodeRecovery": "None"}),
        (sm.batch_add_cluster_nodes, {"NodesToAdd": [add("w", 1)]}),
    ]:
        with pytest.raises(sm.exceptions.ResourceNotFound):
            call(ClusterName=f"{name}-missing", **params)

    # Nothing of all that changed the cluster.
    assert sm.describe_cluster(ClusterName=name)["InstanceGroups"] == before["InstanceGroups"]
    assert operations(sm, name) == []

    # A group whose node is under another operation cannot be deleted yet.
    [x_node] = statuses_by_id(sm, name, "x")
    assert sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[x_node])["Successful"] == [
        x_node
    ]
    assert refused(sm.update_cluster, ClusterName=name, InstanceGroupsToDelete=["x"]) == (
        "ConflictException",
        f"Nodes of the groups to delete are busy with other operations ({x_node}); try again "
        "when they have finished.",
    )
    settle()
    assert shape(sm, name)["x"] == ("InService", 1, 1, None)

    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 3)])
    assert refused(sm.update_cluster, ClusterName=name, InstanceGroups=[group("w", 4)]) == (
        "ConflictException",
        f"Cluster {name} is in Updating status; it can be updated only when it is InService.",
    )
    settle()
    assert shape(sm, name)["w"] == ("InService", 3, 3, None)


def test_a_failed_cluster_cannot_be_updated(server: ServerProcess, name: str) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 1)])
    status, body = server.admin(
        "POST",
        "/_hyperpod/faults",
        {"Kind": "capacity", "Cluster": name, "InstanceType": "ml.c5.xlarge"},
    )
    assert status == 201, body
    server.settle()
    assert cluster_status(sm, name) == "Failed"
    assert refused(sm.update_cluster, ClusterName=name, InstanceGroups=[group("w", 2)]) == (
        "ValidationException",
        f"Cluster {name} is Failed and cannot be updated; delete it and create it again.",
    )
    sm.delete_cluster(ClusterName=name)
    server.settle()


def test_a_scale_down_during_a_replace_ends_with_as_many_nodes_as_targeted(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 2)])
    settle()
    first = next(iter(statuses_by_id(sm, name)))
    assert sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[first])["Successful"] == [
        first
    ]
    try:
        sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 0)])
    except ClientError as error:  # refusing while a node is busy would be as good
        assert error.response["Error"]["Code"] == "ConflictException"
    settle()
    [(status, current, target, _)] = shape(sm, name).values()
    assert status == "InService"
    assert current == target == len(nodes_of(sm, name))


# Continuous clusters --------------------------------------------------------------------------


def test_a_continuous_cluster_stays_in_service_while_it_scales(
    sm: Any, name: str, settle: Callable[[], float], advance: Callable[[float], float]
) -> None:
    eks_cluster(sm, name, [group("w", 1)])
    settle()
    [first] = by_logical(sm, name)

    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 3)])
    assert cluster_status(sm, name) == "InService"
    assert shape(sm, name) == {"w": ("InService", 1, 3, {"Scaling": 1})}
    added = sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 1)])
    assert shape(sm, name) == {"w": ("InService", 1, 4, {"Scaling": 2})}

    nodes = by_logical(sm, name)
    assert len(nodes) == 4
    waiting = [n for logical, n in nodes.items() if logical != first]
    assert all("InstanceId" not in n for n in waiting)
    assert {n["InstanceStatus"]["Status"] for n in waiting} == {"Pending"}
    assert added["Successful"][0]["NodeLogicalId"] in nodes

    updated, batched = operations(sm, name)
    assert [(o["Type"], o["Status"]) for o in (updated, batched)] == [("Scaling", "InProgress")] * 2
    assert scaling_details(updated) == [
        ("w", "InProgress", {"CurrentCount": 1, "TargetCount": 1}, {"TargetCount": 3})
    ]
    assert scaling_details(batched) == [
        ("w", "InProgress", {"CurrentCount": 1, "TargetCount": 3}, {"TargetCount": 4})
    ]
    started = f"InstanceGroup w scaling started successfully in Cluster {name}"
    scaling_events = [e for e in group_events(sm, name) if "scaling" in e[1]]
    assert scaling_events == [
        (updated["OperationId"], started),
        (batched["OperationId"], started),
    ]

    advance(SCALE_SETUP + 1)
    launched = [n for logical, n in by_logical(sm, name).items() if logical != first]
    assert all(INSTANCE_ID.fullmatch(n["InstanceId"]) for n in launched)
    assert {n["InstanceStatus"]["Status"] for n in launched} == {"Pending"}
    assert cluster_status(sm, name) == "InService"

    settle()
    assert shape(sm, name) == {"w": ("InService", 4, 4, None)}
    assert {n["InstanceStatus"]["Status"] for n in by_logical(sm, name).values()} == {"Running"}
    assert [o["Status"] for o in operations(sm, name)] == ["Done", "Done"]
    completed = f"Instance Group w scaling in Cluster {name} completed successfully"
    scaling_events = [e for e in group_events(sm, name) if "scaling" in e[1]]
    assert sorted(scaling_events) == sorted(
        [
            (updated["OperationId"], started),
            (batched["OperationId"], started),
            (updated["OperationId"], completed),
            (batched["OperationId"], completed),
        ]
    )


def test_a_continuous_scale_down_drops_nodes_without_an_instance_first(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    eks_cluster(sm, name, [group("w", 2)])
    settle()
    running = by_logical(sm, name)
    added = sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 2)])
    new = [entry["NodeLogicalId"] for entry in added["Successful"]]
    assert set(by_logical(sm, name)) == {*running, *new}

    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 2)])
    assert by_logical(sm, name) == running
    for logical in new:
        with pytest.raises(sm.exceptions.ResourceNotFound):
            sm.describe_cluster_node(ClusterName=name, NodeLogicalId=logical)
    assert shape(sm, name)["w"][:3] == ("InService", 2, 2)


def test_a_scale_down_of_nodes_not_launched_yet_finishes_its_operation(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    eks_cluster(sm, name, [group("w", 2)])
    settle()
    sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 2)])
    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 2)])
    settle()
    assert shape(sm, name) == {"w": ("InService", 2, 2, None)}
    assert {o["Status"] for o in operations(sm, name)} == {"Done"}


def test_a_group_deleted_before_its_nodes_launch_goes_away(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    eks_cluster(sm, name, [group("w", 1), group("z", 0)])
    settle()
    sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("z", 2)])
    sm.update_cluster(ClusterName=name, InstanceGroupsToDelete=["z"])
    settle()
    assert list(groups_of(sm, name)) == ["w"]
    assert {o["Status"] for o in operations(sm, name)} == {"Done"}


def test_a_group_deleted_while_nodes_are_added_to_it_leaves_no_operation_in_progress(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    eks_cluster(sm, name, [group("w", 1), group("v", 1)])
    settle()
    sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 2)])
    sm.update_cluster(ClusterName=name, InstanceGroupsToDelete=["w"])
    settle()
    assert list(groups_of(sm, name)) == ["v"]
    assert [o["Status"] for o in operations(sm, name)] == ["Done", "Done"]


def test_a_continuous_group_shrinks_while_its_nodes_still_provision(
    sm: Any, name: str, settle: Callable[[], float], advance: Callable[[float], float]
) -> None:
    eks_cluster(sm, name, [group("w", 2)])
    advance(300 + 1)  # the cluster is InService, its nodes launched and Pending
    assert cluster_status(sm, name) == "InService"
    assert set(statuses_by_id(sm, name).values()) == {"Pending"}
    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 1)])
    settle()
    assert shape(sm, name) == {"w": ("InService", 1, 1, None)}
    assert len(nodes_of(sm, name)) == 1


# BatchAddClusterNodes -------------------------------------------------------------------------


def test_batch_add_adds_nodes_and_reports_each_group_it_cannot_grow(
    sm: Any, name: str, settle: Callable[[], float], advance: Callable[[float], float]
) -> None:
    eks_cluster(sm, name, [group("w", 1), group("g", 1, GPU)])
    # Cluster InService after setup, w after provision_cpu; g still Creating.
    advance(300 + PROVISION_CPU + 1)
    assert shape(sm, name) == {"w": ("InService", 1, 1, None), "g": ("Creating", 0, 1, None)}

    response = sm.batch_add_cluster_nodes(
        ClusterName=name,
        NodesToAdd=[
            add("w", 2, InstanceTypes=["ml.c5.xlarge"], AvailabilityZones=["us-east-1a"]),
            add("nope", 3),
            add("g", 4),
            add("w", 5, InstanceTypes=["ml.p5.48xlarge"]),
            add("w", 6, AvailabilityZones=["us-east-1b"]),
        ],
    )
    successful = response["Successful"]
    assert len(successful) == 2
    assert all(UUID.fullmatch(entry["NodeLogicalId"]) for entry in successful)
    assert len({entry["NodeLogicalId"] for entry in successful}) == 2
    assert [{k: v for k, v in e.items() if k != "NodeLogicalId"} for e in successful] == [
        {
            "InstanceGroupName": "w",
            "Status": "Pending",
            "AvailabilityZones": ["us-east-1a"],
            "InstanceTypes": ["ml.c5.xlarge"],
        }
    ] * 2
    failed = [
        (f["InstanceGroupName"], f["ErrorCode"], f["FailedCount"], f.get("InstanceTypes"))
        for f in response["Failed"]
    ]
    assert failed == [
        ("nope", "InstanceGroupNotFound", 3, None),
        ("g", "InvalidInstanceGroupStatus", 4, None),
        ("w", "IncompatibleInstanceTypes", 5, ["ml.p5.48xlarge"]),
        ("w", "IncompatibleAvailabilityZones", 6, None),
    ]
    assert response["Failed"][3]["AvailabilityZones"] == ["us-east-1b"]
    assert all(f["Message"] for f in response["Failed"])

    # TargetCount grows at once; the nodes are there, Pending, before they have an instance.
    assert shape(sm, name) == {
        "w": ("InService", 1, 3, {"Scaling": 1}),
        "g": ("Creating", 0, 1, None),
    }
    for entry in successful:
        node = sm.describe_cluster_node(ClusterName=name, NodeLogicalId=entry["NodeLogicalId"])[
            "NodeDetails"
        ]
        assert (node["InstanceGroupName"], node["InstanceStatus"]["Status"]) == ("w", "Pending")
        assert "InstanceId" not in node

    settle()
    nodes = by_logical(sm, name)
    for entry in successful:
        node = nodes[entry["NodeLogicalId"]]
        assert INSTANCE_ID.fullmatch(node["InstanceId"])
        assert (node["InstanceType"], node["InstanceStatus"]["Status"]) == (
            "ml.c5.xlarge",
            "Running",
        )
    assert shape(sm, name) == {"w": ("InService", 3, 3, None), "g": ("InService", 1, 1, None)}
    [operation] = operations(sm, name)
    assert scaling_details(operation) == [
        ("w", "Done", {"CurrentCount": 1, "TargetCount": 1}, {"TargetCount": 3})
    ]


def test_a_replayed_client_token_answers_the_same_nodes(
    sm: Any, name: str, settle: Callable[[], float], advance: Callable[[float], float]
) -> None:
    eks_cluster(sm, name, [group("w", 1)])
    settle()
    nodes_to_add = [add("w", 3)]
    first = sm.batch_add_cluster_nodes(
        ClusterName=name, ClientToken="replay-1", NodesToAdd=nodes_to_add
    )
    ids = [entry["NodeLogicalId"] for entry in first["Successful"]]
    assert len(ids) == 3

    def replay() -> dict[str, str]:
        again = sm.batch_add_cluster_nodes(
            ClusterName=name, ClientToken="replay-1", NodesToAdd=nodes_to_add
        )
        assert again.get("Failed", []) == []
        assert {e["InstanceGroupName"] for e in again["Successful"]} == {"w"}
        return {e["NodeLogicalId"]: e["Status"] for e in again["Successful"]}

    assert replay() == dict.fromkeys(ids, "Pending")
    # A replay adds nothing and records no operation.
    assert shape(sm, name)["w"][2] == 4
    assert len(by_logical(sm, name)) == 4
    assert len(operations(sm, name)) == 1

    settle()
    assert replay() == dict.fromkeys(ids, "Running")

    deleted = sm.batch_delete_cluster_nodes(ClusterName=name, NodeLogicalIds=[ids[0]])
    assert deleted["SuccessfulNodeLogicalIds"] == [ids[0]]
    assert replay() == {ids[0]: "ShuttingDown", ids[1]: "Running", ids[2]: "Running"}
    settle()
    assert replay() == {ids[0]: "NotFound", ids[1]: "Running", ids[2]: "Running"}
    assert shape(sm, name)["w"][1:3] == (3, 3)

    # The same token with other nodes to add is refused, and changes nothing.
    code, message = refused(
        sm.batch_add_cluster_nodes,
        ClusterName=name,
        ClientToken="replay-1",
        NodesToAdd=[add("w", 2)],
    )
    assert (code, message) == (
        "ValidationException",
        "The ClientToken replay-1 was already used with different parameters.",
    )
    assert shape(sm, name)["w"][2] == 3

    # A token is remembered for 8 hours; after that it starts a new request.
    advance(TOKEN_LIFETIME + 1)
    fresh = sm.batch_add_cluster_nodes(
        ClusterName=name, ClientToken="replay-1", NodesToAdd=nodes_to_add
    )
    assert not {e["NodeLogicalId"] for e in fresh["Successful"]} & set(ids)
    assert {e["Status"] for e in fresh["Successful"]} == {"Pending"}
    assert shape(sm, name)["w"][2] == 6


def test_batch_add_takes_at_most_50_nodes_in_one_call(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    eks_cluster(sm, name, [group("w", 1), group("v", 1)])
    settle()
    assert refused(
        sm.batch_add_cluster_nodes, ClusterName=name, NodesToAdd=[add("w", 30), add("v", 21)]
    ) == (
        "ValidationException",
        "A BatchAddClusterNodes request can add at most 50 nodes in total; this one asks for 51.",
    )
    code, message = refused(sm.batch_add_cluster_nodes, ClusterName=name, NodesToAdd=[add("w", 51)])
    assert code == "ValidationException"
    assert "Member must have value less than or equal to 50" in message
    code, message = refused(
        sm.batch_add_cluster_nodes, ClusterName=name, NodesToAdd=[add("w", 1)] * 6
    )
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 5" in message
    assert shape(sm, name) == {"w": ("InService", 1, 1, None), "v": ("InService", 1, 1, None)}
    assert operations(sm, name) == []

    response = sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 25), add("v", 25)])
    assert len(response["Successful"]) == 50
    assert response.get("Failed", []) == []
    assert shape(sm, name) == {
        "w": ("InService", 1, 26, {"Scaling": 1}),
        "v": ("InService", 1, 26, {"Scaling": 1}),
    }


def test_boto3_fills_the_client_token_when_it_is_omitted(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    eks_cluster(sm, name, [group("w", 1)])
    settle()
    sent: list[Any] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(json.loads(params["body"]).get("ClientToken"))

    event = "before-call.sagemaker.BatchAddClusterNodes"
    sm.meta.events.register(event, record)
    try:
        first = sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 1)])
        second = sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 1)])
    finally:
        sm.meta.events.unregister(event, record)

    assert len(sent) == 2 and sent[0] != sent[1]
    assert all(isinstance(token, str) and UUID.fullmatch(token) for token in sent)
    [one], [two] = first["Successful"], second["Successful"]
    assert one["NodeLogicalId"] != two["NodeLogicalId"]
    assert shape(sm, name)["w"][2] == 3
    assert len(operations(sm, name)) == 2
    settle()
    assert shape(sm, name)["w"][1:3] == (3, 3)


def test_batch_add_on_a_deleting_cluster_is_refused(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    eks_cluster(sm, name, [group("w", 1)])
    settle()
    sm.delete_cluster(ClusterName=name)
    code, _ = refused(sm.batch_add_cluster_nodes, ClusterName=name, NodesToAdd=[add("w", 2)])
    assert code == "ValidationException"
    assert shape(sm, name)["w"][2] == 1
    assert operations(sm, name) == []
    settle()
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster(ClusterName=name)


def test_a_node_added_for_a_chosen_type_counts_under_that_type(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    flexible = {
        "InstanceGroupName": "flex",
        "InstanceRequirements": {"InstanceTypes": ["ml.c5.xlarge", "ml.m5.xlarge"]},
        "InstanceCount": 1,
        "ExecutionRole": ROLE,
    }
    eks_cluster(sm, name, [flexible])
    settle()
    [added] = sm.batch_add_cluster_nodes(
        ClusterName=name, NodesToAdd=[add("flex", 1, InstanceTypes=["ml.m5.xlarge"])]
    )["Successful"]
    settle()
    node = sm.describe_cluster_node(ClusterName=name, NodeLogicalId=added["NodeLogicalId"])
    assert node["NodeDetails"]["InstanceType"] == "ml.m5.xlarge"
    details = groups_of(sm, name)["flex"]["InstanceTypeDetails"]
    assert {d["InstanceType"]: d["CurrentCount"] for d in details} == {
        "ml.c5.xlarge": 1,
        "ml.m5.xlarge": 1,
    }


# The AWS CLI ----------------------------------------------------------------------------------


def test_cli_update_cluster_scales_a_group(
    server: ServerProcess, tmp_path: Path, name: str
) -> None:
    sm = server.client()
    arn = sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 1)])["ClusterArn"]
    server.settle()
    aws = Aws(tmp_path, server.url)

    updated = aws.json(
        "update-cluster",
        "--cluster-name",
        name,
        "--instance-groups",
        json.dumps([group("w", 3)]),
    )
    assert updated == {"ClusterArn": arn}
    described = aws.json("describe-cluster", "--cluster-name", name)
    assert described["ClusterStatus"] == "Updating"
    [w] = described["InstanceGroups"]
    assert (w["Status"], w["CurrentCount"], w["TargetCount"]) == ("Updating", 1, 3)
    assert w["ActiveOperations"] == {"Scaling": 1}

    server.settle()
    described = aws.json("describe-cluster", "--cluster-name", name)
    assert described["ClusterStatus"] == "InService"
    [w] = described["InstanceGroups"]
    assert (w["Status"], w["CurrentCount"], w["TargetCount"]) == ("InService", 3, 3)
    assert "ActiveOperations" not in w
    listed = aws.json("list-cluster-nodes", "--cluster-name", name)["ClusterNodeSummaries"]
    assert sorted(n["InstanceStatus"]["Status"] for n in listed) == ["Running"] * 3
    # The CLI (v1) has no list-cluster-operations; the record is boto3's to read.
    [operation] = operations(sm, name)
    assert (operation["Type"], operation["Status"]) == ("Scaling", "Done")
    assert scaling_details(operation) == [
        ("w", "Done", {"CurrentCount": 1, "TargetCount": 1}, {"TargetCount": 3})
    ]
