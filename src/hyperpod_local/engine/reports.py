"""What the engine tells an observer (the server's metrics) about the steps it ran.

A step's report is handed over only after the transaction it ran in has committed: a step
rolled back and retried is counted once per run, and what it counted in the rolled-back run
(a recovery it started, say) is not counted at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

# What a step may tally (Tally.add's family), and the label each family's counts are by.
RECOVERIES_STARTED = "recoveries_started"  # by action: reboot, replace
RECOVERIES_HELD_BACK = "recoveries_held_back"  # by reason: breaker, in_flight


@dataclass(slots=True)
class Tally:
    """Things a step did that are counted, by (family, label): kept apart from the metrics
    until the step's work is committed."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, family: str, label: str, amount: int = 1) -> None:
        self.counts[(family, label)] += amount

    def clear(self) -> None:
        self.counts.clear()


@dataclass(frozen=True, slots=True)
class StepReport:
    kind: str
    # "ok"; "failed": rolled back, to be tried again; "abandoned": failed for the last time.
    outcome: str
    # Wall-clock seconds after its due time that the step ran (0 under a manual clock, which
    # moves to each due time before running its steps).
    late_seconds: float
    counts: Counter[tuple[str, str]]


class EngineObserver(Protocol):
    def steps_committed(self, reports: Sequence[StepReport]) -> None:
        """The steps of one committed unit of work. Called on the engine's thread (or the
        thread of an advance): it must be quick and must not raise."""
        ...
