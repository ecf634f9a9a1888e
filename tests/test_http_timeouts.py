"""A connection the header deadline closed, whose last answer a client never reads, is dropped
one deadline later (http.timeouts.HeaderDeadline).

tests/test_slow_clients.py checks the deadline end to end against the real server. This one
case cannot be made there: an answer is at most a page (about 60 KB), which the kernel's socket
buffers always take, so a real close always completes. It runs the mixin on a real event loop
over a stand-in for uvicorn's protocol and for a transport whose close never finishes."""

from __future__ import annotations

import asyncio
from typing import Any

from hyperpod_local.http.timeouts import HeaderDeadline

DEADLINE = 0.2


class _Transport:
    """A transport whose close never finishes: its buffer never drains."""

    def __init__(self) -> None:
        self.closing = False
        self.aborted = False
        self.protocol: Any = None

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True
        self.protocol.connection_lost(None)


class _UvicornLike:
    """What HeaderDeadline uses of uvicorn's protocol, with no request in flight."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.cycle: Any = None
        self.lost = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.protocol = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class _Protocol(HeaderDeadline, _UvicornLike):
    header_seconds = DEADLINE


def test_a_close_that_cannot_finish_is_aborted_one_deadline_later() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        protocol, transport = _Protocol(), _Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        await asyncio.sleep(DEADLINE * 1.5)
        closed_not_aborted = transport.closing and not transport.aborted
        await asyncio.sleep(DEADLINE * 1.5)
        return closed_not_aborted, transport.aborted, protocol.lost

    assert asyncio.run(scenario()) == (True, True, True)
