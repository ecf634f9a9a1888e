"""Inputs that must not poison the server's state for good (issue 11), through the real server:
fault texts that are not valid Unicode or break the model's rules, numbers that are not finite
or out of range (admin values and `serve` flags), HyperPod time past its end, admin bodies
past their limits, and admin errors that are JSON with a 4xx where the input is at fault.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hyperpod_local.admin import admin_app
from hyperpod_local.engine.clock import MAX_SPEED, MAX_TIME, ManualClock, RealClock
from tests.support import CLI, ServerProcess, asgi_get, exchange, group, request_bytes

TEN_YEARS = 10 * 365 * 86400.0


def post_raw(server: ServerProcess, path: str, body: bytes) -> tuple[int, Any]:
    """A POST of raw bytes (NaN and Infinity literals, lone surrogate escapes); the answer
    must be JSON whatever the status."""
    port = int(server.url.rsplit(":", 1)[1])
    statuses, received = exchange(port, request_bytes(body, target=None, path=path.encode()))
    head, _, payload = received.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), received[:300]
    return statuses[0], json.loads(payload)


def faults_listed(server: ServerProcess) -> list[dict[str, Any]]:
    status, body = server.admin("GET", "/_hyperpod/faults")
    assert status == 200, body
    return list(body["Faults"])


def refused(server: ServerProcess, spec: dict[str, Any], field: str) -> None:
    status, body = server.admin("POST", "/_hyperpod/faults", spec)
    assert status == 400, (spec, body)
    assert body["error"] == "InvalidFault", (spec, body)
    assert field in body["message"], (spec, body)


# 1: fault texts ------------------------------------------------------------------------------


def test_fault_texts_with_a_lone_surrogate_are_refused_naming_the_field(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    server.settle()
    before = faults_listed(server)
    bad = "\ud800"
    for spec, field in [
        ({"Kind": "throttling", "Operations": [bad]}, "Operations"),
        ({"Kind": "latency", "Operations": ["ListClusters", bad], "Seconds": 0.1}, "Operations"),
        ({"Kind": "alarm", "AlarmName": bad}, "AlarmName"),
        ({"Kind": "alarm", "AlarmName": "loss" + bad}, "AlarmName"),
        ({"Kind": "capacity", "InstanceType": bad}, "InstanceType"),
        ({"Kind": "capacity", "InstanceType": "ml.c5.xlarge", "Cluster": bad}, "Cluster"),
        ({"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": bad}, "Instance"),
        ({"Kind": "hardware", "Cluster": name, "InstanceGroupName": "g", "Type": bad}, "Type"),
        ({"Kind": bad}, "Kind"),
        ({"Kind": "alarm", "AlarmName": "a", bad: 1}, "takes no field"),
    ]:
        refused(server, spec, field)
    assert faults_listed(server) == before


def test_fault_texts_follow_the_data_apis_rules_for_the_same_thing(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    server.settle()
    before = faults_listed(server)
    for spec, field in [
        ({"Kind": "capacity", "InstanceType": "ml.imaginary.99xlarge"}, "ClusterInstanceType"),
        ({"Kind": "capacity", "InstanceType": "x" * 10_000}, "InstanceType"),
        ({"Kind": "alarm", "AlarmName": "   "}, "AlarmName"),
        ({"Kind": "alarm", "AlarmName": "a" * 256}, "AlarmName"),
        ({"Kind": "alarm", "AlarmName": 7}, "AlarmName"),
        ({"Kind": "throttling", "Operations": ["NoSuchOperation"]}, "Operations"),
        ({"Kind": "throttling", "Operations": ["ListClusters"] * 65}, "Operations"),
        ({"Kind": "hardware", "Cluster": "bad name!", "InstanceId": "i-1"}, "Cluster"),
        ({"Kind": "internal_error", "Cluster": name, "InstanceId": "x" * 300}, "InstanceId"),
        ({"Kind": "capacity", "InstanceType": "ml.c5.xlarge", "Account": "12"}, "Account"),
        ({"Kind": "alarm", "AlarmName": "a", "Rate": 0.5}, "takes no field 'Rate'"),
        ({"Kind": "hardware", "Cluster": name, "Typo": "GpuXid79"}, "takes no field 'Typo'"),
    ]:
        refused(server, spec, field)
    assert faults_listed(server) == before
    # What the model allows still goes in.
    status, body = server.admin("POST", "/_hyperpod/faults", {"Kind": "alarm", "AlarmName": "é"})
    assert status == 201, body
    [made] = body["Faults"]
    assert server.admin("DELETE", f"/_hyperpod/faults/{made['FaultId']}")[0] == 204


def test_a_fault_stored_with_a_surrogate_by_an_older_release_lists_and_removes(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data, "--clock", "manual").start()
    try:
        status, body = first.admin(
            "POST", "/_hyperpod/faults", {"Kind": "throttling", "Operations": ["ListTags"]}
        )
        assert status == 201, body
        fault_id = body["Faults"][0]["FaultId"]
    finally:
        first.stop()
    # What an older release committed for "Operations": ["\ud800"] (SQLAlchemy's JSON escapes).
    with sqlite3.connect(data / "hyperpod.db") as db:
        db.execute("UPDATE faults SET params = ?", ('{"Operations": ["\\ud800"], "Rate": 1.0}',))
    second = ServerProcess(data, "--clock", "manual").start()
    try:
        [listed] = faults_listed(second)
        assert listed["FaultId"] == fault_id and listed["Operations"] == ["\ud800"]
        assert second.admin("DELETE", f"/_hyperpod/faults/{fault_id}")[0] == 204
        assert faults_listed(second) == []
    finally:
        second.stop()


# 2: numbers ----------------------------------------------------------------------------------


def test_admin_numbers_that_are_not_finite_or_out_of_range_are_json_400s(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    server.settle()
    summaries = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    node = summaries[0]["InstanceId"]
    hardware = f'"Kind": "hardware", "Cluster": "{name}", "InstanceId": "{node}", "Type": "EfaDown"'
    counted = f'"Kind": "lifecycle_script", "Cluster": "{name}", "InstanceGroupName": "g"'
    before = faults_listed(server)
    for body, field in [
        *(
            ("{" + hardware + ', "DetectionDelaySeconds": ' + delay + "}", "DetectionDelaySeconds")
            for delay in ("NaN", "1e400", "-Infinity", "86401")
        ),
        ('{"Kind": "throttling", "Rate": NaN}', "Rate"),
        ('{"Kind": "throttling", "Rate": true}', "Rate"),
        ('{"Kind": "latency", "Seconds": Infinity}', "Seconds"),
        ('{"Kind": "latency", "Seconds": NaN}', "Seconds"),
        *(
            ("{" + counted + ', "Count": ' + count + "}", "Count")
            for count in (str(10**30), "1000001", "1e400", "2.5")
        ),
    ]:
        status, answer = post_raw(server, "/_hyperpod/faults", body.encode())
        assert (status, answer["error"]) == (400, "InvalidFault"), (body, answer)
        assert field in answer["message"], (body, answer)
    for seconds in ("NaN", "Infinity", "-1", "1e400", str(10**30), "315360001", '"5"', "true"):
        status, answer = post_raw(
            server, "/_hyperpod/clock/advance", b'{"seconds": %s}' % seconds.encode()
        )
        assert (status, answer["error"]) == (400, "InvalidRequest"), (seconds, answer)
    assert faults_listed(server) == before
    assert server.admin("GET", "/_hyperpod/clock")[0] == 200


@pytest.mark.parametrize(
    "flag",
    [
        ("--speed", "nan"),
        ("--speed", "inf"),
        ("--speed", "1e308"),
        ("--speed", str(MAX_SPEED * 2)),
        ("--speed", "0"),
        ("--client-timeout", "nan"),
        ("--client-timeout", "inf"),
        ("--client-timeout", "1e9"),
        ("--recovery-breaker-threshold", "nan"),
        ("--recovery-breaker-threshold", "1.5"),
        ("--max-body-bytes", str(10**12)),
        ("--max-instances-per-cluster", str(10**30)),
        ("--recovery-max-in-flight", str(10**30)),
        ("--port", "70000"),
    ],
)
def test_serve_refuses_numeric_flags_that_are_not_finite_or_out_of_range(
    tmp_path: Path, flag: tuple[str, str]
) -> None:
    data = tmp_path / "data"
    done = subprocess.run(
        [CLI, "serve", "--port", "0", "--data-dir", str(data), *flag],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"Invalid value for '{flag[0]}'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not data.exists()  # refused before the data dir is made


def test_clocks_refuse_speeds_and_saved_times_that_are_not_times() -> None:
    for speed in (float("nan"), float("inf"), 1e308, 0.0, -1.0):
        with pytest.raises(ValueError, match="speed"):
            RealClock(speed)
    # A clock an older release saved as nan starts afresh; a real clock stops at the end.
    assert abs(ManualClock(float("nan")).now() - time.time()) < 60
    assert abs(RealClock(60, float("nan")).now() - time.time()) < 600
    near_the_end = RealClock(60, MAX_TIME - 0.005)
    time.sleep(0.01)
    assert near_the_end.now() == MAX_TIME


# 3: the end of HyperPod time -----------------------------------------------------------------


def test_hyperpod_time_has_an_end_that_every_client_can_print(fresh_server: ServerProcess) -> None:
    # Ten years at a time, as far as advances go.
    now = fresh_server.advance(0)
    while MAX_TIME - now > TEN_YEARS:
        now = fresh_server.advance(TEN_YEARS)
    status, body = fresh_server.admin("POST", "/_hyperpod/clock/advance", {"seconds": TEN_YEARS})
    assert status == 409, body
    assert body["error"] == "ClockLimit" and "9000-01-01T00:00:00Z" in body["message"]
    assert fresh_server.advance(0) == now  # nothing moved
    # Right up to the end, and not a millisecond past it.
    assert fresh_server.advance(MAX_TIME - now - 60) == MAX_TIME - 60
    status, body = fresh_server.admin("POST", "/_hyperpod/clock/advance", {"seconds": 61})
    assert (status, body["error"]) == (409, "ClockLimit"), body

    # boto3 still reads every answer; work due past the end cannot be settled.
    sm = fresh_server.client()
    sm.create_cluster(ClusterName="late", InstanceGroups=[group("g", 1)])
    described = sm.describe_cluster(ClusterName="late")
    assert described["CreationTime"] == datetime(8999, 12, 31, 23, 59, tzinfo=UTC)
    status, body = fresh_server.admin("POST", "/_hyperpod/clock/settle")
    assert (status, body["error"]) == (409, "StillInFlight"), body
    assert "end of HyperPod time" in body["message"]
    assert body["InFlight"]["Clusters"] == ["late"]
    status, clock = fresh_server.admin("GET", "/_hyperpod/clock")
    assert (status, clock["Now"]) == (200, MAX_TIME - 60), clock
    assert sm.list_clusters()["ClusterSummaries"][0]["ClusterName"] == "late"


# 4: bodies -----------------------------------------------------------------------------------


def test_admin_bodies_are_bounded_and_timed_like_the_apis(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        "--clock",
        "manual",
        "--max-body-bytes",
        "100000",
        "--client-timeout",
        "1",
    ).start()
    try:
        port = int(server.url.rsplit(":", 1)[1])
        big = b'{"Kind": "alarm", "AlarmName": "' + b"a" * 200_000 + b'"}'
        status, body = post_raw(server, "/_hyperpod/faults", big)
        assert (status, body["error"]) == (413, "RequestEntityTooLarge"), body
        # A body that never comes: a JSON 408 once the client timeout passes.
        started = time.monotonic()
        statuses, received = exchange(
            port,
            request_bytes(b"{}", target=None, path=b"/_hyperpod/faults", length=b"50"),
            timeout=10,
        )
        assert statuses == [408], received
        assert json.loads(received.partition(b"\r\n\r\n")[2])["error"] == "RequestTimeout"
        assert time.monotonic() - started < 5

        sm = server.client()
        sm.create_cluster(ClusterName="vol", InstanceGroups=[group("g", 1)])
        server.settle()
        node = sm.list_cluster_nodes(ClusterName="vol")["ClusterNodeSummaries"][0]["InstanceId"]
        status, view = server.admin("GET", f"/_hyperpod/clusters/vol/nodes/{node}")
        assert status == 200, view
        volume = view["Volumes"][0]["VolumeId"]
        path = f"/_hyperpod/clusters/vol/nodes/{node}/volumes/{volume}/marker"
        status, body = server.admin("PUT", path, "m" * (64 * 1024 + 1))
        assert (status, body["error"]) == (413, "MarkerTooLarge"), body
        assert server.admin("PUT", path, "m" * (64 * 1024)) == (204, None)
        statuses, received = exchange(
            port, request_bytes(b"\xff\xfe", target=None, method=b"PUT", path=path.encode())
        )
        assert statuses == [400], received
        assert server.admin("GET", f"/_hyperpod/clusters/vol/nodes/{node}")[0] == 200
    finally:
        server.stop()


# 5: admin errors are JSON ----------------------------------------------------------------------


def test_settle_under_a_standing_shortage_is_a_json_409_naming_what_is_in_flight(
    fresh_server: ServerProcess,
) -> None:
    sm = fresh_server.client()
    sm.create_cluster(
        ClusterName="short",
        InstanceGroups=[group("p5", 1, "ml.p5.48xlarge")],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/short"}},
    )
    status, body = fresh_server.admin(
        "POST", "/_hyperpod/faults", {"Kind": "capacity", "InstanceType": "ml.p5.48xlarge"}
    )
    assert status == 201, body
    status, body = fresh_server.admin("POST", "/_hyperpod/clock/settle")
    assert (status, body["error"]) == (409, "StillInFlight"), body
    in_flight = body["InFlight"]
    assert in_flight["Clusters"] == ["short"] and in_flight["Steps"] >= 1
    assert in_flight["Operations"] and "short" in body["message"]
    assert fresh_server.admin("GET", "/_hyperpod/clock")[0] == 200


def test_admin_errors_are_json_with_a_4xx_for_the_clients_fault(server: ServerProcess) -> None:
    for body in (
        b"[" * 100_000,
        b'{"Kind": ' + b"[" * 50_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ):
        status, answer = post_raw(server, "/_hyperpod/faults", body)
        assert status == 400 and answer["error"] == "InvalidRequest", answer
    status, answer = post_raw(
        server, "/_hyperpod/clock/advance", b'{"seconds": ' + b"9" * 5000 + b"}"
    )
    assert status == 400, answer
    # Methods a route does not take: a JSON 405, not Starlette's plain text.
    status, answer = server.admin("GET", "/_hyperpod/clock/advance")
    assert (status, answer["error"]) == (405, "MethodNotAllowed"), answer
    status, answer = server.admin("DELETE", "/_hyperpod/faults")
    assert (status, answer["error"]) == (405, "MethodNotAllowed"), answer
    status, answer = server.admin("GET", "/_hyperpod/nowhere")
    assert (status, answer["error"]) == (404, "NotFound"), answer


def test_an_unexpected_admin_error_is_a_json_500_with_the_traceback_only_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenStore:
        def read(self) -> Any:
            raise RuntimeError("secret detail")

    backend = SimpleNamespace(engine=None, store=BrokenStore())
    app = admin_app(backend)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        start, body = asgi_get(app, "/_hyperpod/instances")  # the error stays inside the app
    assert start["status"] == 500
    assert (b"content-type", b"application/json") in start["headers"]
    answer = json.loads(body)
    assert answer["error"] == "InternalError" and "secret detail" not in body.decode()
    assert "secret detail" in caplog.text and "Traceback" in caplog.text
