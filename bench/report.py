"""bench/RESULTS.md: the machine, the command, a table per measurement, ratios and verdicts."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from measure import Sample
from results import Results
from sections import kept_sections

PAIRS = [("ours-server", "moto-server"), ("ours-mock", "moto-mock")]
# Ours with every answer computed (Cache-Control: no-cache): shown against moto, not targets.
FRESH_PAIRS = [("ours-server-fresh", "moto-server"), ("ours-mock-fresh", "moto-mock")]
PAGE_OPS = [
    "ListClusters@small",
    "ListClusters@large",
    "ListClusterNodes@small",
    "ListClusterNodes@large",
]
MB = 1e6


def machine_info() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("hyperpod-local", "boto3", "botocore", "moto", "uvicorn", "werkzeug"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "CPU": model,
        "cores": f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable by this process)",
        "memory": _mem_total(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        **{name: version for name, version in versions.items()},
        "commit": commit or "unknown",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _mem_total() -> str:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


@dataclass
class Verdict:
    passed: bool
    text: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.text}"


def _ms(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _partner(key: str) -> str | None:
    for ours, moto in [*PAIRS, *FRESH_PAIRS]:
        if key == ours:
            return moto
    return None


def verdicts(r: Results) -> list[Verdict]:
    s = r.samples
    found: list[Verdict] = []

    def p50(op: str, target: str) -> float:
        return s[(op, target)].p50_ms

    cpu_ours = s[("DescribeCluster", "ours-server")].server_cpu_ms
    cpu_moto = s[("DescribeCluster", "moto-server")].server_cpu_ms
    ratio = _ratio(cpu_ours, cpu_moto)
    found.append(
        Verdict(
            ratio is not None and ratio <= 0.1,
            f"server CPU per DescribeCluster <= 1/10 of moto server's: {_ms(cpu_ours)} ms vs "
            f"{_ms(cpu_moto)} ms = {_ms(ratio)} (needs <= 0.100)",
        )
    )
    ratio = p50("DescribeCluster", "ours-server") / p50("DescribeCluster", "floor-http")
    found.append(
        Verdict(
            ratio <= 1.5,
            "DescribeCluster latency over HTTP <= 1.5x the fixed-body floor: "
            f"{p50('DescribeCluster', 'ours-server'):.3f} ms vs "
            f"{p50('DescribeCluster', 'floor-http'):.3f} ms = {ratio:.2f}x (median)",
        )
    )
    ours8 = r.throughput[("ours-server", 8)].per_second
    moto8 = r.throughput[("moto-server", 8)].per_second
    floor8 = r.throughput[("floor-http", 8)].per_second
    # The client's own cost bounds every server: say so when the target lies beyond it.
    bound = (
        f"; 3x moto is {3 * moto8:.0f} calls/s, above the fixed-body floor's {floor8:.0f}, "
        "which no server can pass with this client"
        if 3 * moto8 > floor8
        else ""
    )
    found.append(
        Verdict(
            ours8 >= 3 * moto8,
            f"8 client threads >= 3x moto server's calls/s: {ours8:.0f} vs {moto8:.0f} calls/s "
            f"= {ours8 / moto8:.2f}x (the fixed-body floor's {ours8 / floor8:.2f}x){bound}",
        )
    )
    ours_in = p50("DescribeCluster", "ours-mock")
    ratio = ours_in / p50("DescribeCluster", "floor-nonet")
    found.append(
        Verdict(
            ratio <= 1.5,
            "DescribeCluster in-process <= 1.5x the no-network floor: "
            f"{ours_in:.3f} ms vs {p50('DescribeCluster', 'floor-nonet'):.3f} ms = "
            f"{ratio:.2f}x (median)",
        )
    )
    faster = p50("DescribeCluster", "moto-mock") / ours_in
    found.append(
        Verdict(
            faster >= 3,
            "DescribeCluster in-process >= 3x faster than moto in-process: "
            f"{ours_in:.3f} ms vs {p50('DescribeCluster', 'moto-mock'):.3f} ms = "
            f"{faster:.2f}x faster (median)",
        )
    )
    for what, small, large in (
        ("ListClusterNodes", "ListClusterNodes@small", "ListClusterNodes@large"),
        ("ListClusters", "ListClusters@small", "ListClusters@large"),
    ):
        for ours, moto in PAIRS:
            grow_ours = p50(large, ours) / p50(small, ours)
            grow_moto = p50(large, moto) / p50(small, moto)
            found.append(
                Verdict(
                    grow_ours <= grow_moto,
                    f"{what} page cost growth ({_size(r, small)} -> {_size(r, large)}), "
                    f"{r.labels[ours]} no more than {r.labels[moto]}'s: "
                    f"{grow_ours:.2f}x vs {grow_moto:.2f}x",
                )
            )
    for ours, moto in PAIRS:
        ratios = {op: p50(op, ours) / p50(op, moto) for op in PAGE_OPS}
        worst = max(ratios.values())
        found.append(
            Verdict(
                worst <= 1 / 3,
                f"each page of {r.labels[ours]} <= 1/3 of {r.labels[moto]}'s time: "
                + ", ".join(f"{op} {value:.3f}" for op, value in ratios.items())
                + " (needs each <= 0.33)",
            )
        )
    cold = statistics.median(r.cold["ours-server"])
    found.append(
        Verdict(
            cold < 0.5,
            f"cold start to the first ListClusters answer < 0.5 s: {cold:.3f} s "
            f"(median of {len(r.cold['ours-server'])}, fresh data dir)",
        )
    )
    rss = r.store["memory_after_settle"]["VmRSS"]
    nodes = r.store["nodes"]
    found.append(
        Verdict(
            rss < 200,
            f"server RSS with {nodes:,} nodes < 200 MB: {rss:.0f} MB "
            f"(peak {r.store['memory_after_settle']['VmHWM']:.0f} MB)",
        )
    )
    return found


def _size(r: Results, op: str) -> str:
    sizes = r.sizes
    return {
        "ListClusters@small": f"{sizes.small_clusters:,} clusters",
        "ListClusters@large": f"{sizes.large_clusters:,} clusters",
        "ListClusterNodes@small": f"{2 * sizes.small_nodes_per_group:,} nodes",
        "ListClusterNodes@large": f"{2 * sizes.large_nodes_per_group:,} nodes",
    }[op]


def _sample_rows(r: Results, op: str) -> list[list[str]]:
    rows = []
    for key, label in r.labels.items():
        sample = r.samples.get((op, key))
        if sample is None:
            continue
        partner = _partner(key)
        versus = None
        if partner is not None and (op, partner) in r.samples:
            versus = sample.p50_ms / r.samples[(op, partner)].p50_ms
        rows.append(
            [
                label,
                str(sample.calls),
                _ms(sample.p50_ms),
                _ms(sample.p99_ms),
                _ms(sample.mean_ms),
                _ms(sample.server_cpu_ms),
                _ms(sample.client_cpu_ms),
                _x(versus),
            ]
        )
    return rows


def render(r: Results, found: list[Verdict]) -> str:
    sizes = r.sizes
    out: list[str] = [
        "# hyperpod-local benchmark",
        "",
        f"A **{r.mode}** run of `bench/run.py`, {r.wall_seconds:.0f} s wall clock. "
        "Regenerate it with:",
        "",
        "```",
        r.command,
        "```",
        "",
        "## Machine",
        "",
        *_table(["what", "value"], list(r.machine.items())),
        "Other processes on the machine used "
        f"{r.notes['cores used by other processes, average']:.2f} cores on average during the "
        f"run (load average {r.notes['load average at start']:.2f} at its start, "
        f"{r.notes['load average at end']:.2f} at its end); numbers from a run where this is "
        "well above 0 are disturbed. By part:",
        "",
        *_table(
            ["part", "wall s", "cores used by other processes"],
            [[name, f"{wall:.0f}", f"{others:.2f}"] for name, (wall, others) in r.phases.items()],
        ),
        "## How it was measured",
        "",
        "- Targets: **hyperpod-local server** (`hyperpod-local serve --clock manual` as a "
        "subprocess, settled after setup), **hyperpod-local in-process** "
        "(`hyperpod_local.mock()`), **moto server** (`python -m moto.server`, a subprocess), "
        "**moto in-process** (`moto.mock_aws()`), the **fixed-body HTTP floor** (an asyncio "
        "server in a subprocess answering every request with one constant body, "
        "`bench/floor_server.py`) and the **no-network floor** (a boto3 client whose "
        "`before-send` hook returns that same body as a canned `AWSResponse`). The floors' "
        "body is hyperpod-local's own DescribeCluster answer for the 2-group cluster, "
        "captured at the start of the run: they are what boto3 itself costs for that very "
        "call, with and without HTTP.",
        "- hyperpod-local answers a repeated read from its response cache while nothing has "
        "been written (README, The server). The **no-cache requests** targets are the same "
        "server and mock with `Cache-Control: no-cache` on every request, so every answer is "
        "computed from the store: what a poll costs while the cluster is changing. They are "
        "shown for comparison; the targets are judged on the default configuration.",
        "- Every client is a boto3 client in its own session, no retries; servers listen on "
        "127.0.0.1 only. Both in-process mocks stay open for the whole run; each client has "
        "only its own mock's `before-send` handler.",
        f"- Per-call numbers: {sizes.rounds} rounds; each round runs a chunk of calls of every "
        "operation on every target, the targets' order rotating from round to round, so drift "
        "of the machine falls on all alike. Each call is timed alone (wall clock, "
        "`perf_counter_ns`); p99 is the nearest rank. Three warm-up calls per operation and "
        "target are not counted.",
        "- Server CPU per call: user+system ticks of the server process from `/proc/<pid>/stat` "
        "around each chunk, summed, divided by the calls. Client CPU per call: this process's "
        "CPU time around each chunk (for the in-process targets it includes the mock's work).",
        f"- Setup: in us-east-1 a 2-group DescribeCluster target, clusters of "
        f"{2 * sizes.small_nodes_per_group:,} and {2 * sizes.large_nodes_per_group:,} nodes "
        f"(two groups each) and filler clusters up to {sizes.large_clusters:,} clusters, the "
        f"fillers made by the timed CreateCluster calls below; in us-west-2 "
        f"{sizes.small_clusters:,} clusters, so the two ListClusters sizes are measured side "
        "by side. Instance type ml.c5.xlarge, ThreadsPerCore 1 and a LifeCycleConfig in "
        "every group (moto needs them). After setup the heap is `gc.freeze()`-d so that the "
        "in-process stores do not slow every target's garbage collections.",
        "",
        "## Per-call latency, interleaved",
        "",
        "Times in milliseconds. *vs moto*: median against moto of the same kind (server vs "
        "server, in-process vs in-process).",
        "",
    ]
    header = [
        "target",
        "calls",
        "p50",
        "p99",
        "mean",
        "server CPU/call",
        "client CPU/call",
        "p50 vs moto",
    ]
    for op, label in r.op_labels.items():
        out += [f"### {label}", "", *_table(header, _sample_rows(r, op))]
    out += ["## Ratios", "", *_ratio_rows(r)]
    out += [
        "## Throughput: DescribeCluster, 1 and 8 client threads",
        "",
        f"Each thread has its own boto3 client; {sizes.throughput_rounds} bursts of "
        f"{sizes.throughput_seconds:g} s per target and thread count, interleaved.",
        "",
    ]
    rows = []
    for (key, threads), tp in r.throughput.items():
        cpu = None if tp.server_cpu_s is None or not tp.calls else tp.server_cpu_s * 1e3 / tp.calls
        rows.append([r.labels[key], str(threads), str(tp.calls), f"{tp.per_second:.0f}", _ms(cpu)])
    out += _table(["target", "threads", "calls", "calls/s", "server CPU ms/call"], rows)
    out += ["## Cold start: process start to the first ListClusters answer", ""]
    rows = [
        [
            r.labels.get(key, key),
            str(len(values)),
            f"{statistics.median(values):.3f}",
            f"{min(values):.3f}",
            f"{max(values):.3f}",
        ]
        for key, values in r.cold.items()
    ]
    out += _table(["server", "starts", "median s", "min s", "max s"], rows)
    out += [
        "hyperpod-local starts on a fresh, empty data dir each time (migrations included). "
        "The client is made and warmed before the process starts.",
        "",
        "## Server memory after the interleaved part",
        "",
    ]
    rows = [
        [r.labels[key], f"{mem['VmRSS']:.0f}", f"{mem['VmHWM']:.0f}"]
        for key, mem in r.memory.items()
    ]
    out += _table(["server", "RSS MB", "peak RSS MB"], rows)
    out += _replace_section(r)
    out += _store_section(r)
    out += ["## Setup timings", ""]
    timings = [[k, f"{v:.2f}"] for k, v in r.notes.items() if k.endswith(" s")]
    out += _table(["step", "seconds"], timings)
    out += [
        "## Targets",
        "",
        "```",
        *(v.line() for v in found),
        "```",
        "",
        "A growth ratio is a ratio of two medians measured side by side; where both sides are "
        "close to 1.00x, a few percent of noise decides its line.",
        "",
    ]
    return "\n".join(out)


def _ratio_rows(r: Results) -> list[str]:
    s = r.samples
    rows: list[list[str]] = []
    for op in r.op_labels:
        for ours, moto in [*PAIRS, *FRESH_PAIRS]:
            if (op, ours) in s and (op, moto) in s:
                rows.append(
                    [
                        op,
                        f"{r.labels[ours]} / {r.labels[moto]}",
                        _x(s[(op, ours)].p50_ms / s[(op, moto)].p50_ms),
                    ]
                )
    describe = "DescribeCluster"
    for ours, floor in (("ours-server", "floor-http"), ("ours-mock", "floor-nonet")):
        rows.append(
            [
                describe,
                f"{r.labels[ours]} / {r.labels[floor]}",
                _x(s[(describe, ours)].p50_ms / s[(describe, floor)].p50_ms),
            ]
        )
    for moto, floor in (("moto-server", "floor-http"), ("moto-mock", "floor-nonet")):
        rows.append(
            [
                describe,
                f"{r.labels[moto]} / {r.labels[floor]}",
                _x(s[(describe, moto)].p50_ms / s[(describe, floor)].p50_ms),
            ]
        )
    for ours in ("ours-server", "ours-server-fresh"):
        cpu = _ratio(s[(describe, ours)].server_cpu_ms, s[(describe, "moto-server")].server_cpu_ms)
        rows.append([describe, f"server CPU/call: {r.labels[ours]} / moto", _x(cpu)])
    for key in ("ours-server", "moto-server", "ours-mock", "moto-mock", *dict(FRESH_PAIRS)):
        for what, small, large in (
            ("ListClusterNodes", "ListClusterNodes@small", "ListClusterNodes@large"),
            ("ListClusters", "ListClusters@small", "ListClusters@large"),
        ):
            rows.append(
                [
                    f"{what} growth",
                    f"{r.labels[key]}: {_size(r, large)} / {_size(r, small)}",
                    _x(s[(large, key)].p50_ms / s[(small, key)].p50_ms),
                ]
            )
    for threads in (1, 8):
        ours = r.throughput[("ours-server", threads)].per_second
        moto = r.throughput[("moto-server", threads)].per_second
        floor = r.throughput[("floor-http", threads)].per_second
        rows.append([f"calls/s, {threads} thread(s)", "hyperpod-local / moto", _x(ours / moto)])
        rows.append([f"calls/s, {threads} thread(s)", "hyperpod-local / floor", _x(ours / floor)])
        fresh = r.throughput[("ours-server-fresh", threads)].per_second
        rows.append(
            [f"calls/s, {threads} thread(s)", "hyperpod-local no-cache / moto", _x(fresh / moto)]
        )
    return _table(["operation", "ratio of medians", "value"], rows)


def _summary(values: list[float], digits: int = 1) -> list[str]:
    return [
        f"{statistics.median(values):.{digits}f}",
        f"{min(values):.{digits}f}",
        f"{max(values):.{digits}f}",
        str(len(values)),
    ]


def _replace_section(r: Results) -> list[str]:
    rep = r.replace
    out = [
        f"## BatchReplaceClusterNodes of {r.sizes.replace_nodes} nodes (hyperpod-local alone)",
        "",
        f"`hyperpod-local serve --clock real --speed 100000`, a cluster of "
        f"{r.sizes.replace_nodes + 5} nodes in one group. *Finished*: from the call until "
        "every replaced node is gone and all nodes are Running again, polled with "
        "ListClusterNodes every millisecond.",
        "",
    ]
    rows = [
        ["CreateCluster to InService, ms", *_summary(rep["create_to_inservice_ms"])],
        ["BatchReplaceClusterNodes call, ms", *_summary(rep["call_ms"], 2)],
        ["call to finished, ms", *_summary(rep["finish_ms"])],
        ["polls until finished", *_summary(rep["polls"], 0)],
        ["server CPU from call to finished, ms", *_summary(rep["server_cpu_ms"])],
    ]
    return [*out, *_table(["measure", "median", "min", "max", "n"], rows)]


def _store_section(r: Results) -> list[str]:
    st = r.store
    sizes = r.sizes
    out = [
        f"## A store of {st['nodes']:,} nodes (hyperpod-local alone)",
        "",
        f"{sizes.store_clusters} clusters of two groups each, made through CreateCluster on a "
        "`--clock manual` server and settled; then the calls below, sequentially; then the "
        "server is stopped and started again on the same data dir.",
        "",
    ]
    rows = [
        ["CreateCluster calls, s", f"{st['create_s']:.2f}"],
        ["settle, s", f"{st['settle_s']:.2f}"],
        ["RSS after settle, MB", f"{st['memory_after_settle']['VmRSS']:.0f}"],
        ["peak RSS, MB", f"{st['memory_after_settle']['VmHWM']:.0f}"],
        ["RSS after the calls, MB", f"{st['memory_after_calls']['VmRSS']:.0f}"],
        ["data dir on disk, MB", f"{st['disk_mb']:.0f}"],
        ["restart: cold start to first ListClusters, s", f"{st['restart_cold_s']:.3f}"],
        ["restart: RSS after first answer, MB", f"{st['memory_after_restart']['VmRSS']:.0f}"],
        [
            "restart: RSS after a DescribeCluster and a nodes page, MB",
            f"{st['memory_after_restart_calls']['VmRSS']:.0f}",
        ],
    ]
    out += _table(["measure", "value"], rows)
    samples: dict[str, Sample] = st["samples"]
    rows = [
        [
            name,
            str(sample.calls),
            _ms(sample.p50_ms),
            _ms(sample.p99_ms),
            _ms(sample.mean_ms),
            _ms(sample.server_cpu_ms),
        ]
        for name, sample in samples.items()
    ]
    out += _table(
        ["call (first page, MaxResults 100)", "calls", "p50 ms", "p99", "mean", "server CPU/call"],
        rows,
    )
    return out


def write_report(r: Results, output: Path) -> list[str]:
    """Write the report; the sections of an earlier `--fleet` run (bench/fleet.py) and
    `--replicas` run (bench/replicas.py) are kept, since this run does not measure them."""
    found = verdicts(r)
    kept = kept_sections(output.read_text()) if output.exists() else ""
    output.write_text(render(r, found) + kept)
    return [v.line() for v in found]
