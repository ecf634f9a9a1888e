"""The server's log (stderr): text by default, one JSON object per line with
`--log-format json`; at info, one line per API request with its request id, operation,
account, region, status and duration."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from hyperpod_local.cli.logs import JsonFormatter
from tests.support import ServerProcess, group


def test_json_log_lines_carry_each_requests_fields(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", "--clock", "manual", "--log-format", "json", "--log-level", "info"
    ).start()
    try:
        sm = server.client()
        created = sm.create_cluster(ClusterName="logged", InstanceGroups=[group("g", 1)])
        with pytest.raises(sm.exceptions.ResourceNotFound) as missing:
            sm.describe_cluster(ClusterName="absent")
        other = server.client(region="eu-west-1", access_key="222222222222")
        other.list_clusters()
    finally:
        server.stop()
    lines = server.log_path.read_text().splitlines()
    assert lines
    entries: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line parses
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
    # uvicorn's own lines are JSON too.
    assert any(
        e["logger"].startswith("uvicorn") and e["message"].startswith("Started server process")
        for e in entries
    )
    requests = [e for e in entries if e["logger"] == "hyperpod_local.requests"]
    assert [e["operation"] for e in requests] == [
        "CreateCluster",
        "DescribeCluster",
        "ListClusters",
    ]
    create, describe, listing = requests
    assert create["request_id"] == created["ResponseMetadata"]["RequestId"]
    assert describe["request_id"] == missing.value.response["ResponseMetadata"]["RequestId"]
    assert (create["account"], create["region"], create["status"]) == (
        "123456789012",
        "us-east-1",
        200,
    )
    assert create["level"] == "INFO" and create["error"] is None
    assert (describe["status"], describe["error"]) == (400, "ResourceNotFound")
    assert (listing["account"], listing["region"]) == ("222222222222", "eu-west-1")
    for entry in requests:
        assert isinstance(entry["duration_ms"], float) and 0 < entry["duration_ms"] < 10_000
        assert entry["request_id"] in entry["message"]


def test_the_log_is_text_by_default_and_quiet_about_requests_below_info(tmp_path: Path) -> None:
    quiet = ServerProcess(tmp_path / "quiet", "--clock", "manual", "--log-format", "json").start()
    try:
        quiet.client().list_clusters()
    finally:
        quiet.stop()
    assert "hyperpod_local.requests" not in quiet.log_path.read_text()

    text = ServerProcess(tmp_path / "text", "--clock", "manual", "--log-level", "info").start()
    try:
        answer = text.client().list_clusters()
    finally:
        text.stop()
    log = text.log_path.read_text()
    [line] = [line for line in log.splitlines() if " hyperpod_local.requests: " in line]
    assert " INFO hyperpod_local.requests: ListClusters 200 ok in " in line
    assert answer["ResponseMetadata"]["RequestId"] in line
    assert not line.startswith("{")


def test_a_traceback_stays_inside_its_one_json_line() -> None:
    formatter = JsonFormatter()
    try:
        raise RuntimeError("step failed\non two lines")
    except RuntimeError:
        record = logging.getLogger("hyperpod_local.engine.runner").makeRecord(
            "hyperpod_local.engine.runner",
            logging.ERROR,
            __file__,
            1,
            "step %s failed",
            ("node_replace/terminate",),
            sys.exc_info(),
        )
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["message"] == "step node_replace/terminate failed"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("RuntimeError: step failed\non two lines")
