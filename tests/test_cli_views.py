"""`hyperpod-local nodes` and `hyperpod-local watch`: the human view of a cluster."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from typing import Any

from tests.support import CLI, ServerProcess, group


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "COLUMNS": "220", **env},
    )


def piped(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with its output to a pipe and no COLUMNS, as in `hyperpod-local nodes c | grep`."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "TTY_", "FORCE_")) and k not in ("COLUMNS", "LINES")
    }
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=clean)


def make_cluster(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("workers", 3)])
    server.settle()
    return sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]


def test_nodes_prints_every_node(server: ServerProcess, name: str) -> None:
    nodes = make_cluster(server, name)
    result = run_cli("nodes", name, AWS_ENDPOINT_URL_SAGEMAKER=server.url)
    assert result.returncode == 0, result.stderr
    assert f"{name}  InService  workers 3/3" in result.stdout
    for node in nodes:
        assert node["InstanceId"] in result.stdout
        assert node["PrivateDnsHostname"] in result.stdout
    assert result.stdout.count("Running") == 3


def test_piped_tables_keep_every_id_and_hostname_whole(server: ServerProcess, name: str) -> None:
    sm = server.client()
    # Logical ids make the widest table: well past 80 columns.
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[group("workers-of-a-long-group-name", 2)],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}},
    )
    server.settle()
    nodes = sm.list_cluster_nodes(ClusterName=name, IncludeNodeLogicalIds=True)[
        "ClusterNodeSummaries"
    ]
    url = ["--endpoint-url", server.url]
    for command in (["nodes", name, *url], ["watch", name, *url, "--count", "2"]):
        result = piped(*command)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) > 80
        for node in nodes:
            # One line per node, with all of it: `grep i-... | awk` works.
            [line] = [line for line in lines if node["InstanceId"] in line]
            assert node["NodeLogicalId"] in line, line
            assert node["PrivateDnsHostname"] in line, line
            assert "workers-of-a-long-group-name" in line, line
            assert "…" not in line


def test_nodes_reports_errors_in_one_line(server: ServerProcess) -> None:
    missing = run_cli("nodes", "no-such-cluster", "--endpoint-url", server.url)
    assert missing.returncode == 1
    assert "ResourceNotFound" in missing.stderr
    assert "Could not find cluster 'no-such-cluster'" in missing.stderr
    down = run_cli("nodes", "x", "--endpoint-url", "http://127.0.0.1:9")
    assert down.returncode == 1
    assert "is the server running?" in down.stderr


def test_watch_shows_a_replacement_happen(server: ServerProcess, name: str) -> None:
    nodes = make_cluster(server, name)
    old = nodes[0]["InstanceId"]
    sm = server.client()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # A terminal, as a person has: rich redraws the table in place on every refresh.
    watcher = subprocess.Popen(
        [CLI, "watch", name, "--endpoint-url", server.url, "--interval", "0.1", "--count", "600"],
        stdout=subprocess.PIPE,
        text=True,
        env={**clean, "COLUMNS": "220", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"},
    )
    seen: list[str] = []
    reader = threading.Thread(
        target=lambda: seen.extend(iter(lambda: watcher.stdout.read(256), "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()

    def frames() -> str:
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(seen))

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 30
        while text not in frames():
            assert time.monotonic() < deadline, f"the watcher never showed {text!r}"
            time.sleep(0.05)

    try:
        wait_for(f"{name}  InService")
        sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[old])
        wait_for("ShuttingDown")
        server.advance(120)  # old instance gone, new one Pending
        new = next(
            n["InstanceId"]
            for n in sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
            if n["InstanceId"] not in {m["InstanceId"] for m in nodes}
        )
        wait_for(new)
        server.settle()
        deadline = time.monotonic() + 30
        while True:
            shown = frames()
            last_frame = shown[shown.rindex(name + "  InService") :]
            if new in last_frame and old not in last_frame and "Pending" not in last_frame:
                break
            assert time.monotonic() < deadline, "the watcher never showed the replaced node"
            time.sleep(0.05)
    finally:
        watcher.terminate()
        watcher.wait(10)
    shown = frames()
    # The watcher saw the old node shut down and the new one come up, in that order.
    assert shown.index("ShuttingDown") < shown.index(new)
    assert "Pending" in shown[shown.index(new) :]
