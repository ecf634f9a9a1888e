"""What an event target is: something that takes a batch of envelopes and says, for each,
whether it was delivered, is worth another try, or was refused for good."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

Envelope = dict[str, Any]


class Outcome(Enum):
    DELIVERED = "delivered"
    # Worth trying again later: the target is down, slow, busy or failing inside.
    RETRY = "retry"
    # Refused for good (the target said the event is wrong, or it is not allowed): trying
    # again would only be refused again.
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    reason: str = ""


DELIVERED = Result(Outcome.DELIVERED)


class Target(Protocol):
    # The --events-to spelling, which is also the target's key for its place in the outbox.
    spec: str
    # How many envelopes one send takes at most.
    batch_size: int

    def send(self, envelopes: list[Envelope]) -> list[Result]:
        """Deliver the envelopes; one result each, in their order. Never raises."""
        ...
