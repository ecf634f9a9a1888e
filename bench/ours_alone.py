"""The parts that measure ours alone: cold starts, BatchReplaceClusterNodes at full speed, and
a store of 100,000 nodes."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from measure import Sample, log
from results import EAST, Results, Sizes
from servers import (
    Server,
    free_port,
    moto_command,
    ours_command,
)
from targets import create, group, make_client


def cold_start_part(results: Results, sizes: Sizes, work: Path) -> None:
    kinds = ["ours-server", "moto-server"]
    for rep in range(sizes.cold_starts):
        for key in rotated_keys(kinds, rep):
            port = free_port()
            if key == "ours-server":
                argv = ours_command(port, work / f"cold-{rep}", "--clock", "manual")
            else:
                argv = moto_command(port)
            server = Server(key, argv, port, work / f"cold-{key}-{rep}.log")
            seconds = cold_start(server)
            results.cold.setdefault(key, []).append(seconds)
    log("cold starts: " + ", ".join(f"{k} {min(v):.3f}s" for k, v in results.cold.items()))


def rotated_keys(keys: list[str], by: int) -> list[str]:
    by %= len(keys)
    return [*keys[by:], *keys[:by]]


def cold_start(server: Server) -> float:
    """Seconds from starting the process to its first ListClusters answer. The client is made
    and warmed (one call that finds nothing listening) before the process starts."""
    client = make_client(EAST, endpoint_url=server.url)
    with contextlib.suppress(Exception):
        client.list_clusters()
    try:
        server.start()
        answered = server.wait_ready(client.list_clusters, timeout=60)
        return answered - server.started_at
    finally:
        server.stop()


def replace_part(results: Results, sizes: Sizes, work: Path) -> None:
    port = free_port()
    server = Server(
        "ours-replace",
        ours_command(port, work / "replace-data", "--clock", "real", "--speed", "100000"),
        port,
        work / "ours-replace.log",
    )
    client = make_client(EAST, endpoint_url=server.url)
    try:
        server.start()
        server.wait_ready(client.list_clusters)
        size = sizes.replace_nodes + 5
        began = time.perf_counter()
        create(client, "bench-replace", [group("workers", size)])
        wait_until(
            lambda: (
                client.describe_cluster(ClusterName="bench-replace")["ClusterStatus"] == "InService"
            ),
            timeout=120,
        )
        results.replace.setdefault("create_to_inservice_ms", []).append(
            (time.perf_counter() - began) * 1e3
        )
        for _ in range(sizes.replace_reps):
            nodes = all_nodes(client, "bench-replace")
            running = [n["InstanceId"] for n in nodes if n["InstanceStatus"]["Status"] == "Running"]
            chosen = running[: sizes.replace_nodes]
            if len(chosen) != sizes.replace_nodes:
                raise RuntimeError(f"only {len(chosen)} nodes Running of {len(nodes)}")
            cpu_before = server.cpu_seconds()
            began = time.perf_counter()
            answer = client.batch_replace_cluster_nodes(ClusterName="bench-replace", NodeIds=chosen)
            called = time.perf_counter()
            if len(answer.get("Successful", [])) != sizes.replace_nodes:
                raise RuntimeError(f"BatchReplaceClusterNodes: {answer}")
            polls = [0]

            def finished(chosen: list[str] = chosen, polls: list[int] = polls) -> bool:
                polls[0] += 1
                now = all_nodes(client, "bench-replace")
                ids = {n["InstanceId"] for n in now}
                return (
                    len(now) == size
                    and not ids & set(chosen)
                    and all(n["InstanceStatus"]["Status"] == "Running" for n in now)
                )

            wait_until(finished, timeout=120, interval=0.001)
            done = time.perf_counter()
            results.replace.setdefault("call_ms", []).append((called - began) * 1e3)
            results.replace.setdefault("finish_ms", []).append((done - began) * 1e3)
            results.replace.setdefault("polls", []).append(float(polls[0]))
            results.replace.setdefault("server_cpu_ms", []).append(
                (server.cpu_seconds() - cpu_before) * 1e3
            )
    finally:
        server.stop()
    log(f"BatchReplaceClusterNodes: finished in {results.replace['finish_ms']} ms")


def all_nodes(client: Any, cluster: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ClusterName": cluster, "MaxResults": 100}
    for _ in range(1000):
        page = client.list_cluster_nodes(**kwargs)
        found.extend(page["ClusterNodeSummaries"])
        if not page.get("NextToken"):
            return found
        kwargs["NextToken"] = page["NextToken"]
    raise RuntimeError("more than 1,000 pages of nodes")


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not done within {timeout}s")
        time.sleep(interval)


def store_part(results: Results, sizes: Sizes, work: Path) -> None:
    data_dir = work / "store-data"
    port = free_port()
    server = Server(
        "ours-store",
        ours_command(port, data_dir, "--clock", "manual"),
        port,
        work / "ours-store.log",
    )
    client = make_client(EAST, endpoint_url=server.url)
    store = results.store
    base, extra = divmod(sizes.store_nodes, sizes.store_clusters)
    names = [f"bench-store-{i:02d}" for i in range(sizes.store_clusters)]
    try:
        server.start()
        server.wait_ready(client.list_clusters)
        began = time.perf_counter()
        for i, name in enumerate(names):
            nodes = base + (1 if i < extra else 0)
            half = nodes // 2
            create(client, name, [group("workers-a", half), group("workers-b", nodes - half)])
        store["create_s"] = time.perf_counter() - began
        log(f"store: {sizes.store_nodes:,} nodes created in {store['create_s']:.1f}s; settling")
        began = time.perf_counter()
        server.settle()
        store["settle_s"] = time.perf_counter() - began
        store["memory_after_settle"] = server.memory_mb()
        log(f"store: settled in {store['settle_s']:.1f}s, {store['memory_after_settle']}")
        count = 0
        for name in names:
            groups = client.describe_cluster(ClusterName=name)["InstanceGroups"]
            count += sum(g["CurrentCount"] for g in groups)
        if count != sizes.store_nodes:
            raise RuntimeError(f"the store holds {count} nodes, not {sizes.store_nodes}")
        store["nodes"] = count
        calls: dict[str, Callable[[], Any]] = {
            "DescribeCluster": lambda: client.describe_cluster(ClusterName=names[-1]),
            "ListClusterNodes": lambda: client.list_cluster_nodes(
                ClusterName=names[-1], MaxResults=100
            ),
            "ListClusters": lambda: client.list_clusters(MaxResults=100),
        }
        for call in calls.values():
            call()
        samples: dict[str, Sample] = {}
        per_chunk = 10
        for _ in range(math.ceil(sizes.store_calls / per_chunk)):
            for name, call in calls.items():
                sample = samples.setdefault(name, Sample(has_server=True))
                cpu_before = server.cpu_seconds()
                for _ in range(per_chunk):
                    began = time.perf_counter_ns()
                    call()
                    sample.latencies_ns.append(time.perf_counter_ns() - began)
                sample.server_cpu_s += server.cpu_seconds() - cpu_before
        store["samples"] = samples
        store["memory_after_calls"] = server.memory_mb()
        store["disk_mb"] = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file()) / 1e6
    finally:
        server.stop()
    # The same store opened again: cold start and resident memory of a fresh process.
    restarted = Server(
        "ours-store-restart",
        ours_command(port := free_port(), data_dir, "--clock", "manual"),
        port,
        work / "ours-store-restart.log",
    )
    client = make_client(EAST, endpoint_url=restarted.url)
    with contextlib.suppress(Exception):
        client.list_clusters()
    try:
        restarted.start()
        answered = restarted.wait_ready(client.list_clusters, timeout=120)
        store["restart_cold_s"] = answered - restarted.started_at
        store["memory_after_restart"] = restarted.memory_mb()
        client.describe_cluster(ClusterName=names[-1])
        client.list_cluster_nodes(ClusterName=names[-1], MaxResults=100)
        store["memory_after_restart_calls"] = restarted.memory_mb()
    finally:
        restarted.stop()
