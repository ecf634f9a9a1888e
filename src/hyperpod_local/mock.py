"""hyperpod-local in-process: boto3 SageMaker clients talk to a backend with no socket.

    with hyperpod_local.mock() as hp:
        sm = boto3.client("sagemaker", region_name="us-east-1")
        sm.create_cluster(...)   # Creating
        hp.settle()              # every operation in flight finishes: InService
        sm.list_clusters()

Time is a manual clock by default: it moves only with `hp.advance(seconds=...)` and
`hp.settle()`, so a test sees every intermediate state it asks for. `clock="real"` is the
wall clock, with HyperPod's work `speed` times faster, as the server does.

While the context is open, every botocore session made in it (boto3's default session
included) sends SageMaker requests through `before-send` to the same JsonProtocol the server
uses. On exit the hook is taken out again and the backend's files are removed.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hyperpod_local.backend import Backend
from hyperpod_local.settings import Settings
from hyperpod_local.wire.protocol import HttpRequest, JsonProtocol

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse

_EVENT = "before-send.sagemaker"


class _RawBody:
    """What AWSResponse reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = BytesIO(body)

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._body.read()


class HyperPodMock:
    def __init__(self, data_dir: Path | str | None = None, **settings: Any) -> None:
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._settings = {"clock": "manual", **settings}
        self._temp_dir: str | None = None
        self._registered: list[Any] = []
        self.backend: Backend | None = None
        self._protocol: JsonProtocol | None = None

    def __enter__(self) -> HyperPodMock:
        from hyperpod_local.server import build_protocol

        data_dir = self._data_dir
        if data_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="hyperpod-local-")
            data_dir = Path(self._temp_dir)
        try:
            self.backend = Backend(Settings(data_dir=data_dir, **self._settings))
            self._protocol = build_protocol(self.backend)
            self.backend.start()
        except BaseException:
            # __exit__ is not called when __enter__ fails: leave nothing open behind.
            self.__exit__(None, None, None)
            raise
        _builtin_handlers().append((_EVENT, self._on_send))
        self._register_on_default_session()
        return self

    def __exit__(self, *_exc: object) -> None:
        handlers = _builtin_handlers()
        if (_EVENT, self._on_send) in handlers:
            handlers.remove((_EVENT, self._on_send))
        # Sessions that picked the hook up: the default one we registered on, and a default
        # session boto3 made while the mock was open (from BUILTIN_HANDLERS).
        for events in [*self._registered, *_default_session_events()]:
            with contextlib.suppress(ValueError):  # not registered on that session
                events.unregister(_EVENT, self._on_send)
        self._registered.clear()
        if self.backend is not None:
            self.backend.close()
        self.backend, self._protocol = None, None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def advance(self, seconds: float) -> float:
        """Move HyperPod time forward, running every step that falls due on the way; returns
        the new HyperPod time."""
        return self._backend().engine.advance(seconds)

    def settle(self) -> float:
        """Run until no operation is in flight; returns the HyperPod seconds that passed."""
        return self._backend().engine.settle()

    def inject(self, kind: str, **target: Any) -> list[dict[str, Any]]:
        """Inject a fault, as POST /_hyperpod/faults does; keyword names are the admin API's
        keys in snake case: hp.inject("hardware", cluster="c1", instance_id="i-...",
        type="GpuXid79", detection_delay_seconds=30)."""
        from hyperpod_local.admin import faults

        spec = {"Kind": kind, **{_pascal(key): value for key, value in target.items()}}
        return faults.inject(self._backend(), spec)

    def faults(self) -> list[dict[str, Any]]:
        from hyperpod_local.admin import faults

        return faults.listing(self._backend())

    def remove_fault(self, fault_id: str) -> bool:
        from hyperpod_local.admin import faults

        return faults.remove(self._backend(), fault_id)

    def now(self) -> float:
        return self._backend().clock.now()

    def _backend(self) -> Backend:
        if self.backend is None:
            raise RuntimeError("the mock is not open")
        return self.backend

    def client(self, region_name: str = "us-east-1", **kwargs: Any) -> Any:
        """A boto3 SageMaker client bound to this mock, with dummy credentials by default."""
        import boto3

        kwargs.setdefault("aws_access_key_id", "testing")
        kwargs.setdefault("aws_secret_access_key", "testing")
        session = boto3.session.Session()
        return session.client("sagemaker", region_name=region_name, **kwargs)

    def _register_on_default_session(self) -> None:
        for events in _default_session_events():
            events.register(_EVENT, self._on_send)
            self._registered.append(events)

    def _on_send(self, request: AWSPreparedRequest, **_kwargs: Any) -> AWSResponse | None:
        # BUILTIN_HANDLERS holds the open mocks in the order they opened; the newest one
        # answers, whichever of them a client's session happened to pick up.
        innermost = _innermost_mock()
        if innermost is None:
            # Every mock has closed: a client made inside one goes on to its endpoint.
            return None
        return innermost._answer(request)

    def _answer(self, request: AWSPreparedRequest) -> AWSResponse:
        from botocore.awsrequest import AWSResponse

        protocol = self._protocol
        assert protocol is not None
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = body.read()
        headers = {name.lower(): _text(value) for name, value in request.headers.items()}
        url = urlsplit(request.url)
        # The HTTP client would send Host; the signature covers it.
        headers.setdefault("host", url.netloc)
        http_request = HttpRequest(request.method, url.path or "/", headers, body, url.query)
        response = protocol.handle(http_request)
        return AWSResponse(
            request.url, response.status, dict(response.headers), _RawBody(response.body)
        )


def _builtin_handlers() -> list[Any]:
    # botocore's request machinery is imported when a mock opens, not with the package:
    # `hyperpod-local serve` never needs it, and its cold start would pay for it.
    import botocore.handlers

    return botocore.handlers.BUILTIN_HANDLERS


def _pascal(name: str) -> str:
    special = {"instance_group": "InstanceGroupName", "instance_group_name": "InstanceGroupName"}
    return special.get(name) or "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _default_session_events() -> list[Any]:
    try:
        import boto3
    except ImportError:  # pragma: no cover - boto3 is optional for the mock
        return []
    session = boto3.DEFAULT_SESSION
    return [] if session is None else [session.events]


def _innermost_mock() -> HyperPodMock | None:
    for entry in reversed(_builtin_handlers()):
        handler = entry[1]
        owner = getattr(handler, "__self__", None)
        if entry[0] == _EVENT and isinstance(owner, HyperPodMock):
            return owner
    return None


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def mock(data_dir: Path | str | None = None, **settings: Any) -> HyperPodMock:
    """An in-process HyperPod backend for the boto3 clients made while it is open."""
    return HyperPodMock(data_dir, **settings)
