"""The Backend: everything a request needs below the wire, built once and passed down.

Two backends in one process share nothing (the immutable SageMaker model aside).
"""

from __future__ import annotations

from hyperpod_local.api.pagination import TokenCodec
from hyperpod_local.domain.cluster_rules import Limits
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.engine.clock import Clock, SystemClock
from hyperpod_local.settings import Settings
from hyperpod_local.store.database import Store, sqlite_url


class Backend:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.ids = IdSource(settings.seed)
        self.limits = Limits(max_instances_per_cluster=settings.max_instances_per_cluster)
        url = settings.database_url
        if url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            url = sqlite_url(settings.data_dir)
        self.store = Store(url)
        # Signs NextTokens; kept in the store so tokens outlive a restart.
        self.tokens = TokenCodec(self.store.setting("token_secret", self.ids.token_secret))

    def close(self) -> None:
        self.store.close()
