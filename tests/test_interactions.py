"""Operations that meet: faults, recoveries, scaling and software updates at the same time."""

from __future__ import annotations

from typing import Any

from hyperpod_local.mock import HyperPodMock
from tests.support import group


def eks(sm: Any, name: str, groups: list[dict[str, Any]], **extra: Any) -> None:
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=groups,
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}},
        **extra,
    )


def nodes(sm: Any, name: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(
        ClusterName=name, IncludeNodeLogicalIds=True
    )
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def test_a_scale_in_during_a_shortage_takes_the_nodes_that_never_launched(
    hyperpod: HyperPodMock,
) -> None:
    sm = hyperpod.client()
    eks(sm, "short", [group("w", 2)])
    hyperpod.settle()
    running = {n["InstanceId"] for n in nodes(sm, "short")}
    [fault] = hyperpod.inject("capacity", instance_type="ml.c5.xlarge", cluster="short")
    sm.batch_add_cluster_nodes(
        ClusterName="short", NodesToAdd=[{"InstanceGroupName": "w", "IncrementTargetCountBy": 3}]
    )
    hyperpod.advance(400)
    assert sum(n["InstanceStatus"]["Status"] == "Failure" for n in nodes(sm, "short")) == 3
    sm.update_cluster(ClusterName="short", InstanceGroups=[group("w", 2)])
    hyperpod.remove_fault(fault["FaultId"])
    hyperpod.settle()
    assert {n["InstanceId"] for n in nodes(sm, "short")} == running


def test_a_held_back_recovery_goes_once_the_group_is_healthy_enough(
    hyperpod: HyperPodMock,
) -> None:
    sm = hyperpod.client()
    eks(sm, "grow", [group("w", 5)])
    hyperpod.settle()
    for node in nodes(sm, "grow")[:3]:
        hyperpod.inject("hardware", cluster="grow", instance_id=node["InstanceId"], type="EfaDown")
    hyperpod.advance(15)
    # 3 of 5 unhealthy: one recovery runs, the breaker holds the others.
    sm.batch_add_cluster_nodes(
        ClusterName="grow", NodesToAdd=[{"InstanceGroupName": "w", "IncrementTargetCountBy": 15}]
    )
    hyperpod.settle()
    assert {n["InstanceStatus"]["Status"] for n in nodes(sm, "grow")} == {"Running"}


def test_turning_automatic_recovery_on_heals_nodes_already_failed(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    eks(sm, "turn", [group("w", 10)], NodeRecovery="None")
    hyperpod.settle()
    first = nodes(sm, "turn")[0]["InstanceId"]
    hyperpod.inject("hardware", cluster="turn", instance_id=first, type="GpuXid79")
    hyperpod.settle()
    assert (
        sm.describe_cluster_node(ClusterName="turn", NodeId=first)["NodeDetails"]["InstanceStatus"][
            "Status"
        ]
        == "Failure"
    )
    sm.update_cluster(ClusterName="turn", NodeRecovery="Automatic")
    hyperpod.settle()
    assert first not in {n["InstanceId"] for n in nodes(sm, "turn")}
    assert {n["InstanceStatus"]["Status"] for n in nodes(sm, "turn")} == {"Running"}


def test_turning_automatic_recovery_off_holds_the_next_fault(hyperpod: HyperPodMock) -> None:
    """The engine's steps see the cluster as the last request left it, whatever they read of
    it before (the engine keeps what it loaded of a cluster between its transactions)."""
    sm = hyperpod.client()
    eks(sm, "off", [group("w", 10)])
    hyperpod.settle()
    first, second = (n["InstanceId"] for n in nodes(sm, "off")[:2])
    hyperpod.inject("hardware", cluster="off", instance_id=first, type="GpuXid79")
    hyperpod.settle()
    assert first not in {n["InstanceId"] for n in nodes(sm, "off")}  # replaced
    sm.update_cluster(ClusterName="off", NodeRecovery="None")
    hyperpod.inject("hardware", cluster="off", instance_id=second, type="GpuXid79")
    hyperpod.settle()
    assert (
        sm.describe_cluster_node(ClusterName="off", NodeId=second)["NodeDetails"]["InstanceStatus"][
            "Status"
        ]
        == "Failure"
    )


def test_a_fault_on_a_replacement_instance_is_found_once_it_runs(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    eks(sm, "fresh", [group("w", 10)])
    hyperpod.settle()
    old = nodes(sm, "fresh")[0]
    sm.batch_replace_cluster_nodes(ClusterName="fresh", NodeIds=[old["InstanceId"]])
    hyperpod.advance(125)
    new = next(n for n in nodes(sm, "fresh") if n["NodeLogicalId"] == old["NodeLogicalId"])[
        "InstanceId"
    ]
    hyperpod.inject("hardware", cluster="fresh", instance_id=new, type="GpuXid79")
    hyperpod.settle()
    assert new not in {n["InstanceId"] for n in nodes(sm, "fresh")}  # replaced again
    assert hyperpod.faults() == []


def test_update_cluster_keeps_a_groups_image_and_update_state(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    sm.create_cluster(ClusterName="keep", InstanceGroups=[group("w", 2)])
    hyperpod.settle()
    sm.update_cluster_software(
        ClusterName="keep",
        InstanceGroups=[{"InstanceGroupName": "w", "ImageReleaseVersion": "2025.01.10"}],
    )
    hyperpod.settle()
    sm.update_cluster(ClusterName="keep", InstanceGroups=[group("w", 2)])
    described = sm.describe_cluster(ClusterName="keep")["InstanceGroups"][0]
    assert described["CurrentImageReleaseVersion"] == "2025.01.10"
    assert described["SoftwareUpdateStatus"] == "Succeeded"


def test_a_rolling_update_waits_for_a_node_under_recovery(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    sm.create_cluster(
        ClusterName="wait", InstanceGroups=[group("w", 10, ImageReleaseVersion="2025.10.1")]
    )
    hyperpod.settle()
    config = {
        "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 5}},
        "WaitIntervalInSeconds": 0,
    }
    sm.update_cluster_software(ClusterName="wait", DeploymentConfig=config)
    pending = [n for n in nodes(sm, "wait") if n["InstanceStatus"]["Status"] == "Running"]
    hyperpod.inject(
        "hardware", cluster="wait", instance_id=pending[0]["InstanceId"], type="GpuXid79"
    )
    hyperpod.settle()
    done = sm.describe_cluster(ClusterName="wait")["InstanceGroups"][0]
    assert done["SoftwareUpdateStatus"] == "Succeeded"
    assert {n["CurrentImageReleaseVersion"] for n in nodes(sm, "wait")} == {"2025.11.20"}
    assert done["TargetStateCount"] == 10


def test_a_token_replay_answers_even_while_the_cluster_updates(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    eks(sm, "replay", [group("w", 1)])
    hyperpod.settle()
    request = {"InstanceGroupName": "w", "IncrementTargetCountBy": 1}
    first = sm.batch_add_cluster_nodes(ClusterName="replay", ClientToken="t", NodesToAdd=[request])
    hyperpod.settle()
    sm.update_cluster_software(ClusterName="replay")
    again = sm.batch_add_cluster_nodes(ClusterName="replay", ClientToken="t", NodesToAdd=[request])
    assert [n["NodeLogicalId"] for n in again["Successful"]] == [
        n["NodeLogicalId"] for n in first["Successful"]
    ]
