"""GET /metrics, as Prometheus scrapes it from the real server: requests by operation and
outcome, engine steps and backlog, nodes by status, faults, automatic recoveries started and
held back; who may scrape; and two backends in one process keeping their own numbers."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

import hyperpod_local
from hyperpod_local.backend import Backend
from hyperpod_local.server import create_app
from hyperpod_local.settings import Settings
from tests.support import ServerProcess, asgi_get, exchange, group, request_bytes

DETECTION = 15
CLUSTER_SETUP = 300
TERMINATE = 120
PROVISION_CPU = 240

Samples = dict[str, list[tuple[dict[str, str], float]]]


def get(
    server: ServerProcess, path: str = "/metrics", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def parse(text: str) -> Samples:
    """Every sample of a scrape, by sample name (a counter's carry `_total`)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def scrape(server: ServerProcess) -> Samples:
    headers = {"Authorization": f"Bearer {server.admin_token}"} if server.admin_token else {}
    status, response_headers, text = get(server, headers=headers)
    assert status == 200, text
    assert response_headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of the one sample of `name` whose labels include `labels`; 0 if none."""
    found = [v for have, v in samples.get(name, []) if labels.items() <= have.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for have, v in samples.get(name, []) if labels.items() <= have.items())


def nodes(samples: Samples, cluster: str) -> dict[tuple[str, str], float]:
    """(group, status) -> nodes, for one cluster."""
    return {
        (labels["group"], labels["status"]): v
        for labels, v in samples.get("hyperpod_local_nodes", [])
        if labels["cluster"] == cluster
    }


def eks_cluster(sm: Any, name: str, size: int) -> None:
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[group("w", size)],
        NodeProvisioningMode="Continuous",
        NodeRecovery="Automatic",
        Orchestrator={"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}},
    )


def instance_ids(sm: Any, cluster: str) -> list[str]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster)
    return [node["InstanceId"] for page in pages for node in page["ClusterNodeSummaries"]]


def gpu_fault(server: ServerProcess, cluster: str, instance_id: str) -> None:
    spec = {"Kind": "hardware", "Cluster": cluster, "InstanceId": instance_id, "Type": "GpuXid79"}
    status, body = server.admin("POST", "/_hyperpod/faults", spec)
    assert status == 201, body


# What a request counts ------------------------------------------------------------------------


def test_requests_are_counted_by_operation_and_outcome_with_their_latency(
    fresh_server: ServerProcess,
) -> None:
    sm = fresh_server.client()
    sm.create_cluster(ClusterName="m", InstanceGroups=[group("g", 2)])
    for _ in range(3):
        sm.describe_cluster(ClusterName="m")  # the second and third from the response cache
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster(ClusterName="absent")
    with pytest.raises(sm.exceptions.ClientError, match="ValidationException"):
        sm.batch_replace_cluster_nodes(ClusterName="m", NodeIds=["i-0123456789abcdef0"] * 26)
    port = urlsplit(fresh_server.url).port
    assert port is not None
    # No operation the model knows, and a method the API does not take.
    assert exchange(port, request_bytes(b"{}", target=b"SageMaker.NoSuchThing"))[0] == [400]
    assert exchange(port, request_bytes(b"{}", method=b"PUT"))[0] == [405]

    samples = scrape(fresh_server)
    requests = "hyperpod_local_requests_total"
    assert value(samples, requests, operation="CreateCluster", status="200", outcome="ok") == 1
    assert value(samples, requests, operation="DescribeCluster", status="200", outcome="ok") == 3
    assert (
        value(
            samples, requests, operation="DescribeCluster", status="400", outcome="ResourceNotFound"
        )
        == 1
    )
    assert (
        value(
            samples,
            requests,
            operation="BatchReplaceClusterNodes",
            status="400",
            outcome="ValidationException",
        )
        == 1
    )
    assert (
        value(samples, requests, operation="-", status="400", outcome="UnknownOperationException")
        == 1
    )
    assert value(samples, requests, operation="-", status="405", outcome="MethodNotAllowed") == 1
    # The admin calls and the scrape itself are not API requests.
    assert total(samples, requests) == 8

    histogram = "hyperpod_local_request_duration_seconds"
    assert value(samples, histogram + "_count", operation="DescribeCluster") == 4
    assert 0 < value(samples, histogram + "_sum", operation="DescribeCluster") < 10
    buckets = sorted(
        (float(labels["le"]), v)
        for labels, v in samples[histogram + "_bucket"]
        if labels["operation"] == "DescribeCluster"
    )
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)
    assert buckets[-1] == (math.inf, 4)
    assert value(samples, "hyperpod_local_build_info", version=hyperpod_local.__version__) == 1


def test_a_replacement_shows_in_the_nodes_the_steps_and_the_backlog(
    fresh_server: ServerProcess,
) -> None:
    sm = fresh_server.client()
    sm.create_cluster(ClusterName="r", InstanceGroups=[group("ctl", 1), group("workers", 3)])
    samples = scrape(fresh_server)
    # A classic cluster's nodes come into being as their instances launch, after
    # cluster_setup: until then there is no node to count.
    assert nodes(samples, "r") == {}
    # The creation is scheduled; under a manual clock nothing falls due until time moves, and
    # an advance runs whatever it passes: the backlog of a manual clock is always empty.
    assert value(samples, "hyperpod_local_engine_steps_scheduled") >= 1
    assert value(samples, "hyperpod_local_engine_steps_due") == 0
    fresh_server.advance(CLUSTER_SETUP + 1)
    assert nodes(scrape(fresh_server), "r") == {("ctl", "Pending"): 1, ("workers", "Pending"): 3}
    fresh_server.settle()

    samples = scrape(fresh_server)
    assert nodes(samples, "r") == {("ctl", "Running"): 1, ("workers", "Running"): 3}
    assert next(labels for labels, _ in samples["hyperpod_local_nodes"]) == {
        "account": "123456789012",
        "region": "us-east-1",
        "cluster": "r",
        "group": "ctl",
        "status": "Running",
    }
    created_steps = total(samples, "hyperpod_local_engine_steps_total")
    assert value(samples, "hyperpod_local_engine_steps_total", kind="cluster_create") >= 1
    assert value(samples, "hyperpod_local_engine_steps_scheduled") == 0

    victim = sm.list_cluster_nodes(ClusterName="r", InstanceGroupNameContains="workers")[
        "ClusterNodeSummaries"
    ][0]["InstanceId"]
    sm.batch_replace_cluster_nodes(ClusterName="r", NodeIds=[victim])
    samples = scrape(fresh_server)
    assert nodes(samples, "r") == {
        ("ctl", "Running"): 1,
        ("workers", "Running"): 2,
        ("workers", "ShuttingDown"): 1,
    }
    assert value(samples, "hyperpod_local_engine_steps_scheduled") >= 1
    fresh_server.advance(TERMINATE + 1)  # the old instance is gone, the new one Pending
    assert nodes(scrape(fresh_server), "r")[("workers", "Pending")] == 1
    fresh_server.settle()

    samples = scrape(fresh_server)
    assert nodes(samples, "r") == {("ctl", "Running"): 1, ("workers", "Running"): 3}
    steps = "hyperpod_local_engine_steps_total"
    ran = total(samples, steps)
    # Every step since the creation was the replacement's, and each one went through.
    assert value(samples, steps, kind="node_replace", outcome="ok") == ran - created_steps > 0
    assert (
        total(samples, steps, outcome="failed") == total(samples, steps, outcome="abandoned") == 0
    )
    assert value(samples, "hyperpod_local_engine_steps_due") == 0
    assert value(samples, "hyperpod_local_engine_steps_scheduled") == 0
    # A manual clock moves to each step's due time before running it: none is ever late.
    assert value(samples, "hyperpod_local_engine_step_lateness_seconds_count") == ran
    assert value(samples, "hyperpod_local_engine_step_lateness_seconds_sum") == 0
    assert (
        value(samples, "hyperpod_local_requests_total", operation="BatchReplaceClusterNodes") == 1
    )

    sm.delete_cluster(ClusterName="r")
    fresh_server.settle()
    assert nodes(scrape(fresh_server), "r") == {}


def test_a_real_clock_measures_how_late_steps_run(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--speed", "600").start()
    try:
        sm = server.client()
        # About a second of wall-clock time to create at 600x.
        sm.create_cluster(ClusterName="late", InstanceGroups=[group("g", 2)])
        deadline = time.monotonic() + 60
        while sm.describe_cluster(ClusterName="late")["ClusterStatus"] != "InService":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        samples = scrape(server)
    finally:
        server.stop()
    count = value(samples, "hyperpod_local_engine_step_lateness_seconds_count")
    late = value(samples, "hyperpod_local_engine_step_lateness_seconds_sum")
    assert count == total(samples, "hyperpod_local_engine_steps_total") > 0
    # The loop sleeps until the next due step: it runs each within a fraction of a second.
    assert 0 <= late / count < 1


# Faults and automatic recovery ----------------------------------------------------------------


def test_recoveries_started_and_held_back_by_the_breaker_and_the_in_flight_cap(
    fresh_server: ServerProcess,
) -> None:
    sm = fresh_server.client()
    started, held = (
        "hyperpod_local_recoveries_started_total",
        "hyperpod_local_recoveries_held_back_total",
    )
    samples = scrape(fresh_server)
    # Shown from the start, at 0.
    assert [value(samples, started, action=a) for a in ("reboot", "replace")] == [0, 0]
    assert [value(samples, held, reason=r) for r in ("breaker", "in_flight")] == [0, 0]

    # A storm: 3 of 10 nodes at once is over the breaker's 20%: all 3 are held back.
    eks_cluster(sm, "storm", 10)
    fresh_server.settle()
    storm = instance_ids(sm, "storm")[:3]
    for node in storm:
        gpu_fault(fresh_server, "storm", node)
    samples = scrape(fresh_server)
    assert value(samples, "hyperpod_local_faults_active", kind="hardware") == 3
    assert value(samples, "hyperpod_local_faults_active", kind="capacity") == 0
    fresh_server.advance(DETECTION + 1)
    samples = scrape(fresh_server)
    assert value(samples, held, reason="breaker") == 3
    assert value(samples, started, action="replace") == 0
    assert nodes(samples, "storm") == {("w", "Running"): 7, ("w", "Failure"): 3}

    # Time passing holds them still, and they are not counted again.
    fresh_server.settle()
    assert value(scrape(fresh_server), held, reason="breaker") == 3
    # A client replaces one: two unhealthy are within the limit, and both held-back go.
    sm.batch_replace_cluster_nodes(ClusterName="storm", NodeIds=[storm[0]])
    fresh_server.settle()
    samples = scrape(fresh_server)
    assert value(samples, started, action="replace") == 2
    assert value(samples, held, reason="breaker") == 3
    assert value(samples, held, reason="in_flight") == 0
    assert nodes(samples, "storm") == {("w", "Running"): 10}
    # A replaced instance takes its fault with it.
    assert value(samples, "hyperpod_local_faults_active", kind="hardware") == 0

    # 3 of 15 is within the breaker, but only 2 recoveries run at once: one waits its turn.
    eks_cluster(sm, "queue", 15)
    fresh_server.settle()
    for node in instance_ids(sm, "queue")[:3]:
        gpu_fault(fresh_server, "queue", node)
    fresh_server.advance(DETECTION + 1)
    samples = scrape(fresh_server)
    assert value(samples, started, action="replace") == 2 + 2
    assert value(samples, held, reason="in_flight") == 1
    fresh_server.advance(TERMINATE + PROVISION_CPU + 1)
    samples = scrape(fresh_server)
    assert value(samples, started, action="replace") == 2 + 3
    assert value(samples, held, reason="in_flight") == 1
    assert value(samples, held, reason="breaker") == 3


# Who may scrape -------------------------------------------------------------------------------


def test_in_strict_mode_metrics_need_the_admin_token(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("AKIDALICEEXAMPLE alice-secret 111111111111\n")
    server = ServerProcess(
        tmp_path / "data", "--auth", "strict", "--credentials", str(credentials)
    ).start()
    try:
        assert server.admin_token
        status, _, body = get(server)
        assert status == 401
        assert "Authorization: Bearer" in body
        assert get(server, headers={"Authorization": "Bearer not-the-token"})[0] == 401
        samples = scrape(server)  # with the token
        assert "hyperpod_local_engine_steps_due" in samples
    finally:
        server.stop()


def test_in_open_mode_metrics_answer_loopback_but_not_through_a_proxy(
    server: ServerProcess,
) -> None:
    assert "hyperpod_local_nodes" in {
        f.name for f in text_string_to_metric_families(get(server)[2])
    }
    status, _, body = get(server, headers={"X-Forwarded-For": "203.0.113.7"})
    assert status == 403
    assert "loopback" in body


def test_metrics_take_get_and_speak_openmetrics_when_asked(server: ServerProcess) -> None:
    status, headers, body = get(server, headers={"Accept": "application/openmetrics-text"})
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")
    port = urlsplit(server.url).port
    assert port is not None
    assert exchange(port, request_bytes(b"{}", path=b"/metrics"))[0] == [405]


# In one process -------------------------------------------------------------------------------


def test_two_backends_in_one_process_keep_their_own_numbers(tmp_path: Path) -> None:
    backends = [Backend(Settings(data_dir=tmp_path / name, clock="manual")) for name in ("a", "b")]
    try:
        first, second = (create_app(backend) for backend in backends)
        body = json.dumps({"ClusterName": "one", "InstanceGroups": [group("g", 2)]}).encode()
        assert asgi_post(second, "CreateCluster", body) == 200
        backends[1].engine.settle()
        assert asgi_post(second, "ListClusters", b"{}") == 200
        assert asgi_post(first, "ListClusters", b"{}") == 200
        one, two = (parse(asgi_get(app, "/metrics")[1].decode()) for app in (first, second))
    finally:
        for backend in backends:
            backend.close()
    requests = "hyperpod_local_requests_total"
    assert total(one, requests) == value(one, requests, operation="ListClusters") == 1
    assert total(two, requests) == 2
    assert value(two, requests, operation="CreateCluster", outcome="ok") == 1
    assert total(one, "hyperpod_local_engine_steps_total") == 0
    assert total(two, "hyperpod_local_engine_steps_total") > 0
    assert nodes(one, "one") == {}
    assert nodes(two, "one") == {("g", "Running"): 2}


def asgi_post(app: Any, operation: str, body: bytes) -> int:
    """An API call to an ASGI app in this process, from a loopback client; its status."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [
        (b"x-amz-target", f"SageMaker.{operation}".encode()),
        (b"content-type", b"application/x-amz-json-1.1"),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
    }
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def test_a_part_of_the_server_that_keeps_its_own_counts_adds_them_in_one_call(
    tmp_path: Path,
) -> None:
    # As event delivery will: it counts for itself, and /metrics reads the counts when scraped.
    backend = Backend(Settings(data_dir=tmp_path / "data", clock="manual"))
    try:
        sent: dict[tuple[str, ...], float] = {}
        backend.metrics.add_counter("things_sent", "Things sent, by target.", ["target"], sent.copy)
        app = create_app(backend)
        assert (
            parse(asgi_get(app, "/metrics")[1].decode()).get("hyperpod_local_things_sent_total")
            is None
        )
        sent[("http://127.0.0.1:9000/hook",)] = 3
        sent[("eventbridge:default",)] = 1
        samples = parse(asgi_get(app, "/metrics")[1].decode())
    finally:
        backend.close()
    assert samples["hyperpod_local_things_sent_total"] == [
        ({"target": "eventbridge:default"}, 1),
        ({"target": "http://127.0.0.1:9000/hook"}, 3),
    ]
