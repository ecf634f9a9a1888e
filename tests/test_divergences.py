"""Smaller divergences from AWS (issue 12): how many nodes a Batch node operation may name, the
primary list of a List operation sent even when empty, a ThreadsPerCore left out of
UpdateCluster, messages that never print "None", and the metadata of scaling events; through
boto3 against the real server under the manual clock.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import ServerProcess, error_of, group

UNKNOWN_IDS = [f"i-{index:017x}" for index in range(1, 200)]


def eks_cluster(sm: Any, name: str, groups: list[dict[str, Any]]) -> None:
    """A Continuous EKS cluster on an EKS cluster ARN of its own."""
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=groups,
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}},
    )


def logical_ids(sm: Any, name: str) -> list[str]:
    listed = sm.list_cluster_nodes(ClusterName=name, IncludeNodeLogicalIds=True)
    return [node["NodeLogicalId"] for node in listed["ClusterNodeSummaries"]]


def unknown_logical(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


def refused(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as excinfo:
        call(**params)
    return error_of(excinfo)


# 1: how many nodes one request may name -------------------------------------------------------


def test_batch_delete_takes_at_most_50_logical_ids_and_50_identifiers_in_all(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 2)])
    server.settle()
    [real, other] = logical_ids(sm, name)

    code, message = refused(
        sm.batch_delete_cluster_nodes, ClusterName=name, NodeLogicalIds=unknown_logical(51)
    )
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value '[")
    assert message.endswith(
        "]' at 'nodeLogicalIds' failed to satisfy constraint: Member must have length less "
        "than or equal to 50"
    )

    code, message = refused(
        sm.batch_delete_cluster_nodes,
        ClusterName=name,
        NodeIds=UNKNOWN_IDS[:30],
        NodeLogicalIds=unknown_logical(30),
    )
    assert (code, message) == (
        "ValidationException",
        "BatchDeleteClusterNodes accepts a combined maximum of 50 NodeIds and NodeLogicalIds "
        "in a single request; this request has 60 (30 NodeIds and 30 NodeLogicalIds).",
    )

    # Both lists over their own limits: one message with both violations, Coral's way.
    code, message = refused(
        sm.batch_delete_cluster_nodes,
        ClusterName=name,
        NodeIds=UNKNOWN_IDS[:100],
        NodeLogicalIds=unknown_logical(51),
    )
    assert code == "ValidationException"
    assert message.startswith("2 validation errors detected: Value '[")
    assert "at 'nodeIds' failed to satisfy constraint: Member must have length less than or " in (
        message
    )
    assert "at 'nodeLogicalIds' failed to satisfy constraint" in message
    assert sorted(logical_ids(sm, name)) == sorted([real, other])  # nothing was deleted

    # 50 identifiers in all is allowed: each unknown one fails on its own, the real one goes.
    deleted = sm.batch_delete_cluster_nodes(
        ClusterName=name, NodeIds=UNKNOWN_IDS[:25], NodeLogicalIds=[real, *unknown_logical(24)]
    )
    assert deleted["SuccessfulNodeLogicalIds"] == [real]
    assert len(deleted["Failed"]) == 25 and len(deleted["FailedNodeLogicalIds"]) == 24
    # NodeIds alone keep the documented 99 (their own documentation; the combined maximum is
    # NodeLogicalIds').
    code, message = refused(
        sm.batch_delete_cluster_nodes, ClusterName=name, NodeIds=UNKNOWN_IDS[:99]
    )
    assert code == "ValidationException" and message.startswith("All nodes failed validation")


@pytest.mark.parametrize("operation", ["batch_replace_cluster_nodes", "batch_reboot_cluster_nodes"])
def test_replace_and_reboot_take_at_most_25_nodes_whichever_list_names_them(
    server: ServerProcess, name: str, operation: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 1)])
    server.settle()
    [real] = logical_ids(sm, name)
    call = getattr(sm, operation)
    title = "BatchReplaceClusterNodes" if "replace" in operation else "BatchRebootClusterNodes"

    assert refused(
        call, ClusterName=name, NodeIds=UNKNOWN_IDS[:25], NodeLogicalIds=unknown_logical(25)
    ) == (
        "ValidationException",
        f"{title} accepts a combined maximum of 25 NodeIds and NodeLogicalIds in a single "
        "request; this request has 50 (25 NodeIds and 25 NodeLogicalIds).",
    )
    assert refused(
        call, ClusterName=name, NodeIds=UNKNOWN_IDS[:1], NodeLogicalIds=unknown_logical(25)
    )[1].endswith("this request has 26 (1 NodeIds and 25 NodeLogicalIds).")

    answered = call(
        ClusterName=name, NodeIds=UNKNOWN_IDS[:13], NodeLogicalIds=[real, *unknown_logical(11)]
    )
    assert answered["SuccessfulNodeLogicalIds"] == [real]
    assert len(answered["Failed"]) == 13 and len(answered["FailedNodeLogicalIds"]) == 11
    server.settle()


# 2: a List operation's primary list is there even when empty ---------------------------------


def test_list_operations_answer_their_primary_list_even_when_empty(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    arn = sm.create_cluster(
        ClusterName=name, InstanceGroups=[group("w", 1)], NodeProvisioningMode="Continuous"
    )["ClusterArn"]
    # A cluster still being created has no node with an instance, no tags and no operation.
    assert sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"] == []
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []
    assert sm.list_cluster_operations(ClusterName=name)["ClusterOperationSummaries"] == []
    assert (
        sm.list_cluster_events(ClusterName=name, ResourceType="Instance", NodeId=UNKNOWN_IDS[0])[
            "Events"
        ]
        == []
    )
    assert sm.list_clusters(NameContains=f"{name}-none")["ClusterSummaries"] == []
    server.settle()
    # Filters that match nothing on a settled cluster answer the same.
    assert (
        sm.list_cluster_operations(ClusterName=name, Type="DeepHealthCheck")[
            "ClusterOperationSummaries"
        ]
        == []
    )
    far = sm.describe_cluster(ClusterName=name)["CreationTime"].timestamp() + 10**6
    assert sm.list_cluster_events(ClusterName=name, EventTimeAfter=far)["Events"] == []
    assert (
        sm.list_cluster_nodes(ClusterName=name, InstanceGroupNameContains="nope")[
            "ClusterNodeSummaries"
        ]
        == []
    )
    # Optional lists elsewhere are still left out when empty.
    deleted = sm.batch_delete_cluster_nodes(ClusterName=name, NodeLogicalIds=logical_ids(sm, name))
    assert "Failed" not in deleted and "FailedNodeLogicalIds" not in deleted
    server.settle()


# 3: an UpdateCluster that leaves ThreadsPerCore out does not change it -----------------------


def test_update_cluster_that_leaves_out_threads_per_core_keeps_it(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 1, ThreadsPerCore=2)])
    server.settle()

    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 2)])  # no ThreadsPerCore
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "Updating"
    server.settle()
    [described] = sm.describe_cluster(ClusterName=name)["InstanceGroups"]
    assert (described["ThreadsPerCore"], described["CurrentCount"]) == (2, 2)
    listed = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert len(listed) == 2
    for node in listed:
        details = sm.describe_cluster_node(ClusterName=name, NodeId=node["InstanceId"])
        assert details["NodeDetails"]["ThreadsPerCore"] == 2

    # Spelled out, a different value is still a change AWS refuses; the same value is none.
    assert refused(
        sm.update_cluster, ClusterName=name, InstanceGroups=[group("w", 2, ThreadsPerCore=1)]
    ) == (
        "ValidationException",
        "Updating fields ThreadsPerCore on an InstanceGroup not supported",
    )
    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 2, ThreadsPerCore=2)])
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "InService"


# 4: messages never print "None" ---------------------------------------------------------------


def test_conflicts_name_nodes_without_an_instance_by_their_logical_id(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("cpu", 1), group("p5", 1, "ml.p5.48xlarge")])
    status, made = server.admin(
        "POST",
        "/_hyperpod/faults",
        {"Kind": "capacity", "InstanceType": "ml.p5.48xlarge", "Cluster": name},
    )
    assert status == 201, made
    try:
        server.advance(300 + 240 + 2)  # the p5 launch fails; the cpu node comes up
        nodes = sm.list_cluster_nodes(ClusterName=name, IncludeNodeLogicalIds=True)
        [waiting] = [n for n in nodes["ClusterNodeSummaries"] if n["InstanceGroupName"] == "p5"]
        assert waiting["InstanceStatus"]["Status"] == "Failure" and "InstanceId" not in waiting
        logical = waiting["NodeLogicalId"]

        code, message = refused(
            sm.update_cluster_software,
            ClusterName=name,
            InstanceGroups=[{"InstanceGroupName": "p5"}],
        )
        assert code == "ConflictException"
        assert f"({logical})" in message and "None" not in message
        code, message = refused(sm.update_cluster, ClusterName=name, InstanceGroupsToDelete=["p5"])
        assert code == "ConflictException"
        assert f"({logical})" in message and "None" not in message
    finally:
        for fault in made["Faults"]:
            server.admin("DELETE", f"/_hyperpod/faults/{fault['FaultId']}")
    server.settle()


# 5: scaling events carry InstanceGroupScaling metadata -----------------------------------------


def scaling_events(sm: Any, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(Description, EventMetadata) of the cluster's scaling events, oldest first."""
    listed = sm.list_cluster_events(
        ClusterName=name, ResourceType="InstanceGroup", SortOrder="Ascending"
    )["Events"]
    found = []
    for event in listed:
        if " scaling " not in event["Description"]:
            continue
        described = sm.describe_cluster_event(ClusterName=name, EventId=event["EventId"])
        found.append(
            (event["Description"], described["EventDetails"]["EventDetails"]["EventMetadata"])
        )
    return found


def test_scaling_events_carry_instance_group_scaling_metadata(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 1)])
    server.settle()
    started = f"InstanceGroup w scaling started successfully in Cluster {name}"
    completed = f"Instance Group w scaling in Cluster {name} completed successfully"

    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 3, MinInstanceCount=2)])
    assert scaling_events(sm, name) == [
        (started, {"InstanceGroupScaling": {"InstanceCount": 1, "TargetCount": 3, "MinCount": 2}})
    ]
    server.settle()
    # The engine's completion event, once the new nodes are up, carries the counts too.
    assert scaling_events(sm, name)[-1] == (
        completed,
        {"InstanceGroupScaling": {"InstanceCount": 3, "TargetCount": 3, "MinCount": 2}},
    )

    # A delete of two of the three: the target the whole request aims at.
    w0, w1, _ = logical_ids(sm, name)
    sm.batch_delete_cluster_nodes(ClusterName=name, NodeLogicalIds=[w0, w1])
    assert scaling_events(sm, name)[-1] == (
        started,
        {"InstanceGroupScaling": {"InstanceCount": 3, "TargetCount": 1, "MinCount": 2}},
    )
    server.settle()

    # BatchAddClusterNodes, then an UpdateCluster that takes the two unlaunched nodes away
    # again: that one is done at once, and its completion event carries the counts too.
    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 1)])  # MinCount dropped
    server.settle()
    sm.batch_add_cluster_nodes(
        ClusterName=name, NodesToAdd=[{"InstanceGroupName": "w", "IncrementTargetCountBy": 2}]
    )
    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 1)])
    assert scaling_events(sm, name)[-3:] == [
        (started, {"InstanceGroupScaling": {"InstanceCount": 1, "TargetCount": 3}}),
        (started, {"InstanceGroupScaling": {"InstanceCount": 1, "TargetCount": 1}}),
        (completed, {"InstanceGroupScaling": {"InstanceCount": 1, "TargetCount": 1}}),
    ]
    server.settle()
