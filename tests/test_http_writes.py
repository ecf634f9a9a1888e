"""One write per answer (http_writes.py): what uvicorn writes in one loop turn goes out as one
send, so a client reads an answer's headers and body in one go."""

from __future__ import annotations

import asyncio
import socket
import sys

from hyperpod_local.http_writes import CoalescingTransport


class _Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def _writes() -> tuple[_Recording, CoalescingTransport]:
    inner = _Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(memoryview(b"{}"))
    assert inner.sent == []  # nothing leaves during the turn
    await asyncio.sleep(0)
    return inner, transport


def test_headers_and_body_written_in_one_turn_go_out_together() -> None:
    inner, transport = asyncio.run(_writes())
    assert inner.sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)


def test_close_sends_what_is_pending_first_and_nothing_after() -> None:
    async def scenario() -> _Recording:
        inner = _Recording()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(b"last answer")
        transport.close()
        transport.write(b"too late")
        await asyncio.sleep(0)
        return inner

    inner = asyncio.run(scenario())
    assert inner.sent == [b"last answer"]
    assert inner.closed


def _data_segments_in(sock: socket.socket) -> int:
    """Linux's tcp_info.tcpi_data_segs_in: segments with data this socket has received."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int.from_bytes(info[152:156], sys.byteorder)


def test_the_server_sends_each_answer_in_one_segment(server: object) -> None:
    """Over a real socket, counted by the kernel: 20 answers arrive in 20 data segments (with
    the headers and the body written separately, they arrived in 40)."""
    from urllib.parse import urlsplit

    url = urlsplit(server.url)  # type: ignore[attr-defined]
    body = b"{}"
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: SageMaker.ListClusters\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        before = _data_segments_in(sock)
        for _ in range(20):
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received or not _complete(received):
                received += sock.recv(65536)
        assert _data_segments_in(sock) - before == 20


def _complete(received: bytes) -> bool:
    head, _, rest = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(rest) >= int(line.split(b":", 1)[1])
    return False
