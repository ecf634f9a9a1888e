"""Gauges read from the store when Prometheus scrapes: a few grouped queries per scrape, in
one read transaction (a consistent snapshot, which never waits for a writer)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hyperpod_local.domain.faults import FaultKind
from hyperpod_local.engine.clock import Clock
from hyperpod_local.store import counts
from hyperpod_local.store.database import Store

PREFIX = "hyperpod_local_"


class StoreGauges(Collector):
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # The names, without reading the store (the registry asks when registering).
        return iter(_families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes, faults, due, scheduled = _families()
        with self.store.read() as tx:
            node_counts = counts.nodes_by_status(tx)
            fault_counts = counts.faults_by_kind(tx)
            steps_due, steps_scheduled = counts.tasks_due(tx, self.clock.now())
        for row in node_counts:
            nodes.add_metric(
                [row.account_id, row.region, row.cluster, row.group, row.status], row.count
            )
        # Every kind, 0 when none is active: an alert on a kind has its series from the start.
        for kind in FaultKind:
            faults.add_metric([kind.value], fault_counts.get(kind.value, 0))
        due.add_metric([], steps_due)
        scheduled.add_metric([], steps_scheduled)
        return iter((nodes, faults, due, scheduled))


def _families() -> tuple[GaugeMetricFamily, ...]:
    return (
        GaugeMetricFamily(
            PREFIX + "nodes",
            "Nodes by account, region, cluster (name), instance group and status; a status "
            "with no node has no series.",
            labels=["account", "region", "cluster", "group", "status"],
        ),
        GaugeMetricFamily(
            PREFIX + "faults_active",
            "Injected faults in force, by kind.",
            labels=["kind"],
        ),
        GaugeMetricFamily(
            PREFIX + "engine_steps_due",
            "Engine steps due by now and not yet run: the engine's backlog.",
        ),
        GaugeMetricFamily(
            PREFIX + "engine_steps_scheduled",
            "Engine steps scheduled, due or not: the work of every operation in flight.",
        ),
    )
