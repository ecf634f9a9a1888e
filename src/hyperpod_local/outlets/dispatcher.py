"""The event dispatcher: the outbox, each `--events-to` target's deliveries, and the live
stream, put together for one server.

Guarantees (docs/architecture.md, "Events out"): an event goes out only if the unit of work
that wrote it committed; each target gets every event at least once, in order, from the
first start that named it on, across restarts and crashes (its place in the outbox is
saved), unless the event is given up (refused, or out of its 185 attempts or 24 hours) or
dropped (more than the queue limit waiting for the target); either is counted and logged.
The outbox is apart from the events the API shows, so a cluster's deletion, the events'
14-day retention and the per-cluster cap take nothing a target has yet to get.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from hyperpod_local.outlets.delivery import MAX_AGE_SECONDS, MAX_ATTEMPTS, Delivery
from hyperpod_local.outlets.stream import EventStream
from hyperpod_local.outlets.target_spec import parse_target
from hyperpod_local.outlets.targets import Target
from hyperpod_local.store.database import Store
from hyperpod_local.store.unit_of_work import Tx

log = logging.getLogger(__name__)

DEFAULT_QUEUE_LIMIT = 10_000
# With no target, the stream alone trims the outbox, at most this often.
TRIM_EVERY = 1.0
# In a store that several servers share, another server's live stream may not have read an
# entry yet: none younger than this is trimmed (a stream reads within a second of a write).
SHARED_TRIM_AGE = 60.0
# How long stop() waits for a target's send under way before leaving it to end with the
# process (what it carried is sent again next time).
STOP_WAIT = 2.0


class EventDispatcher:
    def __init__(
        self,
        store: Store,
        targets: list[str],
        *,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_age: float = MAX_AGE_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        """Reads each target's place and starts keeping the outbox at once (so what the
        server writes before it starts is delivered too); the threads start in start()."""
        self._store = store
        parsed: list[Target] = []
        for spec in dict.fromkeys(targets):  # the same target twice is one target
            parsed.append(parse_target(spec))
        with store.write() as tx:
            tx.answers_unchanged = True
            last = tx.outbox.last_seq()
            places = tx.outbox.places()
            tx.outbox.forget_places([target.spec for target in parsed])
            # A target new to this data dir starts with what comes next.
            start = {target.spec: places.get(target.spec, last) for target in parsed}
            for spec, place in start.items():
                tx.outbox.set_place(spec, place)
            self._trim(tx, min([last, *start.values()]))
        self.deliveries = [
            Delivery(
                target,
                store,
                start[target.spec],
                self._save_place,
                queue_limit=queue_limit,
                max_age=max_age,
                max_attempts=max_attempts,
            )
            for target in parsed
        ]
        self._stream_trimmed_at = 0.0
        self.stream = EventStream(store, last, self._stream_advanced)
        store.enable_outbox(self._written, time.time)

    # For the metrics (plain numbers, any thread) -----------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Per target (its --events-to spelling): delivered, failed, dropped."""
        return {delivery.target.spec: delivery.counts() for delivery in self.deliveries}

    def stats(self) -> dict[str, Any]:
        """What GET /_hyperpod/stats shows: the counts, and how many events wait."""
        with self._store.read() as tx:
            targets = []
            for delivery in self.deliveries:
                counts = delivery.counts()
                targets.append(
                    {
                        "Target": delivery.target.spec,
                        "Delivered": counts["delivered"],
                        "Failed": counts["failed"],
                        "Dropped": counts["dropped"],
                        "Waiting": tx.outbox.count_after(delivery.place),
                    }
                )
        return {"Targets": targets, "StreamSubscribers": self.stream.subscribers}

    # Running --------------------------------------------------------------------------------

    def start(self) -> None:
        for delivery in self.deliveries:
            delivery.start()
        self.stream.start()

    def stop(self) -> None:
        """Stop every thread, each target's place saved; waits at most STOP_WAIT in all."""
        deadline = time.monotonic() + STOP_WAIT
        self.stream.end_streams()
        for delivery in self.deliveries:
            delivery.stop()
        self.stream.finish(max(0.0, deadline - time.monotonic()))
        for delivery in self.deliveries:
            delivery.finish(max(0.0, deadline - time.monotonic()))

    def _written(self) -> None:
        # On the writer's thread (a request's, the engine's): only wake-ups, nothing slow.
        for delivery in self.deliveries:
            delivery.wake()
        self.stream.wake()

    # The outbox's trim ----------------------------------------------------------------------

    def _save_place(self, delivery: Delivery, place: int) -> None:
        with self._store.write() as tx:
            tx.answers_unchanged = True
            tx.outbox.set_place(delivery.target.spec, place)
            self._trim(tx, self._floor(delivery, place))

    def _stream_advanced(self, position: int) -> None:
        if self.deliveries:
            return  # the targets' saves trim the outbox, no further than the stream has read
        now = time.monotonic()
        if now - self._stream_trimmed_at < TRIM_EVERY:
            return  # a later hand-out trims this far too: the outbox is written less often
        self._stream_trimmed_at = now
        with self._store.write() as tx:
            tx.answers_unchanged = True
            self._trim(tx, position)

    def _trim(self, tx: Tx, floor: int) -> None:
        """Remove the outbox's entries up to `floor`, the newest this server's readers are
        done with. In a shared store, other servers deliver to their targets and stream to
        their subscribers too: every target's saved place counts, and an entry younger than
        SHARED_TRIM_AGE stays, which another server's stream may not have read yet."""
        if not self._store.shared:
            tx.outbox.trim(floor)
            return
        floor = min([floor, *tx.outbox.places().values()])
        tx.outbox.trim(floor, enqueued_before=time.time() - SHARED_TRIM_AGE)

    def _floor(self, saving: Delivery, place: int) -> int:
        """The newest entry every reader is done with: each target by its saved place (a crash
        must find every entry after it), the stream by what it has read."""
        saved = [place if d is saving else d.saved for d in self.deliveries]
        return min([*saved, self.stream.position])
