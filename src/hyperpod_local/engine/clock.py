"""Where HyperPod time comes from.

Two clocks, both injected, so a test can hold time still:
- ScaledClock: real time sped up by a factor (60 by default: one wall-clock second is one
  HyperPod minute), so a 20-minute replacement takes 20 seconds.
- ManualClock: time that moves only when told (`advance`), for deterministic tests.

HyperPod time starts at the wall-clock time of the first start of a data dir and, across
restarts, goes on from where it stopped: the time a server was down does not pass.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    mode: str

    def now(self) -> float:
        """HyperPod time, in epoch seconds to the millisecond."""
        ...

    def wall_seconds(self, hyperpod_seconds: float) -> float:
        """How long, in real seconds, a span of HyperPod time lasts (inf if it never passes
        on its own)."""
        ...


class ScaledClock:
    mode = "real"

    def __init__(self, speed: float = 60.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        # Elapsed time from the monotonic clock: a step of the system clock (NTP) must not
        # move HyperPod time backwards.
        self._monotonic_start = time.monotonic()
        self._start = time.time() if start is None else start

    def now(self) -> float:
        return round(self._start + (time.monotonic() - self._monotonic_start) * self.speed, 3)

    def wall_seconds(self, hyperpod_seconds: float) -> float:
        return max(0.0, hyperpod_seconds / self.speed)


class ManualClock:
    mode = "manual"

    def __init__(self, start: float | None = None) -> None:
        self._now = round(time.time() if start is None else start, 3)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def wall_seconds(self, hyperpod_seconds: float) -> float:
        return float("inf")

    def set(self, value: float) -> None:
        """Move to `value`; time never goes back."""
        with self._lock:
            self._now = max(self._now, round(value, 3))
