"""The interleaved part: every target (ours, moto, the floors) asked the same calls in
round-robin, so drift of the machine falls on all alike."""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.handlers
from floor_server import FLOOR_REQUEST_ID
from measure import Op, interleaved, log, rotated, throughput
from results import (
    ALL,
    BOTH,
    DESCRIBED,
    EAST,
    HTTP,
    MEASURED,
    NODES_LARGE,
    NODES_SMALL,
    SERVERS,
    THREADS,
    WEST,
    Results,
    Sizes,
)
from servers import (
    Server,
    floor_command,
    free_port,
    moto_command,
    ours_command,
)
from targets import (
    Handler,
    Target,
    ask_afresh,
    create,
    make_client,
    no_network_client,
    two_groups,
)

import hyperpod_local


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
