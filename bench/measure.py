"""Timing: per-call samples taken round-robin across targets, and multi-threaded throughput."""

from __future__ import annotations

import math
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from targets import Target


@dataclass
class Sample:
    """Per-call wall times of one operation on one target, with the CPU spent around them."""

    latencies_ns: list[int] = field(default_factory=list)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    has_server: bool = False

    @property
    def calls(self) -> int:
        return len(self.latencies_ns)

    def quantile_ms(self, q: float) -> float:
        """Nearest-rank quantile, in milliseconds."""
        ordered = sorted(self.latencies_ns)
        rank = max(1, math.ceil(q * len(ordered)))
        return ordered[rank - 1] / 1e6

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ns) / 1e6

    @property
    def p99_ms(self) -> float:
        return self.quantile_ms(0.99)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_ns) / 1e6

    @property
    def server_cpu_ms(self) -> float | None:
        return self.server_cpu_s * 1e3 / self.calls if self.has_server and self.calls else None

    @property
    def client_cpu_ms(self) -> float:
        return self.client_cpu_s * 1e3 / self.calls if self.calls else 0.0


@dataclass
class Op:
    """An operation measured per call: `call(client, i)` makes the i-th call on a target."""

    key: str
    label: str
    region: str
    targets: list[str]
    call: Callable[[Any, int], Any]
    chunk: int
    # At most this many calls per target in all (None: `chunk` each round).
    total: int | None = None


def rotated(items: Sequence[Target], by: int) -> list[Target]:
    if not items:
        return []
    by %= len(items)
    return [*items[by:], *items[:by]]


def run_chunk(target: Target, op: Op, sample: Sample, start: int, count: int) -> None:
    """`count` calls of `op` on `target`, timed one by one, CPU read around the whole chunk."""
    client = target.client(op.region)
    call = op.call
    latencies = sample.latencies_ns
    server_before = target.server_cpu()
    client_before = time.process_time()
    clock = time.perf_counter_ns
    for i in range(start, start + count):
        began = clock()
        call(client, i)
        latencies.append(clock() - began)
    sample.client_cpu_s += time.process_time() - client_before
    if server_before is not None:
        server_after = target.server_cpu()
        assert server_after is not None
        sample.server_cpu_s += server_after - server_before
        sample.has_server = True


def interleaved(
    ops: Sequence[Op],
    targets: Sequence[Target],
    rounds: int,
    progress: Callable[[str], None] | None = None,
) -> dict[tuple[str, str], Sample]:
    """Each round runs one chunk of every op on every target it names, the targets' order
    rotating from round to round, so that drift of the machine falls on all of them alike."""
    samples: dict[tuple[str, str], Sample] = {}
    done: dict[tuple[str, str], int] = {}
    for round_no in range(rounds):
        for op in ops:
            chosen = [t for t in targets if t.key in op.targets]
            for target in rotated(chosen, round_no):
                key = (op.key, target.key)
                sample = samples.setdefault(key, Sample())
                start = done.get(key, 0)
                count = op.chunk if op.total is None else min(op.chunk, op.total - start)
                if count > 0:
                    run_chunk(target, op, sample, start, count)
                    done[key] = start + count
        if progress is not None:
            progress(f"round {round_no + 1}/{rounds}")
    return samples


@dataclass
class Throughput:
    threads: int
    calls: int
    seconds: float
    server_cpu_s: float | None

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def throughput(
    target: Target,
    clients: Sequence[Any],
    call: Callable[[Any], Any],
    seconds: float,
    max_calls_per_thread: int,
) -> Throughput:
    """len(clients) threads, one client each, call as fast as they can for `seconds` (and at
    most `max_calls_per_thread` calls each); calls per second over the whole burst."""
    threads = len(clients)
    counts = [0] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    deadline_box: list[float] = [0.0]

    def worker(index: int) -> None:
        client = clients[index]
        barrier.wait()
        deadline = deadline_box[0]
        made = 0
        try:
            while made < max_calls_per_thread and time.perf_counter() < deadline:
                call(client)
                made += 1
        except BaseException as error:  # reported after the burst
            errors.append(error)
        counts[index] = made

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    cpu_before = target.server_cpu()
    began = time.perf_counter()
    deadline_box[0] = began + seconds
    barrier.wait()
    for thread in workers:
        thread.join(seconds + 120)
    elapsed = time.perf_counter() - began
    cpu_after = target.server_cpu()
    if errors:
        raise RuntimeError(f"{target.key}: {errors[0]!r}") from errors[0]
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Throughput(threads, sum(counts), elapsed, cpu)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
