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

As moto's mock does, the context puts fake credentials in the environment (and takes any
session token out) and sets boto3's default session aside, so that `boto3.client()` works on
a machine with no credentials, and real ones, from the environment or cached by a default
session made earlier, are never signed with nor sent; on exit the environment and the
default session are put back as they were.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hyperpod_local.backend import Backend
from hyperpod_local.settings import Settings
from hyperpod_local.wire.protocol import HttpRequest, JsonProtocol
from hyperpod_local.wire.sts import StsProtocol

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse

_EVENT = "before-send.sagemaker"
# STS clients made inside a mock ask it who they are (GetCallerIdentity), as the server does.
_STS_EVENT = "before-send.sts"
# What the environment holds while a mock is open. "testing" is not a 12-digit key, so the
# account is the default one (123456789012), as for the README's clients.
_FAKE_CREDENTIALS: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": None,
    "AWS_SECURITY_TOKEN": None,
}


class _FakeCredentials:
    """The environment and boto3's default session are the process's, one for every mock:
    the first mock to open saves them and puts fake credentials in, the last to close puts
    back what it saved, in whatever order mocks on several threads open and close."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._saved_environment: dict[str, str | None] = {}
        self._saved_session: Any = None

    def enter(self) -> None:
        with self._lock:
            self._open += 1
            if self._open > 1:
                return
            self._saved_environment = {key: os.environ.get(key) for key in _FAKE_CREDENTIALS}
            _set_environment(_FAKE_CREDENTIALS)
            boto3 = _boto3()
            if boto3 is not None:
                # A default session made earlier may hold real credentials it resolved
                # then; clients made inside get a new one, which finds the fake ones.
                self._saved_session, boto3.DEFAULT_SESSION = boto3.DEFAULT_SESSION, None

    def exit(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open > 0:
                return
            _set_environment(self._saved_environment)
            boto3 = _boto3()
            if boto3 is not None:
                boto3.DEFAULT_SESSION = self._saved_session
            self._saved_environment, self._saved_session = {}, None


def _set_environment(values: Mapping[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


_CREDENTIALS = _FakeCredentials()


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
        self.backend: Backend | None = None
        self._protocol: JsonProtocol | None = None
        self._sts: StsProtocol | None = None
        self._credentials_set = False

    def __enter__(self) -> HyperPodMock:
        from hyperpod_local.server import build_protocol, sts_authenticator

        data_dir = self._data_dir
        if data_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="hyperpod-local-")
            data_dir = Path(self._temp_dir)
        try:
            self.backend = Backend(Settings(data_dir=data_dir, **self._settings))
            self._protocol = build_protocol(self.backend)
            self._sts = StsProtocol(sts_authenticator(self.backend.settings))
            self.backend.start()
        except BaseException:
            # __exit__ is not called when __enter__ fails: leave nothing open behind.
            self.__exit__(None, None, None)
            raise
        _CREDENTIALS.enter()
        self._credentials_set = True
        _builtin_handlers().append((_EVENT, self._on_send))
        _builtin_handlers().append((_STS_EVENT, self._on_send_sts))
        return self

    def __exit__(self, *_exc: object) -> None:
        handlers = _builtin_handlers()
        for hook in ((_EVENT, self._on_send), (_STS_EVENT, self._on_send_sts)):
            if hook in handlers:
                handlers.remove(hook)
            # A default session boto3 made while the mock was open picked the hook up from
            # BUILTIN_HANDLERS; it is set aside below, but a caller may have kept it.
            for events in _default_session_events():
                with contextlib.suppress(ValueError):  # not registered on that session
                    events.unregister(*hook)
        if self._credentials_set:
            self._credentials_set = False
            _CREDENTIALS.exit()
        if self.backend is not None:
            self.backend.close()
        self.backend, self._protocol, self._sts = None, None, None
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

    def inject(
        self, kind_or_spec: str | Mapping[str, Any], /, **fields: Any
    ) -> list[dict[str, Any]]:
        """Inject a fault, as POST /_hyperpod/faults does; returns the faults made. Either the
        admin API's JSON spec, `hp.inject({"Kind": "hardware", "Cluster": "c1", "InstanceId":
        "i-...", "Type": "GpuXid79"})`, or the kind and its fields as keywords, the admin API's
        keys in snake case: `hp.inject("hardware", cluster="c1", instance_id="i-...",
        type="GpuXid79", detection_delay_seconds=30)`. Keywords given with a spec add to it."""
        from hyperpod_local.admin import faults

        is_spec = isinstance(kind_or_spec, Mapping)
        spec: dict[str, Any] = dict(kind_or_spec) if is_spec else {"Kind": kind_or_spec}
        for key, value in fields.items():
            name = _pascal(key)
            if name in spec:
                raise TypeError(f"inject() got {name} twice (in the spec and as {key}=)")
            spec[name] = value
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

    def _on_send(self, request: AWSPreparedRequest, **_kwargs: Any) -> AWSResponse | None:
        # BUILTIN_HANDLERS holds the open mocks in the order they opened; the newest one
        # answers, whichever of them a client's session happened to pick up.
        innermost = _innermost_mock()
        if innermost is None:
            # Every mock has closed: a client made inside one goes on to its endpoint.
            return None
        return innermost._answer(request)

    def _on_send_sts(self, request: AWSPreparedRequest, **_kwargs: Any) -> AWSResponse | None:
        innermost = _innermost_mock()
        return None if innermost is None else innermost._answer(request, sts=True)

    def _answer(self, request: AWSPreparedRequest, *, sts: bool = False) -> AWSResponse:
        from botocore.awsrequest import AWSResponse

        protocol = self._sts if sts else self._protocol
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


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:  # pragma: no cover - boto3 is optional for the mock
        return None
    return boto3


def _default_session_events() -> list[Any]:
    boto3 = _boto3()
    session = None if boto3 is None else boto3.DEFAULT_SESSION
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
