"""Server subprocesses for the benchmark: started on a free 127.0.0.1 port, read through /proc,
always stopped. Nothing here listens on or talks to any address but 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nothing listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of the process (all its threads) so far, from
    /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        data = stat.read()
    # Fields after the command name (which may hold spaces) start with the state (field 3);
    # utime and stime are fields 14 and 15.
    fields = data[data.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of the process so far."""
    return sum(cpu_times(pid))


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) of the process, in MB (10^6 bytes)."""
    found: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024 / 1e6
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (every core), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def ours_command(
    port: int, data_dir: Path, *extra: str, binary: Path = BIN / "hyperpod-local"
) -> list[str]:
    """`hyperpod-local serve` on the port; `binary` another release's executable."""
    return [
        str(binary),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *extra,
    ]


def moto_command(port: int) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]


def floor_command(port: int, body_file: Path) -> list[str]:
    return [
        sys.executable,
        str(BENCH_DIR / "floor_server.py"),
        "--port",
        str(port),
        "--body-file",
        str(body_file),
    ]


class Server:
    """One server subprocess; its output goes to a log file, never to a pipe that can fill."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Server:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def wait_ready(self, probe: Callable[[], Any], timeout: float = 60.0) -> float:
        """Call `probe` until it succeeds; returns the perf_counter time of that success. Until
        the port takes connections only a connect is tried, which costs far less CPU than a
        boto3 call: the machine is left to the starting process."""
        deadline = time.monotonic() + timeout
        while True:
            error: Exception | None = None
            if self._port_open():
                try:
                    probe()
                    return time.perf_counter()
                except Exception as failed:
                    error = failed
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}") from error
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready in {timeout}s: {error}") from error
            time.sleep(0.002)

    def _port_open(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            return sock.connect_ex((HOST, self.port)) == 0

    def post(self, path: str, body: Any = None, timeout: float = 600.0) -> Any:
        """POST to the server (the admin API); returns the parsed JSON answer."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body)
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            if response.status != 200:
                raise RuntimeError(f"{self.name} {path}: {response.status} {raw[:500]!r}")
            return json.loads(raw) if raw else None
        finally:
            conn.close()

    def settle(self, timeout: float = 600.0) -> None:
        self.post("/_hyperpod/clock/settle", timeout=timeout)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def memory_mb(self) -> dict[str, float]:
        return memory_mb(self.pid)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
