"""One write per answer (http/writes.py), against the real server: what uvicorn writes in one
loop turn goes out as one send, so a client reads an answer's headers and body in one go."""

from __future__ import annotations

import json
import socket
import sys
from urllib.parse import urlsplit

from tests.support import ServerProcess, exchange, raw_socket, read_answer, request_bytes


def _data_segments_in(sock: socket.socket) -> int:
    """Linux's tcp_info.tcpi_data_segs_in: segments with data this socket has received."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int.from_bytes(info[152:156], sys.byteorder)


def test_the_server_sends_each_answer_in_one_segment(server: ServerProcess) -> None:
    """Over a real socket, counted by the kernel: 20 answers arrive in 20 data segments (with
    the headers and the body written separately, they arrived in 40)."""
    with raw_socket(server) as sock:
        before = _data_segments_in(sock)
        for _ in range(20):
            sock.sendall(request_bytes(close=False))
            assert read_answer(sock).startswith(b"HTTP/1.1 200")
        assert _data_segments_in(sock) - before == 20


def test_an_answer_before_a_close_arrives_whole(server: ServerProcess) -> None:
    """`Connection: close`: the server writes the answer and closes in the same turn; the
    pending bytes go out before the close, and nothing after it."""
    port = urlsplit(server.url).port
    assert port is not None
    statuses, received = exchange(port, request_bytes())
    assert statuses == [200], received[:200]
    head, _, body = received.partition(b"\r\n\r\n")
    assert f"content-length: {len(body)}".encode() in head.lower(), received[-200:]
    assert "ClusterSummaries" in json.loads(body)
