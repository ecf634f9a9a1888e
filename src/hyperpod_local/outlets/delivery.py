"""One target's deliveries, on a thread of its own: the outbox entries after the target's
place, in order, each retried with backoff until it is delivered, refused, too old or tried
too often (EventBridge's own retry policy: 185 attempts, 24 hours), and the oldest dropped
when more than the queue limit wait. Nothing here runs on a request's or the engine's thread:
a slow or dead target holds up only itself."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hyperpod_local.outlets.targets import Outcome, Target
from hyperpod_local.store.database import Store
from hyperpod_local.store.outbox import OutboxEntry

log = logging.getLogger(__name__)

# EventBridge's defaults for a rule target (RetryPolicy).
MAX_ATTEMPTS = 185
MAX_AGE_SECONDS = 86400.0
# Backoff between attempts at the same events: doubling from the first, up to the cap.
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 30.0
# The target's place is saved at most this often while it delivers (and whenever it is idle):
# a crash sends again at most this much of what was delivered.
SAVE_EVERY = 1.0
# A wake-up is sent after every commit that adds to the outbox; this only bounds a missed one.
IDLE_POLL = 2.0
# Entries read from the outbox at a time; the queue limit is checked at most every
# TRIM_EVERY seconds while there are entries to send (and before each read when there are not).
READ_AHEAD = 100
TRIM_EVERY = 1.0
# A replica that does not deliver to a target (another holds its claim) looks this often
# whether it should take over.
CLAIM_POLL = 1.0
# Give-ups and drops are logged at once, then summed up at most this often.
REPORT_EVERY = 10.0


@dataclass(slots=True)
class _Attempt:
    entry: OutboxEntry
    tries: int = 0


@dataclass(slots=True)
class _Report:
    """Undelivered events, logged without flooding the log when a target is down for long:
    the first at once, then a sum at most every REPORT_EVERY seconds (and at the stop)."""

    target: str
    failed: int = 0
    last_failed: str = ""
    dropped: int = 0
    last_dropped: str = ""
    logged_at: float = field(default=-REPORT_EVERY)

    def gave_up(self, why: str, now: float) -> None:
        self.failed += 1
        self.last_failed = why
        self._maybe_flush(now)

    def dropped_up_to(self, count: int, why: str, now: float) -> None:
        self.dropped += count
        self.last_dropped = why
        self._maybe_flush(now)

    def _maybe_flush(self, now: float) -> None:
        if now - self.logged_at >= REPORT_EVERY:
            self.flush(now)

    def flush(self, now: float) -> None:
        if self.failed:
            log.warning(
                "events to %s: gave up on %d event(s); the last, %s",
                self.target,
                self.failed,
                self.last_failed,
            )
        if self.dropped:
            log.warning(
                "events to %s: dropped %d event(s), the oldest waiting, %s",
                self.target,
                self.dropped,
                self.last_dropped,
            )
        self.failed = self.dropped = 0
        self.logged_at = now


class Delivery:
    """The counts are plain attributes, read by any thread: `delivered`, `failed` (given up:
    refused, or out of attempts or time) and `dropped` (never tried: over the queue limit)."""

    def __init__(
        self,
        target: Target,
        store: Store,
        place: int,
        save: Callable[[Delivery, int], None],
        *,
        queue_limit: int,
        max_age: float = MAX_AGE_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.target = target
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        # Every entry up to `place` is done with; `saved` is the place the store holds.
        self.place = place
        self.saved = place
        self._store = store
        # Of the servers on one store, one at a time delivers to a target (store.claim): the
        # others take over, from its saved place, when it stops or dies.
        self._claim = store.claim(f"events to {target.spec}")
        self._holding = False
        self._save = save
        self._queue_limit = queue_limit
        self._max_age = max_age
        self._max_attempts = max_attempts
        self._saved_at = 0.0
        self._trimmed_at = 0.0
        # The newest entry read from the outbox so far.
        self._read_upto = place
        self._report = _Report(target.spec)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"events to {target.spec}", daemon=True
        )

    def counts(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "dropped": self.dropped}

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Ask the thread to stop; finish() waits for it."""
        self._stop.set()
        self._wake.set()

    def finish(self, timeout: float) -> None:
        """Wait for the thread, then save the place; a send still under way after `timeout`
        is left to end with the process, and what it carried is sent again next time (at
        least once)."""
        self.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._holding:
            self._save_place(force=True)
        self._claim.release()
        self._report.flush(time.monotonic())

    # The thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        # The entries read and not yet settled, oldest first: the head is sent, a batch at a
        # time; the rest are read ahead, so one read serves many sends.
        ahead: list[_Attempt] = []
        while not self._stop.is_set():
            try:
                if not self._claim.held():
                    self._holding = False
                    ahead.clear()
                    self._stop.wait(CLAIM_POLL)
                    continue
                if not self._holding:
                    self._take_over(ahead)
                self._round(ahead)
            except Exception:
                # The store busy past its timeout, say: nothing is lost, the round comes again.
                log.exception("events to %s: delivery round failed", self.target.spec)
                self._stop.wait(1.0)

    def _take_over(self, ahead: list[_Attempt]) -> None:
        """Go on from the place saved in the store: another server may have delivered since
        this one read it."""
        with self._store.read() as tx:
            saved = tx.outbox.places().get(self.target.spec)
        if saved is not None:
            self.place = self.saved = self._read_upto = max(saved, 0)
        ahead.clear()
        self._holding = True

    def _round(self, ahead: list[_Attempt]) -> None:
        now = time.monotonic()
        if not ahead or now - self._trimmed_at >= TRIM_EVERY:
            self._trim(ahead)
            self._trimmed_at = now
        if len(ahead) < self.target.batch_size:
            with self._store.read() as tx:
                fresh = tx.outbox.after(self._read_upto, READ_AHEAD)
            if fresh:
                ahead.extend(_Attempt(entry) for entry in fresh)
                self._read_upto = fresh[-1].seq
        if not ahead:
            self._save_place(force=True)
            self._wake.wait(IDLE_POLL)
            self._wake.clear()
            return
        batch = ahead[: self.target.batch_size]
        results = self.target.send([attempt.entry.envelope for attempt in batch])
        now = time.monotonic()
        # An event's age runs from its commit (a wall-clock stamp in the outbox), restarts
        # and all, as EventBridge's MaximumEventAgeInSeconds does.
        wall = time.time()
        waiting: list[_Attempt] = []
        for attempt, result in zip(batch, results, strict=True):
            attempt.tries += 1
            if result.outcome is Outcome.DELIVERED:
                self.delivered += 1
            elif (
                result.outcome is Outcome.REJECTED
                or attempt.tries >= self._max_attempts
                or wall - attempt.entry.enqueued_at >= self._max_age
            ):
                self.failed += 1
                self._report.gave_up(
                    f"EventId {attempt.entry.event_id}, after {attempt.tries} attempt(s): "
                    f"{result.reason}",
                    now,
                )
            else:
                waiting.append(attempt)
        ahead[: len(batch)] = waiting
        self.place = max(self.place, ahead[0].entry.seq - 1 if ahead else self._read_upto)
        self._save_place(force=False)
        if waiting:
            tries = min(attempt.tries for attempt in waiting)
            self._stop.wait(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (tries - 1)))

    def _trim(self, ahead: list[_Attempt]) -> None:
        """More than the queue limit waiting: the oldest go, counted as dropped."""
        with self._store.read() as tx:
            over = tx.outbox.overflow(self.place, self._queue_limit)
        if over is None:
            return
        floor, count = over
        self.place = floor
        self._read_upto = max(self._read_upto, floor)
        self.dropped += count
        ahead[:] = [attempt for attempt in ahead if attempt.entry.seq > floor]
        self._report.dropped_up_to(
            count,
            f"to keep at most {self._queue_limit} waiting (up to outbox entry {floor})",
            time.monotonic(),
        )

    def _save_place(self, *, force: bool) -> None:
        if self._stop.is_set() and threading.current_thread() is self._thread:
            return  # stop() saves the place, once the thread is done or given up on
        now = time.monotonic()
        if self.place == self.saved or (not force and now - self._saved_at < SAVE_EVERY):
            return
        place = self.place
        self._save(self, place)
        self.saved, self._saved_at = place, now
