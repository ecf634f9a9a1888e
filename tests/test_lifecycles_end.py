"""Every lifecycle ends (issue 12): random sequences of operations and faults on small
clusters, through boto3 against the real server under the manual clock. After each settle,
nothing is left in flight or half-done: no operation InProgress, no cluster or group in a
transitional status, CurrentCount equal to the serving nodes listed, every instance and
volume belonging to a node."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import ServerProcess, group
from tests.test_faults import faults, remove
from tests.test_scaling import eks_cluster

TRANSITIONAL = {"Creating", "Updating", "RollingBack", "SystemUpdating", "Deleting"}
GROUP_TRANSITIONAL = {"Creating", "Updating", "SystemUpdating", "Deleting"}
SERVING = {"Running", "SystemUpdating", "DeepHealthCheckInProgress"}
NODE_STATUSES = {
    "Running",
    "Failure",
    "Pending",
    "ShuttingDown",
    "SystemUpdating",
    "DeepHealthCheckInProgress",
}
_names = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("lifecycles") / "data", "--clock", "manual")
    server.start()
    yield server
    server.stop()


OPERATIONS = st.one_of(
    st.tuples(st.just("scale"), st.integers(0, 4)),
    st.tuples(st.just("add"), st.integers(1, 2)),
    st.tuples(st.just("delete"), st.integers(0, 9)),
    st.tuples(st.just("replace"), st.integers(0, 9)),
    st.tuples(st.just("reboot"), st.integers(0, 9)),
    st.tuples(st.just("software"), st.sampled_from(["ami-0123456789abcdef0", "default"])),
    st.tuples(st.just("capacity"), st.booleans()),
    st.tuples(st.just("script"), st.integers(1, 6)),
    st.tuples(st.just("hardware"), st.integers(0, 9)),
    st.tuples(st.just("advance"), st.sampled_from([60, 600, 3600])),
    st.tuples(st.just("settle"), st.just(0)),
)


def nodes_of(sm: Any, name: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(
        ClusterName=name, IncludeNodeLogicalIds=True
    )
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def with_instance(sm: Any, name: str) -> list[str]:
    return [n["InstanceId"] for n in nodes_of(sm, name) if n.get("InstanceId")]


def pick(sm: Any, name: str, index: int) -> list[str]:
    """One of the cluster's nodes with an instance (by index, wrapping), or none."""
    found = with_instance(sm, name)
    return [found[index % len(found)]] if found else []


def apply(server: ServerProcess, sm: Any, name: str, operation: tuple[str, Any]) -> None:
    kind, arg = operation
    try:
        if kind == "scale":
            sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", arg)])
        elif kind == "add":
            sm.batch_add_cluster_nodes(
                ClusterName=name,
                NodesToAdd=[{"InstanceGroupName": "w", "IncrementTargetCountBy": arg}],
            )
        elif kind in ("delete", "replace", "reboot") and (picked := pick(sm, name, arg)):
            call = {
                "delete": sm.batch_delete_cluster_nodes,
                "replace": sm.batch_replace_cluster_nodes,
                "reboot": sm.batch_reboot_cluster_nodes,
            }[kind]
            call(ClusterName=name, NodeIds=picked)
        elif kind == "software":
            sm.update_cluster_software(ClusterName=name, ImageId=arg)
        elif kind == "capacity":
            if arg:
                inject(
                    server, {"Kind": "capacity", "InstanceType": "ml.c5.xlarge", "Cluster": name}
                )
            else:
                lift_shortages(server, name)
        elif kind == "script":
            inject(
                server,
                {
                    "Kind": "lifecycle_script",
                    "Cluster": name,
                    "InstanceGroupName": "w",
                    "Count": arg,
                },
            )
        elif kind == "hardware" and (picked := pick(sm, name, arg)):
            inject(
                server,
                {
                    "Kind": "hardware",
                    "Cluster": name,
                    "InstanceId": picked[0],
                    "Type": "GpuXid79",
                },
            )
        elif kind == "advance":
            server.advance(arg)
        elif kind == "settle":
            settle_and_check(server, sm, name)
    except ClientError as error:
        # Refusals are part of the game; a server error never is.
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] < 500, error.response


def inject(server: ServerProcess, spec: dict[str, Any]) -> None:
    status, body = server.admin("POST", "/_hyperpod/faults", spec)
    # A fault aimed at a node that has just gone, or a group without instances yet: refused.
    assert status in (201, 400), body


def lift_shortages(server: ServerProcess, name: str) -> None:
    for fault_id, fault in faults(server).items():
        if fault["Kind"] == "capacity" and fault.get("Cluster") == name:
            remove(server, fault_id)


def settle_and_check(server: ServerProcess, sm: Any, name: str) -> None:
    # A Continuous cluster retries a standing shortage forever, as HyperPod does: lift it.
    lift_shortages(server, name)
    status, body = server.admin("POST", "/_hyperpod/clock/settle")
    assert status == 200, body
    described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterStatus"] not in TRANSITIONAL, described["ClusterStatus"]
    listed = nodes_of(sm, name)
    for each in described["InstanceGroups"]:
        assert each["Status"] not in GROUP_TRANSITIONAL, each
        assert "ActiveOperations" not in each, each
        assert each.get("SoftwareUpdateStatus") not in (
            "Pending",
            "InProgress",
            "RollbackInProgress",
        )
        mine = [n for n in listed if n["InstanceGroupName"] == each["InstanceGroupName"]]
        serving = [n for n in mine if n["InstanceStatus"]["Status"] in SERVING]
        assert each["CurrentCount"] == len(serving), (each, mine)
    for node in listed:
        assert node["InstanceStatus"]["Status"] in NODE_STATUSES, node
    operations = sm.list_cluster_operations(ClusterName=name)["ClusterOperationSummaries"]
    assert all(op["Status"] != "InProgress" for op in operations), operations


def no_orphans(server: ServerProcess, sm: Any, names: list[str]) -> None:
    owned = {instance for name in names for instance in with_instance(sm, name)}
    status, inventory = server.admin("GET", "/_hyperpod/instances")
    assert status == 200
    assert {i["InstanceId"] for i in inventory["Instances"]} <= owned
    assert inventory["OrphanVolumes"] == 0


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(continuous=st.booleans(), operations=st.lists(OPERATIONS, min_size=1, max_size=10))
def test_every_lifecycle_ends_whatever_happens(
    world: ServerProcess, continuous: bool, operations: list[tuple[str, Any]]
) -> None:
    server = world
    sm = server.client()
    name = f"life-{next(_names)}"
    if continuous:
        eks_cluster(sm, name, [group("w", 2)])
    else:
        sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 2)])
    try:
        for operation in operations:
            apply(server, sm, name, operation)
        settle_and_check(server, sm, name)
    finally:
        for fault_id, fault in faults(server).items():
            if fault.get("Cluster") == name:
                remove(server, fault_id)
        server.settle()
        sm.delete_cluster(ClusterName=name)
        server.settle()
        no_orphans(server, sm, [])
