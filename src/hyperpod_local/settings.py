"""Server settings: every one has a flag and a HYPERPOD_LOCAL_* environment variable."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4577
DEFAULT_DATA_DIR = Path(".hyperpod-local")
DEFAULT_SPEED = 60.0
DEFAULT_CLIENT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    max_instances_per_cluster: int = 100_000
    seed: int | None = None
    # "real": HyperPod time runs `speed` times faster than the wall clock; "manual": it moves
    # only when told.
    clock: str = "real"
    speed: float = DEFAULT_SPEED
    # Overrides of engine.durations.Durations, in HyperPod seconds.
    durations: dict[str, Any] = field(default_factory=dict)
    # Automatic node recovery's safety limits, per instance group.
    recovery_max_in_flight: int = 2
    recovery_unhealthy_threshold: float = 0.2
    # Events kept per cluster (the oldest go first); events and operations also age out
    # after 14 HyperPod days.
    events_per_cluster: int = 10_000
    # Where instances come from (providers.PROVIDERS): "sim" keeps them in the store.
    provider: str = "sim"
    # The provider's own settings (the process provider's: max_nodes, max_processes_per_node,
    # script_timeout, heartbeat_interval, confinement, file_map).
    provider_options: dict[str, Any] = field(default_factory=dict)
    # "open": any well-formed signature; "strict": SigV4 checked against `credentials_file`.
    auth: str = "open"
    credentials_file: Path | None = None
    # Requests with a larger body are answered 413; larger headers 431.
    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 32 * 1024
    # A client that takes longer than this to send its body is answered 408; a connection
    # whose next request's headers take longer (from its opening or its last answer) is closed.
    client_timeout_seconds: float = DEFAULT_CLIENT_TIMEOUT
    # Send a read-only answer again while the store is unchanged (wire/response_cache.py).
    response_cache: bool = True
    # Cluster events beyond the API (outlets/): the server keeps an outbox, delivers it to
    # `events_to` (http(s)://... webhooks, eventbridge:BUS) and streams it to the admin API;
    # the in-process mock does none of it. At most `events_queue_limit` events wait for a
    # target (the oldest are dropped past it); one is given up after `events_max_age` seconds.
    deliver_events: bool = False
    events_to: tuple[str, ...] = ()
    events_queue_limit: int = 10_000
    events_max_age: float = 86400.0
