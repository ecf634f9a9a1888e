"""Benchmark hyperpod-local side by side with moto and with two floors it runs itself.

    .venv/bin/python bench/run.py [--quick] [--output PATH]
    .venv/bin/python bench/run.py --fleet [--quick] [--million] [--baseline PATH] [--ours PATH]
        [--output PATH]
    .venv/bin/python bench/run.py --replicas [--quick] [--output PATH]

One run measures, interleaved round-robin so that drift of the machine falls on all alike:
our server (a subprocess, --clock manual), our in-process mock, moto's server (a subprocess),
moto in-process (mock_aws), a fixed-body asyncio HTTP floor and a no-network floor (a
before-send hook), both answering the DescribeCluster answer hyperpod-local gives; and ours
again with `Cache-Control: no-cache` on every request, so that every answer is computed.
Then, ours alone: BatchReplaceClusterNodes at full speed and a store of 100,000 nodes.
Everything listens on and talks to 127.0.0.1 only; every process it starts is stopped before
it returns. The full run writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fleet
import replicas
from interleaved import interleaved_part
from measure import log
from ours_alone import cold_start_part, replace_part, store_part
from report import machine_info, write_report
from results import BENCH_DIR, FULL, QUICK, Results, Sizes
from servers import (
    machine_busy_seconds,
    own_cpu_seconds,
)


@contextlib.contextmanager
def phase(results: Results, name: str) -> Iterator[None]:
    """Times a part of the run and what other processes on the machine used meanwhile."""
    busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
    began = time.perf_counter()
    yield
    wall = time.perf_counter() - began
    others = (machine_busy_seconds() - busy_before) - (own_cpu_seconds() - own_before)
    results.phases[name] = (wall, max(0.0, others) / wall)
    if results.phases[name][1] > 0.1:
        log(f"warning: other processes used {results.phases[name][1]:.2f} cores during {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the report (default: bench/RESULTS.md, or a file in the "
        "temporary directory with --quick)",
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="the fleet-scale part instead (bench/fleet.py): minutes, its own RESULTS section",
    )
    parser.add_argument(
        "--replicas",
        action="store_true",
        help="replicas on one PostgreSQL next to SQLite instead (bench/replicas.py): needs "
        "PostgreSQL at 127.0.0.1:5432; minutes; its own RESULTS section",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="with --fleet: another hyperpod-local executable, measured beside this one",
    )
    parser.add_argument(
        "--ours",
        type=Path,
        help="with --fleet: the hyperpod-local executable to measure (default: this venv's)",
    )
    parser.add_argument(
        "--million",
        action="store_true",
        help="with --fleet: also settle a 1,000,000-node fleet (100 clusters; many minutes)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    output: Path = args.output or (
        Path(tempfile.gettempdir()) / "hyperpod-bench-quick.md"
        if args.quick
        else BENCH_DIR / "RESULTS.md"
    )
    # Nothing this process sends may leave the machine: a client that somehow aimed at AWS
    # would meet a closed proxy port instead.
    os.environ.update(
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        AWS_EC2_METADATA_DISABLED="true",
    )
    command = " ".join(
        shlex.quote(part)
        for part in [
            os.path.relpath(sys.executable, Path.cwd()),
            os.path.relpath(__file__, Path.cwd()),
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    if args.replicas:
        work = Path(tempfile.mkdtemp(prefix="hyperpod-replicas-"))
        try:
            replicas.run(args.quick, output, work, command)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    if args.fleet:
        work = Path(tempfile.mkdtemp(prefix="hyperpod-fleet-"))
        try:
            fleet.run(args.quick, args.baseline, output, work, command, args.ours, args.million)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    results = Results(
        mode="quick" if args.quick else "full",
        command=command,
        sizes=sizes,
        machine=machine_info(),
    )
    began = time.perf_counter()
    busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
    results.notes["load average at start"] = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="hyperpod-bench-"))
    try:
        log(f"{results.mode} run; scratch in {work}")
        parts: list[tuple[str, Callable[[Results, Sizes, Path], None]]] = [
            ("interleaved part", interleaved_part),
            ("cold starts", cold_start_part),
            ("BatchReplaceClusterNodes", replace_part),
            ("100,000-node store", store_part),
        ]
        for name, part in parts:
            with phase(results, name):
                part(results, sizes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results.wall_seconds = time.perf_counter() - began
    others = (machine_busy_seconds() - busy_before) - (own_cpu_seconds() - own_before)
    results.notes["cores used by other processes, average"] = max(0.0, others) / (
        results.wall_seconds
    )
    results.notes["load average at end"] = os.getloadavg()[0]
    if results.notes["cores used by other processes, average"] > 0.1:
        log(
            "warning: other processes used "
            f"{results.notes['cores used by other processes, average']:.2f} cores on average "
            "during the run; its numbers are disturbed"
        )
    verdicts = write_report(results, output)
    log(f"wrote {output} after {results.wall_seconds:.0f}s")
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
