"""The header deadline's timer (http_timeouts.HeaderDeadline), on a real event loop, over a
stand-in for uvicorn's protocol and transport: when it closes, when it waits, and that a
connection whose close cannot finish (a client that stopped reading) is dropped in the end.
tests/test_slow_clients.py checks the same deadline end to end against the real server."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from hyperpod_local.http_timeouts import HeaderDeadline

DEADLINE = 0.2


class _Transport:
    def __init__(self, *, close_finishes: bool) -> None:
        self.close_finishes = close_finishes
        self.closing = False
        self.aborted = False
        self.protocol: Any = None

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        if self.close_finishes:
            self.protocol.connection_lost(None)

    def abort(self) -> None:
        self.closing = self.aborted = True
        self.protocol.connection_lost(None)


class _UvicornLike:
    """What HeaderDeadline uses of uvicorn's protocol."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.cycle: Any = None
        self.lost = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.protocol = self

    def on_response_complete(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class _Protocol(HeaderDeadline, _UvicornLike):
    header_seconds = DEADLINE


async def _connect(*, close_finishes: bool = True) -> tuple[_Protocol, _Transport]:
    protocol = _Protocol()
    transport = _Transport(close_finishes=close_finishes)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def test_an_idle_connection_is_closed_after_the_deadline() -> None:
    async def scenario() -> tuple[bool, bool]:
        protocol, transport = await _connect()
        await asyncio.sleep(DEADLINE / 2)
        early = transport.closing
        await asyncio.sleep(DEADLINE)
        return early, protocol.lost

    assert asyncio.run(scenario()) == (False, True)


def test_each_answer_starts_the_deadline_again() -> None:
    async def scenario() -> list[bool]:
        protocol, transport = await _connect()
        seen = []
        for _ in range(4):
            await asyncio.sleep(DEADLINE * 0.5)
            protocol.on_response_complete()
            seen.append(transport.closing)
        await asyncio.sleep(DEADLINE * 1.6)
        seen.append(transport.closing)
        return seen

    assert asyncio.run(scenario()) == [False, False, False, False, True]


def test_a_request_in_flight_is_never_cut_off() -> None:
    async def scenario() -> bool:
        protocol, transport = await _connect()
        protocol.cycle = SimpleNamespace(response_complete=False)
        await asyncio.sleep(DEADLINE * 4)
        return transport.closing

    assert asyncio.run(scenario()) is False


def test_a_close_that_cannot_finish_is_aborted_one_deadline_later() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        protocol, transport = await _connect(close_finishes=False)
        await asyncio.sleep(DEADLINE * 1.5)
        closed_not_aborted = transport.closing and not transport.aborted
        await asyncio.sleep(DEADLINE * 1.5)
        return closed_not_aborted, transport.aborted, protocol.lost

    assert asyncio.run(scenario()) == (True, True, True)
