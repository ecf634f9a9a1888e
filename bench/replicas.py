"""Several servers (replicas) on one PostgreSQL store, next to one server on SQLite, in one run
on this machine: calls per second, engine node steps per second, and where the time goes.

    .venv/bin/python bench/run.py --replicas [--quick] [--output PATH]

Needs the PostgreSQL of the tests (127.0.0.1:5432, user postgres, trust auth, database
`test`); each part makes a database of its own and drops it afterwards.

1. Calls per second with CLIENTS boto3 clients, each in a process of its own (so the GIL of
   one client process is not the limit; their CPU is counted, since on a small machine they
   take cores from the servers), spread round-robin over the servers of a target: one server
   on SQLite, and 1, 2 and 3 replicas on one PostgreSQL database. Two loads: DescribeCluster
   computed (PostgreSQL has no response cache; the SQLite server is sent
   `Cache-Control: no-cache`, so it computes every answer too), and a mixed load of 80%
   reads (DescribeCluster, ListClusterNodes) and 20% writes (AddTags that overwrites the
   client's own tag, BatchRebootClusterNodes of one of the client's own nodes, which the
   engine then reboots: nothing grows). Every server of every target is up for the whole
   part (a replica that gets no clients only ticks its clock once a second), and the
   targets are asked in rotated order, ROUNDS rounds, so drift of the machine falls on all.
2. Engine node steps per second: a real clock at a high --speed, REPLACEMENTS nodes of an
   ENGINE_NODES-node cluster replaced (BatchReplaceClusterNodes, 25 at a time, sent to the
   replicas in turn), timed until every node is Running and no step is left; on SQLite, on
   one replica and on three, where every replica's engine takes due steps.
3. Where the time goes: py-spy samples one of three replicas under the mixed load (only the
   thread holding its GIL: Python running), pg_stat_activity is sampled for what the
   database's backends are doing (running a statement, waiting for the replica, waiting for
   the write lock), and the statements and transactions each call costs are counted
   in-process.

CPU seconds are read from /proc: of the servers, of the PostgreSQL processes (the backends
of this part's database and PostgreSQL's own background processes), of the client
processes, and of everything else on the machine (other work disturbs the numbers; it is
reported). Writes its section of bench/RESULTS.md between the replicas markers, which the
main run keeps. Loopback only; every process it starts is stopped before it returns.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from measure import log
from sections import MARKS, write_section
from servers import (
    BIN,
    Server,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    ours_command,
    own_cpu_seconds,
)
from targets import CONFIG, ask_afresh, group, make_client

from hyperpod_local.store.postgresql import WRITE_LOCK

EAST = "us-east-1"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
START_MARK, END_MARK = MARKS["replicas"]
LOADS = ("describe", "mixed")
LOAD_LABELS = {
    "describe": "DescribeCluster, computed",
    "mixed": "mixed: 80% reads, 20% writes",
}
# One mixed cycle of ten calls: 4 DescribeCluster, 4 ListClusterNodes, 1 AddTags, 1 reboot.
MIXED = ("describe", "list", "describe", "list", "tag", "describe", "list", "describe", "list")
MIXED = (*MIXED, "reboot")
NODES_PER_CLIENT = 4


@dataclass(frozen=True)
class ReplicaSizes:
    clients: int = 12
    seconds: float = 8.0
    rounds: int = 5
    # The calls part's real clock: a reboot (120 HyperPod seconds) takes 0.2 wall seconds.
    speed: float = 600.0
    engine_nodes: int = 4000
    replacements: int = 2000
    engine_speed: float = 10_000.0
    profile_seconds: float = 12.0
    profile_rate: int = 200


FULL = ReplicaSizes()
QUICK = ReplicaSizes(
    clients=8,
    seconds=3.0,
    rounds=1,
    engine_nodes=500,
    replacements=250,
    profile_seconds=4.0,
)


# PostgreSQL -------------------------------------------------------------------------------


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


_names = itertools.count()


@contextlib.contextmanager
def database() -> Iterator[tuple[str, str]]:
    """A fresh database: (its name, its SQLAlchemy URL); dropped afterwards."""
    name = f"hpbench_{os.getpid()}_{next(_names)}"
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield name, f"{PG_SERVER}/{name}"
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def sql(name: str, query: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={name}") as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


BACKGROUND = ("checkpointer", "background writer", "walwriter", "autovacuum")


class PostgresCpu:
    """CPU seconds of PostgreSQL's processes that work for one database: its backends (which
    come and go with the replicas' connections, so they are read every 0.1 s and a backend
    that ended keeps what it was last seen with) and PostgreSQL's background processes."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self._seen: dict[int, float] = {}
        self._base: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.backends_seen: set[int] = set()

    def _ours(self) -> dict[int, float]:
        found: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            line = _cmdline(entry)
            if not line.startswith("postgres: "):
                continue
            mine = self.database is not None and f" {self.database} " in line
            if mine or any(name in line for name in BACKGROUND):
                try:
                    found[int(entry)] = cpu_seconds(int(entry))
                except OSError:
                    continue
                if mine:
                    self.backends_seen.add(int(entry))
        return found

    def __enter__(self) -> PostgresCpu:
        self._base = self._ours()
        self._seen = dict(self._base)
        self.backends_seen = {p for p in self.backends_seen if p in self._base}
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self._seen.update(self._ours())

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._seen.update(self._ours())

    @property
    def seconds(self) -> float:
        return sum(cpu - self._base.get(pid, 0.0) for pid, cpu in self._seen.items())


def pg_counters(name: str) -> tuple[int, int]:
    """Transactions committed and rolled back in the database so far (as of the last stats
    report, which PostgreSQL makes at most once a second)."""
    ((commits, rollbacks),) = sql(
        name,
        "SELECT xact_commit, xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()",
    )
    return int(commits), int(rollbacks)


class ActivitySampler:
    """What the database's backends are doing, sampled every `every` seconds from
    pg_stat_activity (running a statement, waiting for the write lock, idle in a transaction:
    waiting for the replica's Python), and whether the write lock is held and by a backend
    doing what (pg_locks)."""

    def __init__(self, name: str, every: float = 0.02) -> None:
        self.name, self.every = name, every
        self.counts: Counter[str] = Counter()
        self.lock: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ActivitySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port=5432 user=postgres dbname={self.name}", autocommit=True
        ) as conn:
            while not self._stop.wait(self.every):
                rows = conn.execute(
                    "SELECT a.state, a.wait_event_type, a.wait_event, l.granted"
                    " FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid"
                    f" AND l.locktype = 'advisory' AND l.classid = {WRITE_LOCK >> 32}"
                    f" AND l.objid = {WRITE_LOCK & 0xFFFFFFFF}"
                    " WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()"
                    " AND a.backend_type = 'client backend'"
                ).fetchall()
                self.samples += 1
                holder = "free"
                for state, wait_type, wait, granted in rows:
                    self.counts[_activity(state, wait_type, wait)] += 1
                    if granted:
                        holder = (
                            "held, its holder running a statement"
                            if state == "active" and wait_type is None
                            else "held, its holder waiting for its replica"
                            if state == "idle in transaction"
                            else f"held, its holder {state}, {wait_type}/{wait}"
                        )
                self.lock[holder] += 1

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def lock_held(self) -> float:
        return 1 - self.lock.get("free", 0) / self.samples if self.samples else float("nan")


def _activity(state: str | None, wait_type: str | None, wait: str | None) -> str:
    if state == "active":
        if wait_type == "Lock" and wait == "advisory":
            return "active: waiting for the write lock (advisory)"
        if wait_type is None:
            return "active: running a statement (on a CPU)"
        return f"active: waiting, {wait_type}/{wait}"
    if state == "idle in transaction":
        return "idle in transaction: waiting for the replica"
    return f"{state}: connection in the replica's pool"


# Servers -------------------------------------------------------------------------------


@dataclass
class Target:
    """One store and the servers that serve it."""

    key: str
    label: str
    servers: list[Server]
    database: str | None  # PostgreSQL's database name; None for SQLite
    sqlite_file: Path | None = None


def start_servers(
    count: int, work: Path, prefix: str, store: str | None, *extra: str
) -> list[Server]:
    work.mkdir(parents=True, exist_ok=True)
    servers = []
    for index in range(count):
        port = free_port()
        name = f"{prefix}-{index}"
        args = ["--store", store] if store else []
        argv = ours_command(port, work / name, *args, *extra)
        servers.append(Server(name, argv, port, work / f"{name}.log").start())
    for server in servers:
        server.wait_ready(make_client(EAST, endpoint_url=server.url).list_clusters, timeout=120)
    return servers


def stop_all(servers: Sequence[Server]) -> None:
    for server in servers:
        server.stop()


def metric(server: Server, family: str) -> float:
    from fleet import metrics

    return metrics(server).get(family, 0.0)


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(every)


def in_service(client: Any, name: str) -> bool:
    return client.describe_cluster(ClusterName=name)["ClusterStatus"] == "InService"


# Client processes --------------------------------------------------------------------------


def client_main() -> int:
    """A client process: reads one burst a line from stdin (JSON), answers its counts."""
    from botocore.exceptions import ClientError

    clients: dict[tuple[str, bool], Any] = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        order = json.loads(line)
        if order.get("stop"):
            break
        key = (order["url"], order["no_cache"])
        if key not in clients:
            client = make_client(EAST, endpoint_url=order["url"], config=CONFIG)
            clients[key] = ask_afresh(client) if order["no_cache"] else client
        client = clients[key]
        calls = _calls(client, order)
        ops = ["describe"] if order["load"] == "describe" else list(MIXED)
        counts: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        latencies: list[float] = []
        delay = order["start"] - time.time()
        if delay > 0:
            time.sleep(delay)
        cpu_before = time.process_time()
        began = time.time()
        deadline = began + order["seconds"]
        clock = time.perf_counter
        for index in itertools.count():
            now = time.time()
            if now >= deadline:
                break
            op = ops[index % len(ops)]
            sent = clock()
            try:
                answer = calls[op](index)
                if op == "reboot" and answer.get("Failed"):
                    # The node was still rebooting: a write all the same (the node's row is
                    # read under the write lock), answered with a per-node error.
                    counts["reboot refused per node"] += 1
            except ClientError as error:
                meta = error.response.get("ResponseMetadata", {})
                code = error.response.get("Error", {}).get("Code", "?")
                errors[f"{op}: HTTP {meta.get('HTTPStatusCode')} {code}"] += 1
            except Exception as error:  # a connection refused, a timeout
                errors[f"{op}: {type(error).__name__}: {str(error)[:120]}"] += 1
            latencies.append(round((clock() - sent) * 1e3, 3))
            counts[op] += 1
        print(
            json.dumps(
                {
                    "counts": counts,
                    "errors": errors,
                    "latencies_ms": latencies,
                    "cpu": time.process_time() - cpu_before,
                    "began": began,
                    "ended": time.time(),
                }
            ),
            flush=True,
        )
    return 0


def _calls(client: Any, order: dict[str, Any]) -> dict[str, Callable[[int], Any]]:
    cluster, arn, nodes, tag = order["cluster"], order["arn"], order["nodes"], order["tag"]
    return {
        "describe": lambda _i: client.describe_cluster(ClusterName=cluster),
        "list": lambda _i: client.list_cluster_nodes(ClusterName=cluster, MaxResults=50),
        "tag": lambda i: client.add_tags(ResourceArn=arn, Tags=[{"Key": tag, "Value": str(i)}]),
        "reboot": lambda i: client.batch_reboot_cluster_nodes(
            ClusterName=cluster, NodeIds=[nodes[(i // len(MIXED)) % len(nodes)]]
        ),
    }


class ClientPool:
    """`count` client processes, started once and given one burst after another."""

    def __init__(self, count: int, work: Path) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self._errs: list[IO[bytes]] = []
        for index in range(count):
            err = open(work / f"client-{index}.log", "wb")  # noqa: SIM115 - closed in stop()
            self._errs.append(err)
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--client"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    cwd=str(Path(__file__).resolve().parent),
                )
            )
        for proc in self.procs:
            self._answer(proc)

    def _answer(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a client process ended (code {proc.poll()}); see its log")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def burst(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for proc, order in zip(self.procs, orders, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(order) + "\n")
            proc.stdin.flush()
        return [self._answer(proc) for proc in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.write(json.dumps({"stop": True}) + "\n")
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for err in self._errs:
            err.close()


# 1. Calls per second --------------------------------------------------------------------


@dataclass
class Burst:
    """Totals of one target under one load, summed over the rounds."""

    calls: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    idle_servers_cpu: float = 0.0
    pg_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_busy: float = 0.0
    # The wall time machine_busy was read over: the burst and the orders and answers around it.
    window: float = 0.0
    others: float = 0.0
    transactions: int = 0
    rates: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def per_call_ms(self, cpu: float) -> float:
        return cpu * 1e3 / self.calls if self.calls else float("nan")


@dataclass
class Prepared:
    """What a target's clients act on: the cluster, its ARN, each client's nodes."""

    cluster: str
    arn: str
    nodes: list[str]


def prepare(target: Target, clients: int) -> Prepared:
    sm = make_client(EAST, endpoint_url=target.servers[0].url)
    name = "mixed"
    # Each client reboots its own nodes: two groups, the nodes shared out one a client.
    per_group = clients * NODES_PER_CLIENT // 2
    arn = sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[group("workers-a", per_group), group("workers-b", per_group)],
    )["ClusterArn"]
    wait_until(lambda: in_service(sm, name), timeout=120)
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=name)
    nodes = [n["InstanceId"] for page in pages for n in page["ClusterNodeSummaries"]]
    return Prepared(name, arn, sorted(nodes))


def calls_part(
    sizes: ReplicaSizes,
    pool: ClientPool,
    pg_name: str,
    replicas: list[Server],
    sqlite: Target,
) -> tuple[dict[tuple[str, str], Burst], list[Target]]:
    targets = [
        sqlite,
        *(
            Target(
                f"pg{n}", f"PostgreSQL, {n} replica{'s' if n > 1 else ''}", replicas[:n], pg_name
            )
            for n in (1, 2, 3)
        ),
    ]
    prepared = {"sqlite": prepare(sqlite, sizes.clients), "pg": prepare(targets[1], sizes.clients)}
    everyone = [*sqlite.servers, *replicas]
    results: dict[tuple[str, str], Burst] = {}
    for round_no in range(sizes.rounds):
        order = targets[round_no % len(targets) :] + targets[: round_no % len(targets)]
        for target in order:
            for load in LOADS:
                burst = results.setdefault((target.key, load), Burst())
                one_burst(sizes, pool, target, load, prepared, everyone, burst)
                log(
                    f"round {round_no + 1}/{sizes.rounds} {target.key} {load}: "
                    f"{burst.rates[-1]:.0f} calls/s"
                )
    return results, targets


def _calls_in(answer: dict[str, Any]) -> int:
    return sum(n for op, n in answer["counts"].items() if op in _OPS)


_OPS = frozenset(MIXED)


def orders_for(
    sizes: ReplicaSizes, target: Target, load: str, prepared: Prepared, start: float
) -> list[dict[str, Any]]:
    orders = []
    for index in range(sizes.clients):
        server = target.servers[index % len(target.servers)]
        nodes = prepared.nodes[index * NODES_PER_CLIENT : (index + 1) * NODES_PER_CLIENT]
        orders.append(
            {
                "url": server.url,
                "no_cache": target.database is None,
                "load": load,
                "seconds": sizes.seconds,
                "start": start,
                "cluster": prepared.cluster,
                "arn": prepared.arn,
                "nodes": nodes,
                "tag": f"bench-client-{index}",
            }
        )
    return orders


def one_burst(
    sizes: ReplicaSizes,
    pool: ClientPool,
    target: Target,
    load: str,
    prepared: dict[str, Prepared],
    everyone: list[Server],
    burst: Burst,
) -> None:
    start = time.time() + 0.3
    orders = orders_for(
        sizes, target, load, prepared["sqlite" if target.database is None else "pg"], start
    )
    mine = {s.pid for s in target.servers}
    before = {s.pid: s.cpu_seconds() for s in everyone}
    xacts_before = sum(pg_counters(target.database)) if target.database else 0
    busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
    window_began = time.perf_counter()
    with PostgresCpu(target.database) as pg_cpu:
        answers = pool.burst(orders)
    busy = machine_busy_seconds() - busy_before
    burst.window += time.perf_counter() - window_began
    own = own_cpu_seconds() - own_before
    used = {s.pid: s.cpu_seconds() - before[s.pid] for s in everyone}
    began = min(a["began"] for a in answers)
    ended = max(a["ended"] for a in answers)
    calls = sum(_calls_in(a) for a in answers)
    client_cpu = sum(a["cpu"] for a in answers)
    server_cpu = sum(cpu for pid, cpu in used.items() if pid in mine)
    idle_cpu = sum(cpu for pid, cpu in used.items() if pid not in mine)
    burst.calls += calls
    burst.seconds += ended - began
    burst.rates.append(calls / (ended - began))
    burst.server_cpu += server_cpu
    burst.idle_servers_cpu += idle_cpu
    burst.pg_cpu += pg_cpu.seconds
    burst.client_cpu += client_cpu
    # The window of /proc/stat is a little longer than the burst (the orders, the answers).
    burst.machine_busy += busy
    burst.others += max(0.0, busy - server_cpu - idle_cpu - pg_cpu.seconds - client_cpu - own)
    for answer in answers:
        burst.latencies_ms += answer["latencies_ms"]
        burst.counts.update(answer["counts"])
        burst.errors.update(answer["errors"])
    if target.database:
        # PostgreSQL's statistics reach pg_stat_database within a second or so.
        time.sleep(1.0)
        burst.transactions += sum(pg_counters(target.database)) - xacts_before


# 2. Engine node steps -------------------------------------------------------------------


@dataclass
class EngineRun:
    key: str
    label: str
    replacements: int
    steps: float
    wall: float
    server_cpu: float
    pg_cpu: float
    others: float
    steps_by_server: list[float]
    lock_held: float = float("nan")


def engine_part(sizes: ReplicaSizes, work: Path) -> list[EngineRun]:
    runs = []
    data = work / "engine-sqlite"
    servers = start_servers(1, data, "engine-sqlite", None, "--speed", f"{sizes.engine_speed:g}")
    try:
        sqlite_file = data / "engine-sqlite-0" / "hyperpod.db"
        runs.append(engine_run(sizes, "sqlite", "SQLite, 1 server", servers, None, sqlite_file))
    finally:
        stop_all(servers)
        check_logs(servers)
    for count in (1, 3):
        with database() as (name, url):
            servers = start_servers(
                count,
                work / f"engine-pg{count}",
                "engine-pg",
                url,
                "--speed",
                f"{sizes.engine_speed:g}",
            )
            try:
                label = f"PostgreSQL, {count} replica{'s' if count > 1 else ''}"
                runs.append(engine_run(sizes, f"pg{count}", label, servers, name, None))
            finally:
                stop_all(servers)
                check_logs(servers)
    return runs


def _left(database: str | None, sqlite_file: Path | None) -> int:
    """Nodes not Running plus steps still to run, read from the store itself."""
    query = (
        "SELECT (SELECT count(*) FROM nodes WHERE status <> 'Running')"
        " + (SELECT count(*) FROM tasks)"
    )
    if database is not None:
        return int(sql(database, query)[0][0])
    assert sqlite_file is not None
    with contextlib.closing(sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)) as conn:
        return int(conn.execute(query).fetchone()[0])


def engine_run(
    sizes: ReplicaSizes,
    key: str,
    label: str,
    servers: list[Server],
    database: str | None,
    sqlite_file: Path | None,
) -> EngineRun:
    from fleet import groups_of, running_ids

    sm = [make_client(EAST, endpoint_url=s.url) for s in servers]
    sm[0].create_cluster(ClusterName="engine", InstanceGroups=groups_of(sizes.engine_nodes))
    wait_until(lambda: in_service(sm[0], "engine") and _left(database, sqlite_file) == 0, 600)
    ids = running_ids(sm[0], "engine", sizes.replacements)
    steps_before = [metric(s, "hyperpod_local_engine_steps_total") for s in servers]
    cpu_before = [s.cpu_seconds() for s in servers]
    busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
    sampler = ActivitySampler(database) if database else contextlib.nullcontext()
    with PostgresCpu(database) as pg_cpu, sampler:
        began = time.perf_counter()
        for turn, start in enumerate(range(0, len(ids), 25)):
            sm[turn % len(sm)].batch_replace_cluster_nodes(
                ClusterName="engine", NodeIds=ids[start : start + 25]
            )
        wait_until(lambda: _left(database, sqlite_file) == 0, 900, every=0.1)
        wall = time.perf_counter() - began
    server_cpu = sum(s.cpu_seconds() - c for s, c in zip(servers, cpu_before, strict=True))
    busy = machine_busy_seconds() - busy_before
    own = own_cpu_seconds() - own_before
    # The scrape is a request, not a step: after the CPU reading.
    steps = [
        metric(s, "hyperpod_local_engine_steps_total") - b
        for s, b in zip(servers, steps_before, strict=True)
    ]
    run = EngineRun(
        key,
        label,
        len(ids),
        sum(steps),
        wall,
        server_cpu,
        pg_cpu.seconds,
        max(0.0, busy - server_cpu - pg_cpu.seconds - own),
        steps,
        sampler.lock_held() if isinstance(sampler, ActivitySampler) else float("nan"),
    )
    log(f"engine {key}: {run.steps:.0f} steps in {wall:.1f}s, {server_cpu:.1f} server CPU s")
    return run


# 3. Where the time goes -----------------------------------------------------------------


@dataclass
class Profile:
    replica_cpu: float = 0.0
    all_replicas_cpu: float = 0.0
    pg_cpu: float = 0.0
    client_cpu: float = 0.0
    wall: float = 0.0
    calls: int = 0
    replica_calls: int = 0
    samples: int = 0
    areas: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    # (self frame, its caller, the caller's caller): samples.
    callers: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    activity: Counter[str] = field(default_factory=Counter)
    activity_samples: int = 0
    lock: Counter[str] = field(default_factory=Counter)
    statements: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def profile_part(
    sizes: ReplicaSizes,
    pool: ClientPool,
    target: Target,
    prepared: Prepared,
    work: Path,
) -> Profile:
    """py-spy on the first of the target's replicas, pg_stat_activity sampled, under the
    mixed load spread over all of them."""
    from profile_server import area, parse_collapsed

    found = Profile()
    py_spy = shutil.which("py-spy") or str(BIN / "py-spy")
    replica = target.servers[0]
    out = work / "replica-profile.txt"
    spy: subprocess.Popen[bytes] | None = None
    if Path(py_spy).exists():
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(replica.pid),
                "--rate",
                str(sizes.profile_rate),
                "--format",
                "raw",
                "--nolineno",
                "--nonblocking",
                "--gil",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
    else:
        log("py-spy is not installed (pip install py-spy): no profile of the replica")
    start = time.time() + 0.3
    orders = orders_for(sizes, target, "mixed", prepared, start)
    for order in orders:
        order["seconds"] = sizes.profile_seconds
    before = {s.pid: s.cpu_seconds() for s in target.servers}
    assert target.database is not None
    with PostgresCpu(target.database) as pg_cpu, ActivitySampler(target.database) as activity:
        answers = pool.burst(orders)
    used = {s.pid: s.cpu_seconds() - before[s.pid] for s in target.servers}
    found.replica_cpu = used[replica.pid]
    found.all_replicas_cpu = sum(used.values())
    found.pg_cpu = pg_cpu.seconds
    found.client_cpu = sum(a["cpu"] for a in answers)
    found.wall = max(a["ended"] for a in answers) - min(a["began"] for a in answers)
    found.calls = sum(_calls_in(a) for a in answers)
    found.replica_calls = sum(
        _calls_in(a) for a, o in zip(answers, orders, strict=True) if o["url"] == replica.url
    )
    found.activity = activity.counts
    found.activity_samples = activity.samples
    found.lock = activity.lock
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        if out.exists():
            total, own, inclusive = parse_collapsed(out)
            found.samples = total
            found.own = own
            found.callers = _callers(out)
            found.inclusive = Counter(
                {f: n for f, n in inclusive.items() if "hyperpod_local" in f or "threading" in f}
            )
            for frame, count in own.items():
                found.areas[_area(frame, area)] += count
    log(
        f"profile: {found.calls} calls, replica CPU {found.replica_cpu:.1f}s,"
        f" {found.samples} samples"
    )
    return found


def _callers(path: Path) -> Counter[tuple[str, str, str]]:
    """Samples by (the running function, its caller, the caller's caller), from py-spy's
    raw output (as profile_server.parse_collapsed reads it)."""
    found: Counter[tuple[str, str, str]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [
            f for f in stack.split(";") if " (" in f and not f.startswith(("process ", "thread "))
        ]
        if frames:
            padded = ["", "", *frames]
            found[(padded[-1], padded[-2], padded[-3])] += int(count)
    return found


def _area(frame: str, area: Callable[[str], str]) -> str:
    if "psycopg" in frame:
        return "psycopg (the driver: sending statements, reading rows)"
    if "botocore/" in frame or "boto3/" in frame:
        return "botocore (the model, SigV4 checks)"
    return area(frame)


def statements_per_call(work: Path, pg_url: str) -> dict[str, dict[str, dict[str, float]]]:
    """Statements, transactions (of which autocommit: one statement read alone, no BEGIN
    or COMMIT) and connection checkouts of one call of each kind, in-process on each
    store."""
    import hyperpod_local

    found: dict[str, dict[str, dict[str, float]]] = {}
    for key, settings in (("sqlite", {}), ("postgresql", {"database_url": pg_url})):
        with hyperpod_local.mock(work / f"count-{key}", **settings) as hp:
            for op, tally in _count_calls(hp, f"count-{key}").items():
                found.setdefault(op, {})[key] = tally
    return found


def _count_calls(hp: Any, name: str) -> dict[str, dict[str, float]]:
    from sqlalchemy import event

    engine = hp.backend.store.engine
    tally: Counter[str] = Counter()

    def statement(*_args: Any) -> None:
        tally["statements"] += 1

    def begin(conn: Any) -> None:
        tally["transactions"] += 1
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            tally["autocommit"] += 1

    def checkout(*_args: Any) -> None:
        tally["checkouts"] += 1

    sm = ask_afresh(make_client(EAST))
    arn = sm.create_cluster(
        ClusterName=name, InstanceGroups=[group("workers-a", 4), group("workers-b", 4)]
    )["ClusterArn"]
    hp.settle()
    node = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"][0]["InstanceId"]
    calls: dict[str, Callable[[], Any]] = {
        "DescribeCluster": lambda: sm.describe_cluster(ClusterName=name),
        "ListClusterNodes": lambda: sm.list_cluster_nodes(ClusterName=name, MaxResults=50),
        "AddTags": lambda: sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]),
        "BatchRebootClusterNodes": lambda: sm.batch_reboot_cluster_nodes(
            ClusterName=name, NodeIds=[node]
        ),
    }
    found: dict[str, dict[str, float]] = {}
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begin)
    event.listen(engine.pool, "checkout", checkout)
    try:
        for op, call in calls.items():
            call()  # once before: a first call may build what later ones reuse
            tally.clear()
            call()
            found[op] = dict(tally)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begin)
        event.remove(engine.pool, "checkout", checkout)
    return found


# The report ---------------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _f(value: float, digits: int = 2) -> str:
    if value != value:  # NaN
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"


def report(
    sizes: ReplicaSizes,
    command: str,
    calls: dict[tuple[str, str], Burst],
    targets: list[Target],
    engine: list[EngineRun],
    profile: Profile,
    wall: float,
    load: dict[str, float],
) -> str:
    cores = os.cpu_count() or 0
    others = sum(b.others for b in calls.values()) / sum(b.window for b in calls.values())
    lines = [
        START_MARK,
        "## Replicas: several servers on one PostgreSQL",
        "",
        f"`{command}`, one run of {wall / 60:.1f} minutes on {cores} cores; CPU seconds from",
        "/proc (servers, PostgreSQL's processes for the database, the client processes, and",
        "whatever else ran on the machine: `others`). Every target is hyperpod-local's server;",
        "`SQLite` is one server on its data dir, `PostgreSQL, N` N replicas on one database",
        "(PostgreSQL 15 on this machine, loopback, default settings).",
        "",
        f"Other work on the machine used {others:.2f} of its {cores} cores on average during"
        f" the calls part (load average {load['load average at start']:.1f} at the start,"
        f" {load['load average at end']:.1f} at the end): the `others` columns. Calls per"
        " second are what the target got of a shared machine; the CPU per call columns (and"
        " calls per CPU second) are less disturbed by it.",
        "",
        f"### Calls per second, {sizes.clients} client processes",
        "",
        "Each client is a process of its own with one boto3 client, aimed at the target's",
        "servers in turn (client i at server i mod N), calling as fast as it can for",
        f"{sizes.seconds:g} s; {sizes.rounds} round(s), the targets' order rotated each round.",
        "DescribeCluster is of a cluster of 2 groups; the mixed load is, of every 10 calls,",
        "4 DescribeCluster, 4 ListClusterNodes (MaxResults 50, of a",
        f"{sizes.clients * NODES_PER_CLIENT}-node cluster), 1 AddTags (the client's own tag,",
        "overwritten) and 1 BatchRebootClusterNodes of one of the client's own nodes (the",
        f"engine reboots it: real clock at {sizes.speed:g}x, 0.2 s); every read is computed",
        "(PostgreSQL has no response cache; SQLite is sent `Cache-Control: no-cache`).",
        "CPU columns are milliseconds per call (`others`: the rest of the machine, which this",
        "part does not control); `servers' cores` is the target's servers' CPU over the wall",
        "time, `machine's cores busy` all CPU used on the machine over it (/proc/stat);",
        "transactions are PostgreSQL's count for the database (pg_stat_database), the",
        "engine's and the idle replicas' clock ticks included, and each one-statement read",
        "in autocommit (one to PostgreSQL): see the round trips under Where the time goes.",
        "",
        "| load | target | calls/s | vs PostgreSQL, 1 | vs SQLite | rounds min-max | p50 ms |"
        " p99 ms | server CPU | PostgreSQL CPU | client CPU | others | servers' cores |"
        " machine's cores busy | calls / (server + PostgreSQL) CPU s |"
        " transactions / call | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        " ---: | ---: | ---: | ---: | ---: |",
    ]
    for load in LOADS:
        base_pg = calls[("pg1", load)].per_second
        base_sqlite = calls[("sqlite", load)].per_second
        for target in targets:
            b = calls[(target.key, load)]
            rate = b.per_second
            xacts = b.transactions / b.calls if target.database and b.calls else float("nan")
            lines.append(
                f"| {LOAD_LABELS[load]} | {target.label} | {rate:,.0f} |"
                f" {rate / base_pg:.2f}x | {rate / base_sqlite:.2f}x |"
                f" {min(b.rates):,.0f}-{max(b.rates):,.0f} |"
                f" {_f(_quantile(b.latencies_ms, 0.5))} | {_f(_quantile(b.latencies_ms, 0.99))} |"
                f" {_f(b.per_call_ms(b.server_cpu))} | {_f(b.per_call_ms(b.pg_cpu))} |"
                f" {_f(b.per_call_ms(b.client_cpu))} | {_f(b.per_call_ms(b.others))} |"
                f" {b.server_cpu / b.window:.2f} | {b.machine_busy / b.window:.2f} |"
                f" {b.calls / (b.server_cpu + b.pg_cpu):,.0f} |"
                f" {_f(xacts)} |"
                f" {sum(b.errors.values())} |"
            )
    errors = Counter[str]()
    for b in calls.values():
        errors.update(b.errors)
    lines.append("")
    if errors:
        lines.append(
            "Errors: " + "; ".join(f"{n} x {what}" for what, n in errors.most_common(8)) + "."
        )
    else:
        lines.append("No call failed (no 5xx, no throttling, no connection error).")
    reboots = sum(b.counts.get("reboot", 0) for b in calls.values())
    refused = sum(b.counts.get("reboot refused per node", 0) for b in calls.values())
    if reboots:
        lines.append(
            f"Of {reboots:,} BatchRebootClusterNodes calls, {refused:,} found the node still"
            " rebooting and answered it as a per-node failure (a write transaction all the same)."
        )
    lines += [
        "",
        "### Engine node steps per second",
        "",
        f"A real clock at {sizes.engine_speed:g}x, a cluster of {sizes.engine_nodes:,} nodes;",
        f"{sizes.replacements:,} of them replaced (BatchReplaceClusterNodes, 25 a call, the",
        "calls sent to the replicas in turn), timed from the first call until every node is",
        "Running and no step is left (read from the store itself every 0.1 s). Steps are the",
        "servers' `hyperpod_local_engine_steps_total`, summed.",
        "",
        "| target | steps | wall s | steps / s | vs PostgreSQL, 1 | server CPU s |"
        " steps / server CPU s | PostgreSQL CPU s | steps / (server + PostgreSQL) CPU s |"
        " others CPU s | write lock held | steps by replica |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base = next(r for r in engine if r.key == "pg1")
    for r in engine:
        lines.append(
            f"| {r.label} | {r.steps:,.0f} | {r.wall:.1f} | {r.steps / r.wall:,.0f} |"
            f" {(r.steps / r.wall) / (base.steps / base.wall):.2f}x | {r.server_cpu:.1f} |"
            f" {r.steps / r.server_cpu:,.0f} | {r.pg_cpu:.1f} |"
            f" {r.steps / (r.server_cpu + r.pg_cpu):,.0f} | {r.others:.1f} |"
            f" {'' if r.lock_held != r.lock_held else f'{100 * r.lock_held:.0f}%'} |"
            f" {' / '.join(f'{s:,.0f}' for s in r.steps_by_server)} |"
        )
    lines += ["", "### Where the time goes", ""]
    p = profile
    lines += [
        f"The mixed load on 3 replicas for {sizes.profile_seconds:g} s ({p.calls:,} calls,"
        f" {p.calls / p.wall:,.0f}/s); the first replica answered {p.replica_calls:,} of them with"
        f" {p.replica_cpu:.1f} CPU s ({p.replica_cpu / p.wall:.2f} of a core;"
        f" {p.replica_cpu * 1e3 / max(1, p.replica_calls):.2f} ms a call). All three replicas used"
        f" {p.all_replicas_cpu:.1f} CPU s, PostgreSQL {p.pg_cpu:.1f}, the clients"
        f" {p.client_cpu:.1f}: {(p.all_replicas_cpu + p.pg_cpu + p.client_cpu) / p.wall:.2f}"
        f" of the machine's {cores} cores.",
        "",
    ]
    if p.samples:
        lines += [
            f"py-spy on that replica ({p.samples:,} samples of the thread holding the GIL, i.e.",
            "Python running), self time by area:",
            "",
            "| area | share | ms a call |",
            "| --- | ---: | ---: |",
        ]
        per_call = p.replica_cpu * 1e3 / max(1, p.replica_calls)
        for name, count in p.areas.most_common(10):
            share = count / p.samples
            lines.append(f"| {name} | {100 * share:.1f}% | {share * per_call:.3f} |")
        from profile_server import short

        lines += [
            "",
            "Functions with the most self time:",
            "",
            "| function | share |",
            "| --- | ---: |",
        ]
        for frame, count in p.own.most_common(12):
            lines.append(f"| `{short(frame)}` | {100 * count / p.samples:.1f}% |")
        lines += [
            "",
            "Inclusive time (the function and what it calls) of hyperpod_local's functions and",
            "of threading's:",
            "",
            "| function | share |",
            "| --- | ---: |",
        ]
        for frame, count in p.inclusive.most_common(16):
            lines.append(f"| `{short(frame)}` | {100 * count / p.samples:.1f}% |")
        lines += [
            "",
            "Where the functions with the most self time are called from:",
            "",
            "| function | called by | called by | share |",
            "| --- | --- | --- | ---: |",
        ]
        for (frame, caller, above), count in p.callers.most_common(8):
            names = " | ".join(f"`{short(f)}`" if f else "" for f in (frame, caller, above))
            lines.append(f"| {names} | {100 * count / p.samples:.1f}% |")
        lines.append("")
    if p.activity_samples:
        lines += [
            f"pg_stat_activity, sampled {p.activity_samples:,} times (every 20 ms): what the"
            " replicas' connections were doing, in backends on average",
            "",
            "| state | backends on average |",
            "| --- | ---: |",
        ]
        for name, count in sorted(p.activity.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {name} | {count / p.activity_samples:.2f} |")
        lines += [
            "",
            "The store's write lock (pg_locks, the same samples): the share of the time it was",
            "held, and what its holder was doing",
            "",
            "| write lock | share of the time |",
            "| --- | ---: |",
        ]
        for name, count in sorted(p.lock.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {name} | {100 * count / p.activity_samples:.0f}% |")
        lines.append("")
    if p.statements:
        lines += [
            "Statements (S, the advisory lock's SELECT included), transactions (T, of which",
            "A are one statement read alone in autocommit) and connection checkouts (C) of",
            "one call, counted in-process; on PostgreSQL each statement is a round trip to",
            "the database, and so are each other transaction's BEGIN and COMMIT (a checkout",
            "costs none): S + 2(T - A) round trips:",
            "",
            "| call | SQLite S / T / A / C | PostgreSQL S / T / A / C | PostgreSQL round trips |",
            "| --- | ---: | ---: | ---: |",
        ]
        for op, per in p.statements.items():
            cells = [
                " / ".join(
                    str(int(per.get(k, {}).get(x, 0)))
                    for x in ("statements", "transactions", "autocommit", "checkouts")
                )
                for k in ("sqlite", "postgresql")
            ]
            pg = per.get("postgresql", {})
            trips = _round_trips(pg)
            lines.append(f"| {op} | {cells[0]} | {cells[1]} | {trips:.0f} |")
        lines.append("")
    lines += closing_note(calls, engine, profile, cores)
    lines.append(END_MARK)
    return "\n".join(lines) + "\n"


def _round_trips(counted: dict[str, float]) -> float:
    """Round trips to PostgreSQL: each statement, and the BEGIN and COMMIT of each
    transaction that is not one autocommit statement."""
    framed = counted.get("transactions", 0) - counted.get("autocommit", 0)
    return counted.get("statements", 0) + 2 * framed


def closing_note(
    calls: dict[tuple[str, str], Burst], engine: list[EngineRun], profile: Profile, cores: int
) -> list[str]:
    def b(key: str, load: str) -> Burst:
        return calls[(key, load)]

    def rates(load: str) -> str:
        return " / ".join(f"{b(k, load).per_second:,.0f}" for k in ("pg1", "pg2", "pg3"))

    def per_cpu(run: EngineRun) -> float:
        return run.steps / run.server_cpu

    def cpu_ms(burst: Burst) -> float:
        return burst.per_call_ms(burst.server_cpu + burst.pg_cpu)

    others = sum(x.others for x in calls.values()) / sum(x.window for x in calls.values())
    busiest = max(x.server_cpu / x.window for x in calls.values())
    # The busiest single server: a target's servers share its load evenly.
    one_server = max(
        calls[(t, load)].server_cpu / calls[(t, load)].window / n
        for t, n in (("sqlite", 1), ("pg1", 1), ("pg2", 2), ("pg3", 3))
        for load in LOADS
    )
    gil = (
        f" no one server used more than {one_server:.2f} of a core, so none was held back by"
        " its own GIL (one core at a time); each got what the machine had left."
        if one_server < 0.9
        else f" a server used up to {one_server:.2f} of a core: there its GIL was a limit."
    )
    overlap = all(
        min(b("pg1", load).rates) <= max(b(k, load).rates)
        and min(b(k, load).rates) <= max(b("pg1", load).rates)
        for k in ("pg2", "pg3")
        for load in LOADS
    )
    spread = (
        "the rounds' ranges (min-max above) overlap, so these differ by no more than the noise."
        if overlap
        else "see the rounds' ranges (min-max above) for how far apart they are."
    )
    sqlite_server = b("sqlite", "mixed").per_call_ms(b("sqlite", "mixed").server_cpu)
    describe = {k: b(k, "describe") for k in ("sqlite", "pg1")}
    pg1_engine = next(r for r in engine if r.key == "pg1")
    pg3_engine = next(r for r in engine if r.key == "pg3")
    samples = max(1, profile.activity_samples)
    held = 1 - profile.lock.get("free", 0) / samples
    holder_waits = profile.lock.get("held, its holder waiting for its replica", 0) / samples
    fsync = sum(n for k, n in profile.lock.items() if "WALSync" in k or "WALWrite" in k) / samples
    waiters = profile.activity.get("active: waiting for the write lock (advisory)", 0) / samples
    driver = sum(
        n for k, n in profile.areas.items() if k.startswith(("SQLAlchemy", "psycopg"))
    ) / max(1, profile.samples)
    trips = profile.statements.get("DescribeCluster", {}).get("postgresql", {})
    describe_trips = _round_trips(trips)
    sqlite_statements = (
        profile.statements.get("DescribeCluster", {}).get("sqlite", {}).get("statements", 0)
    )
    return [
        "### What limits scaling here",
        "",
        f"- **{cores} cores, shared.** Every burst kept the machine's cores busy"
        f" ({min(x.machine_busy / x.window for x in calls.values()):.2f} to"
        f" {max(x.machine_busy / x.window for x in calls.values()):.2f} of {cores}), and other"
        f" work took {others:.2f} cores on average; the clients took"
        f" {b('pg1', 'mixed').per_call_ms(b('pg1', 'mixed').client_cpu):.2f} ms of CPU a mixed"
        f" call (SQLite's server: {sqlite_server:.2f}). The servers of a target never used"
        f" more than {busiest:.2f} cores together, and{gil} A replica more divides the same"
        f" cores: calls per second on 1 / 2 / 3 replicas were {rates('describe')}"
        f" (DescribeCluster) and {rates('mixed')} (mixed); {spread}"
        " What more replicas would give needs cores (or machines) for them,"
        " for PostgreSQL and for the clients, which 2 shared cores do not have.",
        f"- **A call on PostgreSQL costs more CPU.** DescribeCluster took"
        f" {cpu_ms(describe['pg1']):.2f} ms of server plus PostgreSQL CPU on 1 replica against"
        f" {cpu_ms(describe['sqlite']):.2f} ms on SQLite"
        f" ({cpu_ms(describe['pg1']) / cpu_ms(describe['sqlite']):.1f}x): it is"
        f" {describe_trips:.0f} round trips to the database where SQLite runs"
        f" {sqlite_statements:.0f} statements in the process, and {100 * driver:.0f}% of the"
        " profiled replica's Python time is"
        " SQLAlchemy and psycopg (the profile's areas below). The latest image release is read"
        " in one statement of its own on every call (Store.latest_release keeps it in memory"
        " only for a sole writer), so a read is two transactions to PostgreSQL.",
        f"- **One writer at a time.** Under the mixed load on 3 replicas the store's write lock"
        f" was held {100 * held:.0f}% of the time, with {waiters:.2f} backends on average"
        f" waiting for it; {100 * holder_waits:.0f}% of the time its holder was idle in its"
        " transaction, waiting for its replica's Python between two statements (that Python"
        " shares its replica's GIL with the replica's reads, and the cores with everything"
        f" else), and {100 * fsync:.0f}% waiting for the commit's WAL flush. 20% writes are"
        " enough to keep the lock busy; a replica more adds a waiter, not a writer. The"
        f" engine is all writes: the lock was held {_pct(pg1_engine.lock_held)} of the time"
        f" on 1 replica and {_pct(pg3_engine.lock_held)} on 3, which ran"
        f" {pg3_engine.steps / pg3_engine.wall:,.0f} node steps a second against"
        f" {pg1_engine.steps / pg1_engine.wall:,.0f}"
        f" ({(pg3_engine.steps / pg3_engine.wall) / (pg1_engine.steps / pg1_engine.wall):.2f}x),"
        " every replica taking its share of the steps. Each step's Python runs inside the"
        " lock, so engine throughput is at best one process's, wherever it runs; and"
        f" {'more' if per_cpu(pg3_engine) < per_cpu(pg1_engine) else 'no more'}"
        " CPU went into each step on 3 replicas"
        f" ({per_cpu(pg3_engine):,.0f} steps per server CPU second against"
        f" {per_cpu(pg1_engine):,.0f}; PostgreSQL"
        f" {pg3_engine.pg_cpu:.1f} CPU s against {pg1_engine.pg_cpu:.1f}).",
        "- **What would scale.** Reads, on more cores or machines: they take no lock and each"
        " replica has its own GIL. Writes and engine steps stay one transaction at a time for"
        " the whole store, as on SQLite; they get faster only by making each transaction"
        " shorter (fewer round trips, less Python while the lock is held).",
        "",
    ]


def _pct(share: float) -> str:
    return "" if share != share else f"{100 * share:.0f}%"


def check_postgresql() -> None:
    try:
        pg_admin("SELECT 1")
    except Exception as error:
        raise SystemExit(
            "bench/run.py --replicas needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust "
            f"auth, database test): {error}"
        ) from error


def run(quick: bool, output: Path, work: Path, command: str) -> None:
    sizes = QUICK if quick else FULL
    check_postgresql()
    began = time.perf_counter()
    load: dict[str, float] = {"load average at start": os.getloadavg()[0]}
    pool = ClientPool(sizes.clients, work)
    everything: list[Server] = []
    try:
        sqlite_servers = start_servers(1, work, "sqlite", None, "--speed", f"{sizes.speed:g}")
        everything += sqlite_servers
        sqlite = Target("sqlite", "SQLite, 1 server", sqlite_servers, None)
        with database() as (pg_name, pg_url):
            replicas = start_servers(3, work, "replica", pg_url, "--speed", f"{sizes.speed:g}")
            everything += replicas
            calls, targets = calls_part(sizes, pool, pg_name, replicas, sqlite)
            profile = profile_part(sizes, pool, targets[3], prepare_again(targets[3]), work)
            stop_all(everything)
            check_logs(everything)
        with database() as (_, url):
            profile.statements = statements_per_call(work, url)
    finally:
        pool.stop()
        stop_all(everything)
    engine = engine_part(sizes, work)
    wall = time.perf_counter() - began
    load["load average at end"] = os.getloadavg()[0]
    write_section(
        "replicas", report(sizes, command, calls, targets, engine, profile, wall, load), output
    )
    log(f"replicas section written to {output} after {wall:.0f}s")


def prepare_again(target: Target) -> Prepared:
    """The mixed cluster made in the calls part, found again."""
    sm = make_client(EAST, endpoint_url=target.servers[0].url)
    arn = sm.describe_cluster(ClusterName="mixed")["ClusterArn"]
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName="mixed")
    nodes = [n["InstanceId"] for page in pages for n in page["ClusterNodeSummaries"]]
    return Prepared("mixed", arn, sorted(nodes))


def check_logs(servers: Sequence[Server]) -> None:
    """A traceback or an error line in a server's log is worth a look: say so."""
    for server in servers:
        text = server.log_tail(200_000)
        if "Traceback" in text or "ERROR" in text:
            log(f"warning: {server.name}'s log has errors; its end:\n{server.log_tail(3000)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--client"]:
        sys.exit(client_main())
    raise SystemExit("run it as bench/run.py --replicas")
