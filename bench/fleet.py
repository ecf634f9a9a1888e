"""The engine at fleet scale: what a fleet of 100,000 nodes costs the server, in its own CPU
seconds (from /proc), with moto's server beside it where moto can do the same work.

    .venv/bin/python bench/run.py --fleet [--quick] [--million] [--baseline PATH] [--output PATH]

Each row is measured in this one run: engine throughput (replacements on a 100-node and a
10,000-node cluster, node steps per server CPU second), settling a new fleet of 10 clusters
of 10 groups, the CreateCluster call of a 10,000-node cluster (ours and moto's), DescribeCluster
computed (`Cache-Control: no-cache`) at 1,000 and 10,000 nodes and the first page of 100
of the 10,000-node cluster's ListClusterNodes (ours and moto's), and a replay: the fleet
under a real clock at 1000x with a `random_hardware` fault of one failure per node per 30
HyperPod days, sampled every few seconds (backlog, strikes, recoveries in flight, the share
of a core used, the latency of a fault POST). `--baseline PATH` names
another hyperpod-local executable (an older checkout's `.venv/bin/hyperpod-local`), measured
beside this one on the same rows, but for the replay, which needs `random_hardware`.
`--million` also settles a fleet of 1,000,000 nodes (100 clusters), ours alone: CPU, wall,
data dir and RSS.

Writes its section of bench/RESULTS.md (between the fleet markers, kept by the main run) and
bench/fleet.png. Loopback only; every process it starts is stopped before it returns.
"""

from __future__ import annotations

import http.client
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measure import log
from sections import MARKS, write_section
from servers import BIN, HOST, Server, free_port, moto_command, ours_command
from targets import ask_afresh, group, make_client

EAST = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/HyperPodExecutionRole"
START_MARK, END_MARK = MARKS["fleet"]


@dataclass(frozen=True)
class FleetSizes:
    small: int = 100
    large: int = 10_000
    replacements: int = 2000
    clusters: int = 10
    groups: int = 10
    group_nodes: int = 1000
    describes: int = 500
    replay_seconds: float = 300.0
    speed: float = 1000.0
    mtbf_hours: float = 720.0

    @property
    def fleet(self) -> int:
        return self.clusters * self.groups * self.group_nodes


FULL = FleetSizes()
# `--million`: the settle alone, of 100 clusters of 10 groups of 1,000.
MILLION = FleetSizes(clusters=100)
QUICK = FleetSizes(
    large=2000,
    replacements=100,
    clusters=2,
    groups=5,
    group_nodes=200,
    describes=100,
    replay_seconds=20.0,
)


@dataclass
class Row:
    """One row of the table: a value per implementation measured."""

    what: str
    unit: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class Replay:
    samples: list[dict[str, float]] = field(default_factory=list)
    fault_posts_ms: list[float] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)


def started(name: str, argv: list[str], port: int, work: Path) -> Server:
    server = Server(name, argv, port, work / f"{name}.log").start()
    client = make_client(EAST, endpoint_url=server.url)
    server.wait_ready(client.list_clusters, timeout=120)
    return server


def groups_of(nodes: int, per_group: int = 5000) -> list[dict[str, Any]]:
    count = max(1, -(-nodes // per_group))
    sizes = [nodes // count + (1 if i < nodes % count else 0) for i in range(count)]
    return [group(f"g{i}", size) for i, size in enumerate(sizes)]


def admin(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
    """(status, JSON answer, milliseconds) of an admin call."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    began = time.perf_counter()
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        took = (time.perf_counter() - began) * 1e3
        return response.status, json.loads(raw) if raw else None, took
    finally:
        conn.close()


def metrics(server: Server) -> dict[str, float]:
    """The server's /metrics, summed by family name (labels dropped)."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        labels = name_labels[len(name) :]
        found[name] = found.get(name, 0.0) + float(value)
        status = re.search(r'status="(\w+)"', labels)
        if name == "hyperpod_local_nodes" and status:
            key = f"nodes_{status.group(1)}"
            found[key] = found.get(key, 0.0) + float(value)
    return found


def steps_run(server: Server) -> float:
    return metrics(server).get("hyperpod_local_engine_steps_total", 0.0)


def running_ids(client: Any, name: str, limit: int) -> list[str]:
    found: list[str] = []
    kwargs: dict[str, Any] = {"ClusterName": name, "MaxResults": 100}
    while len(found) < limit:
        page = client.list_cluster_nodes(**kwargs)
        found += [
            n["InstanceId"]
            for n in page["ClusterNodeSummaries"]
            if n["InstanceStatus"]["Status"] == "Running"
        ]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return found[:limit]


def throughput(binary: Path, nodes: int, sizes: FleetSizes, work: Path, key: str) -> float:
    """Node steps per server CPU second while replacements on an `nodes`-node cluster run."""
    port = free_port()
    server = started(
        f"{key}-steps-{nodes}",
        ours_command(port, work / f"{key}-steps-{nodes}", "--clock", "manual", binary=binary),
        port,
        work,
    )
    try:
        client = make_client(EAST, endpoint_url=server.url)
        client.create_cluster(ClusterName="steps", InstanceGroups=groups_of(nodes))
        server.settle()
        # The same number of replacements at every size: a small cluster in several rounds.
        cpu, steps, left = 0.0, 0.0, sizes.replacements
        while left > 0:
            ids = running_ids(client, "steps", min(left, nodes))
            for start in range(0, len(ids), 25):
                client.batch_replace_cluster_nodes(
                    ClusterName="steps", NodeIds=ids[start : start + 25]
                )
            steps_before, cpu_before = steps_run(server), server.cpu_seconds()
            server.settle()
            cpu += server.cpu_seconds() - cpu_before
            # The scrape itself is a request, not a step: taken after the CPU reading.
            steps += steps_run(server) - steps_before
            left -= len(ids)
        log(f"{key}: {steps:.0f} steps in {cpu:.2f} CPU s on {nodes} nodes")
        return steps / cpu if cpu else float("nan")
    finally:
        server.stop()


def settle_fleet(binary: Path, sizes: FleetSizes, work: Path, key: str) -> dict[str, float]:
    port = free_port()
    data = work / f"{key}-fleet"
    server = started(
        f"{key}-fleet", ours_command(port, data, "--clock", "manual", binary=binary), port, work
    )
    try:
        client = make_client(EAST, endpoint_url=server.url)
        cpu_before = server.cpu_seconds()
        for c in range(sizes.clusters):
            client.create_cluster(
                ClusterName=f"fleet-{c}",
                InstanceGroups=[group(f"g{g}", sizes.group_nodes) for g in range(sizes.groups)],
            )
        created = server.cpu_seconds()
        began = time.perf_counter()
        # A million nodes take many minutes where 100,000 take one.
        server.settle(timeout=600.0 * max(1, sizes.fleet // 100_000))
        wall = time.perf_counter() - began
        settled = server.cpu_seconds()
        disk = sum(p.stat().st_size for p in data.iterdir() if p.is_file())
        memory = server.memory_mb()
        log(f"{key}: fleet of {sizes.fleet} settled in {settled - created:.1f} CPU s")
        return {
            "create_cpu": created - cpu_before,
            "settle_cpu": settled - created,
            "settle_wall": wall,
            "disk_mb": disk / 1e6,
            "rss_mb": memory.get("VmRSS", 0.0),
            "peak_rss_mb": memory.get("VmHWM", 0.0),
        }
    finally:
        server.stop()


def create_and_describe(
    argv: list[str], port: int, sizes: FleetSizes, work: Path, key: str, fresh: bool
) -> dict[str, float]:
    """CreateCluster of a `large`-node cluster (server CPU of the call), then DescribeCluster
    of a 1,000- and that cluster, computed (ms of server CPU a call)."""
    server = started(key, argv, port, work)
    try:
        client = make_client(EAST, endpoint_url=server.url)
        asking = ask_afresh(make_client(EAST, endpoint_url=server.url)) if fresh else client
        found: dict[str, float] = {}
        client.create_cluster(ClusterName="thousand", InstanceGroups=groups_of(1000))
        before = server.cpu_seconds()
        client.create_cluster(ClusterName="large", InstanceGroups=groups_of(sizes.large))
        found["create_cpu"] = server.cpu_seconds() - before
        if key != "moto":
            # Ours and the baseline alike: a classic cluster's nodes come with its launch.
            server.settle()
        for name in ("thousand", "large"):
            asking.describe_cluster(ClusterName=name)
            before = server.cpu_seconds()
            for _ in range(sizes.describes):
                asking.describe_cluster(ClusterName=name)
            found[f"describe_{name}_ms"] = (server.cpu_seconds() - before) / sizes.describes * 1e3
        # The first page of the large cluster's nodes, as a dashboard asks for it.
        first = asking.list_cluster_nodes(ClusterName="large", MaxResults=100)
        if len(first["ClusterNodeSummaries"]) != 100:
            raise RuntimeError(f"{key}: a first page of {len(first['ClusterNodeSummaries'])}")
        before = server.cpu_seconds()
        for _ in range(sizes.describes):
            asking.list_cluster_nodes(ClusterName="large", MaxResults=100)
        found["first_page_ms"] = (server.cpu_seconds() - before) / sizes.describes * 1e3
        log(f"{key}: {found}")
        return found
    finally:
        server.stop()


def replay(binary: Path, sizes: FleetSizes, work: Path) -> Replay:
    """The fleet at `speed` under a real clock, failing at random: sampled every 2 s."""
    port = free_port()
    argv = ours_command(port, work / "replay", "--speed", f"{sizes.speed:g}", binary=binary)
    server = started("replay", argv, port, work)
    result = Replay()
    try:
        client = make_client(EAST, endpoint_url=server.url)
        for c in range(sizes.clusters):
            client.create_cluster(
                ClusterName=f"fleet-{c}",
                NodeRecovery="Automatic",
                InstanceGroups=[group(f"g{g}", sizes.group_nodes) for g in range(sizes.groups)],
            )
        wait_until(
            lambda: all(
                client.describe_cluster(ClusterName=f"fleet-{c}")["ClusterStatus"] == "InService"
                for c in range(sizes.clusters)
            ),
            timeout=900,
        )
        status, body, _ = admin(
            server,
            "POST",
            "/_hyperpod/faults",
            {
                "Kind": "random_hardware",
                "MtbfHours": sizes.mtbf_hours,
                "Seed": 14,
            },
        )
        if status != 201:
            raise RuntimeError(f"random_hardware refused: {status} {body}")
        source = body["Faults"][0]["FaultId"]
        victims = running_ids(client, "fleet-0", 200)
        began = time.perf_counter()
        cpu_before = server.cpu_seconds()
        started_before = metrics(server).get("hyperpod_local_recoveries_started_total", 0.0)
        next_post, refused = 0, 0
        while (elapsed := time.perf_counter() - began) < sizes.replay_seconds:
            # One fault POST a second, as a driver would send: its latency is what a user sees.
            if next_post < len(victims):
                spec = {
                    "Kind": "hardware",
                    "Cluster": "fleet-0",
                    "InstanceId": victims[next_post],
                    "Type": "GpuXid13",
                }
                status, _, took = admin(server, "POST", "/_hyperpod/faults", spec)
                if status == 201:
                    result.fault_posts_ms.append(took)
                else:
                    refused += 1
                next_post += 1
            if int(elapsed) % 2 == 0 or not result.samples:
                seen = metrics(server)
                in_flight = sum(
                    v for k, v in seen.items() if k.startswith("nodes_") and k != "nodes_Running"
                )
                result.samples.append(
                    {
                        "wall": elapsed,
                        # The real clock is the wall's; --speed shortens HyperPod's durations.
                        "hyperpod_days": elapsed * sizes.speed / 86400,
                        "backlog": seen.get("hyperpod_local_engine_steps_due", 0.0),
                        "in_flight": in_flight,
                        "recoveries": seen.get("hyperpod_local_recoveries_started_total", 0.0)
                        - started_before,
                        "cpu": server.cpu_seconds() - cpu_before,
                    }
                )
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - began - elapsed)))
        wall = time.perf_counter() - began
        cpu = server.cpu_seconds() - cpu_before
        _, listed, _ = admin(server, "GET", "/_hyperpod/faults")
        strikes = next(f["Strikes"] for f in listed["Faults"] if f["FaultId"] == source)
        last = result.samples[-1]
        result.summary = {
            "wall_s": wall,
            "hyperpod_days": last["hyperpod_days"],
            "strikes": float(strikes),
            "recoveries_started": last["recoveries"],
            "core_share": cpu / wall,
            "backlog_max": max(s["backlog"] for s in result.samples),
            "backlog_end": last["backlog"],
            "post_p50_ms": statistics.median(result.fault_posts_ms),
            "post_p99_ms": percentile(result.fault_posts_ms, 0.99),
            "rss_mb": server.memory_mb().get("VmRSS", 0.0),
            "posts_refused": float(refused),
        }
        log(f"replay: {result.summary}")
        return result
    finally:
        server.stop()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.5)


def fleet_part(
    sizes: FleetSizes,
    work: Path,
    baseline: Path | None,
    mine: Path | None = None,
    million: bool = False,
) -> dict[str, Any]:
    binaries = {"ours": mine or BIN / "hyperpod-local"}
    if baseline is not None:
        binaries["baseline"] = baseline
    rows: dict[str, Row] = {
        "steps_small": Row(f"engine throughput, {sizes.small} nodes", "node steps / CPU s"),
        "steps_large": Row(f"engine throughput, {sizes.large:,} nodes", "node steps / CPU s"),
        "settle": Row(f"settle a new {sizes.fleet:,}-node fleet", "CPU s"),
        "create": Row(f"CreateCluster of {sizes.large:,} nodes, the call", "CPU s"),
        "describe_1k": Row("DescribeCluster computed, 1,000 nodes", "ms CPU / call"),
        "describe_large": Row(f"DescribeCluster computed, {sizes.large:,} nodes", "ms CPU / call"),
        "first_page": Row(
            f"ListClusterNodes computed, first 100 of {sizes.large:,} nodes", "ms CPU / call"
        ),
        "disk": Row(f"data dir after the {sizes.fleet:,}-node settle", "MB"),
        "rss": Row(f"RSS after the {sizes.fleet:,}-node settle", "MB"),
    }
    for key, binary in binaries.items():
        rows["steps_small"].values[key] = throughput(binary, sizes.small, sizes, work, key)
        rows["steps_large"].values[key] = throughput(binary, sizes.large, sizes, work, key)
        fleet = settle_fleet(binary, sizes, work, key)
        rows["settle"].values[key] = fleet["settle_cpu"]
        rows["disk"].values[key] = fleet["disk_mb"]
        rows["rss"].values[key] = fleet["rss_mb"]
        port = free_port()
        found = create_and_describe(
            ours_command(port, work / f"{key}-cd", "--clock", "manual", binary=binary),
            port,
            sizes,
            work,
            key,
            fresh=True,
        )
        rows["create"].values[key] = found["create_cpu"]
        rows["describe_1k"].values[key] = found["describe_thousand_ms"]
        rows["describe_large"].values[key] = found["describe_large_ms"]
        rows["first_page"].values[key] = found["first_page_ms"]
    port = free_port()
    moto = create_and_describe(moto_command(port), port, sizes, work, "moto", fresh=False)
    rows["create"].values["moto"] = moto["create_cpu"]
    rows["describe_1k"].values["moto"] = moto["describe_thousand_ms"]
    rows["describe_large"].values["moto"] = moto["describe_large_ms"]
    rows["first_page"].values["moto"] = moto["first_page_ms"]
    found: dict[str, Any] = {"rows": rows, "replay": replay(binaries["ours"], sizes, work)}
    if million:
        found["million"] = settle_fleet(binaries["ours"], MILLION, work, "ours-million")
    return found


def plot(result: Replay, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wall = [s["wall"] for s in result.samples]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    top.plot(wall, [s["backlog"] for s in result.samples], label="steps due, not yet run")
    top.set_ylabel("engine backlog (steps)")
    top.legend(loc="upper left")
    bottom.plot(wall, [s["in_flight"] for s in result.samples], label="nodes not Running")
    bottom.plot(wall, [s["recoveries"] for s in result.samples], label="recoveries started")
    bottom.set_ylabel("nodes")
    bottom.set_xlabel("wall seconds")
    bottom.legend(loc="upper left")
    figure.suptitle("100,000-node fleet at 1000x, one failure per node per 30 HyperPod days")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def report(found: dict[str, Any], sizes: FleetSizes, command: str) -> str:
    rows: dict[str, Row] = found["rows"]
    keys = [
        "ours",
        *(["baseline"] if any("baseline" in r.values for r in rows.values()) else []),
        "moto",
    ]
    lines = [
        START_MARK,
        "## The engine at fleet scale",
        "",
        f"`{command}`; server CPU seconds from /proc, one run. `baseline` is the executable",
        "given with `--baseline` (an older checkout), measured beside ours on the same rows.",
        "",
        "| measure | unit | " + " | ".join(keys) + " | ours / other |",
        "| --- | --- | " + " | ".join("---:" for _ in keys) + " | --- |",
    ]
    for row in rows.values():
        cells = [_cell(row.values[k]) if k in row.values else "" for k in keys]
        ratios = [
            f"{row.values['ours'] / row.values[k]:.2f}x {k}" for k in keys[1:] if row.values.get(k)
        ]
        lines.append(
            f"| {row.what} | {row.unit} | " + " | ".join(cells) + " | " + ", ".join(ratios) + " |"
        )
    summary = found["replay"].summary
    lines += [
        "",
        f"Replay: {sizes.fleet:,} nodes under a real clock at {sizes.speed:g}x, a fleet-wide",
        f"`random_hardware` fault of one failure per node per {sizes.mtbf_hours / 24:g}",
        "HyperPod days, NodeRecovery Automatic, one hardware-fault POST a second beside it,",
        f"for {summary['wall_s']:.0f} wall seconds:",
        "",
        "| HyperPod days covered | strikes | recoveries started | core share | backlog max / end |"
        " fault POST p50 / p99 | RSS |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {summary['hyperpod_days']:.2f} | {summary['strikes']:.0f} |"
        f" {summary['recoveries_started']:.0f} | {summary['core_share']:.2f} |"
        f" {summary['backlog_max']:.0f} / {summary['backlog_end']:.0f} |"
        f" {summary['post_p50_ms']:.1f} / {summary['post_p99_ms']:.1f} ms"
        f" ({summary['posts_refused']:.0f} refused) |"
        f" {summary['rss_mb']:.0f} MB |",
        "",
        "![backlog and recoveries over the replay](fleet.png)",
        "",
        *_million_lines(found.get("million"), sizes),
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def _million_lines(million: dict[str, float] | None, sizes: FleetSizes) -> list[str]:
    if million is None:
        return [
            f"1,000,000 nodes: not run this time (`--million`; a {sizes.fleet:,}-node settle's",
            "numbers above scale about linearly in nodes for the settle and the disk).",
        ]
    return [
        f"1,000,000 nodes (`--million`: {MILLION.clusters} clusters of {MILLION.groups} groups"
        f" of {MILLION.group_nodes:,}), ours:",
        "",
        "| CreateCluster calls, CPU s | settle, CPU s | settle, wall s | data dir | RSS / peak |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {million['create_cpu']:.1f} | {million['settle_cpu']:.1f} |"
        f" {million['settle_wall']:.1f} | {million['disk_mb']:,.0f} MB |"
        f" {million['rss_mb']:.0f} / {million['peak_rss_mb']:.0f} MB |",
    ]


def _cell(value: float) -> str:
    """3 significant digits, with no exponent for the big ones."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def run(
    quick: bool,
    baseline: Path | None,
    output: Path,
    work: Path,
    command: str,
    mine: Path | None = None,
    million: bool = False,
) -> None:
    sizes = QUICK if quick else FULL
    found = fleet_part(sizes, work, baseline, mine, million)
    # The section first: a plot that fails (no matplotlib) must not lose a run's numbers.
    write_section("fleet", report(found, sizes, command), output)
    plot(found["replay"], output.parent / ("fleet-quick.png" if quick else "fleet.png"))
    log(f"fleet section written to {output}")


if __name__ == "__main__":
    raise SystemExit("run it as bench/run.py --fleet")
