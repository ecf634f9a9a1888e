"""A webhook target: each event POSTed alone as its EventBridge envelope, JSON, on one kept-alive
connection (a new connection per event cost the server's other threads a third of their
time while a burst went out)."""

from __future__ import annotations

import http.client
import json
import ssl
from urllib.parse import urlsplit

from hyperpod_local.outlets.targets import DELIVERED, Envelope, Outcome, Result
from hyperpod_local.version import __version__

# A POST that takes longer is given up and tried again later: a target that hangs holds up
# only its own deliveries, and only this long at a time.
POST_TIMEOUT = 10.0
# Statuses worth another try: the target is overloaded, timed out or failed inside; any
# other answer that is not 2xx (a redirect too: it is not followed) refuses the event.
_RETRIED = frozenset({408, 425, 429})


class WebhookTarget:
    batch_size = 1

    def __init__(self, spec: str) -> None:
        self.spec = spec
        url = urlsplit(spec)
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._conn: http.client.HTTPConnection | None = None

    def send(self, envelopes: list[Envelope]) -> list[Result]:
        return [self._post(envelope) for envelope in envelopes]

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host,
                    self._port,
                    timeout=POST_TIMEOUT,
                    context=ssl.create_default_context(),
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=POST_TIMEOUT
                )
        return self._conn

    def _post(self, envelope: Envelope) -> Result:
        body = json.dumps(envelope).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"hyperpod-local/{__version__}",
        }
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", self._path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                self._close()
                # A kept-alive connection the target closed meanwhile: once more, anew.
                if attempt == 1 and isinstance(
                    error, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
                ):
                    continue
                # Refused, reset, timed out, a name that does not resolve: not there (yet).
                return Result(Outcome.RETRY, f"{type(error).__name__}: {error}")
            if response.will_close:
                self._close()
            status = response.status
            if 200 <= status < 300:
                return DELIVERED
            outcome = Outcome.RETRY if status in _RETRIED or status >= 500 else Outcome.REJECTED
            return Result(outcome, f"HTTP {status} {response.reason}")
        return Result(Outcome.RETRY, "the connection kept closing")

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
