"""GET /console/api/clusters/{cluster}/stream: one cluster's picture as server-sent events,
the whole of it first (`snapshot`), then what changed (`delta`), then `gone` if the cluster
goes.

The store says when anything changed (its generation moves after every write), so the stream
reads the cluster again only after a write, and at most every TICK seconds however many
writes there were; a cluster whose read takes long is read only after twice that long again,
so a stream never reads more than a third of the time. A browser watching a 10,000-node
cluster under thousands of changes a second gets a few deltas a second, each of them only
the nodes that changed. A stream ends when the server stops (the event stream's
subscription is the signal) or its client leaves."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from hyperpod_local.console.reads import ClusterWatch
from hyperpod_local.outlets import EventDispatcher
from hyperpod_local.store.database import Store

# How often the stream looks at the store's generation, and so the most often a browser gets
# a delta.
TICK = 0.25
# A comment line this often keeps an idle stream open through proxies.
KEEPALIVE_SECONDS = 15.0


def frame(event: str, data: Any) -> bytes:
    body = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return f"event: {event}\ndata: {body}\n\n".encode()


def cluster_stream(
    store: Store, outlets: EventDispatcher | None, watch: ClusterWatch, first: dict[str, Any]
) -> StreamingResponse:
    """`first`: the snapshot already read (so a cluster that is not there was a 404)."""

    async def body() -> AsyncIterator[bytes]:
        # Nothing is handed to this subscription: it ends when the server ends the streams.
        ending = (
            outlets.stream.subscribe(asyncio.get_running_loop(), lambda _envelope: False)
            if outlets is not None
            else None
        )
        ended = asyncio.ensure_future(ending.next()) if ending is not None else None
        try:
            seen = first.pop("_generation")
            yield frame("snapshot", first)
            quiet_since = next_read = time.monotonic()
            while True:
                if ended is not None:
                    await asyncio.wait({ended}, timeout=TICK)
                    if ended.done():
                        return
                else:
                    await asyncio.sleep(TICK)
                # A shared store's generation is a query: not on the event loop.
                generation = (
                    await run_in_threadpool(lambda: store.generation)
                    if store.shared
                    else store.generation
                )
                if generation == seen:
                    if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                        quiet_since = time.monotonic()
                        yield b": keep-alive\n\n"
                    continue
                if time.monotonic() < next_read:
                    continue
                # Taken before the read: a write during it moves the generation again.
                seen = generation
                began = time.monotonic()
                delta = await run_in_threadpool(watch.changes)
                # A big cluster's read is costly: the stream takes at most a third of the time.
                next_read = began + max(TICK, 3 * (time.monotonic() - began))
                if delta is None:
                    yield frame("gone", {"ClusterName": watch.name})
                    return
                if delta:
                    quiet_since = time.monotonic()
                    yield frame("delta", delta)
        finally:
            if ended is not None:
                ended.cancel()
            if ending is not None and outlets is not None:
                outlets.stream.unsubscribe(ending)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def first_snapshot(store: Store, watch: ClusterWatch) -> dict[str, Any]:
    """The snapshot a stream starts with, and the store's generation before it was read."""
    generation = store.generation
    snapshot = watch.snapshot()
    snapshot["_generation"] = generation
    return snapshot
