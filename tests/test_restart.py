"""Durability: what a client was told survives a SIGKILL of the server and a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.support import ServerProcess, group

EKS_ARN = "arn:aws:eks:us-east-1:123456789012:cluster/x"


@pytest.fixture
def restarted() -> Iterator[list[ServerProcess]]:
    """Servers a test starts after killing its first one; all are stopped at the end."""
    servers: list[ServerProcess] = []
    yield servers
    for proc in servers:
        if proc.proc is not None:
            proc.kill()


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def all_clusters(sm: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 7})
    return [summary for page in pages for summary in page["ClusterSummaries"]]


def all_nodes(sm: Any, cluster: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(
        ClusterName=cluster, IncludeNodeLogicalIds=True, PaginationConfig={"PageSize": 50}
    )
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def snapshot(sm: Any) -> dict[str, Any]:
    """Everything a client can read about every cluster."""
    state: dict[str, Any] = {}
    for summary in all_clusters(sm):
        name = summary["ClusterName"]
        nodes = all_nodes(sm, name)
        state[name] = {
            "summary": summary,
            "describe": without_metadata(sm.describe_cluster(ClusterName=name)),
            "nodes": nodes,
            "node_details": [
                without_metadata(
                    sm.describe_cluster_node(ClusterName=name, NodeId=node["InstanceId"])
                )
                for node in nodes
            ],
            "tags": sm.list_tags(ResourceArn=summary["ClusterArn"]).get("Tags", []),
        }
    return state


def test_everything_a_client_was_told_survives_a_sigkill(
    fresh_server: ServerProcess, restarted: list[ServerProcess], name: str
) -> None:
    sm = fresh_server.client()
    eks = f"{name}-eks"
    plain = f"{name}-plain"
    doomed = f"{name}-doomed"
    extra = f"{name}-extra"
    eks_tags = [{"Key": "team", "Value": "ml"}, {"Key": "env", "Value": "prod"}]
    plain_tags = [{"Key": "owner", "Value": "alice"}]
    arns = {
        eks: sm.create_cluster(
            ClusterName=eks,
            InstanceGroups=[group("workers", 5), group("system", 2, "ml.m5.xlarge")],
            Orchestrator={"Eks": {"ClusterArn": EKS_ARN}},
            NodeProvisioningMode="Continuous",
            Tags=eks_tags,
        )["ClusterArn"],
        plain: sm.create_cluster(
            ClusterName=plain, InstanceGroups=[group("g", 3)], Tags=plain_tags
        )["ClusterArn"],
        doomed: sm.create_cluster(
            ClusterName=doomed, InstanceGroups=[group("g", 2)], Tags=plain_tags
        )["ClusterArn"],
        extra: sm.create_cluster(ClusterName=extra, InstanceGroups=[group("g", 1)])["ClusterArn"],
    }
    fresh_server.settle()
    sm.delete_cluster(ClusterName=doomed)
    fresh_server.settle()
    del arns[doomed]
    before = snapshot(sm)
    assert {n: state["describe"]["ClusterArn"] for n, state in before.items()} == arns
    eks_nodes = before[eks]["nodes"]
    assert len(eks_nodes) == 7
    assert all(node.get("NodeLogicalId") for node in eks_nodes)
    assert before[eks]["describe"]["NodeProvisioningMode"] == "Continuous"
    assert before[eks]["tags"] == eks_tags
    # Tokens handed out before the kill, and the pages they lead to.
    clusters_page = sm.list_clusters(MaxResults=1)
    nodes_page = sm.list_cluster_nodes(ClusterName=eks, IncludeNodeLogicalIds=True, MaxResults=3)
    clusters_next = without_metadata(
        sm.list_clusters(MaxResults=1, NextToken=clusters_page["NextToken"])
    )
    nodes_next = without_metadata(
        sm.list_cluster_nodes(
            ClusterName=eks,
            IncludeNodeLogicalIds=True,
            MaxResults=3,
            NextToken=nodes_page["NextToken"],
        )
    )

    fresh_server.kill()
    server = ServerProcess(fresh_server.data_dir, "--clock", "manual").start()
    restarted.append(server)
    sm = server.client()

    after = snapshot(sm)
    assert after == before
    for cluster, arn in arns.items():
        assert sm.describe_cluster(ClusterName=arn)["ClusterName"] == cluster
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster(ClusterName=doomed)
    assert (
        without_metadata(sm.list_clusters(MaxResults=1, NextToken=clusters_page["NextToken"]))
        == clusters_next
    )
    assert (
        without_metadata(
            sm.list_cluster_nodes(
                ClusterName=eks,
                IncludeNodeLogicalIds=True,
                MaxResults=3,
                NextToken=nodes_page["NextToken"],
            )
        )
        == nodes_next
    )
    # The EKS cluster is still bound to its HyperPod cluster, and the deleted name is free.
    with pytest.raises(ClientError) as excinfo:
        sm.create_cluster(
            ClusterName=f"{name}-other",
            InstanceGroups=[group("g", 1)],
            Orchestrator={"Eks": {"ClusterArn": EKS_ARN}},
        )
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    sm.create_cluster(ClusterName=doomed, InstanceGroups=[group("g", 1)])


WORKERS = 3
# Big enough that a create's transaction takes a while, so the kill often lands inside one.
GROUPS = [group("a", 150), group("b", 100, "ml.m5.xlarge")]
NODES_PER_CLUSTER = sum(g["InstanceCount"] for g in GROUPS)


def test_a_sigkill_during_creates_leaves_only_whole_clusters(
    fresh_server: ServerProcess, restarted: list[ServerProcess], name: str
) -> None:
    confirmed: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    killing = threading.Event()

    def create_in_a_loop(worker: int, sm: Any) -> None:
        for index in range(1000):
            cluster = f"{name}-{worker}-{index}"
            try:
                sm.create_cluster(ClusterName=cluster, InstanceGroups=GROUPS)
            except (BotoCoreError, ClientError) as error:
                # Only the kill may end the loop; an error from a live server is a failure.
                if not killing.is_set():
                    failures.append(error)
                return
            with lock:
                confirmed.append(cluster)

    clients = [fresh_server.client() for _ in range(WORKERS)]
    threads = [
        threading.Thread(target=create_in_a_loop, args=(worker, client), daemon=True)
        for worker, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(confirmed) < 2 * WORKERS and not failures and time.monotonic() < deadline:
        time.sleep(0.005)
    killing.set()
    fresh_server.kill()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    assert len(confirmed) >= 2 * WORKERS
    told = set(confirmed)

    server = ServerProcess(fresh_server.data_dir, "--clock", "manual").start()
    restarted.append(server)
    sm = server.client()
    # Creations accepted before the kill go on after the restart.
    server.settle()
    clusters = all_clusters(sm)
    names = {summary["ClusterName"] for summary in clusters}
    assert told <= names
    print(f"{len(told)} creates confirmed, {len(names)} clusters after the restart")
    for summary in clusters:
        cluster = summary["ClusterName"]
        nodes = sm.list_cluster_nodes(ClusterName=cluster, MaxResults=100)
        count = len(nodes["ClusterNodeSummaries"])
        while "NextToken" in nodes:
            nodes = sm.list_cluster_nodes(
                ClusterName=cluster, MaxResults=100, NextToken=nodes["NextToken"]
            )
            count += len(nodes["ClusterNodeSummaries"])
        assert count == NODES_PER_CLUSTER, cluster
        described = sm.describe_cluster(ClusterName=cluster)
        assert [
            (g["InstanceGroupName"], g["TargetCount"], g["CurrentCount"])
            for g in described["InstanceGroups"]
        ] == [("a", 150, 150), ("b", 100, 100)], cluster
