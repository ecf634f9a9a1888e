"""The fixed-body floor: an asyncio HTTP/1.1 server that answers every request with one constant
body, doing no work per request beyond reading it. boto3 against it costs what that answer
costs the client over HTTP. bench/run.py gives it a DescribeCluster answer of hyperpod-local's
(`--body-file`), so the floor is the client's cost of the very call measured against it.

    python bench/floor_server.py --port PORT [--body-file FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal

HOST = "127.0.0.1"
BODY = json.dumps(
    {
        "ClusterSummaries": [
            {
                "ClusterArn": "arn:aws:sagemaker:us-east-1:123456789012:cluster/0123456789ab",
                "ClusterName": "bench-describe",
                "CreationTime": 1767225600.0,
                "ClusterStatus": "InService",
            }
        ]
    },
    separators=(",", ":"),
).encode()
FLOOR_REQUEST_ID = "00000000-0000-0000-0000-000000000000"
_LENGTH = b"content-length:"


def http_response(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\n"
        + f"x-amzn-RequestId: {FLOOR_REQUEST_ID}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


RESPONSE = http_response(BODY)


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[: len(_LENGTH)].lower() == _LENGTH:
                    length = int(line[len(_LENGTH) :])
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve_connection, HOST, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"floor serving at http://{HOST}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", help="answer with this body instead of the built-in one")
    args = parser.parse_args()
    if args.body_file:
        global RESPONSE
        with open(args.body_file, "rb") as body:
            RESPONSE = http_response(body.read())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port))


if __name__ == "__main__":
    main()
