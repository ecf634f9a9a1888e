"""Events out: `serve --events-to` webhooks and EventBridge, and the admin API's event stream,
through the real server. Each committed cluster event of a Continuous cluster goes out as the
EventBridge envelope AWS documents, at least once, in order; a dead or slow target holds up
neither the API nor the engine nor the other targets; what a target missed is counted and
logged; a restart delivers what a crash left undelivered, even of a cluster deleted since."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from tests.support import ServerProcess, group
from tests.test_metrics import scrape, value
from tests.webhooks import Webhook, free_port, wait_for

ENVELOPE_KEYS = [
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
]
DETAIL_TYPE = "SageMaker HyperPod Cluster Event"


def continuous(sm: Any, name: str, count: int = 2, **extra: Any) -> str:
    return str(
        sm.create_cluster(
            ClusterName=name,
            InstanceGroups=[group("workers", count)],
            NodeProvisioningMode="Continuous",
            **extra,
        )["ClusterArn"]
    )


def events_of(sm: Any, cluster: str) -> list[dict[str, Any]]:
    """ListClusterEvents, oldest first (the order they were written in)."""
    pages = sm.get_paginator("list_cluster_events").paginate(
        ClusterName=cluster, SortOrder="Ascending"
    )
    return [event for page in pages for event in page["Events"]]


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["EventId"] for event in events]


def as_millis(value: Any) -> int:
    return round(value.timestamp() * 1000)


def target_stats(server: ServerProcess) -> dict[str, dict[str, Any]]:
    status, body = server.admin("GET", "/_hyperpod/stats")
    assert status == 200, body
    return {target["Target"]: target for target in body["Events"]["Targets"]}


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


# The envelope ----------------------------------------------------------------------------------


def test_a_webhook_gets_each_event_as_the_eventbridge_envelope(tmp_path: Path) -> None:
    with Webhook() as hook:
        server = ServerProcess(
            tmp_path / "data", "--clock", "manual", "--events-to", hook.url
        ).start()
        try:
            sm = server.client()
            # A classic cluster first: HyperPod has cluster events for Continuous clusters
            # only, so none of its events may come before the Continuous cluster's.
            sm.create_cluster(ClusterName="classic", InstanceGroups=[group("workers", 1)])
            server.settle()
            arn = continuous(sm, "shape")
            server.settle()
            listed = events_of(sm, "shape")
            hook.wait_for_ids(set(ids(listed)))
            # In the order they were written, nothing else before them.
            assert hook.event_ids() == ids(listed)
            for envelope in hook.received:
                details = envelope["detail"]["EventDetails"]
                assert list(envelope) == ENVELOPE_KEYS
                assert envelope["version"] == "0"
                assert envelope["detail-type"] == DETAIL_TYPE
                assert envelope["source"] == "aws.sagemaker"
                assert envelope["account"] == "123456789012"
                assert envelope["region"] == "us-east-1"
                assert envelope["resources"] == [arn]
                assert list(envelope["detail"]) == ["EventDetails"]
                # The envelope's id is EventBridge's own, never the EventId.
                assert str(uuid.UUID(envelope["id"])) == envelope["id"] != details["EventId"]
                # The record is DescribeClusterEvent's, EventTime in epoch milliseconds.
                described = sm.describe_cluster_event(
                    ClusterName="shape", EventId=details["EventId"]
                )["EventDetails"]
                assert details == {**described, "EventTime": as_millis(described["EventTime"])}
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", envelope["time"])
                assert envelope["time"] == time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(details["EventTime"] // 1000)
                )
            # The same event is delivered with the same envelope id each time (a receiver
            # can drop repeats): a second server on another data dir cannot show it, but the
            # id is the EventId's, so two events never share one.
            assert len({envelope["id"] for envelope in hook.received}) == len(listed)
            stats = target_stats(server)[hook.url]
            assert stats["Delivered"] == len(listed)
            assert (stats["Failed"], stats["Dropped"], stats["Waiting"]) == (0, 0, 0)
        finally:
            server.stop()


# Slow and dead targets ------------------------------------------------------------------------


def test_a_slow_target_holds_up_neither_the_api_nor_the_engine(tmp_path: Path) -> None:
    with Webhook(hold=True) as slow:
        server = ServerProcess(
            tmp_path / "data", "--clock", "manual", "--events-to", slow.url
        ).start()
        try:
            sm = server.client()
            continuous(sm, "slow")
            # The target takes the first event and does not answer.
            wait_for(lambda: len(slow.received) >= 1, what="the first POST")
            # Meanwhile the API answers and the engine builds the whole cluster.
            held = [timed(lambda: sm.describe_cluster(ClusterName="slow")) for _ in range(20)]
            settle_seconds = timed(server.settle)
            assert sm.describe_cluster(ClusterName="slow")["ClusterStatus"] == "InService"
            listed = events_of(sm, "slow")
            assert len(listed) > 1
            # Still only the first event has reached the target: it is held, in order.
            assert slow.event_ids() == ids(listed)[:1]
            slow.release.set()
            slow.wait_for_ids(set(ids(listed)))
            assert slow.event_ids() == ids(listed)
            free = [timed(lambda: sm.describe_cluster(ClusterName="slow")) for _ in range(20)]
            print(
                f"DescribeCluster median {sorted(held)[10] * 1000:.2f} ms while the target "
                f"was held, {sorted(free)[10] * 1000:.2f} ms after; settle took "
                f"{settle_seconds:.2f} s while it was held"
            )
        finally:
            server.stop()


def test_a_dead_target_is_counted_and_logged_and_holds_up_no_other(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/events"
    with Webhook() as live:
        server = ServerProcess(
            tmp_path / "data",
            "--clock",
            "manual",
            "--events-to",
            dead,
            "--events-to",
            live.url,
            "--events-max-age",
            "3",
        ).start()
        try:
            sm = server.client()
            continuous(sm, "dead")
            server.settle()
            assert sm.describe_cluster(ClusterName="dead")["ClusterStatus"] == "InService"
            listed = events_of(sm, "dead")
            # The live target has every event while the dead one is still being retried.
            live.wait_for_ids(set(ids(listed)))
            assert target_stats(server)[dead]["Delivered"] == 0
            # Each event is given up once it is 3 s old.
            wait_for(
                lambda: target_stats(server)[dead]["Failed"] == len(listed),
                what="the dead target's give-ups",
            )
            stats = target_stats(server)
            assert (stats[dead]["Dropped"], stats[dead]["Waiting"]) == (0, 0)
            assert stats[live.url]["Delivered"] == len(listed)
            assert stats[live.url]["Failed"] == stats[live.url]["Dropped"] == 0
            # And Prometheus sees the same counts.
            samples = scrape(server)
            assert value(samples, "hyperpod_local_events_delivered_total", target=live.url) == len(
                listed
            )
            assert value(samples, "hyperpod_local_events_failed_total", target=dead) == len(listed)
            assert value(samples, "hyperpod_local_events_dropped_total", target=dead) == 0
        finally:
            server.stop()
        log = server.log_path.read_text()
        assert f"events to {dead}: gave up on" in log
        assert "Connection refused" in log
        assert f"events to {live.url}" not in log


def test_past_the_queue_limit_the_oldest_events_are_dropped_and_counted(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/events"
    server = ServerProcess(
        tmp_path / "data",
        "--clock",
        "manual",
        "--events-to",
        dead,
        "--events-queue-limit",
        "4",
        "--events-max-age",
        "3",
    ).start()
    try:
        sm = server.client()
        continuous(sm, "queued")
        server.settle()
        listed = events_of(sm, "queued")
        assert len(listed) > 4

        def done() -> bool:
            stats = target_stats(server)[dead]
            return bool(stats["Failed"] + stats["Dropped"] == len(listed))

        wait_for(done, what="the dead target's drops and give-ups")
        stats = target_stats(server)[dead]
        # At most 4 waited at any time: the rest were dropped, oldest first, untried.
        assert stats["Dropped"] >= len(listed) - 4 - 1
        assert stats["Failed"] >= 1 and stats["Waiting"] == 0
    finally:
        server.stop()
    assert f"events to {dead}: dropped" in server.log_path.read_text()


# Restarts --------------------------------------------------------------------------------------


def test_a_restart_delivers_what_a_crash_left_undelivered(tmp_path: Path) -> None:
    port = free_port()
    args = ("--clock", "manual", "--events-to", f"http://127.0.0.1:{port}/events")
    server = ServerProcess(tmp_path / "data", *args).start()
    try:
        sm = server.client()
        continuous(sm, "kept", 1)
        continuous(sm, "gone", 1)
        server.settle()
        kept, gone = ids(events_of(sm, "kept")), ids(events_of(sm, "gone"))
        # Deleting a cluster removes its events from the store; not from the outbox.
        sm.delete_cluster(ClusterName="gone")
        server.settle()
    finally:
        server.kill()  # nothing listened: every event is still to be delivered
    with Webhook(port=port) as hook:
        server = ServerProcess(tmp_path / "data", *args).start()
        try:
            hook.wait_for_ids({*kept, *gone})
            descriptions = [e["detail"]["EventDetails"]["Description"] for e in hook.received]
            assert "Cluster gone deletion started successfully" in descriptions
            # In the order they were written, the deleted cluster's among them.
            received = hook.event_ids()
            assert [i for i in received if i in kept] == kept
            assert [i for i in received if i in gone] == gone
            # And what happens after the restart goes out too.
            sm = server.client()
            continuous(sm, "after", 1)
            server.settle()
            hook.wait_for_ids(set(ids(events_of(sm, "after"))))
        finally:
            server.stop()
    # A clean stop saved the target's place: a third start sends nothing again.
    with Webhook(port=port) as again:
        server = ServerProcess(tmp_path / "data", *args).start()
        try:
            sm = server.client()
            sm.batch_delete_cluster_nodes(
                ClusterName="kept",
                NodeIds=[
                    sm.list_cluster_nodes(ClusterName="kept")["ClusterNodeSummaries"][0][
                        "InstanceId"
                    ]
                ],
            )
            server.settle()
            newest = ids(events_of(sm, "kept"))[len(kept) :]
            again.wait_for_ids(set(newest))
            assert again.event_ids() == newest
        finally:
            server.stop()


def test_events_the_store_no_longer_keeps_still_go_out(tmp_path: Path) -> None:
    # The store keeps 2 events a cluster and 14 days of them; the outbox is apart from both.
    port = free_port()
    args = ("--clock", "manual", "--events-per-cluster", "2")
    args += ("--events-to", f"http://127.0.0.1:{port}/events")
    server = ServerProcess(tmp_path / "data", *args).start()
    try:
        sm = server.client()
        continuous(sm, "capped", 1)
        server.settle()
        server.advance(15 * 86400)  # past the retention: every event of the store goes
        assert events_of(sm, "capped") == []
    finally:
        server.kill()  # nothing listened: every event is still to be delivered
    with Webhook(port=port) as hook:
        server = ServerProcess(tmp_path / "data", *args).start()
        try:
            expected = [
                "Cluster capped creation started successfully",
                "InstanceGroup workers creation started successfully in Cluster capped",
                "Instance Group workers creation in Cluster capped completed successfully",
                "Cluster capped creation completed successfully",
            ]

            def descriptions() -> list[str]:
                return [e["detail"]["EventDetails"]["Description"] for e in hook.received]

            wait_for(lambda: set(expected) <= set(descriptions()), what="the capped events")
            assert len(hook.event_ids()) > 2
        finally:
            server.stop()


# EventBridge ------------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server(tmp_path: Path) -> Iterator[str]:
    """moto's server mode on a free loopback port; its URL."""
    port = free_port()
    log = (tmp_path / "moto.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                assert proc.poll() is None, (tmp_path / "moto.log").read_text()
                return False
            return True

        wait_for(listening, what="moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_an_eventbridge_target_puts_each_event_on_the_bus(tmp_path: Path) -> None:
    with moto_server(tmp_path) as moto:
        aws = {
            "endpoint_url": moto,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        events, sqs = boto3.client("events", **aws), boto3.client("sqs", **aws)
        events.create_event_bus(Name="hyperpod")
        queues = {}
        # The default bus with HyperPod's own source, as a rule written for AWS matches it;
        # a bus of its own with another source (real EventBridge keeps aws.* for AWS).
        for bus, source in (("default", "aws.sagemaker"), ("hyperpod", "hyperpod-local.test")):
            url = sqs.create_queue(QueueName=f"q-{bus}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            pattern = {"source": [source], "detail-type": [DETAIL_TYPE]}
            events.put_rule(Name=f"r-{bus}", EventBusName=bus, EventPattern=json.dumps(pattern))
            events.put_targets(
                Rule=f"r-{bus}",
                EventBusName=bus,
                Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}],
            )
            queues[bus] = url
        server = ServerProcess(
            tmp_path / "data",
            "--clock",
            "manual",
            "--events-to",
            "eventbridge:default",
            "--events-to",
            "eventbridge:hyperpod?source=hyperpod-local.test",
            env={
                "AWS_ENDPOINT_URL_EVENTS": moto,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            },
        ).start()
        try:
            sm = server.client()
            arn = continuous(sm, "bridged")
            server.settle()
            listed = events_of(sm, "bridged")

            def received(bus: str) -> list[dict[str, Any]]:
                got = []
                while True:
                    answer = sqs.receive_message(QueueUrl=queues[bus], MaxNumberOfMessages=10)
                    messages = answer.get("Messages", [])
                    if not messages:
                        return got
                    got += [json.loads(message["Body"]) for message in messages]

            for bus, source in (("default", "aws.sagemaker"), ("hyperpod", "hyperpod-local.test")):
                bodies: list[dict[str, Any]] = []

                def all_there(bodies: list[dict[str, Any]] = bodies, bus: str = bus) -> bool:
                    bodies += received(bus)
                    got = {body["detail"]["EventDetails"]["EventId"] for body in bodies}
                    return got >= set(ids(listed))

                wait_for(all_there, what=f"the events on bus {bus}")
                for body in bodies:
                    assert body["source"] == source
                    assert body["detail-type"] == DETAIL_TYPE
                    assert body["resources"] == [arn]
                    assert body["region"] == "us-east-1"
                    details = body["detail"]["EventDetails"]
                    assert details["ClusterName"] == "bridged"
                    assert details["ClusterArn"] == arn
                    assert isinstance(details["EventTime"], int)
            stats = target_stats(server)
            assert stats["eventbridge:default"]["Delivered"] == len(listed)
            assert stats["eventbridge:hyperpod?source=hyperpod-local.test"]["Failed"] == 0
        finally:
            server.stop()


def test_a_bad_target_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "hyperpod-local"),
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--events-to",
            "ftp://example.invalid/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Error: --events-to ftp://example.invalid/: a target is http://HOST[:PORT]/PATH "
        "(a webhook), or eventbridge:BUS (PutEvents onto an event bus)"
    ]


# The stream -------------------------------------------------------------------------------------


def open_stream(server: ServerProcess, query: str = "", token: str | None = None) -> Any:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("GET", "/_hyperpod/events/stream" + query, headers=headers)
    return conn, conn.getresponse()


def read_events(response: Any, count: int) -> list[tuple[str, dict[str, Any]]]:
    """(id, envelope) of the next `count` events of a text/event-stream body."""
    found: list[tuple[str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    while len(found) < count:
        line = response.readline().decode().rstrip("\n")
        if line == "":
            if "data" in fields:
                found.append((fields.get("id", ""), json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return found


def test_the_event_stream_follows_events_as_server_sent_events(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    try:
        conn, response = open_stream(server, "?cluster=followed")
        try:
            assert response.status == 200
            assert response.getheader("Content-Type").startswith("text/event-stream")
            # A comment first: from here on, every event is the client's.
            assert response.readline() == b": hyperpod-local cluster events\n"
            assert response.readline() == b"\n"
            sm = server.client()
            continuous(sm, "other", 1)
            arn = continuous(sm, "followed", 1)
            server.settle()
            listed = events_of(sm, "followed")
            streamed = read_events(response, len(listed))
            assert [envelope["detail"]["EventDetails"]["EventId"] for _, envelope in streamed] == (
                ids(listed)
            )
            for event_id, envelope in streamed:
                assert list(envelope) == ENVELOPE_KEYS
                assert event_id == envelope["id"]
                assert envelope["resources"] == [arn]
        finally:
            conn.close()
        # A filter it does not know is a 400, as the admin API answers.
        conn, response = open_stream(server, "?clusterr=x")
        assert response.status == 400
        assert json.loads(response.read())["error"] == "InvalidRequest"
        conn.close()
    finally:
        server.stop()


def test_the_event_stream_wants_the_admin_token_in_strict_mode(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("AKIDSTREAMEXAMPLE stream-secret 123456789012\n")
    server = ServerProcess(
        tmp_path / "data", "--auth", "strict", "--credentials", str(credentials)
    ).start()
    try:
        conn, response = open_stream(server)
        assert response.status == 401
        conn.close()
        conn, response = open_stream(server, token=server.admin_token)
        assert response.status == 200
        assert response.readline() == b": hyperpod-local cluster events\n"
        conn.close()
    finally:
        server.stop()


def test_a_server_with_a_stream_open_stops_at_once(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    conn, response = open_stream(server)
    try:
        assert response.readline() == b": hyperpod-local cluster events\n"
        # uvicorn waits up to 5 s for open responses before it stops and then cuts them; the
        # server ends its streams first, so the client sees a whole, ended stream.
        assert server.stop() == 0
        assert response.read() == b"\n"
    finally:
        conn.close()
