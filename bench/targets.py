"""boto3 clients for each benchmark target, and the no-network floor.

Both in-process mocks work through botocore's `before-send` event and are open for the whole
run, so every client is made with exactly the one in-process handler it is meant to reach (or
none): the other handlers are taken off that client's own event emitter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from floor_server import FLOOR_REQUEST_ID

# (event name, handler) pairs that an in-process mock put into botocore's BUILTIN_HANDLERS.
Handler = tuple[str, Callable[..., Any]]

CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=10,
    read_timeout=300,
    max_pool_connections=16,
)


ROLE = "arn:aws:iam::123456789012:role/HyperPodExecutionRole"


def group(name: str, count: int) -> dict[str, Any]:
    """An instance group both implementations accept."""
    return {
        "InstanceGroupName": name,
        "InstanceType": "ml.c5.xlarge",
        "InstanceCount": count,
        "ExecutionRole": ROLE,
        "ThreadsPerCore": 1,
        "LifeCycleConfig": {"SourceS3Uri": "s3://sagemaker-bench/", "OnCreate": "on_create.sh"},
    }


def make_client(
    region: str,
    *,
    endpoint_url: str | None = None,
    strip: list[Handler] | None = None,
    config: Config | None = None,
) -> Any:
    """A SageMaker client in its own session, with test credentials, no retries, and the
    in-process handlers in `strip` taken off it."""
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=region,
    )
    client = session.client("sagemaker", endpoint_url=endpoint_url, config=config or CONFIG)
    for event, handler in strip or []:
        client.meta.events.unregister(event, handler)
    return client


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = BytesIO(body)

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._body.read()


def no_network_client(region: str, strip: list[Handler], body: bytes) -> Any:
    """The no-network floor: every call answered by a canned `body` with no socket."""
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-requestid": FLOOR_REQUEST_ID,
        "content-length": str(len(body)),
    }

    def answer(request: Any, **_kwargs: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, dict(headers), _RawBody(body))

    client = make_client(region, strip=strip)
    client.meta.events.register("before-send.sagemaker", answer)
    return client


def ask_afresh(client: Any) -> Any:
    """The client's requests say `Cache-Control: no-cache`: hyperpod-local computes every
    answer instead of sending a cached one."""

    def no_cache(request: Any, **_kwargs: Any) -> None:
        request.headers["Cache-Control"] = "no-cache"

    client.meta.events.register("before-sign.sagemaker", no_cache)
    return client


@dataclass
class Target:
    """One thing measured: how to make its clients and, for a server, its process."""

    key: str
    label: str
    kind: str  # "server", "inproc" or "floor"
    new_client: Callable[[str], Any]
    pid: Callable[[], int] | None = None
    settle: Callable[[], None] | None = None
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, region: str) -> Any:
        if region not in self.clients:
            self.clients[region] = self.new_client(region)
        return self.clients[region]

    def server_cpu(self) -> float | None:
        from servers import cpu_seconds

        return None if self.pid is None else cpu_seconds(self.pid())


def two_groups(per_group: int) -> list[dict[str, Any]]:
    return [group("workers-a", per_group), group("workers-b", per_group)]


def create(client: Any, name: str, groups: list[dict[str, Any]]) -> None:
    client.create_cluster(ClusterName=name, InstanceGroups=groups)
