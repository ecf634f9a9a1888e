"""AttachClusterNodeVolume, DetachClusterNodeVolume and AttachClusterNodeNetworkInterface
through boto3 against the real server, under the manual clock: the attach states as the
answers and the admin views show them, what a reboot and a replace do to an attachment, and
each refusal."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import ServerProcess, error_of, group

UNKNOWN_ID = "i-0123456789abcdef0"
ATTACHMENT_ID = re.compile(r"eni-attach-[0-9a-f]{17}")


_serial = itertools.count(1)


def fresh(prefix: str) -> str:
    """A volume or interface id no other test of the run uses: the ids are the account's,
    across its clusters, and the tests share one server."""
    return f"{prefix}-{os.getpid() % 65536:04x}{next(_serial):013x}"


def eks(sm: Any, name: str, count: int = 2) -> str:
    return str(
        sm.create_cluster(
            ClusterName=name,
            InstanceGroups=[group("g", count)],
            NodeProvisioningMode="Continuous",
            Orchestrator={
                "Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}
            },
        )["ClusterArn"]
    )


def node_ids(sm: Any, cluster: str) -> list[str]:
    nodes = sm.list_cluster_nodes(ClusterName=cluster)["ClusterNodeSummaries"]
    return sorted(node["InstanceId"] for node in nodes)


def inside(server: ServerProcess, cluster: str, node_id: str) -> dict[str, Any]:
    status, view = server.admin("GET", f"/_hyperpod/clusters/{cluster}/nodes/{node_id}")
    assert status == 200, view
    return dict(view)


def volume_states(server: ServerProcess, cluster: str, node_id: str) -> dict[str, str]:
    view = inside(server, cluster, node_id)
    return {volume["VolumeId"]: volume["Status"] for volume in view["AttachedVolumes"]}


def now(server: ServerProcess) -> float:
    status, clock = server.admin("GET", "/_hyperpod/clock")
    assert status == 200
    return float(clock["Now"])


def test_a_volume_attaches_stays_through_a_reboot_and_detaches(
    server: ServerProcess, name: str
) -> None:
    volume, other_volume = fresh("vol"), fresh("vol")
    sm = server.client()
    arn = eks(sm, name)
    server.settle()
    first, second = node_ids(sm, name)
    started = now(server)

    answer = sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=volume)
    assert {key: answer[key] for key in ("ClusterArn", "NodeId", "VolumeId", "Status")} == {
        "ClusterArn": arn,
        "NodeId": first,
        "VolumeId": volume,
        "Status": "attaching",
    }
    assert answer["DeviceName"] == "/dev/xvdb"
    assert answer["AttachTime"].timestamp() == pytest.approx(started, abs=0.001)
    assert volume_states(server, name, first) == {volume: "attaching"}
    server.advance(5)  # volume_attach
    assert volume_states(server, name, first) == {volume: "attached"}
    # Asked again (a CSI driver's retry): the attachment as it is now.
    again = sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=volume)
    assert (again["Status"], again["DeviceName"], again["AttachTime"]) == (
        "attached",
        "/dev/xvdb",
        answer["AttachTime"],
    )
    assert (
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=other_volume)[
            "DeviceName"
        ]
        == "/dev/xvdc"
    )
    _, inventory = server.admin("GET", "/_hyperpod/instances")
    line = next(i for i in inventory["Instances"] if i["InstanceId"] == first)
    assert line["AttachedVolumeIds"] == [volume, other_volume]

    # A reboot keeps the instance, and what is attached to it.
    sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[first])
    server.settle()
    view = inside(server, name, first)
    assert view["BootCount"] == 2
    assert {v["VolumeId"]: v["Status"] for v in view["AttachedVolumes"]} == {
        volume: "attached",
        other_volume: "attached",
    }

    # Attached here: not to another node, and not detached from another.
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=second, VolumeId=volume)
    assert error_of(refused) == (
        "ValidationException",
        f"HyperPod - Ec2ErrCode: VolumeInUse : Ec2ErrMsg: {volume} is already attached to an "
        "instance",
    )
    with pytest.raises(ClientError) as refused:
        sm.detach_cluster_node_volume(ClusterArn=arn, NodeId=second, VolumeId=volume)
    assert error_of(refused) == (
        "ValidationException",
        f"HyperPod - Ec2ErrCode: InvalidAttachment.NotFound : Ec2ErrMsg: The volume '{volume}' "
        f"is not attached to instance '{second}'.",
    )

    detached = sm.detach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=volume)
    assert (detached["Status"], detached["DeviceName"], detached["AttachTime"]) == (
        "detaching",
        "/dev/xvdb",
        answer["AttachTime"],
    )
    assert volume_states(server, name, first) == {volume: "detaching", other_volume: "attached"}
    assert (
        sm.detach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=volume)["Status"]
        == "detaching"
    )
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=volume)
    assert error_of(refused)[1] == (
        f"HyperPod - Ec2ErrCode: IncorrectState : Ec2ErrMsg: Volume '{volume}' is in the "
        "'detaching' state."
    )
    server.advance(5)  # volume_detach
    assert volume_states(server, name, first) == {other_volume: "attached"}
    with pytest.raises(ClientError) as refused:
        sm.detach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=volume)
    assert error_of(refused) == (
        "ValidationException",
        f"HyperPod - Ec2ErrCode: IncorrectState : Ec2ErrMsg: Volume '{volume}' is in the "
        "'available' state.",
    )
    # Detached, it can go to another node; its device name is free again on the first.
    moved = sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=second, VolumeId=volume)
    assert (moved["Status"], moved["DeviceName"]) == ("attaching", "/dev/xvdb")
    # A detach overtakes an attach still under way.
    sm.detach_cluster_node_volume(ClusterArn=arn, NodeId=second, VolumeId=volume)
    assert volume_states(server, name, second) == {volume: "detaching"}
    server.advance(5)
    assert volume_states(server, name, second) == {}

    events = sm.list_cluster_events(ClusterName=name, NodeId=first, SortOrder="Ascending")
    texts = [event["Description"] for event in events["Events"]]
    assert f"EBS volume {volume} attached to EC2 Instance {first} as /dev/xvdb" in texts
    assert f"EBS volume {volume} detached from EC2 Instance {first}" in texts
    attached = next(e for e in events["Events"] if e["Description"].endswith("as /dev/xvdb"))
    details = sm.describe_cluster_event(ClusterName=name, EventId=attached["EventId"])
    logical = sm.describe_cluster_node(ClusterName=name, NodeId=first)["NodeDetails"]
    assert details["EventDetails"]["EventDetails"]["EventMetadata"] == {
        "Instance": {"NodeLogicalId": logical["NodeLogicalId"]}
    }


def test_a_replace_detaches_what_was_attached_and_the_new_instance_can_take_it(
    server: ServerProcess, name: str
) -> None:
    volume, eni = fresh("vol"), fresh("eni")
    sm = server.client()
    arn = eks(sm, name, 1)
    server.settle()
    (old,) = node_ids(sm, name)
    sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=old, VolumeId=volume)
    attachment = sm.attach_cluster_node_network_interface(
        ClusterName=name, NodeId=old, NetworkInterfaceId=eni
    )
    server.settle()
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[old])
    server.settle()
    (new,) = node_ids(sm, name)
    assert new != old
    view = inside(server, name, new)
    assert view["AttachedVolumes"] == [] and view["NetworkInterfaces"] == []
    # The volume and the interface were the customer's: detached, not deleted.
    again = sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=new, VolumeId=volume)
    assert again["Status"] == "attaching"
    reattached = sm.attach_cluster_node_network_interface(
        ClusterName=name, NodeId=new, NetworkInterfaceId=eni
    )
    assert reattached["AttachmentId"] != attachment["AttachmentId"]

    # Deleting the cluster detaches them too: another cluster's node can have them.
    other = eks(sm, f"{name}-other", 1)
    sm.delete_cluster(ClusterName=name)
    server.settle()
    (node,) = node_ids(sm, f"{name}-other")
    taken = sm.attach_cluster_node_volume(ClusterArn=other, NodeId=node, VolumeId=volume)
    assert taken["Status"] == "attaching"
    sm.attach_cluster_node_network_interface(
        ClusterName=f"{name}-other", NodeId=node, NetworkInterfaceId=eni
    )


def test_volume_calls_that_cannot_be_carried_out(server: ServerProcess, name: str) -> None:
    volume = fresh("vol")
    sm = server.client()
    arn = eks(sm, name, 2)
    slurm = sm.create_cluster(
        ClusterName=f"{name}-slurm",
        Orchestrator={"Slurm": {}},
        InstanceGroups=[group("controller", 1)],
    )["ClusterArn"]
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=UNKNOWN_ID, VolumeId=volume)
    assert error_of(refused) == (
        "ValidationException",
        f"Cluster {name} is in Creating status; AttachClusterNodeVolume needs an InService "
        "cluster.",
    )
    server.settle()
    first, second = node_ids(sm, name)
    (controller,) = node_ids(sm, f"{name}-slurm")
    for call, operation in [
        (sm.attach_cluster_node_volume, "AttachClusterNodeVolume"),
        (sm.detach_cluster_node_volume, "DetachClusterNodeVolume"),
    ]:
        with pytest.raises(ClientError) as refused:
            call(ClusterArn=slurm, NodeId=controller, VolumeId=volume)
        assert error_of(refused) == (
            "ValidationException",
            f"{operation} is only supported for clusters orchestrated by Amazon EKS; cluster "
            f"{name}-slurm is not.",
        )
        with pytest.raises(ClientError) as refused:
            call(ClusterArn=arn, NodeId=UNKNOWN_ID, VolumeId=volume)
        assert error_of(refused) == (
            "ResourceNotFound",
            f"Could not find node '{UNKNOWN_ID}' in cluster '{arn}'.",
        )
        gone = arn[:-12] + "zzzzzzzzzzzz"
        with pytest.raises(ClientError) as refused:
            call(ClusterArn=gone, NodeId=first, VolumeId=volume)
        assert error_of(refused) == ("ResourceNotFound", f"Could not find cluster '{gone}'.")
        with pytest.raises(ClientError) as refused:
            call(ClusterArn=arn, NodeId=first, VolumeId="vol-xyz")
        assert error_of(refused)[0] == "ValidationException"
        assert "Member must satisfy regular expression pattern" in error_of(refused)[1]

    # A node's own root volume is attached already, to its instance.
    root = inside(server, name, first)["Volumes"][0]["VolumeId"]
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=second, VolumeId=root)
    assert error_of(refused)[1].startswith("HyperPod - Ec2ErrCode: VolumeInUse")

    # 25 device names, /dev/xvdb to /dev/xvdz; the 26th volume has none.
    names = [
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=fresh("vol"))[
            "DeviceName"
        ]
        for n in range(25)
    ]
    assert names[0] == "/dev/xvdb" and names[-1] == "/dev/xvdz" and len(set(names)) == 25
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=first, VolumeId=volume)
    assert error_of(refused) == (
        "ValidationException",
        "HyperPod - Ec2ErrCode: AttachmentLimitExceeded : Ec2ErrMsg: The instance has 25 "
        "volumes attached, the most it can take.",
    )

    # A node on its way out takes nothing.
    sm.batch_delete_cluster_nodes(ClusterName=name, NodeIds=[second])
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=second, VolumeId=volume)
    assert error_of(refused) == (
        "ValidationException",
        "HyperPod - Ec2ErrCode: IncorrectInstanceState : Ec2ErrMsg: The instance "
        f"'{second}' is not in a valid state for this operation: it is ShuttingDown.",
    )


def test_a_network_interface_attaches_with_an_attachment_id(
    server: ServerProcess, name: str
) -> None:
    eni = fresh("eni")
    sm = server.client()
    arn = eks(sm, name, 2)
    slurm = f"{name}-slurm"
    sm.create_cluster(
        ClusterName=slurm, Orchestrator={"Slurm": {}}, InstanceGroups=[group("controller", 1)]
    )
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_network_interface(
            ClusterName=name, NodeId=UNKNOWN_ID, NetworkInterfaceId=eni
        )
    assert error_of(refused) == (
        "ValidationException",
        f"Cluster {name} is in Creating status; AttachClusterNodeNetworkInterface needs an "
        "InService cluster.",
    )
    server.settle()
    first, second = node_ids(sm, name)
    described = sm.describe_cluster_node(ClusterName=name, NodeId=first)["NodeDetails"]

    answer = sm.attach_cluster_node_network_interface(
        ClusterName=arn, NodeId=first, NetworkInterfaceId=eni
    )
    assert {key: answer[key] for key in ("ClusterArn", "NodeId", "NetworkInterfaceId")} == {
        "ClusterArn": arn,
        "NodeId": first,
        "NetworkInterfaceId": eni,
    }
    assert ATTACHMENT_ID.fullmatch(answer["AttachmentId"])
    # Asked again: the same attachment.
    again = sm.attach_cluster_node_network_interface(
        ClusterName=name, NodeId=first, NetworkInterfaceId=eni
    )
    assert again["AttachmentId"] == answer["AttachmentId"]
    view = inside(server, name, first)
    assert [
        (i["NetworkInterfaceId"], i["AttachmentId"], i["DeviceIndex"])
        for i in view["NetworkInterfaces"]
    ] == [(eni, answer["AttachmentId"], 1)]
    # DescribeClusterNode has no member for it: its NetworkInterface is the group's EFA setting.
    assert sm.describe_cluster_node(ClusterName=name, NodeId=first)["NodeDetails"] == described
    texts = [
        e["Description"] for e in sm.list_cluster_events(ClusterName=name, NodeId=first)["Events"]
    ]
    assert (
        f"Network interface {eni} attached to EC2 Instance {first} in Cluster {name} and "
        f"InstanceGroup g (attachment {answer['AttachmentId']})"
    ) in texts

    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_network_interface(
            ClusterName=name, NodeId=second, NetworkInterfaceId=eni
        )
    assert error_of(refused) == (
        "ValidationException",
        f"HyperPod - Ec2ErrCode: InvalidNetworkInterface.InUse : Ec2ErrMsg: Interface: [{eni}] "
        "in use.",
    )
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_network_interface(
            ClusterName=name, NodeId=UNKNOWN_ID, NetworkInterfaceId=eni
        )
    assert error_of(refused) == (
        "ResourceNotFound",
        f"Could not find node '{UNKNOWN_ID}' in cluster '{name}'.",
    )
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_network_interface(
            ClusterName=f"{name}-none", NodeId=first, NetworkInterfaceId=eni
        )
    assert error_of(refused) == ("ResourceNotFound", f"Could not find cluster '{name}-none'.")

    # Seven beside the primary one; the eighth is over the limit.
    for _ in range(6):
        sm.attach_cluster_node_network_interface(
            ClusterName=name, NodeId=first, NetworkInterfaceId=fresh("eni")
        )
    with pytest.raises(ClientError) as refused:
        sm.attach_cluster_node_network_interface(
            ClusterName=name, NodeId=first, NetworkInterfaceId=fresh("eni")
        )
    assert error_of(refused) == (
        "ResourceLimitExceeded",
        f"Node {first} of cluster {name} already has 7 network interfaces attached, the most it "
        "can take besides its primary one.",
    )
    # Any orchestrator: a Slurm node takes one too.
    (controller,) = node_ids(sm, slurm)
    on_slurm = sm.attach_cluster_node_network_interface(
        ClusterName=slurm, NodeId=controller, NetworkInterfaceId=fresh("eni")
    )
    assert ATTACHMENT_ID.fullmatch(on_slurm["AttachmentId"])
    # A reboot keeps them.
    sm.batch_reboot_cluster_nodes(ClusterName=name, NodeIds=[first])
    server.settle()
    assert len(inside(server, name, first)["NetworkInterfaces"]) == 7


def test_answers_keep_to_the_models_enums_and_patterns(server: ServerProcess, name: str) -> None:
    """Status from VolumeAttachmentStatus, DeviceName and AttachmentId matching the model's
    patterns whole, read from the installed botocore model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    statuses = set(model.shape_for("VolumeAttachmentStatus").enum)
    device = re.compile(model.shape_for("VolumeDeviceName").metadata["pattern"])
    attachment = re.compile(
        model.shape_for("ClusterNetworkInterfaceAttachmentId").metadata["pattern"]
    )
    sm = server.client()
    arn = eks(sm, name, 1)
    server.settle()
    (node,) = node_ids(sm, name)
    volumes = [fresh("vol") for _ in range(25)]
    answers = [
        sm.attach_cluster_node_volume(ClusterArn=arn, NodeId=node, VolumeId=v) for v in volumes
    ]
    server.settle()
    answers += [
        sm.detach_cluster_node_volume(ClusterArn=arn, NodeId=node, VolumeId=v) for v in volumes
    ]
    assert {answer["Status"] for answer in answers} <= statuses
    assert all(device.fullmatch(answer["DeviceName"]) for answer in answers)
    eni = sm.attach_cluster_node_network_interface(
        ClusterName=name, NodeId=node, NetworkInterfaceId=fresh("eni")
    )
    assert attachment.fullmatch(eni["AttachmentId"])
    assert (
        len(eni["AttachmentId"])
        <= model.shape_for("ClusterNetworkInterfaceAttachmentId").metadata["max"]
    )
