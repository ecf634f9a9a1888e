"""Lifecycles that must end when things go wrong (issue 12): an operation whose node had to
retry is still settled, simultaneous faults are judged together by the circuit breaker, and
a fault's detection leaves nothing behind once its node is gone. Through boto3 against the
real server, under the manual clock."""

from __future__ import annotations

from typing import Any

from tests.support import ServerProcess, group
from tests.test_faults import fault_in_force, hardware, inject, paused_events, recovery_events
from tests.test_scaling import add, eks_cluster, operations, shape

GPU = "ml.g5.xlarge"


def scaling_statuses(sm: Any, cluster: str) -> list[str]:
    return [op["Status"] for op in operations(sm, cluster) if "ScalingDetails" in op]


def test_a_classic_update_whose_node_retried_after_a_shortage_still_finishes(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 1)])
    server.settle()
    spec = {"Kind": "capacity", "InstanceType": GPU, "Cluster": name}
    with fault_in_force(server, spec):
        sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 1), group("g", 1, GPU)])
        server.advance(600)  # the launch fails and waits for its retry
    server.settle()
    described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterStatus"] == "InService"
    assert shape(sm, name)["g"] == ("InService", 1, 1, None)
    assert "Done" in scaling_statuses(sm, name)
    assert "InProgress" not in scaling_statuses(sm, name)
    # The cluster takes another update: nothing is left holding it.
    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 1), group("g", 2, GPU)])
    server.settle()
    assert shape(sm, name)["g"] == ("InService", 2, 2, None)


def test_a_continuous_batch_add_whose_script_failed_once_still_finishes(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 1)])
    server.settle()
    inject(
        server,
        {"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": "w", "Count": 1},
    )
    sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 1)])
    server.settle()
    assert shape(sm, name)["w"] == ("InService", 2, 2, None)
    assert scaling_statuses(sm, name) == ["Done"]
    # A later scale-in is an operation of its own, and it ends too.
    nodes = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    sm.batch_delete_cluster_nodes(ClusterName=name, NodeIds=[nodes[0]["InstanceId"]])
    server.settle()
    assert shape(sm, name)["w"][:3] == ("InService", 1, 1)
    assert "InProgress" not in scaling_statuses(sm, name)


def test_faults_on_every_node_of_a_group_at_once_start_no_recovery(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 5)])
    server.settle()
    nodes = [
        n["InstanceId"] for n in sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    ]
    for node in nodes:
        hardware(server, name, node, "GpuXid79")
    server.settle()
    listed = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert sorted(n["InstanceId"] for n in listed) == sorted(nodes)
    assert {n["InstanceStatus"]["Status"] for n in listed} == {"Failure"}
    assert recovery_events(sm, name) == []
    [paused] = paused_events(sm, name, "w")
    assert paused["EventLevel"] == "Warn"
    assert "5 of 5 nodes are unhealthy, more than the 1 allowed (20%)" in paused["Description"]
    # Manual calls still work.
    replaced = sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=nodes[:1])
    assert replaced["Successful"] == nodes[:1]


def test_a_replaced_node_leaves_no_detection_of_its_old_fault_behind(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 2)])
    server.settle()
    node = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"][0]["InstanceId"]
    # Detected only a day from now, but a deep health check finds it first.
    hardware(server, name, node, "GpuXid79", DetectionDelaySeconds=86400)
    sm.start_cluster_health_check(
        ClusterName=name,
        DeepHealthCheckConfigurations=[
            {
                "InstanceGroupName": "w",
                "InstanceIds": [node],
                "DeepHealthChecks": ["InstanceStress"],
            }
        ],
    )
    passed = server.settle()
    # The check, the replacement and nothing after: settle does not run on to the old
    # detection time, a day away.
    assert passed < 86400 / 2
    listed = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert node not in {n["InstanceId"] for n in listed}
    assert {n["InstanceStatus"]["Status"] for n in listed} == {"Running"}
