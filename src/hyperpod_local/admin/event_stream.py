"""GET /_hyperpod/events/stream: the cluster events, as the EventBridge envelopes the
`--events-to` targets get, in the server-sent events format (text/event-stream), from the
moment of the request on. Optional filters: `account`, `region`, `cluster` (name or ARN).

Like the rest of the admin API it wants the admin token in strict mode and answers loopback
clients only in open mode (server.py): an event names accounts, clusters and instances. The
token is a header, never a query parameter, which would end up in proxies' and servers'
access logs; a browser reads the stream with fetch() and the header, not EventSource.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import StreamingResponse

from hyperpod_local.admin.answers import AdminError
from hyperpod_local.outlets import EventDispatcher
from hyperpod_local.outlets.targets import Envelope

# A comment line this often keeps an idle stream open through proxies, and finds a client
# that left.
KEEPALIVE_SECONDS = 15.0
_FILTERS = ("account", "region", "cluster")


def stream_response(outlets: EventDispatcher | None, request: Request) -> StreamingResponse:
    if outlets is None:
        raise AdminError(404, "NoEventStream", "This server does not deliver events.")
    unknown = sorted(set(request.query_params) - set(_FILTERS))
    if unknown:
        raise AdminError(
            400,
            "InvalidRequest",
            f"Unknown query parameter {unknown[0]!r}; the stream takes {', '.join(_FILTERS)}.",
        )
    matches = _matcher(
        request.query_params.get("account"),
        request.query_params.get("region"),
        request.query_params.get("cluster"),
    )

    async def body() -> AsyncIterator[bytes]:
        # Here, not before: a client gone before its stream began leaves no subscription.
        subscription = outlets.stream.subscribe(asyncio.get_running_loop(), matches)
        try:
            # At once: the client knows it is subscribed, and every event from here is its.
            yield b": hyperpod-local cluster events\n\n"
            while True:
                try:
                    envelope = await asyncio.wait_for(subscription.next(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if envelope is None:
                    return
                data = json.dumps(envelope, ensure_ascii=True, separators=(",", ":"))
                yield f"id: {envelope['id']}\ndata: {data}\n\n".encode()
        finally:
            outlets.stream.unsubscribe(subscription)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _matcher(
    account: str | None, region: str | None, cluster: str | None
) -> Callable[[Envelope], bool]:
    def matches(envelope: Envelope) -> bool:
        details = envelope["detail"]["EventDetails"]
        return (
            (account is None or envelope["account"] == account)
            and (region is None or envelope["region"] == region)
            and (cluster is None or cluster in (details["ClusterName"], details["ClusterArn"]))
        )

    return matches
