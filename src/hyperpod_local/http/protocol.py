"""The HTTP protocol the server runs: uvicorn's (httptools, or h11 if that is absent), with a
deadline for request headers (timeouts.py) and one write per answer (writes.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from hyperpod_local.http.timeouts import HeaderDeadline
from hyperpod_local.http.writes import CoalescedWrites

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    _BASE: type[Any] = HttpToolsProtocol
except ImportError:  # httptools is optional: uvicorn falls back to h11, and so do we
    _BASE = H11Protocol


def server_protocol(client_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with our two additions; `client_timeout` is the header deadline."""
    return type(
        "ServerProtocol",
        (HeaderDeadline, CoalescedWrites, _BASE),
        {"header_seconds": client_timeout},
    )
