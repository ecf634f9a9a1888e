"""Where HyperPod time comes from.

Two clocks, both injected, so a test can hold time still:
- RealClock: the wall clock. What HyperPod does is sped up instead (Durations.scaled: at
  speed 60, the default, a 20-minute replacement takes 20 seconds), so every timestamp an
  answer carries is a time that has happened, as AWS's are.
- ManualClock: time that moves only when told (`advance`), for deterministic tests; it starts
  at the wall clock of the data dir's first start and goes on from where it stopped.

Work that fell due while a server was down runs when it starts again. A data dir whose time
ran ahead of the wall clock (written by a release whose real clock sped time itself up) goes
on from its own latest time, never back, until the wall clock catches up.

Replicas of one shared store (PostgreSQL) share its time. A manual clock keeps its time in
the store (`SharedTime`): an advance sent to one replica moves every replica's clock. A real
clock reads this machine's clock corrected by the database server's offset from it (measured
at start), so every replica, on any machine, tells the database's time.

HyperPod time never passes MAX_TIME (the start of year 9000 UTC): every timestamp an answer
carries stays printable by every client (Python's datetime ends at 9999), with room for the
durations a step adds to it. A manual clock refuses to go past it; a real one stops there.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime
from typing import Protocol

MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
MAX_TIME_TEXT = "9000-01-01T00:00:00Z"
# The real clock's fastest: a HyperPod day in under a tenth of a wall-clock second.
MAX_SPEED = 1e6


class ClockLimit(Exception):
    """A move of the clock past MAX_TIME."""

    def __init__(self, now: float, target: float) -> None:
        super().__init__(
            f"HyperPod time may not pass {MAX_TIME_TEXT} (epoch {MAX_TIME:.0f}); it is "
            f"{now:.3f}, so it can move at most {max(0.0, MAX_TIME - now):.3f} s more "
            f"(asked for {target - now:.3f} s)."
        )
        self.now, self.target = now, target


def _start_time(start: float | None) -> float:
    """Where a clock starts: a saved time that is not a time (a clock saved as nan by an older
    release) starts afresh from the wall clock; one past the bound stays at the bound."""
    if start is None or not math.isfinite(start):
        return time.time()
    return min(start, MAX_TIME)


class Clock(Protocol):
    mode: str

    def now(self) -> float:
        """HyperPod time, in epoch seconds to the millisecond."""
        ...

    def wall_seconds(self, hyperpod_seconds: float) -> float:
        """How long, in real seconds, a span of HyperPod time lasts (inf if it never passes
        on its own)."""
        ...


class SharedTime(Protocol):
    """HyperPod time kept where every replica reads it (the store)."""

    def saved_time(self) -> float | None: ...

    def save_time(self, now: float) -> None:
        """Save `now`, unless a later time is saved already."""
        ...


class RealClock:
    mode = "real"

    def __init__(
        self, speed: float = 60.0, start: float | None = None, offset: float = 0.0
    ) -> None:
        if not (math.isfinite(speed) and 0 < speed <= MAX_SPEED):
            raise ValueError(f"speed must be a number in (0, {MAX_SPEED:g}]; got {speed!r}")
        # How much faster than HyperPod the durations run (shown by the admin API).
        self.speed = speed
        # Elapsed time from the monotonic clock: a step of the system clock (NTP) must not
        # move time backwards. It starts at the wall clock, or at the store's own latest
        # time if that is later.
        # `offset`: how far ahead of this machine's clock the shared store's clock is.
        self._monotonic_start = time.monotonic()
        self._start = max(time.time() + offset, _start_time(start))

    def now(self) -> float:
        elapsed = time.monotonic() - self._monotonic_start
        return round(min(self._start + elapsed, MAX_TIME), 3)

    def wall_seconds(self, hyperpod_seconds: float) -> float:
        return max(0.0, hyperpod_seconds)


class ManualClock:
    mode = "manual"

    def __init__(self, start: float | None = None, shared: SharedTime | None = None) -> None:
        self._now = round(_start_time(start), 3)
        self._lock = threading.Lock()
        # Where every replica's manual clock keeps its time, when the store is shared.
        self._shared = shared

    def now(self) -> float:
        if self._shared is not None:
            saved = self._shared.saved_time()
            if saved is not None and saved > self._now:
                with self._lock:
                    self._now = max(self._now, min(saved, MAX_TIME))
        return self._now

    def wall_seconds(self, hyperpod_seconds: float) -> float:
        return float("inf")

    def set(self, value: float) -> None:
        """Move to `value`; time never goes back, nor past MAX_TIME (ClockLimit)."""
        if not value <= MAX_TIME:  # nan too
            raise ClockLimit(self._now, value)
        with self._lock:
            self._now = max(self._now, round(value, 3))
            now = self._now
        if self._shared is not None:
            self._shared.save_time(now)
