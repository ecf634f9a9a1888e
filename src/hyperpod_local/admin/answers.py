"""How the admin API answers: always JSON, errors as {"error": code, "message": text, ...},
a 4xx where the request is at fault, and a JSON 500 (details in the server log only) for a bug.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from hyperpod_local.engine.clock import ClockLimit
from hyperpod_local.engine.runner import NotManual, Unsettled

log = logging.getLogger(__name__)

ASGIApp = Any

# Standard reasons for the HTTP errors Starlette's router raises itself (404, 405).
_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed"}


class AdminJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        # ASCII escapes: a lone surrogate (in a row stored before fault specs were checked)
        # is still valid JSON, where Starlette's UTF-8 encoding would fail on it. NaN and
        # Infinity are not JSON: refused here, so a bug is a JSON 500, never a bad body.
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode()


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error(status: int, code: str, message: str, **extra: Any) -> AdminJSON:
    return AdminJSON({"error": code, "message": message, **extra}, status_code=status)


async def _admin_error(_request: Request, exc: Exception) -> AdminJSON:
    assert isinstance(exc, AdminError)
    return error(exc.status, exc.code, exc.message, **exc.extra)


async def _http_error(request: Request, exc: Exception) -> AdminJSON:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error(404, "NotFound", f"No admin route {request.method} {request.url.path}")
    code = _HTTP_CODES.get(exc.status_code, "HttpError")
    return error(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")


async def _not_manual(_request: Request, exc: Exception) -> AdminJSON:
    return error(409, "ClockNotManual", str(exc))


async def _clock_limit(_request: Request, exc: Exception) -> AdminJSON:
    return error(409, "ClockLimit", str(exc))


async def _unsettled(_request: Request, exc: Exception) -> AdminJSON:
    assert isinstance(exc, Unsettled)
    in_flight = {"Clusters": exc.clusters, "Operations": exc.operations, "Steps": exc.steps}
    return error(409, "StillInFlight", str(exc), InFlight=in_flight)


async def _unexpected(request: Request, exc: Exception) -> AdminJSON:
    # The traceback goes to the log (by `guarded`), never to the client.
    return error(
        500,
        "InternalError",
        f"The server had an internal error handling {request.method} {request.url.path}; "
        "the server log has the details.",
    )


HANDLERS: dict[Any, Any] = {
    HTTPException: _http_error,
    AdminError: _admin_error,
    NotManual: _not_manual,
    ClockLimit: _clock_limit,
    Unsettled: _unsettled,
    Exception: _unexpected,
}


def guarded(app: ASGIApp) -> ASGIApp:
    """The app, with an unexpected error logged once and kept here: Starlette sends the JSON
    500 above and then re-raises, which would leave the HTTP layer to close the connection."""

    async def run(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except Exception:
            log.exception("admin request %s %s failed", scope.get("method"), scope.get("path"))

    return run
