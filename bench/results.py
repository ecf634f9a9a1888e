"""What one benchmark run is: its sizes, the names of what it measures, and the results
every part fills in and the report reads. Imported by every part and by report.py; imports
none of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measure import Sample, Throughput

EAST = "us-east-1"  # the large account: DescribeCluster, nodes pages, 2,000 clusters


WEST = "us-west-2"  # the small one: 100 clusters


DESCRIBED = "bench-describe"


NODES_SMALL = "bench-nodes-small"


NODES_LARGE = "bench-nodes-large"


SERVERS = ["ours-server", "moto-server"]


BOTH = ["ours-server", "ours-mock", "moto-server", "moto-mock"]


# Ours again, every request saying Cache-Control: no-cache: the cost of computing an answer.
FRESH = ["ours-server-fresh", "ours-mock-fresh"]


MEASURED = [*BOTH, *FRESH]


ALL = [*MEASURED, "floor-http", "floor-nonet"]


HTTP = ["ours-server", "ours-server-fresh", "moto-server", "floor-http"]


THREADS = (1, 8)


BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Sizes:
    small_clusters: int
    large_clusters: int
    small_nodes_per_group: int
    large_nodes_per_group: int
    rounds: int
    describe_chunk: int
    page_chunk: int
    create_chunk: int
    throughput_seconds: float
    throughput_rounds: int
    cold_starts: int
    replace_nodes: int
    replace_reps: int
    store_clusters: int
    store_nodes: int
    store_calls: int


FULL = Sizes(
    small_clusters=100,
    large_clusters=2000,
    small_nodes_per_group=50,
    large_nodes_per_group=5000,
    rounds=20,
    describe_chunk=40,
    page_chunk=15,
    create_chunk=25,
    throughput_seconds=2.0,
    throughput_rounds=3,
    cold_starts=7,
    replace_nodes=25,
    replace_reps=5,
    store_clusters=15,
    store_nodes=100_000,
    store_calls=200,
)


QUICK = Sizes(
    small_clusters=20,
    large_clusters=200,
    small_nodes_per_group=10,
    large_nodes_per_group=500,
    rounds=3,
    describe_chunk=10,
    page_chunk=4,
    create_chunk=15,
    throughput_seconds=0.3,
    throughput_rounds=1,
    cold_starts=1,
    replace_nodes=25,
    replace_reps=1,
    store_clusters=2,
    store_nodes=10_000,
    store_calls=30,
)


@dataclass
class Results:
    mode: str
    command: str
    sizes: Sizes
    machine: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    op_labels: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, str], Sample] = field(default_factory=dict)
    notes: dict[str, float] = field(default_factory=dict)
    throughput: dict[tuple[str, int], Throughput] = field(default_factory=dict)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    cold: dict[str, list[float]] = field(default_factory=dict)
    replace: dict[str, list[float]] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    # name: (wall seconds, cores other processes on the machine used on average meanwhile)
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    wall_seconds: float = 0.0
