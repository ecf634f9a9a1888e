"""Admin routes. Today: health; faults, clock and inspection come with their issues."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hyperpod_local.backend import Backend


def admin_app(backend: Backend) -> Starlette:
    async def health(_request: Request) -> JSONResponse:
        from hyperpod_local import __version__

        return JSONResponse({"status": "ok", "version": __version__})

    async def not_found(request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": "NotFound", "message": f"No admin route {request.url.path}"}, status_code=404
        )

    return Starlette(
        routes=[Route("/_hyperpod/health", health, methods=["GET"])],
        exception_handlers={404: not_found},
    )
