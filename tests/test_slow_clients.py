"""Slow and stalled clients, against a server started with a one-second `--client-timeout`: a
connection whose headers stall is closed, a body that stalls is answered 408, and neither holds
up anyone else."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support import ServerProcess, raw_socket, read_answer, request_bytes

TIMEOUT = 1.0
# Generous: the deadline is a loop timer, so it fires a little late on a busy machine.
WAIT = TIMEOUT + 4.0


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("slow"), "--clock", "manual", "--client-timeout", str(TIMEOUT)
    ).start()
    yield proc
    proc.stop()


def connect(server: ServerProcess) -> socket.socket:
    return raw_socket(server, timeout=WAIT)


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def request(body: bytes, length: int | None = None) -> bytes:
    """ListClusters on a kept-alive connection."""
    return request_bytes(body, length=None if length is None else str(length).encode(), close=False)


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Tar"],
    ids=["nothing", "half-the-headers"],
)
def test_a_connection_whose_headers_stall_is_closed(
    slow_server: ServerProcess, sent: bytes
) -> None:
    with connect(slow_server) as sock:
        sock.sendall(sent)
        received, waited = read_until_closed(sock)
    assert received == b""
    assert TIMEOUT * 0.9 <= waited < WAIT


def test_a_kept_alive_connection_that_stalls_in_its_next_headers_is_closed(
    slow_server: ServerProcess,
) -> None:
    with connect(slow_server) as sock:
        sock.sendall(request(b"{}"))
        answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert answer.endswith(b'{"ClusterSummaries":[]}'), answer[-200:]
        # A byte cancels uvicorn's own keep-alive timer; ours still runs.
        sock.sendall(b"POST / HTTP/1.1\r\nHo")
        received, waited = read_until_closed(sock)
    assert received == b""
    assert waited < WAIT


def test_a_connection_that_keeps_asking_outlives_the_deadline(
    slow_server: ServerProcess,
) -> None:
    """Each answer starts the deadline again: a client asking every half deadline keeps its
    connection for four deadlines, and loses it once it stops."""
    with connect(slow_server) as sock:
        for _ in range(8):
            time.sleep(TIMEOUT / 2)
            sock.sendall(request(b"{}"))
            assert read_answer(sock).startswith(b"HTTP/1.1 200")
        received, waited = read_until_closed(sock)
    assert received == b""
    assert TIMEOUT * 0.9 <= waited < WAIT


def test_a_body_that_stalls_is_answered_408(slow_server: ServerProcess) -> None:
    with connect(slow_server) as sock:
        sock.sendall(request(b'{"MaxRes', length=20))
        received, waited = read_until_closed(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), received[:300]
    error = json.loads(body)
    assert error["__type"] == "RequestTimeout"
    assert error["message"] == f"The request body did not arrive within {TIMEOUT:g} s."
    assert TIMEOUT * 0.9 <= waited < WAIT


def test_a_request_that_arrives_in_time_is_answered_and_stalled_clients_hold_up_no_one(
    slow_server: ServerProcess,
) -> None:
    stalled = [connect(slow_server) for _ in range(20)]
    try:
        for sock in stalled:
            sock.sendall(b"POST / HTTP/1.1\r\n")
        client = slow_server.client()
        started = time.monotonic()
        assert client.list_clusters()["ClusterSummaries"] == []
        assert time.monotonic() - started < TIMEOUT
    finally:
        for sock in stalled:
            sock.close()
