"""The console at /console: its page and assets, and its API under /console/api/ (guarded as
the admin API is, server.py). The page acts on faults and the clock through the admin API
itself, and on nodes through /console/api/call, which runs the SageMaker operation."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hyperpod_local.admin.answers import HANDLERS, AdminError, AdminJSON, error, guarded
from hyperpod_local.backend import Backend
from hyperpod_local.console.actions import BadCall, call, parse_call
from hyperpod_local.console.assets import Asset, load_assets
from hyperpod_local.console.live import cluster_stream, first_snapshot
from hyperpod_local.console.reads import ClusterWatch, NotFound, clusters_overview, node_details
from hyperpod_local.domain.scope import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Scope
from hyperpod_local.wire.protocol import JsonProtocol

PREFIX = "/console"
API_PREFIX = f"{PREFIX}/api/"


def console_app(backend: Backend, protocol: JsonProtocol, *, token_required: bool) -> Any:
    """`token_required`: the server wants the admin token (strict auth), which the page then
    asks for; otherwise it answers loopback clients only."""
    store = backend.store

    def asset(item: Asset) -> Any:
        async def serve(_request: Request) -> Response:
            return Response(
                item.body,
                media_type=item.media_type,
                headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
            )

        return serve

    async def session(_request: Request) -> AdminJSON:
        clock = backend.clock
        return AdminJSON(
            {
                "Auth": "token" if token_required else "loopback",
                "Clock": {"Mode": clock.mode, "Now": clock.now()},
            }
        )

    async def clusters(request: Request) -> AdminJSON:
        return AdminJSON(await run_in_threadpool(clusters_overview, store, _scope(request)))

    async def stream(request: Request) -> Response:
        watch = ClusterWatch(store, _scope(request), request.path_params["cluster"])
        try:
            first = await run_in_threadpool(first_snapshot, store, watch)
        except NotFound:
            raise _cluster_not_found(request) from None
        return cluster_stream(store, backend.outlets, watch, first)

    async def node(request: Request) -> AdminJSON:
        try:
            row = int(request.path_params["row"])
            details = await run_in_threadpool(
                node_details,
                store,
                _scope(request),
                request.path_params["cluster"],
                row,
                backend.provider.inside_view,
            )
        except (ValueError, NotFound):
            raise AdminError(
                404, "NodeNotFound", f"No node {request.path_params['row']} in that cluster."
            ) from None
        return AdminJSON(details)

    async def act(request: Request) -> AdminJSON:
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise BadCall("The body must be a JSON object.")
            scope, operation, params = parse_call(body)
        except (ValueError, RecursionError):
            raise AdminError(400, "InvalidRequest", "The body is not valid JSON.") from None
        except BadCall as error:
            raise AdminError(400, "InvalidRequest", str(error)) from None
        status, answer, code = await run_in_threadpool(call, protocol, scope, operation, params)
        return AdminJSON({"Status": status, "ErrorCode": code, "Body": answer})

    cluster_path = f"{API_PREFIX}clusters/{{cluster}}"
    app = Starlette(
        routes=[
            *(Route(path, asset(item), methods=["GET"]) for path, item in load_assets().items()),
            Route(f"{API_PREFIX}session", session, methods=["GET"]),
            Route(f"{API_PREFIX}clusters", clusters, methods=["GET"]),
            Route(f"{cluster_path}/stream", stream, methods=["GET"]),
            Route(f"{cluster_path}/nodes/{{row}}", node, methods=["GET"]),
            Route(f"{API_PREFIX}call", act, methods=["POST"]),
        ],
        exception_handlers={**HANDLERS, HTTPException: _http_error},
    )
    app.router.redirect_slashes = False
    return guarded(app)


async def _http_error(request: Request, exc: Exception) -> AdminJSON:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error(404, "NotFound", f"No console route {request.method} {request.url.path}")
    code = "MethodNotAllowed" if exc.status_code == 405 else "HttpError"
    return error(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")


def _scope(request: Request) -> Scope:
    account = request.query_params.get("account", DEFAULT_ACCOUNT_ID)
    region = request.query_params.get("region", DEFAULT_REGION)
    if not (len(account) == 12 and account.isascii() and account.isdigit()) or not region:
        raise AdminError(
            400, "InvalidRequest", "account must be a 12-digit account id, region a region."
        )
    return Scope(account, region)


def _cluster_not_found(request: Request) -> AdminError:
    name = request.path_params["cluster"]
    return AdminError(404, "ClusterNotFound", f"Could not find cluster '{name}'.")
