"""Answers to read-only requests, kept while nothing has been written since.

Clients poll: a remediation agent or a dashboard asks DescribeCluster and ListClusterNodes
again and again while nothing changes. Such an answer is a pure function of the caller's
account and region, the operation, the request body and the store's contents, so the same
bytes can be sent again for as long as the store's generation (bumped after every write) is
the one the answer was computed at. Any write empties the whole cache: there is no
per-resource invalidation to get wrong.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

# Bounds on what is held: enough for every page a poller cycles through, and no answer
# bigger than a full page of nodes (about 60 KB for 100 summaries).
MAX_ENTRIES = 2048
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class CacheKey:
    account_id: str
    region: str
    operation: str
    body: bytes


class ResponseCache:
    def __init__(
        self,
        generation: Callable[[], int],
        suspended: Callable[[], bool] = lambda: False,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        """`generation` is the store's write counter; while `suspended()` is true (request
        faults in force, which must see every call) nothing is looked up or kept."""
        self._generation = generation
        self._suspended = suspended
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._held_generation = -1
        self._bodies: dict[CacheKey, bytes] = {}
        self.hits = 0
        self.misses = 0

    def lookup(self, key: CacheKey) -> bytes | None:
        if self._suspended():
            return None
        current = self._generation()
        with self._lock:
            if current != self._held_generation:
                self._bodies.clear()
                self._held_generation = current
            body = self._bodies.get(key)
            if body is None:
                self.misses += 1
            else:
                self.hits += 1
            return body

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {
                "Enabled": True,
                "Hits": self.hits,
                "Misses": self.misses,
                "Entries": len(self._bodies),
            }

    def generation(self) -> int:
        """Take this before reading the store; hand it back to `keep`."""
        return self._generation()

    def keep(self, key: CacheKey, generation: int, body: bytes) -> None:
        """Keep an answer computed by a read that began at `generation`. If anything was
        written since, the answer may already be stale and is dropped."""
        if len(body) > MAX_BODY_BYTES or self._suspended():
            return
        with self._lock:
            if generation != self._generation() or generation != self._held_generation:
                return
            if len(self._bodies) >= self._max_entries:
                # Dicts keep insertion order: the oldest answer goes first.
                del self._bodies[next(iter(self._bodies))]
            self._bodies[key] = body
