"""One write per answer (http_writes.py), against the real server: what uvicorn writes in one
loop turn goes out as one send, so a client reads an answer's headers and body in one go."""

from __future__ import annotations

import socket
import sys
from urllib.parse import urlsplit

from tests.support import ServerProcess


def _data_segments_in(sock: socket.socket) -> int:
    """Linux's tcp_info.tcpi_data_segs_in: segments with data this socket has received."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int.from_bytes(info[152:156], sys.byteorder)


def test_the_server_sends_each_answer_in_one_segment(server: ServerProcess) -> None:
    """Over a real socket, counted by the kernel: 20 answers arrive in 20 data segments (with
    the headers and the body written separately, they arrived in 40)."""
    request = _list_clusters()
    with _connect(server) as sock:
        before = _data_segments_in(sock)
        for _ in range(20):
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received or not _complete(received):
                chunk = sock.recv(65536)
                assert chunk, "the server closed the connection before a whole answer"
                received += chunk
        assert _data_segments_in(sock) - before == 20


def _complete(received: bytes) -> bool:
    head, _, rest = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(rest) >= int(line.split(b":", 1)[1])
    return False


def test_an_answer_before_a_close_arrives_whole(server: ServerProcess) -> None:
    """`Connection: close`: the server writes the answer and closes in the same turn; the
    pending bytes go out before the close, and nothing after it."""
    with _connect(server) as sock:
        sock.sendall(_list_clusters(b"Connection: close\r\n"))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert _complete(received), received
    assert received.endswith(b"}"), received[-200:]


def _connect(server: ServerProcess) -> socket.socket:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    return socket.create_connection((url.hostname, url.port), timeout=10)


def _list_clusters(extra_headers: bytes = b"") -> bytes:
    body = b"{}"
    return (
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: SageMaker.ListClusters\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\n"
        + extra_headers
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
