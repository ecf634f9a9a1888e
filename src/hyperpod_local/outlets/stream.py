"""The live event stream (the admin API's GET /_hyperpod/events/stream): each committed
envelope, from the moment a subscriber joins, handed to every subscriber's event loop.

One thread reads the outbox and hands out; a subscriber that falls more than its limit
behind is let go (its stream ends, and it can come back), so a stalled reader never holds
more than that in memory nor slows anyone else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from hyperpod_local.outlets.delivery import IDLE_POLL
from hyperpod_local.outlets.targets import Envelope
from hyperpod_local.store.database import Store

log = logging.getLogger(__name__)

# Envelopes a subscriber may have waiting before it is let go.
SUBSCRIBER_LIMIT = 1000
_READ_BATCH = 500


class Subscription:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        matches: Callable[[Envelope], bool],
        limit: int = SUBSCRIBER_LIMIT,
    ) -> None:
        self.matches = matches
        self.overflowed = False
        self._loop = loop
        self._queue: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self._limit = limit
        self._waiting = 0
        self._lock = threading.Lock()
        self._closed = False

    def offer(self, envelope: Envelope) -> None:
        """From the stream's thread."""
        with self._lock:
            if self._closed:
                return
            if self._waiting >= self._limit:
                self.overflowed = True
                self._close_locked()
                return
            self._waiting += 1
        self._call(self._queue.put_nowait, envelope)

    async def next(self) -> Envelope | None:
        """The next envelope; None once the stream is over."""
        envelope = await self._queue.get()
        if envelope is not None:
            with self._lock:
                self._waiting -= 1
        return envelope

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if not self._closed:
            self._closed = True
            self._call(self._queue.put_nowait, None)

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        # The subscriber's loop may be gone already (the server stopping): nothing to tell.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)


class EventStream:
    def __init__(self, store: Store, position: int, advanced: Callable[[int], None]) -> None:
        """`position`: envelopes after this outbox entry are handed out; `advanced(seq)` is
        told how far the stream has read (the outbox may be trimmed up to there)."""
        self.position = position
        self._store = store
        self._advanced = advanced
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event stream", daemon=True)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, loop: asyncio.AbstractEventLoop, matches: Callable[[Envelope], bool]
    ) -> Subscription:
        subscription = Subscription(loop, matches)
        with self._lock:
            if self._stop.is_set():
                subscription.close()
            else:
                self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        with self._lock:
            self._subscribers.discard(subscription)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def end_streams(self) -> None:
        """End every subscriber's stream now (the server is stopping: its clients should not
        hold up the shutdown)."""
        with self._lock:
            self._stop.set()
            subscribers, self._subscribers = self._subscribers, set()
        for subscription in subscribers:
            subscription.close()
        self._wake.set()

    def finish(self, timeout: float) -> None:
        self.end_streams()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(IDLE_POLL)
            self._wake.clear()
            try:
                self._hand_out()
            except Exception:
                log.exception("the event stream failed to read the outbox")
                self._stop.wait(1.0)

    def _hand_out(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                subscribers = list(self._subscribers)
            if not subscribers:
                # Nobody to hand anything to: only the place moves on (for the outbox's trim).
                with self._store.read() as tx:
                    last = tx.outbox.last_seq()
                if last > self.position:
                    self.position = last
                    self._advanced(last)
                return
            with self._store.read() as tx:
                entries = tx.outbox.after(self.position, _READ_BATCH)
            if not entries:
                return
            for entry in entries:
                for subscription in subscribers:
                    if subscription.matches(entry.envelope):
                        subscription.offer(entry.envelope)
            for subscription in subscribers:
                if subscription.overflowed:
                    log.warning(
                        "an event stream client fell %d events behind; its stream ended",
                        SUBSCRIBER_LIMIT,
                    )
                    self.unsubscribe(subscription)
            self.position = entries[-1].seq
            self._advanced(self.position)
