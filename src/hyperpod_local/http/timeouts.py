"""A deadline for a request's headers, which uvicorn does not have.

uvicorn times out an idle keep-alive connection, but any byte from the client cancels that
timer, and nothing times out a connection that has sent nothing yet. A client that connects
and stalls, before or halfway through its headers, would hold a file descriptor for ever; enough
of them lock every other client out. The stalled body is the app's to time out (server.py)."""

from __future__ import annotations

import asyncio
from typing import Any


class HeaderDeadline:
    """A mixin for uvicorn's HTTP protocol: a connection with no request in flight is closed
    `header_seconds` after it opened or after its last response ended."""

    header_seconds: float = 30.0
    loop: asyncio.AbstractEventLoop
    transport: Any
    cycle: Any
    _header_deadline: asyncio.TimerHandle | None = None
    # When the connection last became idle (opened, or an answer ended): loop time.
    _idle_since = 0.0
    _closing_seen = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._idle_since = self.loop.time()
        self._arm(self.header_seconds)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        # Only the time is noted here, on every answer; the one timer per connection looks
        # at it when it fires, and sets itself again for what is left.
        self._idle_since = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self, delay: float) -> None:
        self._header_deadline = self.loop.call_later(delay, self._header_deadline_passed)

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            # Closed, but its last answer still unsent to a client that stopped reading:
            # one more deadline, then it is dropped rather than held for ever.
            if self._closing_seen:
                self.transport.abort()
            else:
                self._closing_seen = True
                self._arm(self.header_seconds)
            return
        cycle = self.cycle
        in_flight = (cycle is not None and not cycle.response_complete) or bool(
            getattr(self, "pipeline", None)
        )
        if in_flight:
            # A request whose headers arrived is the app's now, with its own body deadline.
            self._arm(self.header_seconds)
            return
        idle_for = self.loop.time() - self._idle_since
        if idle_for >= self.header_seconds:
            self.transport.close()
            self._closing_seen = True
            self._arm(self.header_seconds)
        else:
            self._arm(self.header_seconds - idle_for)
