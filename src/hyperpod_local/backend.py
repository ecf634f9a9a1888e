"""The Backend: everything a request needs below the wire, built once and passed down.

Two backends in one process share nothing (the immutable SageMaker model aside).
"""

from __future__ import annotations

import contextlib
import logging
import time

from hyperpod_local.api.pagination import TokenCodec
from hyperpod_local.api.request_faults import RequestFaults
from hyperpod_local.domain.cluster_rules import Limits
from hyperpod_local.domain.faults import RecoveryPolicy
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.engine.clock import Clock, ManualClock, RealClock
from hyperpod_local.engine.durations import Durations
from hyperpod_local.engine.runner import Engine
from hyperpod_local.outlets import EventDispatcher
from hyperpod_local.providers import ProviderContext, build_provider
from hyperpod_local.settings import Settings
from hyperpod_local.store.database import Store
from hyperpod_local.telemetry import Metrics
from hyperpod_local.version import __version__

log = logging.getLogger(__name__)


class Backend:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.ids = IdSource(settings.seed)
        self.limits = Limits(max_instances_per_cluster=settings.max_instances_per_cluster)
        max_nodes = settings.provider_options.get("max_nodes")
        if (
            settings.provider == "process"
            and max_nodes is not None
            and int(max_nodes) < self.limits.max_instances_per_cluster
        ):
            # Every node is a process tree here: one cluster past the server's nodes is
            # refused at once.
            self.limits = Limits(int(max_nodes), "--max-nodes, the process nodes a server runs")
        self.durations = Durations().with_overrides(settings.durations)
        self.store = Store.open(settings.data_dir, settings.database_url)
        # A backend that fails half-built leaves nothing open: the data dir's lock least of all.
        with contextlib.ExitStack() as undo:
            undo.callback(self.store.close)
            try:
                self._build(settings, clock)
            except Exception as error:
                # Its first reads of the store are the first to touch some of its pages.
                unusable = self.store.unusable(error)
                if unusable is None:
                    raise
                raise unusable from error
            undo.pop_all()

    def _build(self, settings: Settings, clock: Clock | None) -> None:
        # Signs NextTokens; kept in the store so tokens outlive a restart.
        self.tokens = TokenCodec(self.store.setting("token_secret", self.ids.token_secret))
        # Read now, outside any request's transaction.
        self.store.latest_release()
        # HyperPod time goes on from where it was when the data dir was last used: the time
        # the engine last saved, or the latest time a request stamped on anything since.
        # A shared store's replicas share its time, its database's clock (engine/clock.py).
        offset = self.store.clock_offset()[0]
        start = self.store.saved_time()
        if start is None:
            start = round(time.time() + offset, 3)
            self.store.save_time(start)
        start = max(start, self.store.latest_time() or start)
        self.clock: Clock = clock or (
            ManualClock(start, self.store if self.store.shared else None)
            if settings.clock == "manual"
            else RealClock(settings.speed, start, offset)
        )
        if self.clock.mode == "real":
            # The clock is the wall clock: HyperPod's work is what speeds up.
            self.durations = self.durations.scaled(settings.speed)
        self.provider = build_provider(
            settings.provider,
            self.ids,
            ProviderContext(
                data_dir=settings.data_dir,
                store=self.store,
                now=self.clock.now,
                clock_mode=self.clock.mode,
                speed=self.durations.speed,
                options={
                    "detection_delay": self.durations.health_detection,
                    **settings.provider_options,
                },
            ),
        )
        self.request_faults = RequestFaults(self.store, self.ids.chance)
        self.policy = RecoveryPolicy(
            max_in_flight=settings.recovery_max_in_flight,
            unhealthy_threshold=settings.recovery_unhealthy_threshold,
        )
        # One registry per backend: its engine's steps and its API's answers (server.py).
        self.metrics = Metrics(self.store, self.clock, __version__)
        self.engine = Engine(
            self.store,
            self.clock,
            self.durations,
            self.provider,
            self.ids,
            self.policy,
            events_per_cluster=settings.events_per_cluster,
            observer=self.metrics,
        )
        # Before anything writes: what the server writes from here on is delivered.
        self.outlets: EventDispatcher | None = None
        if settings.deliver_events:
            self.outlets = EventDispatcher(
                self.store,
                list(settings.events_to),
                queue_limit=settings.events_queue_limit,
                max_age=settings.events_max_age,
            )
            outlets = self.outlets
            for outcome in ("delivered", "failed", "dropped"):
                self.metrics.add_counter(
                    f"events_{outcome}",
                    f"Cluster events {outcome} per --events-to target.",
                    ["target"],
                    lambda outcome=outcome: {
                        (target,): counts[outcome] for target, counts in outlets.counts().items()
                    },
                )

    @property
    def sole_writer(self) -> bool:
        return self.store.sole_writer

    def start(self) -> None:
        """Start moving time (a real clock runs the engine in the background), and delivering
        events."""
        if self.outlets is not None:
            self.outlets.start()
        self.provider.start()
        self.engine.start()

    def close(self) -> None:
        if self.outlets is not None:
            self.outlets.stop()
        if not self.engine.stop():
            # Its step may still write: the data dir stays locked until the process ends,
            # so no other server starts beside a live writer.
            log.warning("the engine did not stop within 10 s; keeping the data dir locked")
            return
        self.provider.close()
        self.store.close()
