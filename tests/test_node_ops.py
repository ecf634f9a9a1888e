"""BatchReplaceClusterNodes, BatchRebootClusterNodes and BatchDeleteClusterNodes, the minimal
UpdateClusterSoftware of a legacy cluster, node lifecycles under the manual clock, and the
cluster events and operations they write: all as boto3, the AWS CLI and the admin API see them.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import Aws, ServerProcess, error_of, group

INSTANCE_ID = re.compile(r"i-[0-9a-f]{17}")
UNKNOWN_ID = "i-0123456789abcdef0"
STORAGE = [{"EbsVolumeConfig": {"VolumeSizeInGB": 500}}]


# Helpers --------------------------------------------------------------------------------------


def slurm_cluster(
    sm: Any, name: str, workers: int = 3, continuous: bool = False, login: bool = True
) -> None:
    """A Slurm cluster: one controller, maybe a login node, and workers with a secondary EBS
    volume each."""
    groups = [group("controller", 1, SlurmConfig={"NodeType": "Controller"})]
    if login:
        groups.append(group("login", 1, SlurmConfig={"NodeType": "Login"}))
    groups.append(
        group(
            "workers",
            workers,
            SlurmConfig={"NodeType": "Compute"},
            InstanceStorageConfigs=STORAGE,
        )
    )
    extra: dict[str, Any] = {"NodeProvisioningMode": "Continuous"} if continuous else {}
    sm.create_cluster(ClusterName=name, Orchestrator={"Slurm": {}}, InstanceGroups=groups, **extra)


def eks_cluster(sm: Any, name: str, groups: list[dict[str, Any]] | None = None) -> None:
    """A Continuous EKS cluster (each test's own EKS cluster ARN)."""
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=groups or [group("a", 2), group("b", 1)],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}},
    )


def all_nodes(sm: Any, cluster: str, **kwargs: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster, **kwargs)
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def ids_in(sm: Any, cluster: str, group_name: str) -> list[str]:
    return [n["InstanceId"] for n in all_nodes(sm, cluster) if n["InstanceGroupName"] == group_name]


def status_of(sm: Any, cluster: str, instance_id: str) -> str:
    node = sm.describe_cluster_node(ClusterName=cluster, NodeId=instance_id)["NodeDetails"]
    return str(node["InstanceStatus"]["Status"])


def groups_of(sm: Any, cluster: str) -> dict[str, dict[str, Any]]:
    described = sm.describe_cluster(ClusterName=cluster)
    return {g["InstanceGroupName"]: g for g in described["InstanceGroups"]}


def inside(server: ServerProcess, cluster: str, instance_id: str) -> dict[str, Any]:
    status, view = server.admin("GET", f"/_hyperpod/clusters/{cluster}/nodes/{instance_id}")
    assert status == 200, view
    assert isinstance(view, dict)
    return view


def volume(view: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [v for v in view["Volumes"] if v["Kind"] == kind]
    return dict(found)


def write_marker(
    server: ServerProcess, cluster: str, instance_id: str, volume_id: str, text: str
) -> None:
    path = f"/_hyperpod/clusters/{cluster}/nodes/{instance_id}/volumes/{volume_id}/marker"
    status, body = server.admin("PUT", path, text)
    assert status == 204, body


def failures(response: dict[str, Any], key: str = "Failed") -> dict[str, dict[str, Any]]:
    return {item.get("NodeId", item.get("NodeLogicalId")): item for item in response.get(key, [])}


def no_logical_keys(response: dict[str, Any]) -> None:
    assert "SuccessfulNodeLogicalIds" not in response
    assert "FailedNodeLogicalIds" not in response


# 1, 2: the AWS CLI -----------------------------------------------------------------------------


def test_cli_replaces_a_slurm_worker_with_fresh_hardware(
    server: ServerProcess, tmp_path: Path, name: str
) -> None:
    sm = server.client()
    slurm_cluster(sm, name)
    server.settle()
    aws = Aws(tmp_path, server.url)
    before = all_nodes(sm, name)
    old = next(n for n in before if n["InstanceGroupName"] == "workers")
    old_id = old["InstanceId"]
    old_view = inside(server, name, old_id)
    secondary = volume(old_view, "secondary")
    write_marker(server, name, old_id, secondary["VolumeId"], "checkpoint-0042")
    assert volume(inside(server, name, old_id), "secondary")["Marker"] == "checkpoint-0042"

    replaced = aws.json("batch-replace-cluster-nodes", "--cluster-name", name, "--node-ids", old_id)
    assert replaced["Successful"] == [old_id]
    assert replaced.get("Failed", []) == []
    no_logical_keys(replaced)
    described = aws.json("describe-cluster-node", "--cluster-name", name, "--node-id", old_id)
    assert described["NodeDetails"]["InstanceStatus"]["Status"] == "ShuttingDown"
    assert inside(server, name, old_id)["Status"] == "ShuttingDown"

    server.advance(120)
    listed = aws.json("list-cluster-nodes", "--cluster-name", name)["ClusterNodeSummaries"]
    assert old_id not in {n["InstanceId"] for n in listed}
    gone = aws.run("describe-cluster-node", "--cluster-name", name, "--node-id", old_id)
    assert gone.returncode == 255
    assert "(ResourceNotFound)" in gone.stderr
    [new] = [n for n in listed if n["InstanceId"] not in {b["InstanceId"] for b in before}]
    new_id = new["InstanceId"]
    assert INSTANCE_ID.fullmatch(new_id)
    assert new["InstanceGroupName"] == "workers"
    assert new["InstanceStatus"]["Status"] == "Pending"
    assert new["PrivateDnsHostname"] == old["PrivateDnsHostname"]
    assert new["InstanceType"] == old["InstanceType"]
    # The other nodes are untouched.
    untouched = {n["InstanceId"]: n["InstanceStatus"]["Status"] for n in listed if n != new}
    assert untouched == {n["InstanceId"]: "Running" for n in before if n["InstanceId"] != old_id}

    server.settle()
    details = aws.json("describe-cluster-node", "--cluster-name", name, "--node-id", new_id)
    assert details["NodeDetails"]["InstanceStatus"]["Status"] == "Running"
    assert details["NodeDetails"]["PrivateDnsHostname"] == old["PrivateDnsHostname"]
    new_view = inside(server, name, new_id)
    assert new_view["Hostname"] == old_view["Hostname"]
    assert sorted(v["Kind"] for v in new_view["Volumes"]) == ["root", "secondary"]
    old_volume_ids = {v["VolumeId"] for v in old_view["Volumes"]}
    assert not old_volume_ids & {v["VolumeId"] for v in new_view["Volumes"]}
    assert [v["Marker"] for v in new_view["Volumes"]] == [None, None]
    status, _ = server.admin("GET", f"/_hyperpod/clusters/{name}/nodes/{old_id}")
    assert status == 404
    marker_path = (
        f"/_hyperpod/clusters/{name}/nodes/{old_id}/volumes/{secondary['VolumeId']}/marker"
    )
    assert server.admin("PUT", marker_path, "too late")[0] == 404
    # No instance or volume of the old node is left anywhere.
    status, inventory = server.admin("GET", "/_hyperpod/instances")
    assert status == 200, inventory
    volumes_of = {i["InstanceId"]: set(i["VolumeIds"]) for i in inventory["Instances"]}
    assert old_id not in volumes_of
    assert volumes_of[new_id] == {v["VolumeId"] for v in new_view["Volumes"]}
    assert not old_volume_ids & set().union(*volumes_of.values())


def test_cli_replaces_by_logical_id_only_on_continuous_clusters(
    server: ServerProcess, tmp_path: Path, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name)
    sm.create_cluster(ClusterName=f"{name}-classic", InstanceGroups=[group("g", 1)])
    server.settle()
    aws = Aws(tmp_path, server.url)
    node = all_nodes(sm, name, IncludeNodeLogicalIds=True)[0]
    logical, old_id = node["NodeLogicalId"], node["InstanceId"]

    replaced = aws.json(
        "batch-replace-cluster-nodes", "--cluster-name", name, "--node-logical-ids", logical
    )
    assert replaced["SuccessfulNodeLogicalIds"] == [logical]
    assert replaced.get("FailedNodeLogicalIds", []) == []
    assert replaced.get("Successful", []) == []
    during = aws.json(
        "describe-cluster-node", "--cluster-name", name, "--node-logical-id", logical
    )["NodeDetails"]
    assert (during["InstanceId"], during["InstanceStatus"]["Status"]) == (old_id, "ShuttingDown")

    server.settle()
    after = aws.json("describe-cluster-node", "--cluster-name", name, "--node-logical-id", logical)[
        "NodeDetails"
    ]
    assert after["NodeLogicalId"] == logical
    assert after["InstanceId"] != old_id
    assert INSTANCE_ID.fullmatch(after["InstanceId"])
    assert after["InstanceStatus"]["Status"] == "Running"
    assert after["InstanceGroupName"] == node["InstanceGroupName"]
    gone = aws.run("describe-cluster-node", "--cluster-name", name, "--node-id", old_id)
    assert (gone.returncode, "(ResourceNotFound)" in gone.stderr) == (255, True)

    classic = aws.run(
        "batch-replace-cluster-nodes",
        "--cluster-name",
        f"{name}-classic",
        "--node-logical-ids",
        str(uuid.uuid4()),
    )
    assert classic.returncode == 255
    assert "(ValidationException)" in classic.stderr
    assert "NodeLogicalIds" in classic.stderr


# 3: per-node failures --------------------------------------------------------------------------


def test_each_node_fails_or_starts_on_its_own(
    sm: Any, name: str, settle: Callable[[], float], advance: Callable[[float], float]
) -> None:
    slurm_cluster(sm, name, workers=3)
    settle()
    [controller] = ids_in(sm, name, "controller")
    w0, w1, w2 = ids_in(sm, name, "workers")

    with pytest.raises(ClientError) as excinfo:
        sm.batch_replace_cluster_nodes(
            ClusterName=name, NodeIds=[f"i-{index:017x}" for index in range(26)]
        )
    code, message = error_of(excinfo)
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 25" in message
    with pytest.raises(ClientError) as excinfo:
        sm.batch_replace_cluster_nodes(
            ClusterName=name, NodeLogicalIds=[str(uuid.uuid4()) for _ in range(26)]
        )
    assert "Member must have length less than or equal to 25" in error_of(excinfo)[1]
    with pytest.raises(ClientError) as excinfo:
        sm.batch_replace_cluster_nodes(ClusterName=name)
    assert error_of(excinfo)[0] == "ValidationException"
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.batch_replace_cluster_nodes(ClusterName=f"{name}-nope", NodeIds=[w0])
    assert {status_of(sm, name, i) for i in (w0, w1, w2)} == {"Running"}  # nothing started

    first = sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[w0])
    assert first["Successful"] == [w0]
    arn = sm.describe_cluster(ClusterName=name)["ClusterArn"]
    second = sm.batch_replace_cluster_nodes(
        ClusterName=arn, NodeIds=[w1, controller, UNKNOWN_ID, w0, w2]
    )
    assert second["Successful"] == [w1, w2]
    no_logical_keys(second)
    failed = failures(second)
    assert list(failed) == [controller, UNKNOWN_ID, w0]
    for node_id, item in failed.items():
        assert set(item) == {"NodeId", "ErrorCode", "Message"}
        assert node_id in item["Message"]
    assert failed[controller]["ErrorCode"] == "InstanceIdInUse"
    assert "controller" in failed[controller]["Message"]
    assert failed[UNKNOWN_ID]["ErrorCode"] == "InstanceIdNotFound"
    assert failed[w0]["ErrorCode"] == "InstanceIdInUse"
    assert {status_of(sm, name, i) for i in (w0, w1, w2)} == {"ShuttingDown"}
    assert status_of(sm, name, controller) == "Running"

    settle()
    assert ids_in(sm, name, "controller") == [controller]
    assert not {w0, w1, w2} & set(ids_in(sm, name, "workers"))

    # A node still provisioning: its Continuous cluster is InService after cluster setup
    # (300 s), the node Pending until provisioning ends (another 240 s).
    eks_cluster(sm, f"{name}-p", [group("g", 1)])
    advance(360)
    assert sm.describe_cluster(ClusterName=f"{name}-p")["ClusterStatus"] == "InService"
    [pending] = ids_in(sm, f"{name}-p", "g")
    assert status_of(sm, f"{name}-p", pending) == "Pending"
    refused = sm.batch_replace_cluster_nodes(ClusterName=f"{name}-p", NodeIds=[pending])
    assert refused.get("Successful", []) == []
    [item] = refused["Failed"]
    assert (item["NodeId"], item["ErrorCode"]) == (pending, "InvalidInstanceStatus")
    assert pending in item["Message"] and "Pending" in item["Message"]
    no_logical_keys(refused)


# 4: legacy clusters ----------------------------------------------------------------------------


def test_a_legacy_cluster_must_run_update_cluster_software_first(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    slurm_cluster(sm, name, workers=2, login=False)
    server.settle()
    status, body = server.admin("POST", f"/_hyperpod/clusters/{name}/legacy")
    assert status == 200, body
    w0, w1 = ids_in(sm, name, "workers")
    before = inside(server, name, w0)
    root, secondary = volume(before, "root"), volume(before, "secondary")
    write_marker(server, name, w0, root["VolumeId"], "os-tweaks")
    write_marker(server, name, w0, secondary["VolumeId"], "datasets")

    for call in (sm.batch_replace_cluster_nodes, sm.batch_delete_cluster_nodes):
        with pytest.raises(ClientError) as excinfo:
            call(ClusterName=name, NodeIds=[w0])
        code, message = error_of(excinfo)
        assert code == "ValidationException"
        assert "UpdateClusterSoftware" in message
    assert status_of(sm, name, w0) == "Running"

    sm.update_cluster_software(ClusterName=name)
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "SystemUpdating"
    assert {n["InstanceStatus"]["Status"] for n in all_nodes(sm, name)} == {"SystemUpdating"}
    with pytest.raises(ClientError) as excinfo:
        sm.update_cluster_software(ClusterName=name)
    assert error_of(excinfo)[0] == "ConflictException"

    server.settle()
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "InService"
    assert {n["InstanceStatus"]["Status"] for n in all_nodes(sm, name)} == {"Running"}
    assert ids_in(sm, name, "workers") == [w0, w1]  # an update keeps the instances
    after = inside(server, name, w0)
    assert volume(after, "root")["VolumeId"] != root["VolumeId"]
    assert volume(after, "root")["Marker"] is None
    assert volume(after, "secondary") == {**secondary, "Marker": "datasets"}

    assert sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[w0])["Successful"] == [w0]
    assert sm.batch_delete_cluster_nodes(ClusterName=name, NodeIds=[w1])["Successful"] == [w1]


# 5: reboot -------------------------------------------------------------------------------------


def test_reboot_keeps_the_instance_its_volumes_and_their_data(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    slurm_cluster(sm, name, workers=2, login=False)
    server.settle()
    worker = ids_in(sm, name, "workers")[0]
    before = inside(server, name, worker)
    for each in before["Volumes"]:
        write_marker(server, name, worker, each["VolumeId"], f"kept-{each['Kind']}")
    before = inside(server, name, worker)

    rebooted = sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[worker])
    assert rebooted["Successful"] == [worker]
    assert rebooted.get("Failed", []) == []
    no_logical_keys(rebooted)
    assert status_of(sm, name, worker) == "Pending"
    server.advance(60)
    assert status_of(sm, name, worker) == "Pending"
    assert inside(server, name, worker)["Status"] == "Pending"

    server.settle()
    assert status_of(sm, name, worker) == "Running"
    after = inside(server, name, worker)
    assert after["InstanceId"] == worker
    assert after["BootCount"] == before["BootCount"] + 1
    assert after["Volumes"] == before["Volumes"]  # same ids, same markers
    assert {v["Marker"] for v in after["Volumes"]} == {"kept-root", "kept-secondary"}
    assert (after["Hostname"], after["PrivateIp"]) == (before["Hostname"], before["PrivateIp"])


# 6: delete -------------------------------------------------------------------------------------


def test_delete_shrinks_the_group_and_records_a_scaling_operation(
    sm: Any, name: str, settle: Callable[[], float]
) -> None:
    slurm_cluster(sm, name, workers=4, continuous=True, login=False)
    settle()
    [controller] = ids_in(sm, name, "controller")
    w0, w1, w2, w3 = ids_in(sm, name, "workers")

    with pytest.raises(ClientError) as excinfo:
        sm.batch_delete_cluster_nodes(
            ClusterName=name, NodeIds=[f"i-{index:017x}" for index in range(100)]
        )
    code, message = error_of(excinfo)
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 99" in message

    with pytest.raises(ClientError) as excinfo:  # 99 is allowed: each one fails on its own
        sm.batch_delete_cluster_nodes(
            ClusterName=name, NodeIds=[f"i-{index:017x}" for index in range(99)]
        )
    code, message = error_of(excinfo)
    assert code == "ValidationException"
    assert "NodeIdNotFound" in message and "less than or equal" not in message

    deleted = sm.batch_delete_cluster_nodes(
        ClusterName=name, NodeIds=[w0, controller, w1, UNKNOWN_ID, w1]
    )
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert deleted["Successful"] == [w0, w1]
    no_logical_keys(deleted)
    failed = failures(deleted)
    assert list(failed) == [controller, UNKNOWN_ID]
    for node_id, item in failed.items():
        assert set(item) == {"NodeId", "Code", "Message"}
        assert node_id in item["Message"]
    assert failed[controller]["Code"] == "NodeIdInUse"
    assert "controller" in failed[controller]["Message"]
    assert failed[UNKNOWN_ID]["Code"] == "NodeIdNotFound"
    assert groups_of(sm, name)["workers"]["TargetCount"] == 2  # at once, w1 counted once
    assert {status_of(sm, name, i) for i in (w0, w1)} == {"ShuttingDown"}

    # Every node failing is an HTTP 400, and changes nothing.
    with pytest.raises(ClientError) as excinfo:
        sm.batch_delete_cluster_nodes(ClusterName=name, NodeIds=[controller, w0, UNKNOWN_ID])
    assert error_of(excinfo)[0] == "ValidationException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert groups_of(sm, name)["workers"]["TargetCount"] == 2

    [summary] = sm.list_cluster_operations(ClusterName=name)["ClusterOperationSummaries"]
    assert (summary["Type"], summary["Status"]) == ("Scaling", "InProgress")
    operation_id = summary["OperationId"]
    operation = sm.describe_cluster_operation(ClusterName=name, OperationId=operation_id)
    assert (operation["OperationId"], operation["Status"]) == (operation_id, "InProgress")
    [scaling] = operation["ScalingDetails"]
    assert scaling["InstanceGroupName"] == "workers"
    assert scaling["Status"] == "InProgress"
    assert scaling["Original"]["CurrentCount"] == 4
    assert scaling["Original"]["TargetCount"] == 4
    assert scaling["Desired"]["TargetCount"] == 2

    settle()
    remaining = all_nodes(sm, name)
    assert sorted(n["InstanceId"] for n in remaining) == sorted([controller, w2, w3])
    assert {n["InstanceStatus"]["Status"] for n in remaining} == {"Running"}
    workers = groups_of(sm, name)["workers"]
    assert (workers["CurrentCount"], workers["TargetCount"]) == (2, 2)
    [summary] = sm.list_cluster_operations(ClusterName=name)["ClusterOperationSummaries"]
    assert (summary["OperationId"], summary["Status"]) == (operation_id, "Done")
    operation = sm.describe_cluster_operation(ClusterName=name, OperationId=operation_id)
    assert operation["Status"] == "Done"
    assert [d["Status"] for d in operation["ScalingDetails"]] == ["Done"]
    for gone in (w0, w1):
        with pytest.raises(sm.exceptions.ResourceNotFound):
            sm.describe_cluster_node(ClusterName=name, NodeId=gone)


# 7: every intermediate state under the manual clock ------------------------------------------


def poll(
    look: Callable[[], Any], advance: Callable[[float], float], done: Callable[[Any], bool]
) -> list[Any]:
    """What a client sees polling after every 30 HyperPod seconds: the first look, then each
    change, until `done` (at most an hour of HyperPod time)."""
    seen = [look()]
    for _ in range(120):
        if done(seen[-1]):
            return seen
        advance(30)
        now = look()
        if now != seen[-1]:
            seen.append(now)
    raise AssertionError(f"never done: {seen}")


def test_polling_sees_every_state_of_create_replace_and_reboot(
    sm: Any, name: str, advance: Callable[[float], float]
) -> None:
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("solo", 1), group("rest", 2)])

    def cluster_state() -> tuple[str, tuple[str, ...]]:
        status = sm.describe_cluster(ClusterName=name)["ClusterStatus"]
        nodes = all_nodes(sm, name)
        return status, tuple(sorted({n["InstanceStatus"]["Status"] for n in nodes}))

    seen = poll(cluster_state, advance, lambda state: state[0] != "Creating")
    assert seen == [
        ("Creating", ()),  # cluster-level resources first: no instance yet
        ("Creating", ("Pending",)),
        ("InService", ("Running",)),
    ]

    def solo() -> tuple[str, str]:
        [node] = [n for n in all_nodes(sm, name) if n["InstanceGroupName"] == "solo"]
        return node["InstanceId"], node["InstanceStatus"]["Status"]

    old, status = solo()
    assert status == "Running"
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[old])
    seen = poll(solo, advance, lambda state: state[0] != old and state[1] == "Running")
    new = seen[-1][0]
    assert INSTANCE_ID.fullmatch(new)
    assert seen == [(old, "ShuttingDown"), (new, "Pending"), (new, "Running")]

    sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[new])
    seen = poll(solo, advance, lambda state: state[1] == "Running")
    assert seen == [(new, "Pending"), (new, "Running")]
    assert {n["InstanceStatus"]["Status"] for n in all_nodes(sm, name)} == {"Running"}


# 8: events -------------------------------------------------------------------------------------


def all_events(sm: Any, cluster: str, **kwargs: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_events").paginate(ClusterName=cluster, **kwargs)
    return [event for page in pages for event in page["Events"]]


def test_a_replace_writes_its_events_which_list_filter_and_page(
    sm: Any, name: str, settle: Callable[[], float], advance: Callable[[float], float]
) -> None:
    eks_cluster(sm, name)
    sm.create_cluster(ClusterName=f"{name}-classic", InstanceGroups=[group("g", 1)])
    settle()
    node = all_nodes(sm, name, IncludeNodeLogicalIds=True, InstanceGroupNameContains="a")[0]
    old, logical = node["InstanceId"], node["NodeLogicalId"]
    started_at = advance(5)
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[old])
    settle()
    new = sm.describe_cluster_node(ClusterName=name, NodeLogicalId=logical)["NodeDetails"][
        "InstanceId"
    ]

    events = all_events(sm, name)  # default: Descending
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)
    ids = [e["EventId"] for e in events]
    assert len(set(ids)) == len(ids)
    ascending = all_events(sm, name, SortOrder="Ascending")
    assert [e["EventId"] for e in ascending] == ids[::-1]
    assert {e["ClusterName"] for e in events} == {name}

    def about_this_node(event: dict[str, Any]) -> bool:
        return event.get("InstanceId") in (old, new) or new in event["Description"]

    # The replace started `started_at`, at least 5 s after every earlier event.
    recent = [e for e in ascending if e["EventTime"].timestamp() > started_at - 1]
    mine = [e for e in recent if about_this_node(e)]
    where = f"Cluster {name} and InstanceGroup a"
    assert [(e["Description"], e.get("InstanceId")) for e in mine] == [
        (f"Instance replacement started successfully in {where}", old),
        (f"EC2 Instance {old} successfully terminated in {where}", old),
        (f"EC2 Instance {new} successfully provisioned in {where}", None),
        (f"Instance lifecycle script execution for EC2 Instance {new} has Started", new),
        (f"Instance lifecycle script execution for EC2 Instance {new} has Succeeded", new),
        (f"Instance {new} replacement in {where} completed successfully", new),
    ]
    offsets = [round(e["EventTime"].timestamp() - started_at) for e in mine]
    assert offsets == [0, 120, 120, 120, 360, 360]  # terminate 120 s, provision 240 s
    assert all(e["ResourceType"] == "Instance" and e["InstanceGroupName"] == "a" for e in mine)

    # Filters give exactly the matching events, in the same order; MaxResults=3 pages walk
    # every one of them once.
    for kwargs, keep in (
        ({"NodeId": old}, lambda e: e.get("InstanceId") == old),
        ({"NodeId": new}, lambda e: e.get("InstanceId") == new),
        ({"ResourceType": "InstanceGroup"}, lambda e: e["ResourceType"] == "InstanceGroup"),
        ({"ResourceType": "Cluster"}, lambda e: e["ResourceType"] == "Cluster"),
        ({"InstanceGroupName": "b"}, lambda e: e.get("InstanceGroupName") == "b"),
        ({}, lambda e: True),
    ):
        expected = [e["EventId"] for e in events if keep(e)]
        assert expected, kwargs
        filtered = all_events(sm, name, **kwargs)
        assert [e["EventId"] for e in filtered] == expected, kwargs
        pages = list(
            sm.get_paginator("list_cluster_events").paginate(
                ClusterName=name, PaginationConfig={"PageSize": 3}, **kwargs
            )
        )
        assert all(len(page["Events"]) == 3 for page in pages[:-1]), kwargs
        assert 1 <= len(pages[-1]["Events"]) <= 3 and "NextToken" not in pages[-1]
        paged = [e["EventId"] for page in pages for e in page["Events"]]
        assert paged == expected, kwargs

    lcs_started = mine[3]
    described = sm.describe_cluster_event(ClusterName=name, EventId=lcs_started["EventId"])
    details = described["EventDetails"]
    assert {key: details[key] for key in lcs_started} == lcs_started
    metadata = details["EventDetails"]["EventMetadata"]["Instance"]
    assert metadata["LcsExecutionState"] == "Started"
    assert metadata["NodeLogicalId"] == logical

    unknown = str(uuid.uuid4())
    with pytest.raises(sm.exceptions.ResourceNotFound) as excinfo:
        sm.describe_cluster_event(ClusterName=name, EventId=unknown)
    assert unknown in error_of(excinfo)[1]
    for call, extra in (
        (sm.list_cluster_events, {}),
        (sm.describe_cluster_event, {"EventId": unknown}),
    ):
        with pytest.raises(ClientError) as excinfo:
            call(ClusterName=f"{name}-classic", **extra)
        assert error_of(excinfo)[0] == "ValidationException"


# 9: many clients at once -----------------------------------------------------------------------


def test_fifty_clients_replacing_overlapping_nodes_start_each_once(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("workers", 10)])
    server.settle()
    original = ids_in(sm, name, "workers")
    assert len(original) == 10
    rng = random.Random(20251120)
    picks = [rng.sample(original, 3) for _ in range(50)]
    picks[:10] = [[original[i], original[(i + 1) % 10], original[(i + 3) % 10]] for i in range(10)]
    # Fifty clients, each with its own connections; one session builds them (a session per
    # client would load the SageMaker model fifty times).
    session = boto3.session.Session()
    clients = [
        session.client(
            "sagemaker",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        for _ in picks
    ]
    barrier = threading.Barrier(len(clients))
    responses: list[dict[str, Any] | Exception] = [Exception("not run")] * len(clients)

    def replace(index: int) -> None:
        barrier.wait()
        try:
            responses[index] = clients[index].batch_replace_cluster_nodes(
                ClusterName=name, NodeIds=picks[index]
            )
        except Exception as error:  # reported below, with the others
            responses[index] = error

    threads = [threading.Thread(target=replace, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    errors = [r for r in responses if isinstance(r, Exception)]
    assert errors == []

    started: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for picked, response in zip(picks, responses, strict=True):
        assert isinstance(response, dict)
        failed = response.get("Failed", [])
        assert sorted(response.get("Successful", []) + [f["NodeId"] for f in failed]) == sorted(
            picked
        )
        assert {f["ErrorCode"] for f in failed} <= {"InstanceIdInUse"}
        started.update(response.get("Successful", []))
        refused.update(f["NodeId"] for f in failed)
    asked = Counter(node for picked in picks for node in picked)
    assert started == Counter(original)  # every node exactly once
    assert refused == asked - started

    server.settle()
    nodes = all_nodes(sm, name)
    workers = groups_of(sm, name)["workers"]
    assert len(nodes) == workers["TargetCount"] == workers["CurrentCount"] == 10
    assert {n["InstanceStatus"]["Status"] for n in nodes} == {"Running"}
    assert not {n["InstanceId"] for n in nodes} & set(original)
    assert len({n["InstanceId"] for n in nodes}) == 10


# Bugs found while writing these tests ---------------------------------------------------------


def test_update_cluster_software_waits_for_busy_nodes(server: ServerProcess, name: str) -> None:
    sm = server.client()
    slurm_cluster(sm, name, workers=2, login=False)
    server.settle()
    assert server.admin("POST", f"/_hyperpod/clusters/{name}/legacy")[0] == 200
    w0, w1 = ids_in(sm, name, "workers")
    root = volume(inside(server, name, w1), "root")["VolumeId"]
    # Reboot is allowed on a legacy cluster (docs/fidelity.md); the update comes during it.
    assert sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[w1])["Successful"] == [w1]
    # A node busy with another operation makes the update a conflict, not a partial patch.
    with pytest.raises(ClientError) as excinfo:
        sm.update_cluster_software(ClusterName=name)
    assert excinfo.value.response["Error"]["Code"] == "ConflictException"
    assert w1 in excinfo.value.response["Error"]["Message"]
    server.settle()
    sm.update_cluster_software(ClusterName=name)
    server.settle()
    # Either way, a cluster that is no longer legacy has every node patched.
    for node_id in (w0, w1):
        details = sm.describe_cluster_node(ClusterName=name, NodeId=node_id)["NodeDetails"]
        assert "LastSoftwareUpdateTime" in details, node_id
    assert volume(inside(server, name, w1), "root")["VolumeId"] != root


def test_every_per_node_message_names_the_cluster(server: ServerProcess, name: str) -> None:
    sm = server.client()
    slurm_cluster(sm, name, workers=2, login=False)
    server.settle()
    eks_cluster(sm, f"{name}-p", [group("g", 1)])
    server.advance(360)  # InService, its node still Pending
    [controller] = ids_in(sm, name, "controller")
    w0, _ = ids_in(sm, name, "workers")
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[w0])
    busy = sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[controller, UNKNOWN_ID, w0])
    [pending] = ids_in(sm, f"{name}-p", "g")
    early = sm.batch_replace_cluster_nodes(ClusterName=f"{name}-p", NodeIds=[pending])
    failed = [(name, item) for item in busy["Failed"]]
    failed += [(f"{name}-p", item) for item in early["Failed"]]
    assert sorted(item["ErrorCode"] for _, item in failed) == [
        "InstanceIdInUse",
        "InstanceIdInUse",
        "InstanceIdNotFound",
        "InvalidInstanceStatus",
    ]
    unnamed = [item for cluster, item in failed if f"cluster {cluster}" not in item["Message"]]
    assert unnamed == []
