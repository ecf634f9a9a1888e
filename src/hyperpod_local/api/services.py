"""What a handler needs from the backend, and nothing more."""

from __future__ import annotations

from typing import Protocol

from hyperpod_local.api.pagination import TokenCodec
from hyperpod_local.api.request_faults import RequestFaults
from hyperpod_local.domain.cluster_rules import Limits
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.engine.clock import Clock
from hyperpod_local.engine.durations import Durations
from hyperpod_local.engine.runner import Engine
from hyperpod_local.store.database import Store


class Services(Protocol):
    store: Store
    clock: Clock
    ids: IdSource
    limits: Limits
    tokens: TokenCodec
    durations: Durations
    engine: Engine
    request_faults: RequestFaults
