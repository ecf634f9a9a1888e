"""examples/auto_remediate.py heals a NodeRecovery None cluster against the real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support import ServerProcess, group

AGENT = Path(__file__).parent.parent / "examples" / "auto_remediate.py"
# A real clock, fast: detection (15 s) takes 25 ms, a replacement about 0.6 s.
SPEED = "600"


def nodes(sm: Any, cluster: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster)
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_agent_replaces_failed_nodes_until_the_cluster_is_healthy(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--speed", SPEED).start()
    try:
        sm = server.client()
        sm.create_cluster(
            ClusterName="agent",
            InstanceGroups=[
                group("controller", 1, "ml.m5.xlarge", SlurmConfig={"NodeType": "Controller"}),
                group("workers", 30, SlurmConfig={"NodeType": "Compute"}),
            ],
            Orchestrator={"Slurm": {}},
            NodeRecovery="None",
        )
        wait_for(lambda: sm.describe_cluster(ClusterName="agent")["ClusterStatus"] == "InService")
        workers = [
            n["InstanceId"] for n in nodes(sm, "agent") if n["InstanceGroupName"] == "workers"
        ]
        faulty = workers[:27]  # more than one call's worth: the agent must split at 25
        for node_id in faulty:
            status, _ = server.admin(
                "POST",
                "/_hyperpod/faults",
                {"Kind": "hardware", "Cluster": "agent", "InstanceId": node_id, "Type": "GpuXid79"},
            )
            assert status == 201
        # NodeRecovery None: HyperPod only detects; the nodes wait in Failure for a client.
        wait_for(
            lambda: (
                sum(n["InstanceStatus"]["Status"] == "Failure" for n in nodes(sm, "agent"))
                == len(faulty)
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=str(tmp_path / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
            AWS_ENDPOINT_URL_SAGEMAKER=server.url,
        )
        result = subprocess.run(
            [
                sys.executable,
                str(AGENT),
                "--cluster",
                "agent",
                "--interval",
                "0.2",
                "--until-healthy",
                "--timeout",
                "60",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        for node_id in faulty:
            assert f"replacing {node_id}" in result.stdout
        assert "done: 27 replacement(s) started" in result.stdout
        wait_for(lambda: {n["InstanceStatus"]["Status"] for n in nodes(sm, "agent")} == {"Running"})
        now = nodes(sm, "agent")
        assert len(now) == 31
        assert not {n["InstanceId"] for n in now} & set(faulty)
    finally:
        server.stop()
