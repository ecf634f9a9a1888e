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

# Bounds on what is held, keys and answers alike, whatever clients send: enough for every
# page a poller cycles through. A read request is a few hundred bytes; an answer up to a
# full page of nodes is about 60 KB.
MAX_ENTRIES = 2048
MAX_REQUEST_BYTES = 4 * 1024
MAX_BODY_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024


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
        max_total_bytes: int = MAX_TOTAL_BYTES,
    ) -> None:
        """`generation` is the store's write counter; while `suspended()` is true (request
        faults in force, which must see every call) nothing is looked up or kept."""
        self._generation = generation
        self._suspended = suspended
        self._max_entries = max_entries
        self._max_total_bytes = max_total_bytes
        self._lock = threading.Lock()
        self._held_generation = -1
        self._bodies: dict[CacheKey, bytes] = {}
        self._total_bytes = 0
        self._hits = 0
        self._misses = 0

    @staticmethod
    def admits(request_body: bytes) -> bool:
        """Whether a request is small enough to be a key."""
        return len(request_body) <= MAX_REQUEST_BYTES

    def lookup(self, key: CacheKey) -> bytes | None:
        if self._suspended():
            return None
        current = self._generation()
        with self._lock:
            self._move_to(current)
            body = self._bodies.get(key)
            if body is None:
                self._misses += 1
            else:
                self._hits += 1
            return body

    def _move_to(self, generation: int) -> None:
        """What was kept at another generation may be stale: all of it goes."""
        if generation != self._held_generation:
            self._bodies.clear()
            self._total_bytes = 0
            self._held_generation = generation

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {
                "Enabled": True,
                "Hits": self._hits,
                "Misses": self._misses,
                "Entries": len(self._bodies),
                "Bytes": self._total_bytes,
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
            if generation != self._generation():
                return
            self._move_to(generation)
            if key in self._bodies:
                return
            size = _size(key, body)
            # Dicts keep insertion order: the oldest answers go first.
            while self._bodies and (
                len(self._bodies) >= self._max_entries
                or self._total_bytes + size > self._max_total_bytes
            ):
                oldest = next(iter(self._bodies))
                self._total_bytes -= _size(oldest, self._bodies.pop(oldest))
            self._bodies[key] = body
            self._total_bytes += size


def _size(key: CacheKey, body: bytes) -> int:
    return len(key.body) + len(body)
