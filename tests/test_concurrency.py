"""Many clients at once: the store's write lock and unique constraints, not luck, decide
who wins."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from tests.support import ServerProcess, group


def test_one_of_many_racing_creates_of_a_name_wins(server: ServerProcess, name: str) -> None:
    clients = [server.client() for _ in range(16)]

    def create(client: Any) -> str:
        try:
            client.create_cluster(ClusterName=name, InstanceGroups=[group("g", 3)])
            return "created"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(create, clients))
    assert outcomes.count("created") == 1
    assert outcomes.count("ResourceInUse") == 15
    server.settle()
    nodes = clients[0].list_cluster_nodes(ClusterName=name, MaxResults=100)
    assert len(nodes["ClusterNodeSummaries"]) == 3


def test_reads_and_writes_interleave_without_errors(server: ServerProcess, name: str) -> None:
    writer, reader = server.client(), server.client()

    def write(index: int) -> None:
        writer.create_cluster(ClusterName=f"{name}-{index}", InstanceGroups=[group("g", 5)])

    def read(_: int) -> int:
        pages = reader.get_paginator("list_clusters").paginate()
        return sum(len(page["ClusterSummaries"]) for page in pages)

    with ThreadPoolExecutor(8) as pool:
        writes = [pool.submit(write, i) for i in range(20)]
        reads = [pool.submit(read, i) for i in range(20)]
        for future in writes + reads:
            future.result()
    listed = [
        s["ClusterName"]
        for page in reader.get_paginator("list_clusters").paginate()
        for s in page["ClusterSummaries"]
    ]
    assert {f"{name}-{i}" for i in range(20)} <= set(listed)
