"""What MoveClusterNodes and AttachClusterNodeVolume cost in-process (the mock, no socket):
`python bench/node_moves.py`. Not part of `make bench`; medians of a few calls, on whatever
else the machine is doing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import hyperpod_local

ROLE = "arn:aws:iam::123456789012:role/HyperPodExecutionRole"
GROUP_SIZE = 1000


def group(name: str, count: int) -> dict[str, Any]:
    return {
        "InstanceGroupName": name,
        "InstanceType": "ml.c5.xlarge",
        "InstanceCount": count,
        "ExecutionRole": ROLE,
    }


def median_ms(calls: list[Callable[[], Any]]) -> float:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    with hyperpod_local.mock() as hp:
        sm = hp.client()
        arn = sm.create_cluster(
            ClusterName="bench",
            NodeProvisioningMode="Continuous",
            Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/b"}},
            InstanceGroups=[group("a", GROUP_SIZE), group("b", 0)],
        )["ClusterArn"]
        hp.settle()
        move = {
            "SourceClusterArn": arn,
            "SourceInstanceGroupName": "a",
            "TargetClusterArn": arn,
            "TargetInstanceGroupName": "b",
        }
        by_count = median_ms([lambda: sm.move_cluster_nodes(**move, InstanceCount=50)] * 5)
        started = time.perf_counter()
        hp.settle()
        settled = time.perf_counter() - started
        pages = sm.get_paginator("list_cluster_nodes").paginate(
            ClusterName="bench", InstanceGroupNameContains="a"
        )
        ids = [n["InstanceId"] for page in pages for n in page["ClusterNodeSummaries"]]
        by_ids = median_ms(
            [
                lambda batch=ids[k * 50 : (k + 1) * 50]: sm.move_cluster_nodes(
                    **move, NodeIds=batch
                )
                for k in range(5)
            ]
        )
        hp.settle()
        attach = median_ms(
            [
                lambda k=k: sm.attach_cluster_node_volume(
                    ClusterArn=arn, NodeId=ids[300 + k], VolumeId=f"vol-{k:017x}"
                )
                for k in range(50)
            ]
        )
    print(f"MoveClusterNodes InstanceCount=50, a {GROUP_SIZE}-node group: {by_count:.1f} ms")
    print(f"MoveClusterNodes 50 NodeIds: {by_ids:.1f} ms")
    print(f"the engine carrying 250 moves to Running (settle): {settled:.2f} s")
    print(f"AttachClusterNodeVolume: {attach:.2f} ms")


if __name__ == "__main__":
    main()
