"""The admin API under /_hyperpod/: time, a node's inside view, and test hooks.

Clusters are named by name (in the account and region of the `account` and `region` query
parameters, by default 123456789012 and us-east-1) or by ARN.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hyperpod_local.admin import faults
from hyperpod_local.admin.answers import HANDLERS, AdminError, AdminJSON, guarded
from hyperpod_local.admin.attachments import attached_ids, attached_view
from hyperpod_local.admin.event_stream import stream_response
from hyperpod_local.api.resolve import lookup_cluster
from hyperpod_local.backend import Backend
from hyperpod_local.domain.errors import ValidationError
from hyperpod_local.domain.ids import parse_cluster_arn
from hyperpod_local.domain.model import LEGACY_IMAGE_RELEASE, Cluster
from hyperpod_local.domain.scope import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Scope
from hyperpod_local.wire.response_cache import ResponseCache

# The most one advance may ask for; HyperPod time as a whole ends at engine/clock.py MAX_TIME.
MAX_ADVANCE = 10 * 365 * 86400.0
# A volume marker is a label a test writes to see which volume survives, not a payload.
MAX_MARKER_BYTES = 64 * 1024


def admin_app(backend: Backend, cache: ResponseCache | None = None) -> Any:
    """The admin routes; `cache` is the API's response cache, whose counters /stats shows."""
    engine, store = backend.engine, backend.store

    def clock_view() -> dict[str, Any]:
        # Saved as it is shown: a time a client has seen never comes back smaller.
        engine.save_clock()
        view: dict[str, Any] = {
            "Mode": backend.clock.mode,
            "Now": backend.clock.now(),
            "PendingSteps": engine.pending(),
        }
        speed = getattr(backend.clock, "speed", None)
        if speed is not None:
            view["Speed"] = speed
        return view

    def find(request: Request) -> Cluster:
        given = request.path_params["cluster"]
        arn = parse_cluster_arn(given)
        scope = (
            Scope(arn.account_id, arn.region)
            if arn
            else Scope(
                request.query_params.get("account", DEFAULT_ACCOUNT_ID),
                request.query_params.get("region", DEFAULT_REGION),
            )
        )
        with store.read() as tx:
            cluster = lookup_cluster(tx, scope, given)
        if cluster is None:
            raise AdminError(404, "ClusterNotFound", f"Could not find cluster '{given}'.")
        return cluster

    async def health(_request: Request) -> AdminJSON:
        from hyperpod_local.version import __version__

        return AdminJSON({"status": "ok", "version": __version__})

    async def stats(_request: Request) -> AdminJSON:
        view = cache.stats() if cache is not None else {"Enabled": False}
        answer: dict[str, Any] = {"ResponseCache": view}
        if backend.outlets is not None:
            answer["Events"] = await run_in_threadpool(backend.outlets.stats)
        return AdminJSON(answer)

    async def event_stream(request: Request) -> Response:
        return stream_response(backend.outlets, request)

    async def get_clock(_request: Request) -> AdminJSON:
        return AdminJSON(await run_in_threadpool(clock_view))

    async def advance(request: Request) -> AdminJSON:
        body = await _json(request)
        seconds = body.get("seconds")
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not 0 <= seconds <= MAX_ADVANCE
            or not math.isfinite(seconds)
        ):
            raise AdminError(
                400,
                "InvalidRequest",
                f'Body must be {{"seconds": N}} with 0 <= N <= {MAX_ADVANCE:g} (ten years).',
            )
        await run_in_threadpool(engine.advance, float(seconds))
        return AdminJSON(await run_in_threadpool(clock_view))

    async def settle(_request: Request) -> AdminJSON:
        elapsed = await run_in_threadpool(engine.settle)
        return AdminJSON({**(await run_in_threadpool(clock_view)), "Elapsed": elapsed})

    def node_view(request: Request) -> dict[str, Any]:
        cluster = find(request)
        instance_id = request.path_params["instance_id"]
        with store.read() as tx:
            node = tx.nodes.by_instance_id(cluster.id, instance_id)
            view = backend.provider.inside_view(tx, node) if node else None
            if view is not None:
                view.update(attached_view(tx, instance_id))
        if view is None:
            raise AdminError(
                404, "InstanceNotFound", f"No instance {instance_id} in cluster {cluster.name}."
            )
        return view

    async def get_node(request: Request) -> AdminJSON:
        return AdminJSON(await run_in_threadpool(node_view, request))

    async def put_marker(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_MARKER_BYTES:
            raise AdminError(
                413, "MarkerTooLarge", f"A volume marker is at most {MAX_MARKER_BYTES} bytes."
            )
        try:
            # Strict: a marker is shown again as JSON text, which cannot carry broken UTF-8.
            marker = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AdminError(400, "InvalidMarker", "A volume marker must be UTF-8 text.") from None

        def write() -> None:
            cluster = find(request)
            instance_id = request.path_params["instance_id"]
            with store.write() as tx:
                node = tx.nodes.by_instance_id(cluster.id, instance_id)
                written = node is not None and tx.instances.set_marker(
                    instance_id, request.path_params["volume_id"], marker
                )
            if not written:
                raise AdminError(
                    404,
                    "VolumeNotFound",
                    f"No volume {request.path_params['volume_id']} on instance {instance_id}.",
                )

        await run_in_threadpool(write)
        return Response(status_code=204)

    def instances_view() -> dict[str, Any]:
        with store.read() as tx:
            instances = [
                {
                    "InstanceId": instance_id,
                    "VolumeIds": [v["volume_id"] for v in tx.instances.volumes(instance_id)],
                    **attached_ids(tx, instance_id),
                }
                for instance_id in tx.instances.all_ids()
            ]
            orphans = tx.instances.orphan_volume_count()
        return {"Instances": instances, "OrphanVolumes": orphans}

    async def list_instances(_request: Request) -> AdminJSON:
        return AdminJSON(await run_in_threadpool(instances_view))

    async def make_legacy(request: Request) -> AdminJSON:
        def mark() -> Cluster:
            cluster = find(request)
            with store.write() as tx:
                tx.clusters.make_legacy(cluster, LEGACY_IMAGE_RELEASE)
            return cluster

        cluster = await run_in_threadpool(mark)
        return AdminJSON({"ClusterName": cluster.name, "ClusterArn": cluster.arn, "Legacy": True})

    async def add_fault(request: Request) -> AdminJSON:
        # One spec, or a list of them stored in one transaction (all or none).
        specs = await _json(request, lists=True)
        try:
            created = await run_in_threadpool(
                faults.inject_all, backend, specs if isinstance(specs, list) else [specs]
            )
        except ValidationError as error:
            raise AdminError(400, "InvalidFault", error.message) from None
        return AdminJSON({"Faults": created}, status_code=201)

    def platform_view() -> dict[str, Any]:
        return {"LatestImageReleaseVersion": store.latest_release()}

    async def get_platform(_request: Request) -> AdminJSON:
        return AdminJSON(platform_view())

    async def publish_release(request: Request) -> AdminJSON:
        version = (await _json(request)).get("ImageReleaseVersion")
        latest = store.latest_release()
        if not isinstance(version, str) or not RELEASE.fullmatch(version):
            raise AdminError(
                400,
                "InvalidRelease",
                "ImageReleaseVersion must be a release version such as 2026.01.15 "
                "(digits.digits.digits).",
            )
        if _release_key(version) <= _release_key(latest):
            raise AdminError(
                409,
                "ReleaseNotNewer",
                f"Release {version} is not newer than the latest, {latest}.",
                LatestImageReleaseVersion=latest,
            )
        await run_in_threadpool(store.publish_release, version)
        return AdminJSON(platform_view(), status_code=201)

    async def list_faults(_request: Request) -> AdminJSON:
        return AdminJSON({"Faults": await run_in_threadpool(faults.listing, backend)})

    async def delete_fault(request: Request) -> Response:
        fault_id = request.path_params["fault_id"]
        if not await run_in_threadpool(faults.remove, backend, fault_id):
            raise AdminError(404, "FaultNotFound", f"No fault {fault_id}.")
        return Response(status_code=204)

    cluster_path = "/_hyperpod/clusters/{cluster}/nodes/{instance_id}"
    app = Starlette(
        routes=[
            Route("/_hyperpod/health", health, methods=["GET"]),
            Route("/_hyperpod/stats", stats, methods=["GET"]),
            Route("/_hyperpod/clock", get_clock, methods=["GET"]),
            Route("/_hyperpod/clock/advance", advance, methods=["POST"]),
            Route("/_hyperpod/clock/settle", settle, methods=["POST"]),
            Route(cluster_path, get_node, methods=["GET"]),
            Route(cluster_path + "/volumes/{volume_id}/marker", put_marker, methods=["PUT"]),
            Route("/_hyperpod/clusters/{cluster}/legacy", make_legacy, methods=["POST"]),
            Route("/_hyperpod/instances", list_instances, methods=["GET"]),
            Route("/_hyperpod/platform", get_platform, methods=["GET"]),
            Route("/_hyperpod/platform/releases", publish_release, methods=["POST"]),
            Route("/_hyperpod/faults", add_fault, methods=["POST"]),
            Route("/_hyperpod/faults", list_faults, methods=["GET"]),
            Route("/_hyperpod/faults/{fault_id}", delete_fault, methods=["DELETE"]),
            Route("/_hyperpod/events/stream", event_stream, methods=["GET"]),
        ],
        exception_handlers=HANDLERS,
    )
    # A path with a stray slash is a JSON 404, not Starlette's empty-bodied redirect.
    app.router.redirect_slashes = False
    return guarded(app)


# The model's pattern for ImageReleaseVersion.
RELEASE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")


def _release_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


async def _json(request: Request, *, lists: bool = False) -> Any:
    """The body's JSON object (or, with `lists`, a JSON array)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise AdminError(400, "InvalidRequest", "The body is not valid JSON.") from None
    except RecursionError:
        raise AdminError(400, "InvalidRequest", "The body is nested too deeply.") from None
    if lists and isinstance(body, list):
        return body
    if not isinstance(body, dict):
        shape = "a JSON object or an array of them" if lists else "a JSON object"
        raise AdminError(400, "InvalidRequest", f"The body must be {shape}.")
    return body
