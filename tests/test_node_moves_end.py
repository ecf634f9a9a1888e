"""Moves and attachments end whatever else happens: random sequences of MoveClusterNodes,
volume and interface attachments, node operations, scaling and faults on two Continuous EKS
clusters, through boto3 against the real server under the manual clock. After each settle no
node is still moving, each group's TargetCount is its nodes, CurrentCount its serving nodes,
no volume is still attaching or detaching, and nothing is attached to an instance that is
gone."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import ServerProcess, group

SERVING = {"Running", "SystemUpdating", "DeepHealthCheckInProgress"}
_names = itertools.count()
_ids = itertools.count(1)

OPERATIONS = st.one_of(
    st.tuples(st.just("move"), st.integers(0, 9), st.sampled_from(["v", "t"])),
    st.tuples(st.just("move_count"), st.integers(1, 3), st.sampled_from(["v", "t"])),
    st.tuples(st.just("move_back"), st.integers(0, 9), st.just("w")),
    st.tuples(st.just("attach"), st.integers(0, 9), st.integers(0, 3)),
    st.tuples(st.just("detach"), st.integers(0, 9), st.integers(0, 3)),
    st.tuples(st.just("eni"), st.integers(0, 9), st.integers(0, 3)),
    st.tuples(st.sampled_from(["replace", "reboot", "delete"]), st.integers(0, 9), st.just(0)),
    st.tuples(st.just("scale"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("script"), st.integers(1, 2), st.just(0)),
    st.tuples(st.just("advance"), st.sampled_from([5, 60, 120, 300]), st.just(0)),
    st.tuples(st.just("settle"), st.just(0), st.just(0)),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("moves") / "data", "--clock", "manual")
    server.start()
    yield server
    server.stop()


def eks(sm: Any, name: str, groups: list[dict[str, Any]]) -> str:
    return str(
        sm.create_cluster(
            ClusterName=name,
            InstanceGroups=groups,
            NodeProvisioningMode="Continuous",
            NodeRecovery="Automatic",
            Orchestrator={
                "Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}
            },
        )["ClusterArn"]
    )


def nodes_of(sm: Any, name: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(
        ClusterName=name, IncludeNodeLogicalIds=True
    )
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def pick(sm: Any, name: str, index: int, group_name: str | None = None) -> str | None:
    found = sorted(
        n["InstanceId"]
        for n in nodes_of(sm, name)
        if n.get("InstanceId") and group_name in (None, n["InstanceGroupName"])
    )
    return found[index % len(found)] if found else None


class World:
    def __init__(self, server: ServerProcess, sm: Any, prefix: str) -> None:
        self.server, self.sm = server, sm
        self.src, self.dst = f"{prefix}-src", f"{prefix}-dst"
        self.src_arn = eks(sm, self.src, [group("w", 3), group("v", 0)])
        self.dst_arn = eks(sm, self.dst, [group("t", 1)])
        # Volume and interface ids of this example, by the index an operation names.
        base = next(_ids) * 16
        self.volumes = [f"vol-{base + n:017x}" for n in range(4)]
        self.interfaces = [f"eni-{base + n:017x}" for n in range(4)]

    def apply(self, kind: str, first: int, second: Any) -> None:
        sm, src, dst = self.sm, self.src, self.dst
        try:
            if kind == "move" and (node := pick(sm, src, first, "w")):
                target = self.dst_arn if second == "t" else self.src_arn
                sm.move_cluster_nodes(
                    SourceClusterArn=self.src_arn,
                    SourceInstanceGroupName="w",
                    TargetClusterArn=target,
                    TargetInstanceGroupName=second,
                    NodeIds=[node],
                )
            elif kind == "move_count":
                target = self.dst_arn if second == "t" else self.src_arn
                sm.move_cluster_nodes(
                    SourceClusterArn=self.src_arn,
                    SourceInstanceGroupName="w",
                    TargetClusterArn=target,
                    TargetInstanceGroupName=second,
                    InstanceCount=first,
                )
            elif kind == "move_back" and (node := pick(sm, dst, first, "t")):
                sm.move_cluster_nodes(
                    SourceClusterArn=self.dst_arn,
                    SourceInstanceGroupName="t",
                    TargetClusterArn=self.src_arn,
                    TargetInstanceGroupName="w",
                    NodeIds=[node],
                )
            elif kind in ("attach", "detach") and (node := pick(sm, src, first)):
                call = (
                    sm.attach_cluster_node_volume
                    if kind == "attach"
                    else sm.detach_cluster_node_volume
                )
                call(ClusterArn=self.src_arn, NodeId=node, VolumeId=self.volumes[second])
            elif kind == "eni" and (node := pick(sm, src, first)):
                sm.attach_cluster_node_network_interface(
                    ClusterName=src, NodeId=node, NetworkInterfaceId=self.interfaces[second]
                )
            elif kind in ("replace", "reboot", "delete") and (node := pick(sm, src, first)):
                call = {
                    "replace": sm.batch_replace_cluster_nodes,
                    "reboot": sm.batch_reboot_cluster_nodes,
                    "delete": sm.batch_delete_cluster_nodes,
                }[kind]
                call(ClusterName=src, NodeIds=[node])
            elif kind == "scale":
                sm.update_cluster(ClusterName=src, InstanceGroups=[group("w", first)])
            elif kind == "script":
                status, body = self.server.admin(
                    "POST",
                    "/_hyperpod/faults",
                    {
                        "Kind": "lifecycle_script",
                        "Cluster": dst,
                        "InstanceGroupName": "t",
                        "Count": first,
                    },
                )
                assert status == 201, body
            elif kind == "advance":
                self.server.advance(first)
            elif kind == "settle":
                self.settle_and_check()
        except ClientError as error:
            # Refusals are part of the game; a server error never is.
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] < 500, error.response

    def settle_and_check(self) -> None:
        self.server.settle()
        seen: set[str] = set()
        instances: set[str] = set()
        for name in (self.src, self.dst):
            described = self.sm.describe_cluster(ClusterName=name)
            assert described["ClusterStatus"] == "InService", described["ClusterStatus"]
            listed = nodes_of(self.sm, name)
            for node in listed:
                status = node["InstanceStatus"]["Status"]
                assert status not in ("DetachInProgress", "AttachInProgress"), node
                # A node shows in one cluster only.
                assert node["NodeLogicalId"] not in seen, node
                seen.add(node["NodeLogicalId"])
                if node.get("InstanceId"):
                    instances.add(node["InstanceId"])
                    self.check_attachments(name, node["InstanceId"])
            for each in described["InstanceGroups"]:
                mine = [n for n in listed if n["InstanceGroupName"] == each["InstanceGroupName"]]
                serving = [n for n in mine if n["InstanceStatus"]["Status"] in SERVING]
                assert each["CurrentCount"] == len(serving), (each, mine)
                assert each["TargetCount"] == len(mine), (each, mine)
        # Nothing attached to an instance that is gone.
        status, inventory = self.server.admin("GET", "/_hyperpod/instances")
        assert status == 200
        for line in inventory["Instances"]:
            if line["AttachedVolumeIds"] or line["NetworkInterfaceIds"]:
                assert line["InstanceId"] in instances, line
        for volume in self.volumes + self.interfaces:
            holders = [
                i
                for i in inventory["Instances"]
                if volume in i["AttachedVolumeIds"] + i["NetworkInterfaceIds"]
            ]
            assert len(holders) <= 1, holders

    def check_attachments(self, name: str, instance_id: str) -> None:
        status, view = self.server.admin("GET", f"/_hyperpod/clusters/{name}/nodes/{instance_id}")
        assert status == 200, view
        assert {v["Status"] for v in view["AttachedVolumes"]} <= {"attached"}, view


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=10))
def test_every_move_and_attachment_ends_whatever_happens(
    world: ServerProcess, operations: list[tuple[str, int, Any]]
) -> None:
    sm = world.client()
    here = World(world, sm, f"moves-{next(_names)}")
    try:
        world.settle()
        for operation in operations:
            here.apply(*operation)
        here.settle_and_check()
    finally:
        for fault_id in _faults_of(world, here.dst):
            world.admin("DELETE", f"/_hyperpod/faults/{fault_id}")
        world.settle()
        sm.delete_cluster(ClusterName=here.src)
        sm.delete_cluster(ClusterName=here.dst)
        world.settle()


def _faults_of(server: ServerProcess, cluster: str) -> list[str]:
    status, body = server.admin("GET", "/_hyperpod/faults")
    assert status == 200
    return [fault["FaultId"] for fault in body["Faults"] if fault.get("Cluster") == cluster]
