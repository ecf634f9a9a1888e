"""Where HyperPod time comes from. Injected, so a test can hold time still."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """HyperPod time, in epoch seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        # AWS reports times to the millisecond.
        return round(time.time(), 3)


class FixedClock:
    """A clock that moves only when told: for deterministic tests."""

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
