"""The ASGI app: POST (any path) -> wire, /_hyperpod/ -> admin, /console -> the console,
GET /metrics -> Prometheus."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
from typing import Any

import anyio.to_thread

from hyperpod_local.admin import admin_app
from hyperpod_local.api import READ_ONLY_OPERATIONS, build_handlers
from hyperpod_local.backend import Backend
from hyperpod_local.console import console_app
from hyperpod_local.domain.errors import ServiceError
from hyperpod_local.settings import Settings
from hyperpod_local.telemetry import request_observer
from hyperpod_local.wire.auth import Authenticator, OpenAuth, StrictAuth, read_credentials
from hyperpod_local.wire.model import sagemaker_spec
from hyperpod_local.wire.protocol import (
    HttpRequest,
    HttpResponse,
    JsonProtocol,
    Pending,
    error_response,
)
from hyperpod_local.wire.response_cache import ResponseCache
from hyperpod_local.wire.sts import StsProtocol, is_sts_request, strict_sts_auth

log = logging.getLogger(__name__)

ASGIScope = dict[str, Any]
Receive = Any
Send = Any


METRICS_PATH = "/metrics"
CONSOLE_PATH = "/console"


class MethodNotAllowed(ServiceError):
    code = "MethodNotAllowed"
    status = 405


class PayloadTooLarge(ServiceError):
    code = "RequestEntityTooLarge"
    status = 413


class HeadersTooLarge(ServiceError):
    code = "RequestHeaderFieldsTooLarge"
    status = 431


class RequestTimeout(ServiceError):
    code = "RequestTimeout"
    status = 408


def authenticator(settings: Settings) -> Authenticator:
    if settings.auth == "strict":
        if settings.credentials_file is None:
            raise ValueError("--auth strict needs --credentials FILE")
        return StrictAuth(read_credentials(settings.credentials_file))
    return OpenAuth()


def sts_authenticator(settings: Settings) -> Authenticator:
    """STS's callers are SageMaker's: the same credentials, signatures scoped to sts."""
    if settings.auth == "strict":
        if settings.credentials_file is None:
            raise ValueError("--auth strict needs --credentials FILE")
        return strict_sts_auth(read_credentials(settings.credentials_file))
    return OpenAuth()


def build_protocol(backend: Backend) -> JsonProtocol:
    cache = None
    # Only a process that holds the data dir's lock knows of every write to the store.
    if backend.settings.response_cache and backend.sole_writer:
        faults = backend.request_faults
        cache = ResponseCache(lambda: backend.store.generation, lambda: faults.active)
    return JsonProtocol(
        sagemaker_spec(),
        build_handlers(backend),
        authenticator(backend.settings),
        cache=cache,
        read_only=READ_ONLY_OPERATIONS,
        observer=request_observer(backend.metrics),
    )


_INLINE_READS = frozenset({"DescribeCluster", "DescribeClusterNode"})


def create_app(backend: Backend, admin_token: str | None = None) -> Any:
    """The server's ASGI app. With an `admin_token` the admin API and /metrics want it as a
    bearer token; without one they answer loopback clients only."""
    protocol = build_protocol(backend)
    sts = StsProtocol(sts_authenticator(backend.settings))
    admin = admin_app(backend, protocol.cache)
    console = console_app(backend, protocol, token_required=admin_token is not None)
    settings = backend.settings
    # Reads that cost SQLite a fraction of a millisecond whatever the fleet's size (a
    # cluster's few counted rows a group, one node) are answered on the event loop: the
    # hand-off to a worker thread and back was an eighth of a computed DescribeCluster's
    # CPU. Never on PostgreSQL, whose answers come over a connection, and never a write,
    # which may wait for the store's lock.
    inline = frozenset() if backend.store.shared else _INLINE_READS

    async def scrape(scope: ASGIScope) -> HttpResponse:
        if scope["method"] != "GET":
            return _admin_error(405, "MethodNotAllowed", f"{METRICS_PATH} takes GET requests.")
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        try:
            # The scrape reads the store: off the event loop, as a request's handler is.
            body, content_type = await anyio.to_thread.run_sync(backend.metrics.exposition, accept)
        except Exception:
            log.exception("GET %s failed", METRICS_PATH)
            return _admin_error(500, "InternalError", "The metrics could not be read; see the log.")
        return HttpResponse(200, body, [("content-type", content_type)])

    async def app(scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path = scope["path"]
        if sum(len(name) + len(value) for name, value in scope["headers"]) > (
            settings.max_header_bytes
        ):
            error = HeadersTooLarge(
                f"The request headers are larger than {settings.max_header_bytes} bytes."
            )
            if path.startswith(("/_hyperpod/", CONSOLE_PATH + "/")) or path in (
                METRICS_PATH,
                CONSOLE_PATH,
            ):
                await _send(send, error_response(error))
            else:
                await _send(send, protocol.refused(error, started))
            return
        if path == METRICS_PATH:
            # Guarded as the admin API is: it names every account's clusters and groups.
            refusal = _admin_refusal(scope, admin_token, METRICS_PATH)
            await _send(send, refusal or await scrape(scope))
            return
        is_console = path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")
        if path.startswith("/_hyperpod/") or is_console:
            refusal = None
            # The console's page and assets hold no data: with a token they are anyone's, so
            # the page can ask for the token; its API (/console/api/) is guarded as admin is.
            if not is_console or admin_token is None or path.startswith(CONSOLE_PATH + "/api/"):
                refusal = _admin_refusal(scope, admin_token, _guarded_name(path))
            if refusal is not None:
                await _send(send, refusal)
                return
            # Bounded and timed as the API's bodies are: no admin body is held unbounded.
            try:
                async with asyncio.timeout(settings.client_timeout_seconds):
                    admin_body = await _read_body(receive, settings.max_body_bytes)
            except TimeoutError:
                await _send(send, _admin_error(408, "RequestTimeout", _late(settings)))
                return
            except PayloadTooLarge as too_large:
                await _send(send, _admin_error(413, too_large.code, too_large.message))
                return
            if admin_body is not None:
                await (console if is_console else admin)(scope, _replay(admin_body, receive), send)
            return
        if scope["method"] == "GET" and scope["path"] == "/":
            await _send(send, _about())
            return
        if scope["method"] != "POST":
            error = MethodNotAllowed(
                f"The SageMaker API takes POST requests; {scope['method']} is not allowed."
            )
            await _send(send, protocol.refused(error, started))
            return
        try:
            # asyncio's timeout, not anyio's cancel scope: that cost a tenth of a cached answer.
            async with asyncio.timeout(settings.client_timeout_seconds):
                body = await _read_body(receive, settings.max_body_bytes)
        except TimeoutError:
            error: ServiceError = RequestTimeout(_late(settings))
            await _send(send, protocol.refused(error, started))
            return
        except PayloadTooLarge as too_large:
            await _send(send, protocol.refused(too_large, started))
            return
        if body is None:
            return  # the client left before its body was complete: nothing is done
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        request = HttpRequest(
            scope["method"],
            scope["path"],
            headers,
            body,
            scope.get("query_string", b"").decode("latin-1"),
        )
        if is_sts_request(headers, body):
            # No store behind it: answered on the event loop.
            await _send(send, sts.handle(request))
            return
        started = protocol.begin(request)
        if isinstance(started, Pending):
            if started.operation in inline:
                started = protocol.finish(started)
            else:
                # Handlers do blocking store I/O: keep it off the event loop.
                started = await anyio.to_thread.run_sync(protocol.finish, started)
        await _send(send, started)

    return app


def _guarded_name(path: str) -> str:
    return "The console" if path.startswith(CONSOLE_PATH) else "The admin API"


def _about() -> HttpResponse:
    from hyperpod_local.version import __version__

    body = {
        "service": "hyperpod-local",
        "version": __version__,
        "api": "Amazon SageMaker HyperPod (AWS JSON 1.1, X-Amz-Target: SageMaker.<Operation>)",
    }
    return HttpResponse(200, json.dumps(body).encode(), [("content-type", "application/json")])


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, refused as soon as it passes `limit`: nothing unbounded is held.
    None if the client disconnected before sending all of it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


# Headers a reverse proxy adds: a request that carries one came through a proxy, and the
# loopback address it arrived from is the proxy's, not the client's.
_FORWARDING_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})


def _late(settings: Settings) -> str:
    return f"The request body did not arrive within {settings.client_timeout_seconds:g} s."


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body already read, then waits as the client's does."""
    given = False

    async def replayed() -> dict[str, Any]:
        nonlocal given
        if given:
            return dict(await receive())
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _admin_refusal(
    scope: ASGIScope, token: str | None, what: str = "The admin API"
) -> HttpResponse | None:
    """The admin API (and /metrics): with a token, only requests that carry it; without,
    loopback only, and never through a proxy."""
    if token is not None:
        given = dict(scope["headers"]).get(b"authorization", b"")
        # An empty token would let in `Bearer ` alone: it opens nothing.
        if token.strip() and hmac.compare_digest(given, f"Bearer {token}".encode()):
            return None
        return _admin_error(401, "Unauthorized", f"{what} needs 'Authorization: Bearer <token>'.")
    client = (scope.get("client") or ("", 0))[0]
    forwarded = any(name in _FORWARDING_HEADERS for name, _ in scope["headers"])
    if is_loopback(client) and not forwarded:
        return None
    return _admin_error(
        403,
        "Forbidden",
        f"{what} answers loopback clients only, not through a proxy; behind one, "
        "serve with --auth strict and send the admin token.",
    )


def _admin_error(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"error": code, "message": message}).encode()
    return HttpResponse(status, body, [("content-type", "application/json")])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _send(send: Send, response: HttpResponse) -> None:
    headers = [(name.encode(), value.encode()) for name, value in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
