"""The Prometheus metrics of one backend, in a registry of its own.

Not prometheus_client's global registry: a process may hold several backends (mocks, tests),
and each one's numbers are its own. What happens (requests answered, engine steps run,
recoveries started) is counted as it happens, by the protocol's and the engine's observers;
what is (nodes, faults, the engine's backlog) is read from the store when scraped
(store_gauges.py), so a request never pays a store query for the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from hyperpod_local.engine.clock import Clock
from hyperpod_local.engine.reports import RECOVERIES_HELD_BACK, RECOVERIES_STARTED, StepReport
from hyperpod_local.store.database import Store
from hyperpod_local.telemetry.store_gauges import StoreGauges
from hyperpod_local.wire.protocol import Answered

PREFIX = "hyperpod_local_"
# The outcome of a request that succeeded; any other outcome is the AWS error code.
OK = "ok"
# Seconds. A cached answer takes well under a millisecond; a latency fault up to 30 s.
REQUEST_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip
# Wall-clock seconds a step ran after its due time: milliseconds when the engine keeps up.
LATENESS_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip


class Metrics:
    def __init__(self, store: Store, clock: Clock, version: str) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            PREFIX + "requests",
            "API requests answered, by operation ('-' if none could be read), HTTP status and "
            "outcome ('ok' or the AWS error code).",
            ["operation", "status", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            PREFIX + "request_duration_seconds",
            "Seconds from a request being read to its answer being ready, by operation.",
            ["operation"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.steps = Counter(
            PREFIX + "engine_steps",
            "Engine steps run, by kind of operation and outcome: ok, failed (rolled back, tried "
            "again a minute of HyperPod time later), abandoned (failed for the fifth time).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.step_lateness = Histogram(
            PREFIX + "engine_step_lateness_seconds",
            "Wall-clock seconds after its due time that each step ran (times --speed for "
            "HyperPod seconds; 0 under a manual clock).",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.recoveries_started = Counter(
            PREFIX + "recoveries_started",
            "Automatic node recoveries started, by action (reboot, replace).",
            ["action"],
            registry=registry,
        )
        self.recoveries_held_back = Counter(
            PREFIX + "recoveries_held_back",
            "Automatic node recoveries held back when the health agent found the node failed, "
            "by reason: breaker (too much of the group unhealthy) or in_flight (enough "
            "recoveries already under way). Each failed node counts once.",
            ["reason"],
            registry=registry,
        )
        # Known label values show 0 before the first one happens, so a rate() or an alert
        # has a series to look at from the start.
        for action in ("reboot", "replace"):
            self.recoveries_started.labels(action)
        for reason in ("breaker", "in_flight"):
            self.recoveries_held_back.labels(reason)
        # The engine's tallies (engine/reports.py), by family, to the counters that show them.
        self.tallied: dict[str, Counter] = {
            RECOVERIES_STARTED: self.recoveries_started,
            RECOVERIES_HELD_BACK: self.recoveries_held_back,
        }
        Info(PREFIX + "build", "The hyperpod-local release.", registry=registry).info(
            {"version": version}
        )
        registry.register(StoreGauges(store, clock))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        # (operation, status, error) -> its counter and histogram: labels() validates and
        # converts its values on every call, which a request need not pay for.
        self._per_answer: dict[tuple[str, int, str | None], tuple[Counter, Histogram]] = {}

    def request(self, answered: Answered) -> None:
        key = (answered.operation, answered.status, answered.error)
        children = self._per_answer.get(key)
        if children is None:
            children = self._per_answer[key] = (
                self.requests.labels(
                    answered.operation, str(answered.status), answered.error or OK
                ),
                self.request_seconds.labels(answered.operation),
            )
        counter, histogram = children
        counter.inc()
        histogram.observe(answered.seconds)

    def steps_committed(self, reports: Sequence[StepReport]) -> None:
        for report in reports:
            self.steps.labels(report.kind, report.outcome).inc()
            self.step_lateness.observe(report.late_seconds)
            for (family, label), amount in report.counts.items():
                self.tallied[family].labels(label).inc(amount)

    def add_counter(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Mapping[tuple[str, ...], float]],
    ) -> None:
        """A counter family whose counts another part of the server keeps itself (event
        delivery, say): `read()` is called at each scrape, on a worker thread, and gives the
        count for each tuple of label values. Shown as hyperpod_local_<name>_total."""
        self.registry.register(_ReadCounter(PREFIX + name, documentation, labels, read))

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The scrape's body and content type: the Prometheus text format, or OpenMetrics
        when the scraper's Accept header asks for it. Reads the store: not on the loop."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class _ReadCounter(Collector):
    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Mapping[tuple[str, ...], float]],
    ) -> None:
        self.name, self.documentation, self.labels, self.read = name, documentation, labels, read

    def describe(self) -> Iterator[CounterMetricFamily]:
        return iter([CounterMetricFamily(self.name, self.documentation, labels=self.labels)])

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, count in sorted(self.read().items()):
            family.add_metric(list(values), count)
        return iter([family])
