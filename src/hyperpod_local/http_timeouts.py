"""A deadline for a request's headers, which uvicorn does not have.

uvicorn times out an idle keep-alive connection, but any byte from the client cancels that
timer, and nothing times out a connection that has sent nothing yet. A client that connects
and stalls, before or halfway through its headers, would hold a file descriptor for ever; enough
of them lock every other client out. The stalled body is the app's to time out (server.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    _BASE: type[Any] = HttpToolsProtocol
except ImportError:  # httptools is optional: uvicorn falls back to h11, and so do we
    _BASE = H11Protocol


def header_deadline_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, closing a connection that has no request in flight `seconds`
    after it opened or after its last response ended."""

    class HeaderDeadlineProtocol(_BASE):  # type: ignore[misc, valid-type]
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            self._disarm_header_deadline()
            self._header_deadline = self.loop.call_later(seconds, self._header_deadline_passed)

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _header_deadline_passed(self) -> None:
            self._header_deadline = None
            cycle = self.cycle
            in_flight = (cycle is not None and not cycle.response_complete) or bool(
                getattr(self, "pipeline", None)
            )
            # A request whose headers arrived is the app's now, with its own body deadline.
            if not in_flight and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
