"""Helpers the tests share: the real server as a subprocess, and request builders."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from tests import postgresql

ROLE = "arn:aws:iam::123456789012:role/HyperPodExecutionRole"
CLI = str(Path(sys.executable).parent / "hyperpod-local")
# Servers started and not yet stopped: a test that times out has them killed before its
# process exits (tests/conftest.py), so none outlives the run.
LIVE: set[ServerProcess] = set()


def kill_live_servers() -> None:
    for server in list(LIVE):
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()


class ServerProcess:
    """`hyperpod-local serve` on a free loopback port, stopped by `stop()` or `kill()`."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = args
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.banner: list[str] = []
        self.cwd: Path | None = None
        self.admin_token: str | None = None
        self.started = 0.0

    def command(self) -> list[str]:
        store: list[str] = []
        if postgresql.ON_POSTGRESQL and "--store" not in self.args:
            # The data dir's own database there: a restart on it finds the store again.
            store = ["--store", postgresql.database_for(self.data_dir.resolve())]
        return [CLI, "serve", "--port", "0", "--data-dir", str(self.data_dir), *store, *self.args]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **(self.env or {})}

    def start(self) -> ServerProcess:
        self.started = time.monotonic()
        # The server's log goes to a file: a pipe nobody reads would fill and stall it.
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=self.environment(),
                cwd=self.cwd,
            )
        LIVE.add(self)
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited: {self.proc.wait()} {self.log_path.read_text()}")
            self.banner.append(line.rstrip("\n"))
            if line.startswith("admin API token"):
                self.admin_token = self.proc.stdout.readline().strip()
                self.banner.append("  <admin token>")
            if "export AWS_ENDPOINT_URL_SAGEMAKER=" in line:
                self.url = line.strip().split("=", 1)[1]
                # The rest of the banner is one line; read it so the pipe never fills.
                self.banner.append(self.proc.stdout.readline().rstrip("\n"))
                return self
        raise RuntimeError("server did not print its endpoint in time")

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the admin API; returns (status, parsed JSON or None)."""
        url = urlsplit(self.url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
            headers = {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def advance(self, seconds: float) -> float:
        status, body = self.admin("POST", "/_hyperpod/clock/advance", {"seconds": seconds})
        assert status == 200, body
        return float(body["Now"])

    def settle(self) -> float:
        status, body = self.admin("POST", "/_hyperpod/clock/settle")
        assert status == 200, body
        return float(body["Elapsed"])

    def client(self, region: str = "us-east-1", access_key: str = "testing", **config: Any) -> Any:
        return boto3.session.Session().client(
            "sagemaker",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key="testing",
            config=Config(**{"retries": {"max_attempts": 1, "mode": "standard"}, **config}),
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Too slow to stop is a failure, but not a server left running after the test.
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def _close(self) -> None:
        assert self.proc is not None
        LIVE.discard(self)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Aws:
    """`aws` with static test credentials, no config files, and no way out to real AWS."""

    def __init__(self, tmp_path: Path, url: str, mode: str = "flag") -> None:
        nowhere = str(tmp_path / "no-such-aws-config")
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=nowhere,
            AWS_SHARED_CREDENTIALS_FILE=nowhere,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
            # Should the CLI ever ignore the endpoint it is given, it must fail rather than
            # reach the real SageMaker: everything but loopback goes to a closed proxy port.
            HTTPS_PROXY="http://127.0.0.1:9",
            HTTP_PROXY="http://127.0.0.1:9",
            NO_PROXY="127.0.0.1,localhost",
        )
        self.endpoint_args: list[str] = []
        if mode == "flag":
            self.endpoint_args = ["--endpoint-url", url]
        else:
            env["AWS_ENDPOINT_URL_SAGEMAKER"] = url
        self.env = env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "awscli", "sagemaker", *args, *self.endpoint_args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def json(self, *args: str) -> Any:
        done = self.run(*args, "--output", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


# Put before a child's code: it refuses every connection beyond loopback and says so, so a
# client that went looking for credentials (the EC2 metadata service) or for AWS fails the
# test rather than sending anything.
NO_NETWORK = """
import ipaddress, socket
_connect = socket.socket.connect
def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else ""
    if host and not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
        raise SystemExit(f"tried to connect to {address}")
    return _connect(self, address)
socket.socket.connect = _guarded
"""


def clean_environment(tmp_path: Path, **env: str) -> dict[str, str]:
    """The environment of a machine with no AWS configuration at all: no AWS_* variable and
    an empty HOME (no ~/.aws), as on a clean CI runner."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(HOME=str(home), **env)
    return clean


def run_clean(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Python code in a child with a clean environment and no network beyond loopback."""
    return subprocess.run(
        [sys.executable, "-c", NO_NETWORK + code],
        capture_output=True,
        text=True,
        env=clean_environment(tmp_path, **env),
        cwd=tmp_path,
        timeout=60,
    )


def group(name: str, count: int = 2, instance_type: str = "ml.c5.xlarge", **extra: Any) -> dict:
    return {
        "InstanceGroupName": name,
        "InstanceType": instance_type,
        "InstanceCount": count,
        "ExecutionRole": ROLE,
        **extra,
    }


def cluster_summaries(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every cluster summary ListClusters gives, through boto3's paginator."""
    pages = client.get_paginator("list_clusters").paginate(**kwargs)
    return [summary for page in pages for summary in page["ClusterSummaries"]]


def cluster_names(client: Any, **kwargs: Any) -> list[str]:
    return [summary["ClusterName"] for summary in cluster_summaries(client, **kwargs)]


def error_of(excinfo: Any) -> tuple[str, str]:
    """(code, message) of a botocore ClientError caught by pytest.raises."""
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def exchange(
    port: int, payload: bytes, *, timeout: float = 5.0, half_close: bool = False
) -> tuple[list[int], bytes]:
    """Raw bytes to the server; the statuses of whatever answers came back before it closed
    the connection or `timeout` passed, and the bytes received."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before it has read everything
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except OSError:  # TimeoutError or a reset
                break
            if not chunk:
                break
            received += chunk
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", received)], received


def request_bytes(
    body: bytes = b"{}",
    *,
    target: bytes | None = b"SageMaker.ListClusters",
    method: bytes = b"POST",
    path: bytes = b"/",
    length: bytes | None = None,
    headers: tuple[bytes, ...] = (),
    version: bytes = b"HTTP/1.1",
    close: bool = True,
) -> bytes:
    """One raw request, by default `Connection: close`."""
    lines = [method + b" " + path + b" " + version, b"Host: 127.0.0.1"]
    if target is not None:
        lines.append(b"X-Amz-Target: " + target)
    lines.append(b"Content-Length: " + (str(len(body)).encode() if length is None else length))
    lines.append(b"Content-Type: application/x-amz-json-1.1")
    if close:
        lines.append(b"Connection: close")
    lines += headers
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def raw_socket(server: ServerProcess, timeout: float = 10.0) -> socket.socket:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    return socket.create_connection((url.hostname, url.port), timeout=timeout)


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer on a kept-alive connection, however many reads it takes."""
    received = b""
    while not _whole(received):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before a whole answer"
        received += chunk
    return received


def _whole(received: bytes) -> bool:
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return len(body) >= length


def asgi_get(
    app: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[dict[str, Any], bytes]:
    """GET `path` from an ASGI app in this process, from a loopback client: the response's
    start message and its whole body."""
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers or [],
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 4577),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
    }
    asyncio.run(app(scope, receive, send))
    return sent[0], b"".join(message.get("body", b"") for message in sent[1:])
