"""The ASGI app: POST (any path) -> wire, /_hyperpod/ -> admin."""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread

from hyperpod_local.admin import admin_app
from hyperpod_local.api import CLUSTER_OPERATIONS, build_handlers
from hyperpod_local.backend import Backend
from hyperpod_local.domain.errors import ServiceError
from hyperpod_local.wire.model import sagemaker_spec
from hyperpod_local.wire.protocol import HttpRequest, HttpResponse, JsonProtocol, error_response

ASGIScope = dict[str, Any]
Receive = Any
Send = Any


class MethodNotAllowed(ServiceError):
    code = "MethodNotAllowed"
    status = 405


def build_protocol(backend: Backend) -> JsonProtocol:
    return JsonProtocol(sagemaker_spec(CLUSTER_OPERATIONS), build_handlers(backend))


def create_app(backend: Backend) -> Any:
    protocol = build_protocol(backend)
    admin = admin_app(backend)

    async def app(scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/_hyperpod/"):
            await admin(scope, receive, send)
            return
        if scope["method"] == "GET" and scope["path"] == "/":
            await _send(send, _about())
            return
        if scope["method"] != "POST":
            error = MethodNotAllowed(
                f"The SageMaker API takes POST requests; {scope['method']} is not allowed."
            )
            await _send(send, error_response(error))
            return
        body = await _read_body(receive)
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        request = HttpRequest(scope["method"], scope["path"], headers, body)
        # Handlers do blocking store I/O: keep it off the event loop.
        response = await anyio.to_thread.run_sync(protocol.handle, request)
        await _send(send, response)

    return app


def _about() -> HttpResponse:
    from hyperpod_local import __version__

    body = {
        "service": "hyperpod-local",
        "version": __version__,
        "api": "Amazon SageMaker HyperPod (AWS JSON 1.1, X-Amz-Target: SageMaker.<Operation>)",
    }
    return HttpResponse(200, json.dumps(body).encode(), [("content-type", "application/json")])


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


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
