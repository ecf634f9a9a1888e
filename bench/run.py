"""Benchmark hyperpod-local side by side with moto and with two floors it runs itself.

    .venv/bin/python bench/run.py [--quick] [--output PATH]

One run measures, interleaved round-robin so that drift of the machine falls on all alike:
our server (a subprocess, --clock manual), our in-process mock, moto's server (a subprocess),
moto in-process (mock_aws), a fixed-body asyncio HTTP floor and a no-network floor (a
before-send hook), both answering the DescribeCluster answer hyperpod-local gives; and ours
again with `Cache-Control: no-cache` on every request, so that every answer is computed.
Then, ours alone: BatchReplaceClusterNodes at full speed and a store of 100,000 nodes.
Everything listens on and talks to 127.0.0.1 only; every process it starts is stopped before
it returns. The full run writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.handlers
from floor_server import FLOOR_REQUEST_ID
from measure import Op, Sample, Throughput, interleaved, rotated, throughput
from report import machine_info, write_report
from servers import (
    Server,
    floor_command,
    free_port,
    machine_busy_seconds,
    moto_command,
    ours_command,
    own_cpu_seconds,
)
from targets import Handler, Target, ask_afresh, group, make_client, no_network_client

import hyperpod_local

EAST = "us-east-1"  # the large account: DescribeCluster, nodes pages, 2,000 clusters
WEST = "us-west-2"  # the small one: 100 clusters
DESCRIBED = "bench-describe"
NODES_SMALL = "bench-nodes-small"
NODES_LARGE = "bench-nodes-large"
SERVERS = ["ours-server", "moto-server"]
BOTH = ["ours-server", "ours-mock", "moto-server", "moto-mock"]
# Ours again, every request saying Cache-Control: no-cache: the cost of computing an answer.
FRESH = ["ours-server-fresh", "ours-mock-fresh"]
MEASURED = [*BOTH, *FRESH]
ALL = [*MEASURED, "floor-http", "floor-nonet"]
HTTP = ["ours-server", "ours-server-fresh", "moto-server", "floor-http"]
THREADS = (1, 8)
BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Sizes:
    small_clusters: int
    large_clusters: int
    small_nodes_per_group: int
    large_nodes_per_group: int
    rounds: int
    describe_chunk: int
    page_chunk: int
    create_chunk: int
    throughput_seconds: float
    throughput_rounds: int
    cold_starts: int
    replace_nodes: int
    replace_reps: int
    store_clusters: int
    store_nodes: int
    store_calls: int


FULL = Sizes(
    small_clusters=100,
    large_clusters=2000,
    small_nodes_per_group=50,
    large_nodes_per_group=5000,
    rounds=20,
    describe_chunk=40,
    page_chunk=15,
    create_chunk=25,
    throughput_seconds=2.0,
    throughput_rounds=3,
    cold_starts=7,
    replace_nodes=25,
    replace_reps=5,
    store_clusters=15,
    store_nodes=100_000,
    store_calls=200,
)
QUICK = Sizes(
    small_clusters=20,
    large_clusters=200,
    small_nodes_per_group=10,
    large_nodes_per_group=500,
    rounds=3,
    describe_chunk=10,
    page_chunk=4,
    create_chunk=15,
    throughput_seconds=0.3,
    throughput_rounds=1,
    cold_starts=1,
    replace_nodes=25,
    replace_reps=1,
    store_clusters=2,
    store_nodes=10_000,
    store_calls=30,
)


@dataclass
class Results:
    mode: str
    command: str
    sizes: Sizes
    machine: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    op_labels: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, str], Sample] = field(default_factory=dict)
    notes: dict[str, float] = field(default_factory=dict)
    throughput: dict[tuple[str, int], Throughput] = field(default_factory=dict)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    cold: dict[str, list[float]] = field(default_factory=dict)
    replace: dict[str, list[float]] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    # name: (wall seconds, cores other processes on the machine used on average meanwhile)
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    wall_seconds: float = 0.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def two_groups(per_group: int) -> list[dict[str, Any]]:
    return [group("workers-a", per_group), group("workers-b", per_group)]


def create(client: Any, name: str, groups: list[dict[str, Any]]) -> None:
    client.create_cluster(ClusterName=name, InstanceGroups=groups)


# --- the interleaved part -------------------------------------------------------------------


def capture_describe_body(work: Path) -> Path:
    """The bytes hyperpod-local answers DescribeCluster of the 2-group target with, made by a
    throwaway mock and written to a file: the floors' fixed body."""
    with hyperpod_local.mock(work / "capture") as hp:
        client = make_client(EAST)
        create(client, DESCRIBED, two_groups(2))
        hp.settle()
        captured: list[bytes] = []

        def keep(http_response: Any, **_kwargs: Any) -> None:
            captured.append(http_response.content)

        client.meta.events.register("after-call.sagemaker.DescribeCluster", keep)
        client.describe_cluster(ClusterName=DESCRIBED)
    path = work / "floor-body.json"
    path.write_bytes(captured[0])
    return path


def start_http_servers(work: Path, stack: contextlib.ExitStack) -> dict[str, Server]:
    servers = {
        "ours-server": Server(
            "ours-server",
            ours_command(port := free_port(), work / "ours-data", "--clock", "manual"),
            port,
            work / "ours-server.log",
        ),
        "moto-server": Server(
            "moto-server", moto_command(port := free_port()), port, work / "moto-server.log"
        ),
        "floor-http": Server(
            "floor-http",
            floor_command(port := free_port(), capture_describe_body(work)),
            port,
            work / "floor.log",
        ),
    }
    for server in servers.values():
        server.start()
        stack.callback(server.stop)
    return servers


def build_targets(
    servers: dict[str, Server],
    moto_handlers: list[Handler],
    ours_handlers: list[Handler],
    hp: hyperpod_local.HyperPodMock,
    floor_body: bytes,
) -> dict[str, Target]:
    both = [*moto_handlers, *ours_handlers]

    def over_http(server: Server) -> Callable[[str], Any]:
        return lambda region: make_client(region, endpoint_url=server.url, strip=both)

    def pid_of(server: Server) -> Callable[[], int]:
        return lambda: server.pid

    ours, moto, floor = servers["ours-server"], servers["moto-server"], servers["floor-http"]
    targets = [
        Target(
            "ours-server",
            "hyperpod-local server",
            "server",
            over_http(ours),
            pid_of(ours),
            ours.settle,
        ),
        Target(
            "ours-mock",
            "hyperpod-local in-process",
            "inproc",
            lambda region: make_client(region, strip=moto_handlers),
            None,
            lambda: settle_mock(hp),
        ),
        Target("moto-server", "moto server", "server", over_http(moto), pid_of(moto)),
        Target(
            "moto-mock",
            "moto in-process",
            "inproc",
            lambda region: make_client(region, strip=ours_handlers),
        ),
        Target(
            "ours-server-fresh",
            "hyperpod-local server, no-cache requests",
            "server",
            lambda region: ask_afresh(over_http(ours)(region)),
            pid_of(ours),
        ),
        Target(
            "ours-mock-fresh",
            "hyperpod-local in-process, no-cache requests",
            "inproc",
            lambda region: ask_afresh(make_client(region, strip=moto_handlers)),
        ),
        Target("floor-http", "fixed-body HTTP floor", "floor", over_http(floor), pid_of(floor)),
        Target(
            "floor-nonet",
            "no-network floor",
            "floor",
            lambda region: no_network_client(region, both, floor_body),
        ),
    ]
    return {target.key: target for target in targets}


def settle_mock(hp: hyperpod_local.HyperPodMock) -> None:
    hp.settle()


def check_identity(targets: dict[str, Target]) -> None:
    """Each client reaches what it is meant to: ours answers NodeRecovery and names clusters
    by id, moto by name; the floors answer their fixed body, with a request id of zeros."""
    for key, target in targets.items():
        answer = target.client(EAST).describe_cluster(ClusterName=DESCRIBED)
        arn = answer.get("ClusterArn", "")
        floor_id = answer["ResponseMetadata"]["RequestId"] == FLOOR_REQUEST_ID
        if key.startswith("ours"):
            ok = "NodeRecovery" in answer and not arn.endswith("/" + DESCRIBED) and not floor_id
        elif key.startswith("moto"):
            ok = "NodeRecovery" not in answer and arn.endswith("/" + DESCRIBED)
        else:
            ok = floor_id
        if not ok:
            raise RuntimeError(f"{key} is not answered by what it should be: {answer}")


def setup_fixed(target: Target, sizes: Sizes) -> None:
    east, west = target.client(EAST), target.client(WEST)
    create(east, DESCRIBED, two_groups(2))
    create(east, NODES_SMALL, two_groups(sizes.small_nodes_per_group))
    create(east, NODES_LARGE, two_groups(sizes.large_nodes_per_group))
    for i in range(sizes.small_clusters):
        create(west, f"bench-west-{i:05d}", two_groups(2))


def check_pages(target: Target, sizes: Sizes) -> None:
    east, west = target.client(EAST), target.client(WEST)
    expected = {
        "east clusters": (
            len(east.list_clusters(MaxResults=100)["ClusterSummaries"]),
            min(100, sizes.large_clusters),
        ),
        "west clusters": (
            len(west.list_clusters(MaxResults=100)["ClusterSummaries"]),
            min(100, sizes.small_clusters),
        ),
        "small nodes": (
            len(
                east.list_cluster_nodes(ClusterName=NODES_SMALL, MaxResults=100)[
                    "ClusterNodeSummaries"
                ]
            ),
            min(100, 2 * sizes.small_nodes_per_group),
        ),
        "large nodes": (
            len(
                east.list_cluster_nodes(ClusterName=NODES_LARGE, MaxResults=100)[
                    "ClusterNodeSummaries"
                ]
            ),
            100,
        ),
    }
    for what, (got, want) in expected.items():
        if got != want:
            raise RuntimeError(f"{target.key}: {what}: a first page of {got}, not {want}")
    status = east.describe_cluster(ClusterName=NODES_LARGE)["ClusterStatus"]
    if status != "InService":
        raise RuntimeError(f"{target.key}: {NODES_LARGE} is {status}")


def interleaved_part(results: Results, sizes: Sizes, work: Path) -> None:
    with contextlib.ExitStack() as stack:
        servers = start_http_servers(work, stack)
        # Handlers each in-process mock adds to botocore, found by what it adds.
        before = list(botocore.handlers.BUILTIN_HANDLERS)
        from moto import mock_aws

        stack.enter_context(mock_aws())
        moto_handlers = [h for h in botocore.handlers.BUILTIN_HANDLERS if h not in before]
        before = list(botocore.handlers.BUILTIN_HANDLERS)
        hp = stack.enter_context(hyperpod_local.mock())
        ours_handlers = [h for h in botocore.handlers.BUILTIN_HANDLERS if h not in before]
        if not moto_handlers or not ours_handlers:
            raise RuntimeError("could not find the in-process mocks' botocore handlers")
        floor_body = (work / "floor-body.json").read_bytes()
        targets = build_targets(servers, moto_handlers, ours_handlers, hp, floor_body)
        results.labels.update({key: target.label for key, target in targets.items()})
        for key, server in servers.items():
            probe = targets[key].client(EAST)
            server.wait_ready(probe.list_clusters)
        log("servers up; creating the fixed clusters")

        for key in BOTH:
            began = time.perf_counter()
            setup_fixed(targets[key], sizes)
            results.notes[f"setup {key} s"] = time.perf_counter() - began

        creates = sizes.large_clusters - 3
        log(f"CreateCluster: {creates} per target, interleaved")
        create_op = Op(
            "CreateCluster",
            "CreateCluster (2 groups of 2 nodes)",
            EAST,
            BOTH,
            lambda client, i: create(client, f"bench-fill-{i:05d}", two_groups(2)),
            sizes.create_chunk,
            total=creates,
        )
        rounds = math.ceil(creates / sizes.create_chunk)
        every = max(1, rounds // 5)

        def progress(text: str) -> None:
            number = int(text.split()[1].split("/")[0])
            if number % every == 0:
                log(f"CreateCluster {text}")

        create_samples = interleaved([create_op], list(targets.values()), rounds, progress)
        results.samples.update(create_samples)
        results.op_labels[create_op.key] = create_op.label

        for key in ("ours-server", "ours-mock"):
            began = time.perf_counter()
            settle = targets[key].settle
            assert settle is not None
            settle()
            results.notes[f"settle {key} s"] = time.perf_counter() - began
            log(f"settled {key} in {results.notes[f'settle {key} s']:.1f}s")
        for key in BOTH:
            check_pages(targets[key], sizes)
        check_identity(targets)

        describe = Op(
            "DescribeCluster",
            "DescribeCluster (2 groups)",
            EAST,
            ALL,
            lambda client, _i: client.describe_cluster(ClusterName=DESCRIBED),
            sizes.describe_chunk,
        )
        small_nodes = 2 * sizes.small_nodes_per_group
        large_nodes = 2 * sizes.large_nodes_per_group
        ops = [
            describe,
            Op(
                "DescribeCluster@large",
                f"DescribeCluster of the {large_nodes:,}-node cluster (not a target)",
                EAST,
                MEASURED,
                lambda client, _i: client.describe_cluster(ClusterName=NODES_LARGE),
                sizes.page_chunk,
            ),
            Op(
                "ListClusters@small",
                f"ListClusters first page (MaxResults 100) at {sizes.small_clusters:,} clusters",
                WEST,
                MEASURED,
                lambda client, _i: client.list_clusters(MaxResults=100),
                sizes.page_chunk,
            ),
            Op(
                "ListClusters@large",
                f"ListClusters first page (MaxResults 100) at {sizes.large_clusters:,} clusters",
                EAST,
                MEASURED,
                lambda client, _i: client.list_clusters(MaxResults=100),
                sizes.page_chunk,
            ),
            Op(
                "ListClusterNodes@small",
                f"ListClusterNodes first page (MaxResults 100) at {small_nodes:,} nodes",
                EAST,
                MEASURED,
                lambda client, _i: client.list_cluster_nodes(
                    ClusterName=NODES_SMALL, MaxResults=100
                ),
                sizes.page_chunk,
            ),
            Op(
                "ListClusterNodes@large",
                f"ListClusterNodes first page (MaxResults 100) at {large_nodes:,} nodes",
                EAST,
                MEASURED,
                lambda client, _i: client.list_cluster_nodes(
                    ClusterName=NODES_LARGE, MaxResults=100
                ),
                sizes.page_chunk,
            ),
        ]
        results.op_labels.update({op.key: op.label for op in ops})
        # What the setup left on the heap (moto's objects, the mock's) is not scanned again.
        gc.collect()
        gc.freeze()
        # Warm-up: first calls load models and open connections; not counted.
        for op in ops:
            for key in op.targets:
                for i in range(3):
                    op.call(targets[key].client(op.region), i)
        log(f"per-call measurements: {sizes.rounds} rounds")
        results.samples.update(interleaved(ops, list(targets.values()), sizes.rounds, log))

        log("throughput, 1 and 8 client threads")
        http_targets = [targets[key] for key in HTTP]
        thread_clients = {
            target.key: [target.new_client(EAST) for _ in range(max(THREADS))]
            for target in http_targets
        }
        for clients in thread_clients.values():
            for client in clients:
                client.describe_cluster(ClusterName=DESCRIBED)
        for round_no in range(sizes.throughput_rounds):
            for threads in THREADS:
                for target in rotated(http_targets, round_no):
                    burst = throughput(
                        target,
                        thread_clients[target.key][:threads],
                        lambda client: client.describe_cluster(ClusterName=DESCRIBED),
                        sizes.throughput_seconds,
                        max_calls_per_thread=100_000,
                    )
                    total = results.throughput.get((target.key, threads))
                    if total is None:
                        results.throughput[(target.key, threads)] = burst
                    else:
                        total.calls += burst.calls
                        total.seconds += burst.seconds
                        if total.server_cpu_s is not None and burst.server_cpu_s is not None:
                            total.server_cpu_s += burst.server_cpu_s
        for key in SERVERS:
            results.memory[key] = servers[key].memory_mb()
        gc.unfreeze()


# --- cold start -----------------------------------------------------------------------------


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


# --- ours alone: BatchReplaceClusterNodes at full speed ----------------------------------------


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


# --- ours alone: the 100,000-node store -------------------------------------------------------


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


# --- main -------------------------------------------------------------------------------------


@contextlib.contextmanager
def phase(results: Results, name: str) -> Iterator[None]:
    """Times a part of the run and what other processes on the machine used meanwhile."""
    busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
    began = time.perf_counter()
    yield
    wall = time.perf_counter() - began
    others = (machine_busy_seconds() - busy_before) - (own_cpu_seconds() - own_before)
    results.phases[name] = (wall, max(0.0, others) / wall)
    if results.phases[name][1] > 0.1:
        log(f"warning: other processes used {results.phases[name][1]:.2f} cores during {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the report (default: bench/RESULTS.md, or a file in the "
        "temporary directory with --quick)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    output: Path = args.output or (
        Path(tempfile.gettempdir()) / "hyperpod-bench-quick.md"
        if args.quick
        else BENCH_DIR / "RESULTS.md"
    )
    # Nothing this process sends may leave the machine: a client that somehow aimed at AWS
    # would meet a closed proxy port instead.
    os.environ.update(
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        AWS_EC2_METADATA_DISABLED="true",
    )
    command = " ".join(
        shlex.quote(part)
        for part in [
            os.path.relpath(sys.executable, Path.cwd()),
            os.path.relpath(__file__, Path.cwd()),
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    results = Results(
        mode="quick" if args.quick else "full",
        command=command,
        sizes=sizes,
        machine=machine_info(),
    )
    began = time.perf_counter()
    busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
    results.notes["load average at start"] = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="hyperpod-bench-"))
    try:
        log(f"{results.mode} run; scratch in {work}")
        parts: list[tuple[str, Callable[[Results, Sizes, Path], None]]] = [
            ("interleaved part", interleaved_part),
            ("cold starts", cold_start_part),
            ("BatchReplaceClusterNodes", replace_part),
            ("100,000-node store", store_part),
        ]
        for name, part in parts:
            with phase(results, name):
                part(results, sizes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results.wall_seconds = time.perf_counter() - began
    others = (machine_busy_seconds() - busy_before) - (own_cpu_seconds() - own_before)
    results.notes["cores used by other processes, average"] = max(0.0, others) / (
        results.wall_seconds
    )
    results.notes["load average at end"] = os.getloadavg()[0]
    if results.notes["cores used by other processes, average"] > 0.1:
        log(
            "warning: other processes used "
            f"{results.notes['cores used by other processes, average']:.2f} cores on average "
            "during the run; its numbers are disturbed"
        )
    verdicts = write_report(results, output)
    log(f"wrote {output} after {results.wall_seconds:.0f}s")
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
