"""Faults on demand and automatic node recovery: hardware faults found by the health agent,
replaced or rebooted nodes (or not, with NodeRecovery None), the in-flight cap and the circuit
breaker, capacity shortages, lifecycle-script failures, injected internal errors, throttling
and latency; through boto3 against the server, the admin API, the CLI and the mock.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

import hyperpod_local
from hyperpod_local.domain.errors import ValidationError
from hyperpod_local.domain.faults import FAULT_FIELDS, HARDWARE_FAULTS, FaultKind
from tests.support import CLI, ServerProcess, error_of, group

INSTANCE_ID = re.compile(r"i-[0-9a-f]{17}")
CAPACITY_MESSAGE = (
    "We currently do not have sufficient capacity for the requested instance type(s). "
    "Please try again."
)
GPU = "ml.g5.xlarge"
XID79 = "GPU has fallen off the bus (NVIDIA Xid 79)"
# Detection happens `DETECTION` HyperPod seconds after injection; a little slack either side
# keeps float rounding of due times out of the assertions.
DETECTION = 15
TERMINATE = 120
REBOOT = 120
PROVISION_CPU = 240
PROVISION_RETRY = 300


# Helpers --------------------------------------------------------------------------------------


def eks_cluster(
    sm: Any, name: str, groups: list[dict[str, Any]], recovery: str = "Automatic"
) -> None:
    """A Continuous EKS cluster on an EKS cluster ARN of its own."""
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=groups,
        NodeProvisioningMode="Continuous",
        NodeRecovery=recovery,
        Orchestrator={"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}},
    )


def nodes_of(sm: Any, cluster: str, **kwargs: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster, **kwargs)
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def by_logical(sm: Any, cluster: str) -> dict[str, dict[str, Any]]:
    """Every node, instance or not, by NodeLogicalId."""
    return {n["NodeLogicalId"]: n for n in nodes_of(sm, cluster, IncludeNodeLogicalIds=True)}


def describe(sm: Any, cluster: str, **node: str) -> dict[str, Any]:
    return dict(sm.describe_cluster_node(ClusterName=cluster, **node)["NodeDetails"])


def state(sm: Any, cluster: str, instance_id: str) -> tuple[str, str | None]:
    status = describe(sm, cluster, NodeId=instance_id)["InstanceStatus"]
    return status["Status"], status.get("Message")


def events_of(sm: Any, cluster: str, **kwargs: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_events").paginate(
        ClusterName=cluster, SortOrder="Ascending", **kwargs
    )
    return [event for page in pages for event in page["Events"]]


def recovery_events(sm: Any, cluster: str, words: str = "") -> list[dict[str, Any]]:
    return [
        e
        for e in events_of(sm, cluster)
        if e["Description"].startswith(f"Automatic node recovery started: {words}")
    ]


def paused_events(sm: Any, cluster: str, group_name: str) -> list[dict[str, Any]]:
    prefix = f"Automatic node recovery paused in InstanceGroup {group_name} of Cluster {cluster}"
    return [e for e in events_of(sm, cluster) if e["Description"].startswith(prefix)]


def inject(server: ServerProcess, spec: dict[str, Any]) -> list[dict[str, Any]]:
    status, body = server.admin("POST", "/_hyperpod/faults", spec)
    assert status == 201, body
    return list(body["Faults"])


def faults(server: ServerProcess) -> dict[str, dict[str, Any]]:
    status, body = server.admin("GET", "/_hyperpod/faults")
    assert status == 200, body
    return {f["FaultId"]: f for f in body["Faults"]}


def remove(server: ServerProcess, fault_id: str) -> None:
    status, body = server.admin("DELETE", f"/_hyperpod/faults/{fault_id}")
    assert status == 204, body


def raw_admin(server: ServerProcess, method: str, path: str, body: Any = None) -> tuple[int, str]:
    """An admin call whose answer may not be JSON (a 500 is plain text)."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@contextmanager
def fault_in_force(server: ServerProcess, spec: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """A fault for the length of a block, removed even if the block fails (the shared server
    must not keep request-path or capacity faults for the tests after)."""
    made = inject(server, spec)
    try:
        yield made
    finally:
        for fault in made:
            if fault["FaultId"] in faults(server):
                remove(server, fault["FaultId"])


def hardware(server: ServerProcess, cluster: str, instance_id: str, kind: str, **extra: Any) -> str:
    [made] = inject(
        server,
        {"Kind": "hardware", "Cluster": cluster, "InstanceId": instance_id, "Type": kind, **extra},
    )
    return str(made["FaultId"])


def statuses(sm: Any, cluster: str) -> list[str]:
    return sorted(n["InstanceStatus"]["Status"] for n in nodes_of(sm, cluster))


# 1, 2: automatic recovery -----------------------------------------------------------------------


def test_a_gpu_fault_is_detected_and_the_node_replaced_automatically(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("gpu", 2, GPU)])
    server.settle()
    victim, bystander = nodes_of(sm, name, IncludeNodeLogicalIds=True)
    old, logical = victim["InstanceId"], victim["NodeLogicalId"]

    [made] = inject(
        server, {"Kind": "hardware", "Cluster": name, "InstanceId": old, "Type": "GpuXid79"}
    )
    assert made["Kind"] == "hardware" and made["Type"] == "GpuXid79"
    assert made["InstanceId"] == old and made["InstanceGroupName"] == "gpu"
    assert made["Cluster"] == name
    assert made["ClusterArn"] == sm.describe_cluster(ClusterName=name)["ClusterArn"]
    assert made["DetectionDelaySeconds"] == DETECTION
    assert made["FaultId"] in faults(server)

    # Not yet noticed: the node looks healthy.
    injected_at = server.advance(DETECTION - 1) - (DETECTION - 1)
    assert state(sm, name, old) == ("Running", None)
    assert recovery_events(sm, name) == []

    # Noticed: the health agent's Error event, and recovery starts at the same HyperPod instant
    # (spec 4.3: an HMA replace goes Running -> ShuttingDown); the node keeps the fault's
    # message while it shuts down.
    server.advance(2)
    assert state(sm, name, old) == ("ShuttingDown", XID79)
    [detected] = [e for e in events_of(sm, name) if e["EventLevel"] == "Error"]
    assert detected["InstanceId"] == old
    assert detected["ResourceType"] == "Instance"
    assert old in detected["Description"] and XID79 in detected["Description"]
    assert round(detected["EventTime"].timestamp() - injected_at) == DETECTION
    details = sm.describe_cluster_event(ClusterName=name, EventId=detected["EventId"])
    metadata = details["EventDetails"]["EventDetails"]["EventMetadata"]["Instance"]
    assert metadata == {"FailureMessage": XID79, "NodeLogicalId": logical}
    [started] = recovery_events(sm, name)
    assert started["Description"] == (
        f"Automatic node recovery started: replacement of instance {old} in Cluster {name} "
        "and InstanceGroup gpu"
    )
    assert started["InstanceId"] == old and started["EventLevel"] == "Info"

    # The old instance goes; a new one takes the same logical id.
    server.advance(TERMINATE)
    assert old not in {n["InstanceId"] for n in nodes_of(sm, name)}
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster_node(ClusterName=name, NodeId=old)
    fresh = describe(sm, name, NodeLogicalId=logical)
    new = fresh["InstanceId"]
    assert INSTANCE_ID.fullmatch(new) and new != old
    assert fresh["InstanceStatus"]["Status"] == "Pending"
    server.settle()
    assert describe(sm, name, NodeLogicalId=logical)["InstanceId"] == new
    assert state(sm, name, new) == ("Running", None)
    assert state(sm, name, bystander["InstanceId"]) == ("Running", None)
    completed = f"Instance {new} replacement in Cluster {name} and InstanceGroup gpu completed"
    assert f"{completed} successfully" in [
        e["Description"] for e in events_of(sm, name, NodeId=new)
    ]

    # The fault went with the old instance: none is left, and the new one stays healthy.
    assert made["FaultId"] not in faults(server)
    server.advance(3600)
    assert statuses(sm, name) == ["Running", "Running"]
    assert len(recovery_events(sm, name)) == 1


@pytest.mark.parametrize(
    ("kind", "delay"), [("EfaDown", None), ("GpuXid73", 40)], ids=["efa-down", "xid73-delay-40"]
)
def test_a_reboot_fault_is_cured_by_an_automatic_reboot(
    server: ServerProcess, name: str, kind: str, delay: int | None
) -> None:
    assert HARDWARE_FAULTS[kind].action == "reboot"
    sm = server.client()
    eks_cluster(sm, name, [group("gpu", 2, GPU)])
    server.settle()
    node = nodes_of(sm, name)[0]["InstanceId"]
    extra = {} if delay is None else {"DetectionDelaySeconds": delay}
    fault_id = hardware(server, name, node, kind, **extra)
    wait = delay if delay is not None else DETECTION

    server.advance(wait - 1)
    assert state(sm, name, node) == ("Running", None)
    server.advance(2)
    # A reboot shows as Pending (spec 4.3), with the fault's message.
    assert state(sm, name, node) == ("Pending", HARDWARE_FAULTS[kind].message)
    [started] = recovery_events(sm, name)
    assert started["Description"].startswith(
        f"Automatic node recovery started: reboot of instance {node} in Cluster {name}"
    )
    server.advance(REBOOT)
    assert state(sm, name, node) == ("Running", None)
    assert fault_id not in faults(server)
    completed = f"Instance {node} reboot in Cluster {name} and InstanceGroup gpu completed"
    assert f"{completed} successfully" in [
        e["Description"] for e in events_of(sm, name, NodeId=node)
    ]
    server.settle()
    server.advance(3600)
    assert [n["InstanceId"] for n in nodes_of(sm, name)].count(node) == 1
    assert statuses(sm, name) == ["Running", "Running"]
    assert len(recovery_events(sm, name)) == 1


# 3: NodeRecovery None -------------------------------------------------------------------------


def test_with_node_recovery_none_a_fault_stays_until_a_client_replaces_the_node(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("gpu", 2, GPU)], recovery="None")
    server.settle()
    assert sm.describe_cluster(ClusterName=name)["NodeRecovery"] == "None"
    victim = nodes_of(sm, name, IncludeNodeLogicalIds=True)[0]
    node, logical = victim["InstanceId"], victim["NodeLogicalId"]
    fault_id = hardware(server, name, node, "GpuXid79")

    server.advance(DETECTION + 1)
    assert state(sm, name, node) == ("Failure", XID79)
    assert [e["InstanceId"] for e in events_of(sm, name) if e["EventLevel"] == "Error"] == [node]
    # Nothing happens by itself, however long.
    server.settle()
    server.advance(3600)
    assert state(sm, name, node) == ("Failure", XID79)
    assert recovery_events(sm, name) == []
    assert fault_id in faults(server)

    # A reboot does not cure a fault that needs new hardware: found again after the delay.
    rebooted = sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[node])
    assert rebooted["Successful"] == [node] and rebooted.get("Failed", []) == []
    assert state(sm, name, node)[0] == "Pending"
    server.advance(REBOOT + 1)
    assert state(sm, name, node) == ("Running", None)
    server.advance(DETECTION + 1)
    assert state(sm, name, node) == ("Failure", XID79)
    assert fault_id in faults(server)

    # A replace does.
    replaced = sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[node])
    assert replaced["Successful"] == [node]
    server.settle()
    new = describe(sm, name, NodeLogicalId=logical)["InstanceId"]
    assert new != node
    assert state(sm, name, new) == ("Running", None)
    assert fault_id not in faults(server)
    server.advance(3600)
    assert statuses(sm, name) == ["Running", "Running"]
    assert recovery_events(sm, name) == []

    # Deleting a cluster takes its faults with it.
    other = nodes_of(sm, name)[0]["InstanceId"]
    left = hardware(server, name, other, "GpuXid79", DetectionDelaySeconds=600)
    sm.delete_cluster(ClusterName=name)
    server.settle()
    assert left not in faults(server)


def test_a_group_wide_fault_on_a_classic_cluster_waits_for_a_client_reboot(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 2)], NodeRecovery="None")
    server.settle()
    made = inject(
        server,
        {"Kind": "hardware", "Cluster": name, "InstanceGroupName": "g", "Type": "EfaDown"},
    )
    nodes = sorted(n["InstanceId"] for n in nodes_of(sm, name))
    # One fault per node of the group.
    assert sorted(f["InstanceId"] for f in made) == nodes
    assert {f["InstanceGroupName"] for f in made} == {"g"}
    server.advance(DETECTION + 1)
    server.settle()
    efa = HARDWARE_FAULTS["EfaDown"].message
    assert {node: state(sm, name, node) for node in nodes} == {
        node: ("Failure", efa) for node in nodes
    }
    rebooted = sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=nodes)
    assert sorted(rebooted["Successful"]) == nodes
    server.settle()
    # A reboot cures a reboot-action fault: same instances, Running, faults gone.
    assert {node: state(sm, name, node) for node in nodes} == {
        node: ("Running", None) for node in nodes
    }
    assert not {f["FaultId"] for f in made} & set(faults(server))


# 4: the in-flight cap and the circuit breaker --------------------------------------------------


def test_the_breaker_holds_back_automatic_recovery_but_not_manual_calls(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 4)])
    server.settle()
    first = by_logical(sm, name)
    sick = [n["InstanceId"] for n in list(first.values())[:3]]
    for node in sick:
        hardware(server, name, node, "GpuXid79")

    # 4 nodes allow max(1, ceil(0.2 * 4)) = 1 unhealthy. The three faults are detected at the
    # same instant and judged together: 3 of 4 is over the threshold, so nothing starts.
    server.advance(DETECTION + 1)
    assert {node: state(sm, name, node) for node in sick} == {
        node: ("Failure", XID79) for node in sick
    }
    assert recovery_events(sm, name) == []
    [paused] = paused_events(sm, name, "w")
    assert paused["EventLevel"] == "Warn"
    assert paused["ResourceType"] == "InstanceGroup"
    assert paused["InstanceGroupName"] == "w"
    assert "3 of 4 nodes are unhealthy, more than the 1 allowed (20%)" in paused["Description"]

    # A client's replace is not held back by the breaker.
    manual, second, held = sick
    replaced = sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[manual])
    assert replaced["Successful"] == [manual] and replaced.get("Failed", []) == []
    assert state(sm, name, manual)[0] == "ShuttingDown"
    server.advance(TERMINATE + PROVISION_CPU + 1)
    # Two nodes are still faulty: the breaker still holds.
    assert {node: state(sm, name, node) for node in (second, held)} == {
        node: ("Failure", XID79) for node in (second, held)
    }
    assert recovery_events(sm, name) == []

    # With a second manual replace done, one node is unhealthy: its held-back recovery goes
    # by itself.
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[second])
    server.advance(TERMINATE + PROVISION_CPU + 1)
    assert [e["InstanceId"] for e in recovery_events(sm, name)] == [held]
    server.settle()
    after = by_logical(sm, name)
    assert set(after) == set(first)
    assert sorted(n["InstanceStatus"]["Status"] for n in after.values()) == ["Running"] * 4
    current = {n["InstanceId"] for n in after.values()}
    assert not current & set(sick)
    assert len(current) == 4
    assert not [f for f in faults(server).values() if f.get("Cluster") == name]


def test_a_bigger_group_recovers_two_at_once_and_three_at_once_trip_the_breaker(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 10)])
    server.settle()
    # 10 nodes allow ceil(0.2 * 10) = 2 unhealthy, and at most 2 recoveries run at once.
    two = [n["InstanceId"] for n in nodes_of(sm, name)[:2]]
    for node in two:
        hardware(server, name, node, "GpuXid79")
    server.advance(DETECTION + 1)
    assert sorted(e["InstanceId"] for e in recovery_events(sm, name)) == sorted(two)
    assert {state(sm, name, node)[0] for node in two} == {"ShuttingDown"}
    assert paused_events(sm, name, "w") == []
    server.settle()
    assert statuses(sm, name) == ["Running"] * 10

    three = [n["InstanceId"] for n in nodes_of(sm, name)[:3]]
    for node in three:
        hardware(server, name, node, "GpuXid79")
    server.advance(DETECTION + 1)
    # Three at the same instant are 30% of the group, over the 20%: no recovery starts.
    assert len(recovery_events(sm, name)) == 2
    assert [state(sm, name, node)[0] for node in three] == ["Failure"] * 3
    [paused] = paused_events(sm, name, "w")
    assert "3 of 10 nodes are unhealthy, more than the 2 allowed (20%)" in paused["Description"]
    server.settle()
    assert [state(sm, name, node)[0] for node in three] == ["Failure"] * 3
    # A client replaces one; two unhealthy are within the limit, and both recoveries go.
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[three[0]])
    server.settle()
    assert sorted(e["InstanceId"] for e in recovery_events(sm, name)[2:]) == sorted(three[1:])
    assert statuses(sm, name) == ["Running"] * 10
    assert not {n["InstanceId"] for n in nodes_of(sm, name)} & set(two + three)


def test_the_in_flight_cap_queues_recoveries_without_tripping_the_breaker(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 15)])
    server.settle()
    # 15 nodes allow ceil(0.2 * 15) = 3 unhealthy, but only 2 recoveries at once.
    three = [n["InstanceId"] for n in nodes_of(sm, name)[:3]]
    for node in three:
        hardware(server, name, node, "GpuXid79")
    server.advance(DETECTION + 1)
    assert sorted(state(sm, name, node)[0] for node in three) == [
        "Failure",
        "ShuttingDown",
        "ShuttingDown",
    ]
    assert len(recovery_events(sm, name)) == 2
    assert paused_events(sm, name, "w") == []
    [queued] = [node for node in three if state(sm, name, node)[0] == "Failure"]
    # The third goes as soon as one of the first two is done.
    server.advance(TERMINATE + PROVISION_CPU + 1)
    started = recovery_events(sm, name)
    assert [e["InstanceId"] for e in started][2:] == [queued]
    assert round(started[2]["EventTime"].timestamp() - started[0]["EventTime"].timestamp()) == (
        TERMINATE + PROVISION_CPU
    )
    server.settle()
    assert statuses(sm, name) == ["Running"] * 15


def test_the_recovery_policy_follows_the_serve_options(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        "--clock",
        "manual",
        "--recovery-max-in-flight",
        "1",
        "--recovery-breaker-threshold",
        "0.5",
    ).start()
    try:
        sm = server.client()
        eks_cluster(sm, "policy", [group("w", 4)])
        server.settle()
        # 4 nodes at 50%: 2 may be unhealthy; 1 recovery at a time.
        two = [n["InstanceId"] for n in nodes_of(sm, "policy")[:2]]
        for node in two:
            hardware(server, "policy", node, "GpuXid79")
        server.advance(DETECTION + 1)
        assert sorted(state(sm, "policy", node)[0] for node in two) == ["Failure", "ShuttingDown"]
        assert paused_events(sm, "policy", "w") == []
        server.settle()
        assert len(recovery_events(sm, "policy")) == 2
        assert statuses(sm, "policy") == ["Running"] * 4

        three = [n["InstanceId"] for n in nodes_of(sm, "policy")[:3]]
        for node in three:
            hardware(server, "policy", node, "GpuXid79")
        server.advance(DETECTION + 1)
        [paused] = paused_events(sm, "policy", "w")
        assert "3 of 4 nodes are unhealthy, more than the 2 allowed (50%)" in paused["Description"]
        server.settle()
        # Over the threshold nothing recovers by itself; a client's replace brings the group
        # back within it, and the held-back recoveries go, one at a time.
        assert [state(sm, "policy", node)[0] for node in three] == ["Failure"] * 3
        sm.batch_replace_cluster_nodes(ClusterName="policy", NodeIds=[three[0]])
        server.settle()
        assert len(recovery_events(sm, "policy")) == 4
        assert statuses(sm, "policy") == ["Running"] * 4
    finally:
        server.stop()


def test_a_held_back_node_is_not_stranded_when_its_fault_is_removed(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 15)])
    server.settle()
    # 3 of 15 is within the breaker's 20%, but only 2 recoveries run at once: one waits.
    nodes = [n["InstanceId"] for n in nodes_of(sm, name)]
    made = {node: hardware(server, name, node, "GpuXid79") for node in nodes[:3]}
    server.advance(DETECTION + 1)
    [held] = [node for node in nodes[:3] if state(sm, name, node)[0] == "Failure"]
    remove(server, made[held])
    try:
        server.settle()
        assert statuses(sm, name) == ["Running"] * 15
    finally:
        sm.delete_cluster(ClusterName=name)
        server.settle()


# 5: capacity ----------------------------------------------------------------------------------


def test_a_capacity_shortage_fails_a_classic_creation(server: ServerProcess, name: str) -> None:
    sm = server.client()
    with fault_in_force(server, {"Kind": "capacity", "InstanceType": "ml.p5.48xlarge"}) as made:
        [fault] = made
        assert fault["InstanceType"] == "ml.p5.48xlarge" and "Cluster" not in fault
        sm.create_cluster(
            ClusterName=name,
            InstanceGroups=[group("cpu", 1), group("p5", 2, "ml.p5.48xlarge")],
        )
        server.settle()
        described = sm.describe_cluster(ClusterName=name)
        assert described["ClusterStatus"] == "Failed"
        assert described["FailureMessage"] == CAPACITY_MESSAGE
        assert {g["Status"] for g in described["InstanceGroups"]} == {"Failed"}
        assert nodes_of(sm, name) == []
        sm.delete_cluster(ClusterName=name)
        server.settle()
        with pytest.raises(sm.exceptions.ResourceNotFound):
            sm.describe_cluster(ClusterName=name)


def test_a_shortage_after_hundreds_launched_takes_back_every_node_and_instance(
    fresh_server: ServerProcess,
) -> None:
    # A classic creation launches 500 nodes a transaction: the first group's 600 are written
    # over two before the second group meets the shortage.
    sm = fresh_server.client()
    inject(fresh_server, {"Kind": "capacity", "InstanceType": "ml.p5.48xlarge"})
    sm.create_cluster(
        ClusterName="short",
        InstanceGroups=[group("cpu", 600), group("p5", 2, "ml.p5.48xlarge")],
    )
    fresh_server.advance(300 + 1)  # cluster_setup
    described = sm.describe_cluster(ClusterName="short")
    assert (described["ClusterStatus"], described["FailureMessage"]) == ("Failed", CAPACITY_MESSAGE)
    assert [
        (g["Status"], g["CurrentCount"], g["TargetCount"]) for g in described["InstanceGroups"]
    ] == [
        ("Failed", 0, 600),
        ("Failed", 0, 2),
    ]
    assert nodes_of(sm, "short") == []
    status, inventory = fresh_server.admin("GET", "/_hyperpod/instances")
    assert (status, inventory) == (200, {"Instances": [], "OrphanVolumes": 0})
    sm.delete_cluster(ClusterName="short")
    fresh_server.settle()
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster(ClusterName="short")


def test_continuous_nodes_wait_out_a_capacity_shortage_and_keep_their_logical_ids(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("cpu", 1), group("p5", 2, "ml.p5.48xlarge")])
    [shortage] = inject(
        server, {"Kind": "capacity", "InstanceType": "ml.p5.48xlarge", "Cluster": name}
    )
    assert shortage["Cluster"] == name
    try:
        server.advance(300 + 1)  # cluster-level setup done: the launches fail
        assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "InService"
        waiting = {
            logical: n
            for logical, n in by_logical(sm, name).items()
            if n["InstanceGroupName"] == "p5"
        }
        assert len(waiting) == 2
        for logical, node in waiting.items():
            assert node["InstanceStatus"] == {"Status": "Failure", "Message": CAPACITY_MESSAGE}
            assert "InstanceId" not in node or not node["InstanceId"]
            detail = describe(sm, name, NodeLogicalId=logical)
            assert detail["InstanceStatus"] == {"Status": "Failure", "Message": CAPACITY_MESSAGE}
        # Without logical ids, only nodes with an instance are listed.
        assert [n["InstanceGroupName"] for n in nodes_of(sm, name)] == ["cpu"]
        failed = [e for e in events_of(sm, name) if e["EventLevel"] == "Error"]
        # Each failed provisioning is the EC2 failure, then the paired creation failure.
        assert [e["Description"].split(" in Cluster")[0] for e in failed] == [
            "Failed to provision EC2 Instance",
            "Instance creation",
        ] * 2
        assert all(e["Description"].endswith("and InstanceGroup p5 failed") for e in failed[1::2])

        # A retry while the shortage lasts fails again.
        server.advance(PROVISION_RETRY)
        assert {
            n["InstanceStatus"]["Status"]
            for logical, n in by_logical(sm, name).items()
            if logical in waiting
        } == {"Failure"}
    finally:
        remove(server, shortage["FaultId"])

    # The next retry finds capacity: same logical ids, on new instances.
    server.advance(PROVISION_RETRY)
    pending = {logical: by_logical(sm, name)[logical] for logical in waiting}
    assert {n["InstanceStatus"]["Status"] for n in pending.values()} == {"Pending"}
    assert all(INSTANCE_ID.fullmatch(n["InstanceId"]) for n in pending.values())
    server.settle()
    up = by_logical(sm, name)
    assert set(up) >= set(waiting) and len(up) == 3
    assert {n["InstanceStatus"]["Status"] for n in up.values()} == {"Running"}
    assert {logical: up[logical]["InstanceId"] for logical in waiting} == {
        logical: n["InstanceId"] for logical, n in pending.items()
    }

    # A replace during a shortage: the old instance goes, the node waits in Failure.
    logical = next(iter(waiting))
    old = up[logical]["InstanceId"]
    with fault_in_force(
        server, {"Kind": "capacity", "InstanceType": "ml.p5.48xlarge", "Cluster": name}
    ):
        replaced = sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[old])
        assert replaced["Successful"] == [old]
        server.advance(TERMINATE + 1)
        detail = describe(sm, name, NodeLogicalId=logical)
        assert detail["InstanceStatus"] == {"Status": "Failure", "Message": CAPACITY_MESSAGE}
        assert detail.get("InstanceId") in (None, "")
        assert old not in {n["InstanceId"] for n in nodes_of(sm, name)}
        server.advance(2 * PROVISION_RETRY)
        assert describe(sm, name, NodeLogicalId=logical)["InstanceStatus"]["Status"] == "Failure"
    server.advance(PROVISION_RETRY)
    assert describe(sm, name, NodeLogicalId=logical)["InstanceStatus"]["Status"] == "Pending"
    server.settle()
    back = describe(sm, name, NodeLogicalId=logical)
    assert back["InstanceStatus"] == {"Status": "Running"}
    assert INSTANCE_ID.fullmatch(back["InstanceId"]) and back["InstanceId"] != old


# 6: lifecycle scripts -------------------------------------------------------------------------

LIFECYCLE = {"SourceS3Uri": "s3://my-bucket/lifecycle/", "OnCreate": "setup.sh"}


def test_a_lifecycle_script_fault_fails_a_classic_creation(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 2, LifeCycleConfig=LIFECYCLE)])
    [fault] = inject(
        server,
        {"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": "g", "Count": 1},
    )
    assert fault["Remaining"] == 1 and fault["InstanceGroupName"] == "g"
    server.settle()
    described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterStatus"] == "Failed"
    assert re.fullmatch(
        r"Lifecycle script setup\.sh failed on instance i-[0-9a-f]{17} in InstanceGroup g: "
        r"exit code 1\.",
        described["FailureMessage"],
    ), described["FailureMessage"]
    assert {g["Status"] for g in described["InstanceGroups"]} == {"Failed"}
    assert nodes_of(sm, name) == []
    assert fault["FaultId"] not in faults(server)
    sm.delete_cluster(ClusterName=name)
    server.settle()


def test_a_failed_lifecycle_script_is_retried_on_another_instance(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 2, LifeCycleConfig=LIFECYCLE)])
    server.settle()
    node = nodes_of(sm, name, IncludeNodeLogicalIds=True)[0]
    first, logical = node["InstanceId"], node["NodeLogicalId"]
    [fault] = inject(
        server,
        {"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": "w", "Count": 1},
    )

    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[first])
    server.advance(TERMINATE + 1)
    second = describe(sm, name, NodeLogicalId=logical)["InstanceId"]
    assert second != first
    server.advance(PROVISION_CPU)
    assert state(sm, name, second) == (
        "Failure",
        f"Lifecycle script setup.sh failed on instance {second} in InstanceGroup w: exit code 1.",
    )
    assert fault["FaultId"] not in faults(server)  # Count 1: used up
    lcs = [e for e in events_of(sm, name, NodeId=second) if "lifecycle script" in e["Description"]]
    assert [(e["Description"].rsplit(" ", 1)[1], e["EventLevel"]) for e in lcs] == [
        ("Started", "Info"),
        ("Failed", "Error"),
    ]

    # Tried again, on yet another instance, which comes up.
    server.advance(PROVISION_RETRY)
    third = describe(sm, name, NodeLogicalId=logical)["InstanceId"]
    assert third not in (first, second)
    assert state(sm, name, third)[0] == "Pending"
    server.settle()
    assert state(sm, name, third) == ("Running", None)
    assert describe(sm, name, NodeLogicalId=logical)["InstanceId"] == third
    assert statuses(sm, name) == ["Running", "Running"]


def test_a_lifecycle_script_fault_at_continuous_creation_is_retried(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 2, LifeCycleConfig=LIFECYCLE)])
    inject(
        server,
        {"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": "w", "Count": 1},
    )
    server.advance(300 + PROVISION_CPU + 1)  # setup, then the scripts of both nodes
    # Partial provisioning: one node up, one failed, and the cluster InService.
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "InService"
    nodes = by_logical(sm, name)
    [failed] = [lid for lid, n in nodes.items() if n["InstanceStatus"]["Status"] == "Failure"]
    bad = nodes[failed]["InstanceId"]
    assert nodes[failed]["InstanceStatus"]["Message"] == (
        f"Lifecycle script setup.sh failed on instance {bad} in InstanceGroup w: exit code 1."
    )
    assert statuses(sm, name) == ["Failure", "Running"]
    server.settle()
    retried = describe(sm, name, NodeLogicalId=failed)
    assert retried["InstanceStatus"] == {"Status": "Running"}
    assert retried["InstanceId"] != bad
    assert statuses(sm, name) == ["Running", "Running"]


# 7: internal errors ----------------------------------------------------------------------------


def test_injected_internal_errors_strike_the_next_calls_then_stop(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 2)])
    server.settle()
    node, other = (n["InstanceId"] for n in nodes_of(sm, name))
    [fault] = inject(
        server, {"Kind": "internal_error", "Cluster": name, "InstanceId": node, "Count": 2}
    )
    assert fault["Remaining"] == 2

    replaced = sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[node, other])
    assert replaced["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert replaced["Successful"] == [other]
    [error] = replaced["Failed"]
    assert error["NodeId"] == node and error["ErrorCode"] == "InternalServerError"
    assert node in error["Message"] and name in error["Message"]
    assert faults(server)[fault["FaultId"]]["Remaining"] == 1
    assert state(sm, name, node) == ("Running", None)

    rebooted = sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[node])
    assert rebooted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert rebooted.get("Successful", []) == []
    assert [f["ErrorCode"] for f in rebooted["Failed"]] == ["InternalServerError"]
    assert fault["FaultId"] not in faults(server)

    rebooted = sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[node])
    assert rebooted["Successful"] == [node] and rebooted.get("Failed", []) == []
    server.settle()
    assert statuses(sm, name) == ["Running", "Running"]


# 8: throttling and latency ---------------------------------------------------------------------


def no_retries(server: ServerProcess) -> Any:
    """A client that makes one attempt per call (botocore's `max_attempts` 1 still retries
    once, with a back-off sleep)."""
    return server.client(retries={"total_max_attempts": 1, "mode": "standard"})


def test_throttling_and_latency_on_chosen_operations(server: ServerProcess, name: str) -> None:
    sm = no_retries(server)
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    with fault_in_force(
        server, {"Kind": "throttling", "Operations": ["ListClusters"], "Rate": 1.0}
    ) as made:
        assert made[0]["Rate"] == 1.0 and made[0]["Operations"] == ["ListClusters"]
        for _ in range(3):
            with pytest.raises(ClientError) as excinfo:
                sm.list_clusters()
            assert error_of(excinfo) == ("ThrottlingException", "Rate exceeded")
        assert sm.describe_cluster(ClusterName=name)["ClusterName"] == name
    sm.list_clusters()

    with fault_in_force(
        server, {"Kind": "latency", "Operations": ["DescribeCluster"], "Seconds": 0.3}
    ):
        started = time.monotonic()
        sm.describe_cluster(ClusterName=name)
        assert time.monotonic() - started >= 0.3
    server.settle()


def test_throttling_at_a_rate_refuses_about_that_share(server: ServerProcess) -> None:
    sm = no_retries(server)
    with fault_in_force(
        server, {"Kind": "throttling", "Operations": ["ListClusters"], "Rate": 0.5}
    ):
        throttled = 0
        for _ in range(60):
            try:
                sm.list_clusters(MaxResults=1)
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ThrottlingException"
                throttled += 1
    # Binomial(60, 0.5): outside [10, 50] about once in 10**7 runs.
    assert 10 <= throttled <= 50, throttled
    sm.list_clusters(MaxResults=1)


# 9: the admin API refuses bad specs ------------------------------------------------------------


def test_the_admin_api_refuses_bad_fault_specs(server: ServerProcess, name: str) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    server.settle()
    node = nodes_of(sm, name)[0]["InstanceId"]
    before = set(faults(server))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"Kind": "meteor"}, "Kind must be one of hardware, lifecycle_script"),
        ({}, "Kind must be one of"),
        (
            {"Kind": "hardware", "Cluster": name, "InstanceId": node, "Type": "GpuXid99"},
            "Unknown hardware fault type 'GpuXid99'; known: " + ", ".join(HARDWARE_FAULTS),
        ),
        ({"Kind": "hardware", "InstanceId": node, "Type": "GpuXid79"}, "needs Cluster"),
        ({"Kind": "hardware", "Cluster": name, "Type": "GpuXid79"}, "InstanceGroupName"),
        (
            {"Kind": "hardware", "Cluster": name, "InstanceId": "i-0123456789abcdef0"},
            "needs Type",
        ),
        (
            {
                "Kind": "hardware",
                "Cluster": name,
                "InstanceId": "i-0123456789abcdef0",
                "Type": "GpuXid79",
            },
            "No node i-0123456789abcdef0",
        ),
        (
            {
                "Kind": "hardware",
                "Cluster": name,
                "InstanceId": node,
                "Type": "GpuXid79",
                "DetectionDelaySeconds": -1,
            },
            "DetectionDelaySeconds",
        ),
        (
            {"Kind": "hardware", "Cluster": f"{name}-nope", "InstanceId": node, "Type": "EfaDown"},
            f"Could not find cluster '{name}-nope'",
        ),
        ({"Kind": "throttling", "Operations": ["ListClusters"], "Rate": 0}, "Rate"),
        ({"Kind": "throttling", "Rate": 1.5}, "Rate"),
        ({"Kind": "throttling", "Operations": "ListClusters"}, "Operations"),
        ({"Kind": "latency", "Operations": ["DescribeCluster"], "Seconds": 100}, "Seconds"),
        ({"Kind": "latency", "Seconds": 0}, "Seconds"),
        ({"Kind": "capacity"}, "needs InstanceType"),
        ({"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": "nope"}, "nope"),
        (
            {"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": "g", "Count": 0},
            "Count",
        ),
        ({"Kind": "internal_error", "Cluster": name}, "needs InstanceId"),
    ]
    for spec, words in cases:
        status, body = server.admin("POST", "/_hyperpod/faults", spec)
        assert status == 400, (spec, body)
        assert body["error"] == "InvalidFault", (spec, body)
        assert words in body["message"], (spec, body)
    for raw, words in (("not json", "not valid JSON"), ("3", "a JSON object or an array")):
        status, body = server.admin("POST", "/_hyperpod/faults", raw)
        assert status == 400 and words in body["message"], body
        assert body["error"] == "InvalidRequest"
    # An array is a list of specs, each an object.
    status, body = server.admin("POST", "/_hyperpod/faults", "[1, 2]")
    assert (status, body["error"]) == (400, "InvalidFault")
    assert body["message"] == "Fault 0: A fault spec must be a JSON object."
    assert set(faults(server)) == before

    status, body = server.admin("DELETE", "/_hyperpod/faults/no-such-fault")
    assert status == 404
    assert body == {"error": "FaultNotFound", "message": "No fault no-such-fault."}


def test_an_unhashable_kind_is_refused_with_400(server: ServerProcess) -> None:
    status, text = raw_admin(server, "POST", "/_hyperpod/faults", {"Kind": ["hardware"]})
    assert status == 400, text
    assert json.loads(text)["error"] == "InvalidFault"


def test_a_non_finite_detection_delay_is_refused(fresh_server: ServerProcess) -> None:
    sm = fresh_server.client()
    sm.create_cluster(ClusterName="inf", InstanceGroups=[group("g", 1)])
    fresh_server.settle()
    node = nodes_of(sm, "inf")[0]["InstanceId"]
    # Python's json (the admin API's parser) reads the Infinity literal json.dumps writes.
    spec = {
        "Kind": "hardware",
        "Cluster": "inf",
        "InstanceId": node,
        "Type": "GpuXid79",
        "DetectionDelaySeconds": float("inf"),
    }
    status, text = raw_admin(fresh_server, "POST", "/_hyperpod/faults", spec)
    listed = raw_admin(fresh_server, "GET", "/_hyperpod/faults")
    assert (status, listed) == (400, (200, '{"Faults":[]}')), text


# 10: the CLI -----------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "fault", *args], capture_output=True, text=True, timeout=60)


def test_the_cli_adds_lists_and_removes_faults(server: ServerProcess, name: str) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    server.settle()
    node = nodes_of(sm, name)[0]["InstanceId"]
    url = ["--endpoint-url", server.url]

    target = ["--cluster", name, "--node", node]
    added = cli("add", "hardware", *target, "--type", "GpuXid79", "--delay", "30", *url)
    assert added.returncode == 0, added.stderr
    [made] = json.loads(added.stdout)["Faults"]
    fault_id = made["FaultId"]
    assert made["InstanceId"] == node and made["Type"] == "GpuXid79"
    assert made["DetectionDelaySeconds"] == 30
    assert made["Cluster"] == name

    listed = cli("list", *url)
    assert listed.returncode == 0, listed.stderr
    assert fault_id in {f["FaultId"] for f in json.loads(listed.stdout)["Faults"]}

    removed = cli("rm", fault_id, *url)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"removed {fault_id}"
    assert fault_id not in {f["FaultId"] for f in json.loads(cli("list", *url).stdout)["Faults"]}
    # Removed before the health agent noticed it: nothing happens to the node.
    server.advance(30 + 1)
    assert state(sm, name, node) == ("Running", None)

    bad = cli("add", "hardware", *target, "--type", "Bogus", *url)
    assert bad.returncode == 1
    assert bad.stdout == ""
    [line] = bad.stderr.strip().splitlines()
    assert line.startswith("Error: InvalidFault: Unknown hardware fault type 'Bogus'; known: ")
    gone = cli("rm", "no-such-fault", *url)
    assert gone.returncode == 1
    assert gone.stderr.strip() == "Error: FaultNotFound: No fault no-such-fault."

    # Group-wide and counted kinds, with their options.
    added = cli("add", "lifecycle_script", "--cluster", name, "--group", "g", "--count", "2", *url)
    assert added.returncode == 0, added.stderr
    [made] = json.loads(added.stdout)["Faults"]
    assert made["Kind"] == "lifecycle_script" and made["InstanceGroupName"] == "g"
    assert made["Remaining"] == 2
    assert cli("rm", made["FaultId"], *url).returncode == 0


def test_the_cli_adds_every_kind_of_fault(fresh_server: ServerProcess) -> None:
    server = fresh_server
    sm = server.client()
    sm.create_cluster(ClusterName="cli", InstanceGroups=[group("g", 1)])
    server.settle()
    node = nodes_of(sm, "cli")[0]["InstanceId"]
    by_name = ["--cluster", "cli", "--account", "123456789012", "--region", "us-east-1"]
    # Every field of every kind, as the CLI takes it. A kind or a field added to
    # domain.faults and not here fails below (KeyError); here and without an option in the
    # CLI, it fails to parse.
    examples = {
        FaultKind.HARDWARE: [
            *by_name,
            *("--node", node, "--group", "g", "--type", "GpuXid79", "--delay", "30"),
        ],
        FaultKind.LIFECYCLE_SCRIPT: [*by_name, "--group", "g", "--count", "2"],
        FaultKind.CAPACITY: [*by_name, "--instance-type", "ml.p5.48xlarge"],
        FaultKind.INTERNAL_ERROR: [*by_name, "--node", node, "--count", "3"],
        FaultKind.THROTTLING: [
            *("--operation", "ListClusterNodes", "--operation", "ListTags", "--rate", "0.5"),
        ],
        FaultKind.LATENCY: ["--operation", "DescribeCluster", "--seconds", "0.2"],
        FaultKind.ALARM: ["--alarm-name", "training-loss-spike"],
        FaultKind.RANDOM_HARDWARE: [
            *by_name,
            *("--group", "g", "--mtbf-hours", "720", "--delay", "30", "--seed", "7"),
            *("--mix", "GpuXid79=3", "--mix", "EfaDown=1"),
        ],
        FaultKind.EXTENSION: [
            *by_name,
            *("--extension-name", "sagemaker-observability", "--action", "Update"),
            *("--node", node, "--code", "AccessDenied", "--count", "2"),
        ],
        FaultKind.TASK_GOVERNANCE: [
            *by_name,
            *("--resource", "ComputeQuota", "--action", "Update", "--count", "1"),
        ],
    }
    shown = {
        "Cluster": "cli",
        "InstanceId": node,
        "InstanceGroupName": "g",
        "Type": "GpuXid79",
        "DetectionDelaySeconds": 30,
        "Count": None,  # shown as Remaining
        "InstanceType": "ml.p5.48xlarge",
        "Operations": None,  # checked below
        "Rate": 0.5,
        "Seconds": 0.2,
        "AlarmName": "training-loss-spike",
        "MtbfHours": 720,
        "Types": {"GpuXid79": 3, "EfaDown": 1},
        "Seed": 7,
        "ExtensionName": "sagemaker-observability",
        "Action": "Update",
        "Code": "AccessDenied",
        "Resource": "ComputeQuota",
        "Account": None,  # in the ARN
        "Region": None,
    }
    url = ["--endpoint-url", server.url]
    made_ids = []
    for kind in FaultKind:
        added = cli("add", kind, *examples[kind], *url)
        assert added.returncode == 0, (kind, added.stderr)
        [made] = json.loads(added.stdout)["Faults"]
        made_ids.append(made["FaultId"])
        assert made["Kind"] == kind
        for field in FAULT_FIELDS[kind]:
            if shown[field] is not None:
                assert made[field] == shown[field], (kind, field, made)
        if "Cluster" in FAULT_FIELDS[kind]:
            assert made["ClusterArn"].startswith("arn:aws:sagemaker:us-east-1:123456789012:")
        if "Count" in FAULT_FIELDS[kind]:
            assert made["Remaining"] == int(examples[kind][-1])
    listed = json.loads(cli("list", *url).stdout)["Faults"]
    by_kind = {fault["Kind"]: fault for fault in listed}
    assert [fault["FaultId"] for fault in listed] == made_ids
    assert by_kind["throttling"]["Operations"] == ["ListClusterNodes", "ListTags"]
    assert by_kind["latency"]["Operations"] == ["DescribeCluster"]
    for fault_id in made_ids:  # `fault rm` is tested above
        assert server.admin("DELETE", f"/_hyperpod/faults/{fault_id}")[0] == 204

    # What a kind needs and was not given is said with the kind's own article.
    bad = cli("add", "alarm", *url)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "Error: InvalidFault: An alarm fault needs AlarmName."
    bad = cli("add", "internal_error", "--cluster", "cli", *url)
    assert bad.stderr.strip() == "Error: InvalidFault: An internal_error fault needs InstanceId."
    bad = cli("add", "capacity", *url)
    assert bad.stderr.strip() == "Error: InvalidFault: A capacity fault needs InstanceType."


# 11: the mock ----------------------------------------------------------------------------------


def test_the_mock_injects_a_fault_and_replaces_the_node() -> None:
    with hyperpod_local.mock() as hp:
        sm = hp.client()
        eks_cluster(sm, "m", [group("gpu", 2, GPU)])
        hp.settle()
        victim = nodes_of(sm, "m", IncludeNodeLogicalIds=True)[0]
        old, logical = victim["InstanceId"], victim["NodeLogicalId"]
        [made] = hp.inject("hardware", cluster="m", instance_id=old, type="GpuXid79")
        assert made["InstanceId"] == old and made["Cluster"] == "m"
        assert [f["FaultId"] for f in hp.faults()] == [made["FaultId"]]

        hp.advance(DETECTION - 1)
        assert state(sm, "m", old) == ("Running", None)
        hp.advance(2)
        assert state(sm, "m", old) == ("ShuttingDown", XID79)
        hp.settle()
        new = describe(sm, "m", NodeLogicalId=logical)["InstanceId"]
        assert new != old
        assert state(sm, "m", new) == ("Running", None)
        assert hp.faults() == []
        assert len(recovery_events(sm, "m", "replacement")) == 1

        # A fault removed before it is noticed does nothing.
        [later] = hp.inject(
            "hardware", cluster="m", instance_id=new, type="EfaDown", detection_delay_seconds=30
        )
        assert later["DetectionDelaySeconds"] == 30
        assert hp.remove_fault(later["FaultId"]) is True
        assert hp.remove_fault(later["FaultId"]) is False
        hp.advance(60)
        assert state(sm, "m", new) == ("Running", None)
        with pytest.raises(ValidationError, match="Unknown hardware fault type 'Nope'"):
            hp.inject("hardware", cluster="m", instance_id=new, type="Nope")


def test_the_mock_takes_the_admin_apis_json_specs_and_keywords_alike() -> None:
    with hyperpod_local.mock() as hp:
        sm = hp.client()
        sm.create_cluster(ClusterName="m", InstanceGroups=[group("g", 1)])
        hp.settle()
        node = nodes_of(sm, "m")[0]["InstanceId"]
        spec = {"Kind": "internal_error", "Cluster": "m", "InstanceId": node, "Count": 2}
        [from_spec] = hp.inject(spec)
        [from_keywords] = hp.inject("internal_error", cluster="m", instance_id=node, count=2)
        # A spec can be completed by keywords, e.g. one read from a file with an id added.
        [mixed] = hp.inject(
            {"Kind": "internal_error", "Cluster": "m", "Count": 2}, instance_id=node
        )
        for made in (from_spec, from_keywords, mixed):
            assert {key: made[key] for key in ("Kind", "Cluster", "InstanceId", "Remaining")} == {
                "Kind": "internal_error",
                "Cluster": "m",
                "InstanceId": node,
                "Remaining": 2,
            }
        assert spec == {"Kind": "internal_error", "Cluster": "m", "InstanceId": node, "Count": 2}
        [alarm] = hp.inject({"Kind": "alarm", "AlarmName": "training-loss-spike"})
        assert alarm["AlarmName"] == "training-loss-spike"
        # The admin API's checks, with its messages.
        with pytest.raises(ValidationError, match="An alarm fault takes no field 'Rate'"):
            hp.inject({"Kind": "alarm", "AlarmName": "a", "Rate": 0.5})
        with pytest.raises(TypeError, match="Count twice"):
            hp.inject(spec, count=3)
        assert len(hp.faults()) == 4


# Durability -------------------------------------------------------------------------------------


def test_faults_and_their_detection_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "--clock", "manual").start()
    try:
        sm = server.client()
        eks_cluster(sm, "durable", [group("w", 2)])
        server.settle()
        node = nodes_of(sm, "durable")[0]["InstanceId"]
        hardware(server, "durable", node, "GpuXid79", DetectionDelaySeconds=600)
        inject(server, {"Kind": "throttling", "Operations": ["ListClusters"]})
        before = faults(server)
    finally:
        server.stop()
    server = ServerProcess(data, "--clock", "manual").start()
    try:
        assert faults(server) == before
        sm = no_retries(server)
        with pytest.raises(ClientError) as excinfo:
            sm.list_clusters()
        assert error_of(excinfo)[0] == "ThrottlingException"
        server.advance(600 + 1)
        assert state(sm, "durable", node)[0] == "ShuttingDown"
        assert len(recovery_events(sm, "durable", "replacement")) == 1
        server.settle()
        assert statuses(sm, "durable") == ["Running", "Running"]
    finally:
        server.stop()
