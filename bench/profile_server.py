"""Where hyperpod-local's server spends its time per request: py-spy samples the server process
while one boto3 client calls it in a loop.

    .venv/bin/python bench/profile_server.py [--op describe|describe-large|list-nodes|
        list-clusters] [--calls 3000] [--rate 1000] [--top 25]

Needs py-spy (`pip install py-spy`). By default only the thread holding the GIL is sampled,
so a sample is Python code running (waits for the GIL are left out; C code that lets the GIL
go, such as SQLite's, is not seen either). Prints the server CPU per call from /proc and, per
function, its share of the samples as milliseconds of that CPU per call: self (the function's
own code) and inclusive (it and what it calls); and the self time grouped by area (SQLAlchemy,
event loop and HTTP, thread hand-off, JSON, hyperpod_local's own code).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servers import BIN, Server, cpu_times, free_port, ours_command
from targets import ask_afresh, group, make_client


def parse_collapsed(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, self samples per frame, inclusive samples per frame."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return total, own, inclusive


def short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})"


AREAS = [
    ("sqlalchemy/", "SQLAlchemy: statement building, compile cache, execution, rows"),
    ("hyperpod_local/", "hyperpod_local's own code"),
    ("uvicorn/", "uvicorn and the asyncio event loop"),
    ("httptools", "uvicorn and the asyncio event loop"),
    ("asyncio/", "uvicorn and the asyncio event loop"),
    ("selectors.py", "uvicorn and the asyncio event loop"),
    ("anyio/", "thread hand-off (anyio.to_thread, threading)"),
    ("threading.py", "thread hand-off (anyio.to_thread, threading)"),
    ("concurrent/", "thread hand-off (anyio.to_thread, threading)"),
    ("json/", "json"),
    ("sqlite3/", "sqlite3 module"),
    ("uuid.py", "uuid"),
]


def area(frame: str) -> str:
    for marker, name in AREAS:
        if marker in frame:
            return name
    return "other: " + short(frame).split(" (", 1)[1].rstrip(")")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--op",
        choices=["describe", "describe-large", "list-nodes", "list-clusters", "create"],
        default="describe",
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--native", action="store_true", help="C frames too (py-spy --native)")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="send Cache-Control: no-cache, so every answer is computed from the store",
    )
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every busy thread, waits for the GIL included",
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="hyperpod-profile-"))
    port = free_port()
    server = Server(
        "ours", ours_command(port, work / "data", "--clock", "manual"), port, work / "log"
    )
    client = make_client("us-east-1", endpoint_url=server.url)
    if args.no_cache:
        ask_afresh(client)
    spy: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        server.wait_ready(client.list_clusters)
        client.create_cluster(
            ClusterName="small", InstanceGroups=[group("workers-a", 2), group("workers-b", 2)]
        )
        client.create_cluster(
            ClusterName="large",
            InstanceGroups=[group("workers-a", 5000), group("workers-b", 5000)],
        )
        for i in range(100):
            client.create_cluster(ClusterName=f"fill-{i:03d}", InstanceGroups=[group("w", 1)])
        server.settle()
        made = itertools.count()
        calls: dict[str, Callable[[], Any]] = {
            "describe": lambda: client.describe_cluster(ClusterName="small"),
            "describe-large": lambda: client.describe_cluster(ClusterName="large"),
            "list-nodes": lambda: client.list_cluster_nodes(ClusterName="large", MaxResults=100),
            "list-clusters": lambda: client.list_clusters(MaxResults=100),
            "create": lambda: client.create_cluster(
                ClusterName=f"made-{next(made):05d}",
                InstanceGroups=[group("workers-a", 2), group("workers-b", 2)],
            ),
        }
        call = calls[args.op]
        for _ in range(50):
            call()
        out = work / "profile.txt"
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(server.pid),
                "--rate",
                str(args.rate),
                "--format",
                "raw",
                "--nolineno",
                # --native has to stop the process to read its C stacks.
                *([] if args.native else ["--nonblocking"]),
                "--threads",
                *([] if args.all_threads else ["--gil"]),
                *(["--native"] if args.native else []),
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        user_before, system_before = cpu_times(server.pid)
        began = time.perf_counter()
        for _ in range(args.calls):
            call()
        wall = time.perf_counter() - began
        user_after, system_after = cpu_times(server.pid)
        user, system = user_after - user_before, system_after - system_before
        cpu = user + system
        spy.send_signal(signal.SIGINT)
        _, spy_err = spy.communicate(timeout=60)
        if not out.exists():
            print(f"py-spy wrote nothing: {spy_err.decode(errors='replace')}", file=sys.stderr)
            return 1
        total, own, inclusive = parse_collapsed(out)
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    per_call = cpu * 1e3 / args.calls
    print(
        f"{args.op}: {args.calls} calls, {wall * 1e3 / args.calls:.3f} ms wall per call, "
        f"server CPU {per_call:.3f} ms per call (/proc: user {user * 1e3 / args.calls:.3f}, "
        f"system {system * 1e3 / args.calls:.3f}); {total} samples at {args.rate}/s"
    )
    if not total:
        return 1
    # py-spy falls behind its nominal rate on a busy machine, so the samples are read as shares
    # of the server's CPU per call (by default they are the GIL holder's, i.e. CPU in Python).
    scale = per_call / total
    print(
        f"{total / (wall + 1.0):.0f} samples/s taken (nominal {args.rate}); ms/call below is "
        "each one's share of the samples times the server CPU per call"
    )

    def table(title: str, counts: Counter[str], name: Callable[[str], str] = short) -> None:
        print(f"\n{title}")
        print(f"{'ms/call':>8} {'share':>6}  what")
        for frame, count in counts.most_common(args.top):
            print(f"{count * scale:8.3f} {100 * count / total:5.1f}%  {name(frame)}")

    areas: Counter[str] = Counter()
    for frame, count in own.items():
        areas[area(frame)] += count
    table("self time by area", areas, str)
    table("self time (the function's own code)", own)
    mine = Counter({f: c for f, c in inclusive.items() if "hyperpod_local" in f})
    table("inclusive time, hyperpod_local functions", mine)
    table("inclusive time, all functions", inclusive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
