"""Deep health checks: on new nodes and on demand."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from hyperpod_local.mock import HyperPodMock
from tests.support import error_of, group

CHECKS = ["InstanceStress", "InstanceConnectivity"]  # 1800 s + 300 s


def statuses(sm: Any, cluster: str) -> dict[str, str]:
    nodes = sm.list_cluster_nodes(ClusterName=cluster, MaxResults=100)["ClusterNodeSummaries"]
    return {n["InstanceId"]: n["InstanceStatus"]["Status"] for n in nodes}


def eks(name: str) -> dict[str, Any]:
    return {"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}}


def test_new_nodes_run_their_checks_before_they_serve(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    sm.create_cluster(
        ClusterName="dhc", InstanceGroups=[group("g", 2, OnStartDeepHealthChecks=CHECKS)]
    )
    hyperpod.advance(300 + 240)  # setup, then lifecycle scripts
    assert set(statuses(sm, "dhc").values()) == {"DeepHealthCheckInProgress"}
    described = sm.describe_cluster(ClusterName="dhc")
    assert described["ClusterStatus"] == "Creating"
    assert described["InstanceGroups"][0]["CurrentCount"] == 2
    hyperpod.advance(2099)
    assert set(statuses(sm, "dhc").values()) == {"DeepHealthCheckInProgress"}
    hyperpod.advance(1)
    assert set(statuses(sm, "dhc").values()) == {"Running"}
    assert sm.describe_cluster(ClusterName="dhc")["ClusterStatus"] == "InService"


def test_an_on_demand_check_finds_a_faulty_node_and_replaces_it(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    sm.create_cluster(
        ClusterName="od",
        InstanceGroups=[group("w", 3, "ml.g5.8xlarge")],
        NodeProvisioningMode="Continuous",
        Orchestrator=eks("od"),
        NodeRecovery="None",
    )
    hyperpod.settle()
    ids = sorted(statuses(sm, "od"))
    # A fault the health agent would take a day to notice: only the deep check finds it.
    hyperpod.inject(
        "hardware", cluster="od", instance_id=ids[0], type="GpuXid79", detection_delay_seconds=86400
    )
    sm.start_cluster_health_check(
        ClusterName="od",
        DeepHealthCheckConfigurations=[
            {
                "InstanceGroupName": "w",
                "InstanceIds": ids[:2],
                "DeepHealthChecks": ["InstanceConnectivity"],
            }
        ],
    )
    now = statuses(sm, "od")
    assert now[ids[0]] == now[ids[1]] == "DeepHealthCheckInProgress"
    assert now[ids[2]] == "Running"
    [operation] = sm.list_cluster_operations(ClusterName="od", Type="DeepHealthCheck")[
        "ClusterOperationSummaries"
    ]
    assert operation["Status"] == "InProgress"
    with pytest.raises(ClientError) as excinfo:
        sm.start_cluster_health_check(
            ClusterName="od",
            DeepHealthCheckConfigurations=[
                {"InstanceGroupName": "w", "DeepHealthChecks": ["InstanceStress"]}
            ],
        )
    assert "already in progress" in error_of(excinfo)[1]
    hyperpod.advance(300)
    failed = sm.describe_cluster_node(ClusterName="od", NodeId=ids[0])["NodeDetails"]
    assert failed["InstanceStatus"]["Status"] == "ShuttingDown"
    assert "Deep health check InstanceConnectivity failed" in failed["InstanceStatus"]["Message"]
    assert statuses(sm, "od")[ids[1]] == "Running"
    hyperpod.settle()
    after = statuses(sm, "od")
    assert ids[0] not in after and set(after.values()) == {"Running"} and len(after) == 3
    details = sm.describe_cluster_operation(ClusterName="od", OperationId=operation["OperationId"])
    assert details["Status"] == "Done"
    assert details["DeepHealthCheckDetails"][0]["InstanceIds"] == ids[:2]
    events = [e["Description"] for e in sm.list_cluster_events(ClusterName="od")["Events"]]
    assert any(d.startswith("Deep health check InstanceConnectivity failed") for d in events)
    assert any(d.startswith("Deep health check passed") for d in events)


def test_checks_are_refused_where_they_cannot_run(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    sm.create_cluster(
        ClusterName="sl",
        InstanceGroups=[
            group("controller", 1, SlurmConfig={"NodeType": "Controller"}),
            group("workers", 2, SlurmConfig={"NodeType": "Compute"}),
        ],
        Orchestrator={"Slurm": {}},
    )
    with pytest.raises(ClientError) as excinfo:
        sm.start_cluster_health_check(
            ClusterName="sl",
            DeepHealthCheckConfigurations=[
                {"InstanceGroupName": "workers", "DeepHealthChecks": ["InstanceStress"]}
            ],
        )
    assert "InService" in error_of(excinfo)[1]
    hyperpod.settle()
    for config, fragment in (
        ({"InstanceGroupName": "controller", "DeepHealthChecks": ["InstanceStress"]}, "worker"),
        ({"InstanceGroupName": "nope", "DeepHealthChecks": ["InstanceStress"]}, "not found"),
        (
            {
                "InstanceGroupName": "workers",
                "InstanceIds": ["i-0123456789abcdef0"],
                "DeepHealthChecks": ["InstanceStress"],
            },
            "Instances not in instance group workers",
        ),
    ):
        with pytest.raises(ClientError) as excinfo:
            sm.start_cluster_health_check(ClusterName="sl", DeepHealthCheckConfigurations=[config])
        assert error_of(excinfo)[0] == "ValidationException"
        assert fragment in error_of(excinfo)[1]
