"""`hyperpod-local serve` as a user runs it: banner, signals, environment, --demo, plain HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.support import CLI, ServerProcess

URL = re.compile(r"http://127\.0\.0\.1:(?P<port>[0-9]+)")


class Serve(ServerProcess):
    """`hyperpod-local serve ARGS` exactly as given: no --port or --data-dir added, a clean
    environment (no inherited HYPERPOD_LOCAL_*) plus `env`, run in `cwd`."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path) -> None:
        super().__init__(cwd, *args, env=env)
        self.cwd = cwd

    def command(self) -> list[str]:
        return [CLI, "serve", *self.args]

    def environment(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("HYPERPOD_LOCAL_")}
        return {**inherited, **(self.env or {})}


@pytest.fixture
def started() -> Iterator[list[ServerProcess]]:
    """Servers a test starts; whatever is still running at the end is stopped."""
    servers: list[ServerProcess] = []
    yield servers
    for proc in servers:
        if proc.proc is not None:
            proc.kill()  # closes its pipes too; a process that has ended gets no signal


def wait_ready(client: Any, timeout: float = 10) -> None:
    """Poll ListClusters until the server answers it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_clusters()
            return
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def port_of(proc: ServerProcess) -> int:
    match = URL.fullmatch(proc.url)
    assert match, proc.url
    return int(match["port"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_banner_names_the_endpoint_and_the_export_line(fresh_server: ServerProcess) -> None:
    banner = fresh_server.banner
    url = fresh_server.url
    assert URL.fullmatch(url), url
    assert banner[0] == f"hyperpod-local serving the SageMaker HyperPod API at {url}"
    assert f"  export AWS_ENDPOINT_URL_SAGEMAKER={url}" in banner
    assert f"  data dir: {fresh_server.data_dir.resolve()}" in banner
    assert any(f"--endpoint-url {url}" in line for line in banner)
    fresh_server.client().list_clusters()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_promptly(
    tmp_path: Path, started: list[ServerProcess], sig: signal.Signals
) -> None:
    proc = ServerProcess(tmp_path / "data").start()
    started.append(proc)
    wait_ready(proc.client())
    assert proc.proc is not None
    sent = time.monotonic()
    proc.proc.send_signal(sig)
    proc.proc.wait(5)
    print(f"{sig.name}: exited {proc.proc.returncode} after {time.monotonic() - sent:.2f}s")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port_of(proc)), timeout=5).close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_with_exit_code_0(
    tmp_path: Path, started: list[ServerProcess], sig: signal.Signals
) -> None:
    proc = ServerProcess(tmp_path / "data").start()
    started.append(proc)
    wait_ready(proc.client())
    assert proc.stop(sig, timeout=5) == 0


def test_environment_variables_choose_the_port_and_the_data_dir(
    tmp_path: Path, started: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "from-env"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = Serve(
        env={"HYPERPOD_LOCAL_PORT": "0", "HYPERPOD_LOCAL_DATA_DIR": str(data_dir)}, cwd=cwd
    )
    started.append(proc)
    proc.start()
    assert f"  data dir: {data_dir.resolve()}" in proc.banner
    assert port_of(proc) != 4577
    name = "from-env"
    proc.client().create_cluster(
        ClusterName=name,
        InstanceGroups=[
            {
                "InstanceGroupName": "g",
                "InstanceType": "ml.c5.xlarge",
                "InstanceCount": 1,
                "ExecutionRole": "arn:aws:iam::123456789012:role/R",
            }
        ],
    )
    assert (data_dir / "hyperpod.db").is_file()
    assert not (cwd / ".hyperpod-local").exists()


def test_time_from_start_to_the_first_list_clusters(
    tmp_path: Path, started: list[ServerProcess]
) -> None:
    port = free_port()
    probe = Serve("--port", str(port), "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    probe.url = f"http://127.0.0.1:{port}"
    # The client is built first so that its own start-up is not part of the measurement.
    client = probe.client()
    started.append(probe)
    probe.start()
    banner_after = time.monotonic() - probe.started
    wait_ready(client)
    first_call_after = time.monotonic() - probe.started
    print(
        f"start -> banner {banner_after:.3f}s, start -> first ListClusters {first_call_after:.3f}s"
    )
    assert first_call_after < 10


def demo_nodes(client: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator("list_cluster_nodes").paginate(ClusterName="demo")
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def test_demo_creates_one_demo_cluster_and_a_restart_keeps_it(
    tmp_path: Path, started: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    first = ServerProcess(data_dir, "--demo", "--clock", "manual").start()
    started.append(first)
    assert "created demo cluster 'demo' in us-east-1 (account 123456789012)" in first.banner
    first.settle()
    client = first.client()  # access key "testing": the default account, 123456789012
    described = client.describe_cluster(ClusterName="demo")
    arn = described["ClusterArn"]
    assert re.fullmatch(r"arn:aws:sagemaker:us-east-1:123456789012:cluster/[a-z0-9]{12}", arn)
    assert described["ClusterStatus"] == "InService"
    assert [
        (g["InstanceGroupName"], g["TargetCount"], g["CurrentCount"])
        for g in described["InstanceGroups"]
    ] == [("controller", 1, 1), ("login", 1, 1), ("workers", 4, 4)]
    nodes = demo_nodes(client)
    assert sorted(n["InstanceGroupName"] for n in nodes) == [
        "controller",
        "login",
        *["workers"] * 4,
    ]
    assert {n["InstanceStatus"]["Status"] for n in nodes} == {"Running"}
    # Only there: another region or another account does not see it.
    assert first.client(region="us-west-2").list_clusters()["ClusterSummaries"] == []
    assert first.client(access_key="111122223333").list_clusters()["ClusterSummaries"] == []
    first.stop()

    second = ServerProcess(data_dir, "--demo", "--clock", "manual").start()
    started.append(second)
    assert not any("created demo cluster" in line for line in second.banner)
    client = second.client()
    summaries = client.list_clusters(MaxResults=100)["ClusterSummaries"]
    assert [(s["ClusterName"], s["ClusterArn"]) for s in summaries] == [("demo", arn)]
    assert sorted(n["InstanceId"] for n in demo_nodes(client)) == sorted(
        n["InstanceId"] for n in nodes
    )
    second.stop()


def test_get_root_describes_the_service_as_json(server: ServerProcess) -> None:
    status, headers, body = http("GET", server.url + "/")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    about = json.loads(body)
    assert about["service"] == "hyperpod-local"
    assert "SageMaker" in about["api"]


@pytest.mark.parametrize(("method", "path"), [("PUT", "/"), ("DELETE", "/"), ("GET", "/x")])
def test_a_request_that_is_not_post_gets_a_json_error(
    server: ServerProcess, method: str, path: str
) -> None:
    status, headers, body = http(method, server.url + path)
    assert 400 <= status < 500
    error = json.loads(body)
    assert error["__type"] == "MethodNotAllowed"
    assert method in error["message"]
    assert headers["x-amzn-errortype"] == "MethodNotAllowed"


def test_a_second_server_on_a_taken_port_fails_clearly(
    server: ServerProcess, tmp_path: Path
) -> None:
    port = port_of(server)
    done = subprocess.run(
        [CLI, "serve", "--port", str(port), "--data-dir", str(tmp_path / "other")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Address already in use" in done.stderr
    assert "serving" not in done.stdout
    # The first one is unharmed.
    server.client().list_clusters()
