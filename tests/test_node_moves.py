"""MoveClusterNodes through boto3 and the AWS CLI against the real server, under the manual
clock: every state a moving node shows, in the cluster it shows in, the per-node error codes
of the model, the request's refusals, and the ClientToken."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore.exceptions import ClientError

from tests.support import Aws, ServerProcess, error_of, group

UNKNOWN_ID = "i-0123456789abcdef0"
UNKNOWN_LOGICAL_ID = "00000000-0000-4000-8000-000000000000"
STORAGE = [{"EbsVolumeConfig": {"VolumeSizeInGB": 500}}]


def eks(sm: Any, name: str, *groups: dict[str, Any], **extra: Any) -> str:
    """A Continuous EKS cluster of the given groups; its ARN."""
    return str(
        sm.create_cluster(
            ClusterName=name,
            InstanceGroups=list(groups),
            NodeProvisioningMode="Continuous",
            Orchestrator={
                "Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}
            },
            **extra,
        )["ClusterArn"]
    )


def status_in(sm: Any, cluster: str, node_id: str) -> str | None:
    """The node's status as DescribeClusterNode on `cluster` shows it; None if not found."""
    try:
        details = sm.describe_cluster_node(ClusterName=cluster, NodeId=node_id)["NodeDetails"]
    except sm.exceptions.ResourceNotFound:
        return None
    return str(details["InstanceStatus"]["Status"])


def listed(sm: Any, cluster: str) -> dict[str, tuple[str, str]]:
    """instance id -> (group, status) of every node ListClusterNodes shows."""
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster)
    return {
        node["InstanceId"]: (node["InstanceGroupName"], node["InstanceStatus"]["Status"])
        for page in pages
        for node in page["ClusterNodeSummaries"]
    }


def counts(sm: Any, cluster: str) -> dict[str, tuple[int, int]]:
    groups = sm.describe_cluster(ClusterName=cluster)["InstanceGroups"]
    return {g["InstanceGroupName"]: (g["TargetCount"], g["CurrentCount"]) for g in groups}


def running(sm: Any, cluster: str, group_name: str) -> list[str]:
    return sorted(
        node_id
        for node_id, (group_name_, status) in listed(sm, cluster).items()
        if group_name_ == group_name and status == "Running"
    )


def descriptions(sm: Any, cluster: str, node_id: str) -> list[str]:
    events = sm.list_cluster_events(ClusterName=cluster, NodeId=node_id, SortOrder="Ascending")
    return [event["Description"] for event in events["Events"]]


def move(sm: Any, source: str, source_group: str, target: str, target_group: str, **kw: Any) -> Any:
    return sm.move_cluster_nodes(
        SourceClusterArn=source,
        SourceInstanceGroupName=source_group,
        TargetClusterArn=target,
        TargetInstanceGroupName=target_group,
        **kw,
    )


def test_a_moved_node_keeps_its_instance_and_shows_every_state_where_the_docs_say(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    source = eks(sm, f"{name}-src", group("a", 3, InstanceStorageConfigs=STORAGE))
    target = eks(sm, f"{name}-dst", group("t", 1, InstanceStorageConfigs=STORAGE))
    server.settle()
    node_id = running(sm, f"{name}-src", "a")[0]
    before = sm.describe_cluster_node(ClusterName=f"{name}-src", NodeId=node_id)["NodeDetails"]
    status, inside = server.admin("GET", f"/_hyperpod/clusters/{name}-src/nodes/{node_id}")
    assert status == 200
    old_volumes = {volume["VolumeId"] for volume in inside["Volumes"]}
    assert [volume["Kind"] for volume in inside["Volumes"]] == ["root", "secondary"]
    for volume in old_volumes:
        marker = f"/_hyperpod/clusters/{name}-src/nodes/{node_id}/volumes/{volume}/marker"
        assert server.admin("PUT", marker, "checkpoint-7")[0] == 204
    interface_id = f"eni-{os.getpid() % 65536:04x}f{int(name.rsplit('-', 1)[1]):012x}"
    interface = sm.attach_cluster_node_network_interface(
        ClusterName=f"{name}-src", NodeId=node_id, NetworkInterfaceId=interface_id
    )

    moved = move(sm, source, "a", target, "t", NodeIds=[node_id, UNKNOWN_ID])
    assert moved["Successful"] == [node_id]
    assert [(f["NodeId"], f["Code"]) for f in moved["Failed"]] == [(UNKNOWN_ID, "NodeIdNotFound")]
    assert "SuccessfulNodeLogicalIds" not in moved and "FailedNodeLogicalIds" not in moved

    # Detaching: in the source cluster only; the source group no longer counts it.
    assert status_in(sm, f"{name}-src", node_id) == "DetachInProgress"
    assert listed(sm, f"{name}-src")[node_id] == ("a", "DetachInProgress")
    assert status_in(sm, f"{name}-dst", node_id) is None
    assert counts(sm, f"{name}-src") == {"a": (2, 2)}

    server.advance(120)  # move_detach
    # Handed off: in the target cluster only, attaching, its lifecycle scripts running.
    assert status_in(sm, f"{name}-src", node_id) is None
    assert node_id not in listed(sm, f"{name}-src")
    assert listed(sm, f"{name}-dst")[node_id] == ("t", "AttachInProgress")
    assert counts(sm, f"{name}-dst") == {"t": (2, 1)}

    server.settle()
    after = sm.describe_cluster_node(ClusterName=f"{name}-dst", NodeId=node_id)["NodeDetails"]
    assert after["InstanceStatus"]["Status"] == "Running"
    assert after["InstanceGroupName"] == "t"
    for kept in ("InstanceId", "NodeLogicalId", "PrivatePrimaryIp", "PrivateDnsHostname"):
        assert after[kept] == before[kept], kept
    assert after["LaunchTime"] == before["LaunchTime"]
    assert counts(sm, f"{name}-dst") == {"t": (2, 2)}
    assert counts(sm, f"{name}-src") == {"a": (2, 2)}

    # Root and secondary volumes replaced, their data gone; the interface kept.
    status, inside = server.admin("GET", f"/_hyperpod/clusters/{name}-dst/nodes/{node_id}")
    assert status == 200
    assert [volume["Kind"] for volume in inside["Volumes"]] == ["root", "secondary"]
    assert not old_volumes & {volume["VolumeId"] for volume in inside["Volumes"]}
    assert all(volume["Marker"] is None for volume in inside["Volumes"])
    assert inside["BootCount"] == 2
    assert inside["NetworkInterfaces"] == [
        {
            "NetworkInterfaceId": interface_id,
            "AttachmentId": interface["AttachmentId"],
            "DeviceIndex": 1,
            "AttachTime": pytest.approx(inside["NetworkInterfaces"][0]["AttachTime"]),
        }
    ]
    status, inventory = server.admin("GET", "/_hyperpod/instances")
    line = next(i for i in inventory["Instances"] if i["InstanceId"] == node_id)
    assert line["NetworkInterfaceIds"] == [interface_id]
    assert set(line["VolumeIds"]) == {volume["VolumeId"] for volume in inside["Volumes"]}

    # Events on both clusters, each naming the instance.
    assert descriptions(sm, f"{name}-src", node_id)[-2:] == [
        f"Instance {node_id} move from Cluster {name}-src and InstanceGroup a to Cluster "
        f"{name}-dst and InstanceGroup t started successfully",
        f"EC2 Instance {node_id} successfully detached from Cluster {name}-src and InstanceGroup a",
    ]
    assert descriptions(sm, f"{name}-dst", node_id) == [
        f"EC2 Instance {node_id} from Cluster {name}-src and InstanceGroup a attaching to "
        f"Cluster {name}-dst and InstanceGroup t",
        f"Instance lifecycle script execution for EC2 Instance {node_id} has Started",
        f"Instance lifecycle script execution for EC2 Instance {node_id} has Succeeded",
        f"Instance {node_id} move to Cluster {name}-dst and InstanceGroup t completed successfully",
    ]
    # It is a node of the target now: the target's operations act on it.
    rebooted = sm.batch_reboot_cluster_nodes(ClusterName=f"{name}-dst", NodeIds=[node_id])
    assert rebooted["Successful"] == [node_id]


def test_logical_ids_and_instance_count_move_nodes_between_groups_of_one_cluster(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    arn = eks(sm, name, group("a", 4), group("b", 0))
    server.settle()
    nodes = sm.list_cluster_nodes(ClusterName=name, IncludeNodeLogicalIds=True)
    by_id = {n["InstanceId"]: n["NodeLogicalId"] for n in nodes["ClusterNodeSummaries"]}
    first = sorted(by_id)[0]

    moved = move(sm, arn, "a", arn, "b", NodeLogicalIds=[by_id[first], UNKNOWN_LOGICAL_ID])
    assert moved["SuccessfulNodeLogicalIds"] == [by_id[first]]
    assert [(f["NodeLogicalId"], f["Code"]) for f in moved["FailedNodeLogicalIds"]] == [
        (UNKNOWN_LOGICAL_ID, "NodeIdNotFound")
    ]
    assert "Successful" not in moved and "Failed" not in moved
    details = sm.describe_cluster_node(ClusterName=name, NodeLogicalId=by_id[first])
    assert details["NodeDetails"]["InstanceStatus"]["Status"] == "DetachInProgress"

    # More than can go: nothing moves.
    with pytest.raises(ClientError) as refused:
        move(sm, arn, "a", arn, "b", InstanceCount=4)
    code, message = error_of(refused)
    assert code == "ValidationException"
    assert message == (
        f"Only 3 node(s) of instance group a of cluster {name} can be moved to instance group "
        f"b of cluster {name}; the request asks for 4. No node was moved."
    )
    assert counts(sm, name) == {"a": (3, 3), "b": (0, 0)}

    chosen = move(sm, arn, "a", arn, "b", InstanceCount=2)["Successful"]
    assert len(chosen) == 2 and first not in chosen
    assert {listed(sm, name)[node_id] for node_id in chosen} == {("a", "DetachInProgress")}
    server.settle()
    assert running(sm, name, "b") == sorted([first, *chosen])
    assert counts(sm, name) == {"a": (1, 1), "b": (3, 3)}
    assert (
        sm.describe_cluster_node(ClusterName=name, NodeId=first)["NodeDetails"]["NodeLogicalId"]
        == (by_id[first])
    )


def test_each_node_that_cannot_move_gets_the_models_error_code(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    subnets = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-a"]}
    other = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-b"]}
    arn = eks(
        sm,
        name,
        group("a", 6, OverrideVpcConfig=subnets),
        group("t", 0, OverrideVpcConfig=subnets),
        group("gpu", 0, instance_type="ml.g5.8xlarge", OverrideVpcConfig=subnets),
        group("far", 0, OverrideVpcConfig=other),
        NodeRecovery="None",
    )
    server.settle()
    a, b, c, d, e, f = running(sm, name, "a")
    sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[a])
    status, _ = server.admin(
        "POST",
        "/_hyperpod/faults",
        {"Kind": "hardware", "Cluster": name, "InstanceId": b, "Type": "GpuXid79"},
    )
    assert status == 201
    server.advance(15)  # the health agent finds it; NodeRecovery None leaves it in Failure
    assert status_in(sm, name, b) == "Failure"
    volume_id = f"vol-{os.getpid() % 65536:04x}f{int(name.rsplit('-', 1)[1]):012x}"
    sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=c, VolumeId=volume_id)

    answer = move(sm, arn, "a", arn, "t", NodeIds=[a, b, c, d, d])
    assert answer["Successful"] == [d]
    failed = {item["NodeId"]: (item["Code"], item["Message"]) for item in answer["Failed"]}
    assert failed == {
        a: (
            "NodeIdInUse",
            f"Node {a} of cluster {name} is being rebooted by another operation; retry when it "
            "has finished.",
        ),
        b: (
            "InvalidNodeStatus",
            f"Node {b} of cluster {name} is in Failure status; only Running nodes can be moved.",
        ),
        c: (
            "InvalidNodeStatus",
            f"Node {c} has an Amazon EBS volume attached; detach it with DetachClusterNodeVolume "
            "before you move the node.",
        ),
    }
    codes = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .shape_for("MoveClusterNodesErrorCode")
    )
    assert {code for code, _ in failed.values()} | {"NodeIdNotFound"} <= set(codes.enum)
    # Moving already: in use.
    again = move(sm, arn, "a", arn, "t", NodeIds=[d, e])
    assert again["Successful"] == [e]
    assert [(x["NodeId"], x["Code"]) for x in again["Failed"]] == [(d, "NodeIdInUse")]

    # A node whose type or subnets the target cannot take; refused alone, the request fails.
    for target_group, code, why in [
        (
            "gpu",
            "NodeInstanceTypeMismatch",
            f"Instance group gpu of cluster {name} does not support the instance type "
            f"ml.c5.xlarge of node {f}.",
        ),
        (
            "far",
            "InvalidNodeStatus",
            f"Node {f} is not in a subnet of instance group far of cluster {name}.",
        ),
    ]:
        with pytest.raises(ClientError) as refused:
            move(sm, arn, "a", arn, target_group, NodeIds=[f])
        assert error_of(refused) == (
            "ValidationException",
            f"None of the nodes can be moved: {f} ({code}): {why}",
        )
    assert status_in(sm, name, f) == "Running"
    assert counts(sm, name)["a"] == (4, 2)


def test_requests_that_cannot_be_carried_out_are_refused_whole(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    arn = eks(sm, name, group("a", 2, MinInstanceCount=1), group("b", 0))
    slurm = sm.create_cluster(
        ClusterName=f"{name}-slurm",
        NodeProvisioningMode="Continuous",
        Orchestrator={"Slurm": {}},
        InstanceGroups=[group("controller", 1, SlurmConfig={"NodeType": "Controller"})],
    )["ClusterArn"]
    classic = sm.create_cluster(
        ClusterName=f"{name}-classic",
        Orchestrator={
            "Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}-classic"}
        },
        InstanceGroups=[group("a", 1)],
    )["ClusterArn"]
    server.settle()
    # Created after the settle: still Creating.
    late = eks(sm, f"{name}-late", group("t", 1))
    node_id = running(sm, name, "a")[0]
    other_account = arn.replace(":123456789012:", ":210987654321:")
    unknown = arn[: -len(arn.split("/")[-1])] + "zzzzzzzzzzzz"

    # botocore checks a minimum itself; the server is what a client without that check meets.
    unchecked = server.client(parameter_validation=False)

    def refused(code: str, message: str, **kw: Any) -> None:
        request = {
            "SourceClusterArn": arn,
            "SourceInstanceGroupName": "a",
            "TargetClusterArn": arn,
            "TargetInstanceGroupName": "b",
            "NodeIds": [node_id],
            **kw,
        }
        request = {key: value for key, value in request.items() if value is not None}
        with pytest.raises(ClientError) as caught:
            unchecked.move_cluster_nodes(**request)
        assert error_of(caught) == (code, message)

    exactly_one = "Specify exactly one of NodeIds, NodeLogicalIds, or InstanceCount."
    refused("ValidationException", exactly_one, NodeIds=None)
    refused("ValidationException", exactly_one, InstanceCount=1)
    refused("ValidationException", exactly_one, NodeLogicalIds=["x1"])
    refused("ResourceNotFound", f"Could not find cluster '{unknown}'.", TargetClusterArn=unknown)
    # Another account's cluster is not one of the caller's.
    refused(
        "ResourceNotFound",
        f"Could not find cluster '{other_account}'.",
        SourceClusterArn=other_account,
    )
    refused(
        "ResourceNotFound",
        f"Could not find instance group 'nope' in cluster '{name}'.",
        TargetInstanceGroupName="nope",
    )
    refused(
        "ValidationException",
        "The target instance group must be different from the source instance group when the "
        "target cluster is the source cluster.",
        TargetInstanceGroupName="a",
    )
    refused(
        "ValidationException",
        f"MoveClusterNodes is only supported for clusters orchestrated by Amazon EKS; cluster "
        f"{name}-slurm is not.",
        TargetClusterArn=slurm,
        TargetInstanceGroupName="controller",
    )
    refused(
        "ValidationException",
        f"MoveClusterNodes is only supported for clusters with NodeProvisioningMode set to "
        f"Continuous; cluster {name}-classic is not.",
        TargetClusterArn=classic,
    )
    refused(
        "ValidationException",
        f"Cluster {name}-late is in Creating status; MoveClusterNodes needs both clusters "
        "InService.",
        TargetClusterArn=late,
        TargetInstanceGroupName="t",
    )
    # Both nodes leaving would take the group below its MinCount of 1.
    refused(
        "ValidationException",
        "Moving 2 node(s) would reduce instance group a to 0 serving nodes, below its MinCount "
        "of 1.",
        NodeIds=None,
        InstanceCount=2,
    )
    # The model's limits, checked before anything else, in its words.
    refused(
        "ValidationException",
        "1 validation error detected: Value '0' at 'instanceCount' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1",
        NodeIds=None,
        InstanceCount=0,
    )
    many = [f"i-{n:017x}" for n in range(51)]
    with pytest.raises(ClientError) as caught:
        move(sm, arn, "a", arn, "b", NodeIds=many)
    code, message = error_of(caught)
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 50" in message
    assert counts(sm, name) == {"a": (2, 2), "b": (0, 0)}


def test_a_client_token_answers_the_first_move_again(server: ServerProcess, name: str) -> None:
    sm = server.client()
    arn = eks(sm, name, group("a", 3), group("b", 0))
    server.settle()
    first = move(sm, arn, "a", arn, "b", InstanceCount=1, ClientToken="move-once")
    server.settle()
    again = move(sm, arn, "a", arn, "b", InstanceCount=1, ClientToken="move-once")
    assert again["Successful"] == first["Successful"]
    assert counts(sm, name) == {"a": (2, 2), "b": (1, 1)}
    with pytest.raises(ClientError) as caught:
        move(sm, arn, "a", arn, "b", InstanceCount=2, ClientToken="move-once")
    assert error_of(caught) == (
        "ValidationException",
        "The ClientToken move-once was already used with different parameters.",
    )
    # boto3 fills a new token into each call that has none: two calls, two moves.
    move(sm, arn, "a", arn, "b", InstanceCount=1)
    move(sm, arn, "a", arn, "b", InstanceCount=1)
    server.settle()
    assert counts(sm, name) == {"a": (0, 0), "b": (3, 3)}


def test_a_move_whose_target_goes_is_called_off_and_a_failing_script_is_retried(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    source = eks(sm, f"{name}-src", group("a", 2))
    target = eks(sm, f"{name}-dst", group("t", 1), group("u", 0))
    server.settle()
    first, second = running(sm, f"{name}-src", "a")
    move(sm, source, "a", target, "u", NodeIds=[first])
    sm.update_cluster(ClusterName=f"{name}-dst", InstanceGroupsToDelete=["u"])
    server.advance(120)
    # The target group is being deleted: the node serves its own group again.
    assert listed(sm, f"{name}-src")[first] == ("a", "Running")
    assert counts(sm, f"{name}-src") == {"a": (2, 2)}
    assert descriptions(sm, f"{name}-src", first)[-1].startswith(
        f"Instance {first} move to Cluster"
    )
    server.settle()

    # The target's lifecycle script fails on the arriving node: it is the target's node now,
    # and is tried again on a new instance, as any of its nodes would be.
    status, _ = server.admin(
        "POST",
        "/_hyperpod/faults",
        {"Kind": "lifecycle_script", "Cluster": f"{name}-dst", "InstanceGroupName": "t"},
    )
    assert status == 201
    logical = sm.describe_cluster_node(ClusterName=f"{name}-src", NodeId=second)["NodeDetails"][
        "NodeLogicalId"
    ]
    move(sm, source, "a", target, "t", NodeIds=[second])
    server.advance(120 + 240)
    assert listed(sm, f"{name}-dst")[second] == ("t", "Failure")
    server.settle()
    details = sm.describe_cluster_node(ClusterName=f"{name}-dst", NodeLogicalId=logical)
    assert details["NodeDetails"]["InstanceStatus"]["Status"] == "Running"
    assert details["NodeDetails"]["InstanceId"] != second
    assert counts(sm, f"{name}-dst") == {"t": (2, 2)}


def model_data_path(tmp_path: Path) -> Path:
    """A botocore data path holding the installed botocore's SageMaker model (a link to it, as
    `aws configure add-model` would add one): the AWS CLI v1 carries a botocore of its own,
    whose SageMaker model predates MoveClusterNodes."""
    installed = Path(botocore.__file__).parent / "data" / "sagemaker" / "2017-07-24"
    models = tmp_path / "models" / "sagemaker" / "2017-07-24"
    models.mkdir(parents=True)
    for source in installed.glob("service-2.json*"):
        os.symlink(source, models / source.name)
    return tmp_path / "models"


def test_the_aws_cli_moves_a_node(server: ServerProcess, name: str, tmp_path: Path) -> None:
    sm = server.client()
    source = eks(sm, f"{name}-src", group("a", 2))
    target = eks(sm, f"{name}-dst", group("t", 0))
    server.settle()
    node_id = running(sm, f"{name}-src", "a")[0]
    aws = Aws(tmp_path, server.url)
    aws.env["AWS_DATA_PATH"] = str(model_data_path(tmp_path))
    answer = aws.json(
        "move-cluster-nodes",
        "--source-cluster-arn",
        source,
        "--source-instance-group-name",
        "a",
        "--target-cluster-arn",
        target,
        "--target-instance-group-name",
        "t",
        "--node-ids",
        node_id,
        UNKNOWN_ID,
    )
    assert answer["Successful"] == [node_id]
    assert [(f["NodeId"], f["Code"]) for f in answer["Failed"]] == [(UNKNOWN_ID, "NodeIdNotFound")]
    shown = aws.json("describe-cluster-node", "--cluster-name", f"{name}-src", "--node-id", node_id)
    assert shown["NodeDetails"]["InstanceStatus"]["Status"] == "DetachInProgress"
    server.settle()
    shown = aws.json("describe-cluster-node", "--cluster-name", f"{name}-dst", "--node-id", node_id)
    assert shown["NodeDetails"]["InstanceStatus"]["Status"] == "Running"
    refused = aws.run(
        "move-cluster-nodes",
        "--source-cluster-arn",
        source,
        "--source-instance-group-name",
        "a",
        "--target-cluster-arn",
        target,
        "--target-instance-group-name",
        "t",
        "--instance-count",
        "5",
    )
    assert refused.returncode == 255
    assert "(ValidationException)" in refused.stderr
    assert "the request asks for 5. No node was moved." in refused.stderr


README = Path(__file__).parent.parent / "README.md"


def readme_blocks(section: str) -> list[str]:
    part = README.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", part, re.S)


def test_the_readme_moves_a_node_and_attaches_a_volume(tmp_path: Path) -> None:
    """The README's blocks, as written, on a server of their own (faster than `make run`'s,
    so the waits are short)."""
    server = ServerProcess(tmp_path / "data", "--speed", "600").start()
    try:
        port = server.url.rsplit(":", 1)[1]
        blocks = readme_blocks("Move nodes, attach volumes")
        assert len(blocks) == 2
        script = "set -e\n" + "\n".join(blocks).replace("4577", port)
        env = Aws(tmp_path, server.url, mode="env").env
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        done = subprocess.run(
            ["bash", "-c", script],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r'"Successful": \[\s*"i-[0-9a-f]{17}"\s*\]', done.stdout), done.stdout
    assert '"Status": "attaching"' in done.stdout
    assert '"AttachmentId": "eni-attach-' in done.stdout
    assert '"AttachedVolumes":[{"VolumeId":"vol-0123456789abcdef0"' in done.stdout
    assert '"Status": "detaching"' in done.stdout


def test_the_target_checks_an_arriving_node_and_a_fault_moves_with_its_instance(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    source = eks(sm, f"{name}-src", group("a", 3))
    target = eks(
        sm,
        f"{name}-dst",
        group("checked", 0, OnStartDeepHealthChecks=["InstanceConnectivity"]),
        group("plain", 0),
        NodeRecovery="None",
    )
    server.settle()
    checked, faulty, _ = running(sm, f"{name}-src", "a")
    status, _ = server.admin(
        "POST",
        "/_hyperpod/faults",
        {
            "Kind": "hardware",
            "Cluster": f"{name}-src",
            "InstanceId": faulty,
            "Type": "GpuXid79",
            "DetectionDelaySeconds": 3600,
        },
    )
    assert status == 201
    move(sm, source, "a", target, "checked", NodeIds=[checked])
    move(sm, source, "a", target, "plain", NodeIds=[faulty])
    server.advance(120 + 240)  # detached, then the target's lifecycle scripts
    assert status_in(sm, f"{name}-dst", checked) == "DeepHealthCheckInProgress"
    assert status_in(sm, f"{name}-dst", faulty) == "Running"
    server.advance(300)  # InstanceConnectivity
    assert status_in(sm, f"{name}-dst", checked) == "Running"
    # The fault is the instance's: the target's health agent finds it, an hour after the node
    # joined (its detection delay), and NodeRecovery None leaves the node in Failure.
    server.settle()
    details = sm.describe_cluster_node(ClusterName=f"{name}-dst", NodeId=faulty)["NodeDetails"]
    assert details["InstanceStatus"] == {
        "Status": "Failure",
        "Message": "GPU has fallen off the bus (NVIDIA Xid 79)",
    }


def test_a_move_survives_a_kill_of_the_server(tmp_path: Path) -> None:
    """Each step commits with its task: a server killed mid-move goes on where it was."""
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    try:
        sm = server.client()
        source = eks(sm, "src", group("a", 2))
        target = eks(sm, "dst", group("t", 0))
        server.settle()
        node_id = running(sm, "src", "a")[0]
        volume_id = "vol-0123456789abcdef0"
        other = running(sm, "src", "a")[1]
        sm.attach_cluster_node_volume(ClusterArn=source, NodeId=other, VolumeId=volume_id)
        move(sm, source, "a", target, "t", NodeIds=[node_id])
    finally:
        server.kill()
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    try:
        sm = server.client()
        assert status_in(sm, "src", node_id) == "DetachInProgress"
        server.advance(120)
        assert listed(sm, "dst")[node_id] == ("t", "AttachInProgress")
        server.settle()
        assert listed(sm, "dst")[node_id] == ("t", "Running")
        status, view = server.admin("GET", f"/_hyperpod/clusters/src/nodes/{other}")
        assert status == 200
        assert [(v["VolumeId"], v["Status"]) for v in view["AttachedVolumes"]] == [
            (volume_id, "attached")
        ]
    finally:
        server.stop()
