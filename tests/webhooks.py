"""A webhook for the event tests: a tiny HTTP server on 127.0.0.1 that keeps every envelope
POSTed to it, optionally holding each POST until the test lets it go."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any


def free_port() -> int:
    """A loopback port nothing listens on (for a target that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Webhook:
    """`on_event(envelope)` runs for each POST before it is answered (an exception is a 500);
    with `hold` set, each POST waits for `release` first."""

    def __init__(
        self,
        port: int = 0,
        on_event: Callable[[dict[str, Any]], Any] | None = None,
        hold: bool = False,
    ) -> None:
        self.received: list[dict[str, Any]] = []
        self.results: list[Any] = []
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self._lock = threading.Lock()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept alive, as the server's webhook client keeps it

            def do_POST(self) -> None:
                envelope = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook._lock:
                    hook.received.append(envelope)
                hook.release.wait(60)
                status = 200
                if on_event is not None:
                    try:
                        result = on_event(envelope)
                    except Exception as error:
                        result, status = error, 500
                    with hook._lock:
                        hook.results.append(result)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/events"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def event_ids(self) -> list[str]:
        """The EventIds received, in order, each once (delivery is at least once)."""
        with self._lock:
            ids = [envelope["detail"]["EventDetails"]["EventId"] for envelope in self.received]
        return list(dict.fromkeys(ids))

    def wait_for_ids(self, expected: set[str], timeout: float = 30.0) -> None:
        wait_for(lambda: expected <= set(self.event_ids()), timeout, f"{len(expected)} events")
