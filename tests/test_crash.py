"""SIGKILL the server at random moments while it replaces nodes, or while it launches a classic
cluster's nodes: after each restart it picks up every accepted operation and finishes it
exactly once, and nothing is lost or left over."""

from __future__ import annotations

import contextlib
import http.client
import random
import threading
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tests.support import ServerProcess, group

# HyperPod seconds per wall second: a replacement (terminate 120 s + provision 240 s) takes
# about 0.12 s, so kills land in every phase of it.
SPEED = "3000"
NODES = 10
# Each round is a server start and a SIGKILL: bounded by count, and every round kills the
# server only once it has accepted at least one replacement, so the test's work does not
# depend on how fast a busy machine starts a server.
ROUNDS = 40
# How long a round may wait for its first accepted replacement before the test fails.
ROUND_PATIENCE = 60.0
EKS = {"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/crash"}}


def start(data: Path) -> ServerProcess:
    return ServerProcess(data, "--speed", SPEED).start()


def all_nodes(sm: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(
        ClusterName="crash", IncludeNodeLogicalIds=True
    )
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def wait_until_quiet(server: ServerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, clock = server.admin("GET", "/_hyperpod/clock")
        if status == 200 and clock["PendingSteps"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("operations still in flight")


def replace_until_stopped(
    sm: Any, rng: random.Random, accepted: list[str], stop: threading.Event
) -> None:
    """Replace random Running nodes one call at a time; remember what the server accepted."""
    while not stop.is_set():
        try:
            running = [n for n in all_nodes(sm) if n["InstanceStatus"]["Status"] == "Running"]
            if not running:
                time.sleep(0.01)
                continue
            picked = rng.sample(running, min(len(running), rng.randint(1, 3)))
            answer = sm.batch_replace_cluster_nodes(
                ClusterName="crash", NodeIds=[n["InstanceId"] for n in picked]
            )
        except (BotoCoreError, ClientError):
            return  # the server is gone
        except KeyError:
            # Killed between an answer's headers and its body: botocore does not enforce
            # Content-Length, so the truncated 200 parses as {}. The server is gone too.
            return
        accepted.extend(answer.get("Successful", []))


def test_every_accepted_replacement_finishes_exactly_once_across_kills(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = random.Random(20261128)
    server = start(data)
    try:
        sm = server.client()
        sm.create_cluster(
            ClusterName="crash",
            InstanceGroups=[
                group(
                    "workers",
                    NODES,
                    InstanceStorageConfigs=[{"EbsVolumeConfig": {"VolumeSizeInGB": 100}}],
                )
            ],
            NodeProvisioningMode="Continuous",
            Orchestrator=EKS,
        )
        wait_until_quiet(server)
        logical_ids = {n["NodeLogicalId"] for n in all_nodes(sm)}
        assert len(logical_ids) == NODES

        accepted: list[str] = []
        for _ in range(ROUNDS):
            before = len(accepted)
            stop = threading.Event()
            worker = threading.Thread(
                target=replace_until_stopped, args=(server.client(), rng, accepted, stop)
            )
            worker.start()
            deadline = time.monotonic() + ROUND_PATIENCE
            while len(accepted) == before and worker.is_alive():
                assert time.monotonic() < deadline, "no replacement accepted in a round"
                time.sleep(0.005)
            # Then a kill at a random moment: mid-request, mid-replacement or between them.
            time.sleep(rng.uniform(0.0, 0.1))
            server.kill()
            stop.set()
            worker.join(30)
            assert not worker.is_alive()
            server = start(data)

        wait_until_quiet(server)
        sm = server.client()
        nodes = all_nodes(sm)
        print(f"{len(accepted)} accepted replacements across {ROUNDS} kills")
        assert len(accepted) >= ROUNDS

        # Nothing lost or duplicated: the same logical nodes, all Running on live instances.
        assert len(nodes) == NODES
        assert {n["NodeLogicalId"] for n in nodes} == logical_ids
        assert {n["InstanceStatus"]["Status"] for n in nodes} == {"Running"}
        current = {n["InstanceId"] for n in nodes}
        assert not current & set(accepted)
        assert len(accepted) == len(set(accepted))

        # Each accepted replacement started once and its old instance was terminated once.
        events = [
            event
            for page in sm.get_paginator("list_cluster_events").paginate(ClusterName="crash")
            for event in page["Events"]
        ]
        for old in accepted:
            mine = [e["Description"] for e in events if e.get("InstanceId") == old]
            assert sum("replacement started" in d for d in mine) == 1, (old, mine)
            assert (
                sum(d.startswith(f"EC2 Instance {old} successfully terminated") for d in mine) == 1
            )
        started = sum("Instance replacement started" in e["Description"] for e in events)
        completed = sum(
            "replacement in Cluster" in e["Description"] and "completed" in e["Description"]
            for e in events
        )
        assert started == completed >= len(accepted)

        # No instance or volume is left behind.
        status, inventory = server.admin("GET", "/_hyperpod/instances")
        assert status == 200
        assert {i["InstanceId"] for i in inventory["Instances"]} == current
        assert inventory["OrphanVolumes"] == 0
        assert all(len(i["VolumeIds"]) == 2 for i in inventory["Instances"])
    finally:
        server.stop()


# A classic cluster's nodes are made as their instances launch, 500 a transaction: this many
# take four, so a kill can land between any two.
CLASSIC_NODES = 2000


def test_a_kill_during_a_classic_creation_makes_each_node_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "--clock", "manual").start()
    try:
        groups = [group("a", CLASSIC_NODES - 300), group("b", 300)]
        sm = server.client()
        # How long the launches of a cluster this size take on this machine, so that the
        # kills below land inside them.
        sm.create_cluster(ClusterName="timing", InstanceGroups=groups)
        began = time.monotonic()
        server.advance(300 + 1)
        launching = time.monotonic() - began
        server.settle()
        rng = random.Random(20260301)
        partial: list[int] = []
        names = ["timing"]
        # Until two kills have caught a creation part way (at most 12 rounds).
        while len(partial) < 2 and len(names) <= 12:
            name = f"born-{len(names)}"
            names.append(name)
            server.client().create_cluster(ClusterName=name, InstanceGroups=groups)
            advancing = threading.Thread(target=advance_until_killed, args=(server,))
            advancing.start()
            time.sleep(rng.uniform(0.1, 0.9) * launching)
            server.kill()
            advancing.join(30)
            server = ServerProcess(data, "--clock", "manual").start()
            made = len(nodes_of(server.client(), name))
            if 0 < made < CLASSIC_NODES:
                partial.append(made)
            server.settle()
        print(f"kills caught creations at {partial} nodes in {len(names) - 1} rounds")
        assert partial, "no kill landed while a creation launched its nodes"

        sm = server.client()
        launched: set[str] = set()
        for name in names:
            described = sm.describe_cluster(ClusterName=name)
            assert described["ClusterStatus"] == "InService", name
            assert [
                (g["InstanceGroupName"], g["CurrentCount"], g["TargetCount"])
                for g in described["InstanceGroups"]
            ] == [("a", CLASSIC_NODES - 300, CLASSIC_NODES - 300), ("b", 300, 300)], name
            nodes = nodes_of(sm, name)
            assert len(nodes) == CLASSIC_NODES, name
            assert {n["InstanceStatus"]["Status"] for n in nodes} == {"Running"}, name
            launched |= {n["InstanceId"] for n in nodes}
        # Each node has an instance of its own, and no instance is left without a node.
        assert len(launched) == CLASSIC_NODES * len(names)
        status, inventory = server.admin("GET", "/_hyperpod/instances")
        assert status == 200
        assert {i["InstanceId"] for i in inventory["Instances"]} == launched
        assert inventory["OrphanVolumes"] == 0
    finally:
        server.stop()


def advance_until_killed(server: ServerProcess) -> None:
    # The kill ends the call: its connection reset or closed without an answer.
    with contextlib.suppress(OSError, http.client.HTTPException):
        server.admin("POST", "/_hyperpod/clock/advance", {"seconds": 300 + 1})


def nodes_of(sm: Any, name: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=name)
    return [node for page in pages for node in page["ClusterNodeSummaries"]]
