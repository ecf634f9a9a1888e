"""The AWS JSON 1.1 protocol, free of any I/O: bytes and headers in, bytes and headers out.

The ASGI server and the in-process mock both feed requests through `JsonProtocol.handle`, so
they answer alike to the byte.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperpod_local.domain.errors import (
    InternalFailure,
    NotImplementedOperation,
    SerializationError,
    ServiceError,
    UnknownOperation,
    ValidationError,
)
from hyperpod_local.domain.scope import Scope
from hyperpod_local.wire.auth import Authenticator, OpenAuth, SignedRequest
from hyperpod_local.wire.model import ServiceSpec
from hyperpod_local.wire.validate import summary

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
Handler = Callable[[Scope, dict[str, Any]], dict[str, Any]]


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    # Header names in lower case.
    headers: Mapping[str, str]
    body: bytes
    query: str = ""


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class JsonProtocol:
    """Reads the operation, checks the input against the model, calls its handler, and writes
    the result or the error the way SageMaker does."""

    def __init__(
        self,
        spec: ServiceSpec,
        handlers: Mapping[str, Handler],
        auth: Authenticator | None = None,
    ) -> None:
        self.spec = spec
        self.handlers = handlers
        self.auth: Authenticator = auth or OpenAuth()

    def handle(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        operation = "-"
        try:
            # Who is asking comes first: an unsigned request learns nothing else.
            scope = self.auth.authenticate(
                SignedRequest(
                    request.method, request.path, request.query, request.headers, request.body
                )
            )
            operation = self._operation(request.headers.get("x-amz-target"))
            try:
                params, violations = self.spec.validator(operation)(_parse_body(request.body))
            except RecursionError:
                raise SerializationError("The request body is nested too deeply.") from None
            if violations:
                raise ValidationError(summary(violations))
            handler = self.handlers.get(operation)
            if handler is None:
                raise NotImplementedOperation(
                    f"The operation {operation} is not implemented by hyperpod-local. "
                    "Its input was checked against the SageMaker model and is valid."
                )
            result = handler(scope, params)
            body = json.dumps(self.spec.serializer(operation)(result), separators=(",", ":"))
            return HttpResponse(200, body.encode(), _headers(request_id))
        except ServiceError as error:
            return error_response(error, request_id)
        except Exception:
            log.exception("request %s (%s) failed", request_id, operation)
            return error_response(
                InternalFailure(
                    f"The server had an internal error handling {operation}. "
                    f"Request id {request_id}; the server log has the details."
                ),
                request_id,
            )

    def _operation(self, target: str | None) -> str:
        prefix, _, name = (target or "").partition(".")
        if prefix != self.spec.target_prefix or name not in self.spec.operation_names:
            shown = target if target else "(no X-Amz-Target header)"
            raise UnknownOperation(f"Operation {shown} is not recognized by the SageMaker API.")
        return name


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise SerializationError(f"The request body is not valid JSON: {error}") from None
    if not isinstance(params, dict):
        raise SerializationError("The request body must be a JSON object.")
    return params


def _headers(request_id: str, error_code: str | None = None) -> list[tuple[str, str]]:
    headers = [("content-type", CONTENT_TYPE), ("x-amzn-requestid", request_id)]
    if error_code is not None:
        headers.append(("x-amzn-errortype", error_code))
    return headers


def error_response(error: ServiceError, request_id: str | None = None) -> HttpResponse:
    """An AWS JSON error: botocore reads the code from `__type` and the text from `message`."""
    request_id = request_id or str(uuid.uuid4())
    body: dict[str, Any] = {
        "__type": error.code,
        "Message": error.message,
        "message": error.message,
    }
    return HttpResponse(
        error.status,
        json.dumps(body, separators=(",", ":")).encode(),
        _headers(request_id, error.code),
    )
