"""The AWS JSON 1.1 protocol, free of any I/O: bytes and headers in, bytes and headers out.

The ASGI server and the in-process mock both feed requests through `JsonProtocol.handle`, so
they answer alike to the byte.
"""

from __future__ import annotations

import json
import logging
import time
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
from hyperpod_local.wire.response_cache import CacheKey, ResponseCache
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


@dataclass(slots=True)
class Pending:
    """A request that is authenticated and names an operation, with no answer yet: what is
    left is validation and the handler, which may block on the store."""

    request_id: str
    operation: str
    scope: Scope
    body: bytes
    cache_key: CacheKey | None = None
    generation: int = 0
    # perf_counter() when the protocol took the request: its answer's duration starts here.
    started: float = 0.0


@dataclass(frozen=True, slots=True)
class Answered:
    """One API request answered, for whoever observes the protocol (metrics, request log)."""

    request_id: str
    # "-" for a request that names no operation of the model.
    operation: str
    # None when the caller was not authenticated.
    scope: Scope | None
    status: int
    # The AWS error code, None for a success.
    error: str | None
    # From the protocol taking the request to its answer being ready.
    seconds: float
    cached: bool = False


Observer = Callable[[Answered], None]


class JsonProtocol:
    """Reads the operation, checks the input against the model, calls its handler, and writes
    the result or the error the way SageMaker does."""

    def __init__(
        self,
        spec: ServiceSpec,
        handlers: Mapping[str, Handler],
        auth: Authenticator | None = None,
        *,
        cache: ResponseCache | None = None,
        read_only: frozenset[str] = frozenset(),
        observer: Observer | None = None,
    ) -> None:
        """With a `cache`, answers to the `read_only` operations are sent again while the
        store has not changed. An `observer` is told of every answer, on the thread that
        made it: it must be quick."""
        self.spec = spec
        self.handlers = handlers
        self.auth: Authenticator = auth or OpenAuth()
        self.cache = cache
        self.read_only = read_only
        self.observer = observer

    def handle(self, request: HttpRequest) -> HttpResponse:
        started = self.begin(request)
        return started if isinstance(started, HttpResponse) else self.finish(started)

    def begin(self, request: HttpRequest) -> HttpResponse | Pending:
        """Authentication, the operation's name and a cached answer: cheap work, none of it
        waiting on the store, so the server runs it on its event loop."""
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        operation = "-"
        scope: Scope | None = None
        try:
            # Who is asking comes first: an unsigned request learns nothing else.
            scope = self.auth.authenticate(
                SignedRequest(
                    request.method, request.path, request.query, request.headers, request.body
                )
            )
            operation = self._operation(request.headers.get("x-amz-target"))
            pending = Pending(request_id, operation, scope, request.body, started=started)
            if (
                self.cache is not None
                and operation in self.read_only
                and self.cache.admits(request.body)
            ):
                pending.cache_key = CacheKey(
                    scope.account_id, scope.region, operation, request.body
                )
                pending.generation = self.cache.generation()
                if not _no_cache(request.headers):
                    body = self.cache.lookup(pending.cache_key)
                    if body is not None:
                        answer = HttpResponse(200, body, _headers(request_id))
                        self._observe(answer, request_id, operation, scope, started, cached=True)
                        return answer
            return pending
        except Exception as error:
            failure = self._failure(error, request_id, operation)
            self._observe(failure, request_id, operation, scope, started)
            return failure

    def finish(self, pending: Pending) -> HttpResponse:
        """Validation, the handler and the answer."""
        operation = pending.operation
        try:
            try:
                params, violations = self.spec.validator(operation)(_parse_body(pending.body))
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
            result = handler(pending.scope, params)
            body = json.dumps(
                self.spec.serializer(operation)(result), separators=(",", ":")
            ).encode()
            if self.cache is not None and pending.cache_key is not None:
                self.cache.keep(pending.cache_key, pending.generation, body)
            answer = HttpResponse(200, body, _headers(pending.request_id))
        except Exception as error:
            answer = self._failure(error, pending.request_id, operation)
        self._observe(answer, pending.request_id, operation, pending.scope, pending.started)
        return answer

    def invoke(self, scope: Scope, operation: str, body: bytes) -> HttpResponse:
        """An operation called for a caller already let in by other means (the console,
        behind the admin API's guard): the same validation, handler, answer and observer as
        a signed request's, with no signature and no cached answer. Blocks on the store."""
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        if operation not in self.spec.operation_names:
            failure = self._failure(
                UnknownOperation(f"Operation {operation} is not recognized by the SageMaker API."),
                request_id,
                operation,
            )
            self._observe(failure, request_id, "-", scope, started)
            return failure
        return self.finish(Pending(request_id, operation, scope, body, started=started))

    def refused(self, error: ServiceError, started: float) -> HttpResponse:
        """The answer to a request refused before the protocol could read it (a body too
        large or too slow, a method other than POST), observed as the others are."""
        request_id = str(uuid.uuid4())
        answer = error_response(error, request_id)
        self._observe(answer, request_id, "-", None, started)
        return answer

    def _observe(
        self,
        answer: HttpResponse,
        request_id: str,
        operation: str,
        scope: Scope | None,
        started: float,
        *,
        cached: bool = False,
    ) -> None:
        if self.observer is None:
            return
        error = None
        if answer.status != 200:
            error = next((v for k, v in answer.headers if k == "x-amzn-errortype"), None)
        seconds = time.perf_counter() - started
        try:
            self.observer(
                Answered(request_id, operation, scope, answer.status, error, seconds, cached)
            )
        except Exception:
            # The answer stands: what watches the protocol never turns it into an error.
            log.exception("the request observer failed on request %s", request_id)

    def _failure(self, error: Exception, request_id: str, operation: str) -> HttpResponse:
        if isinstance(error, ServiceError):
            return error_response(error, request_id)
        log.error("request %s (%s) failed", request_id, operation, exc_info=error)
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


def _no_cache(headers: Mapping[str, str]) -> bool:
    """As in HTTP (RFC 9111): a client that says no-cache gets an answer computed afresh."""
    directives = headers.get("cache-control", "")
    if directives and "no-cache" in {
        part.split("=", 1)[0].strip().lower() for part in directives.split(",")
    }:
        return True
    return headers.get("pragma", "").strip().lower() == "no-cache"


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
