"""The response cache: a repeated read is answered from memory while the store is unchanged,
and a client can never tell (same answers, faults still met, accounts still apart)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperpod_local.backend import Backend
from hyperpod_local.engine.clock import ManualClock
from hyperpod_local.server import build_protocol
from hyperpod_local.settings import Settings
from hyperpod_local.store.data_dir_lock import DataDirInUse
from hyperpod_local.wire.protocol import HttpRequest, JsonProtocol
from hyperpod_local.wire.response_cache import MAX_REQUEST_BYTES, CacheKey, ResponseCache
from tests.support import ServerProcess, error_of, group
from tests.test_faults import fault_in_force


def _cache(server: ServerProcess) -> dict[str, Any]:
    status, body = server.admin("GET", "/_hyperpod/stats")
    assert status == 200
    return body["ResponseCache"]


def test_a_repeated_describe_is_a_hit_and_a_write_shows_at_once(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("workers", 2)])
    server.settle()
    first = sm.describe_cluster(ClusterName=name)
    before = _cache(server)
    second = sm.describe_cluster(ClusterName=name)
    after = _cache(server)
    assert after["Hits"] == before["Hits"] + 1
    assert second["ClusterStatus"] == first["ClusterStatus"] == "InService"
    # Request ids stay fresh on a hit.
    assert second["ResponseMetadata"]["RequestId"] != first["ResponseMetadata"]["RequestId"]

    nodes = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert {node["InstanceStatus"]["Status"] for node in nodes} == {"Running"}
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[nodes[0]["InstanceId"]])
    # The same request as before, straight after the write: the new state, not the old one.
    again = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    statuses = {node["InstanceId"]: node["InstanceStatus"]["Status"] for node in again}
    assert statuses[nodes[0]["InstanceId"]] != "Running"

    # The engine's writes count too: time moves, the replacement finishes, the page changes.
    server.settle()
    settled = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert nodes[0]["InstanceId"] not in {node["InstanceId"] for node in settled}
    assert len(settled) == 2


def test_cache_control_no_cache_is_answered_afresh(server: ServerProcess, name: str) -> None:
    sm = server.client()

    def no_cache(request: Any, **_kwargs: Any) -> None:
        # Directives are case-insensitive and may come with others (RFC 9111).
        request.headers["Cache-Control"] = "max-age=0, No-Cache"

    sm.meta.events.register("before-sign.sagemaker", no_cache)
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("workers", 1)])
    sm.describe_cluster(ClusterName=name)
    before = _cache(server)
    assert sm.describe_cluster(ClusterName=name)["ClusterName"] == name
    after = _cache(server)
    assert after["Hits"] == before["Hits"]

    pragma = server.client()

    def pragma_no_cache(request: Any, **_kwargs: Any) -> None:
        request.headers["Pragma"] = "no-cache"

    pragma.meta.events.register("before-sign.sagemaker", pragma_no_cache)
    assert pragma.describe_cluster(ClusterName=name)["ClusterName"] == name
    assert _cache(server)["Hits"] == after["Hits"]
    # An answer computed afresh is kept: the next request without the headers is a hit.
    server.client().describe_cluster(ClusterName=name)
    assert _cache(server)["Hits"] == after["Hits"] + 1


def test_the_engines_idle_ticks_keep_the_cache(tmp_path: Path) -> None:
    """With a real clock the engine wakes every second and saves the time; that changes no
    answer, so a poller keeps getting cached ones. Work the engine does still shows."""
    proc = ServerProcess(tmp_path / "data", "--speed", "3000").start()
    try:
        sm = proc.client()
        sm.create_cluster(ClusterName="ticking", InstanceGroups=[group("workers", 1)])
        deadline = time.monotonic() + 60
        while sm.describe_cluster(ClusterName="ticking")["ClusterStatus"] != "InService":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while proc.admin("GET", "/_hyperpod/clock")[1]["PendingSteps"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sm.describe_cluster(ClusterName="ticking")
        before = _cache(proc)
        time.sleep(2.5)  # two or more idle ticks
        assert sm.describe_cluster(ClusterName="ticking")["ClusterStatus"] == "InService"
        assert _cache(proc)["Hits"] == before["Hits"] + 1
        [node] = sm.list_cluster_nodes(ClusterName="ticking")["ClusterNodeSummaries"]
        sm.batch_reboot_cluster_nodes(ClusterName="ticking", NodeIds=[node["InstanceId"]])
        while True:
            [seen] = sm.list_cluster_nodes(ClusterName="ticking")["ClusterNodeSummaries"]
            if seen["InstanceStatus"]["Status"] == "Running":
                break
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)
    finally:
        proc.stop()


def test_a_cached_answer_is_never_another_accounts(server: ServerProcess, name: str) -> None:
    owner = server.client(access_key="111111111111")
    other = server.client(access_key="222222222222")
    owner.create_cluster(ClusterName=name, InstanceGroups=[group("workers", 1)])
    for _ in range(3):
        owner.describe_cluster(ClusterName=name)
    with pytest.raises(ClientError) as refused:
        other.describe_cluster(ClusterName=name)
    assert error_of(refused)[0] == "ResourceNotFound"
    # Another region of the same account is another place too.
    with pytest.raises(ClientError) as elsewhere:
        server.client(region="us-west-2", access_key="111111111111").describe_cluster(
            ClusterName=name
        )
    assert error_of(elsewhere)[0] == "ResourceNotFound"


def test_request_faults_are_met_by_repeated_reads(server: ServerProcess, name: str) -> None:
    sm = server.client(retries={"total_max_attempts": 1, "mode": "standard"})
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("workers", 1)])
    sm.describe_cluster(ClusterName=name)
    sm.describe_cluster(ClusterName=name)  # now cached
    with fault_in_force(
        server, {"Kind": "throttling", "Operations": ["DescribeCluster"], "Rate": 1.0}
    ):
        with pytest.raises(ClientError) as throttled:
            sm.describe_cluster(ClusterName=name)
        assert error_of(throttled)[0] == "ThrottlingException"
    with fault_in_force(
        server, {"Kind": "latency", "Operations": ["DescribeCluster"], "Seconds": 0.3}
    ):
        started = time.monotonic()
        sm.describe_cluster(ClusterName=name)
        assert time.monotonic() - started >= 0.3
    assert sm.describe_cluster(ClusterName=name)["ClusterName"] == name


def test_without_the_cache_nothing_is_kept(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data", "--clock", "manual", "--no-response-cache").start()
    try:
        sm = proc.client()
        sm.create_cluster(ClusterName="plain", InstanceGroups=[group("workers", 1)])
        for _ in range(3):
            assert sm.describe_cluster(ClusterName="plain")["ClusterName"] == "plain"
        assert _cache(proc) == {"Enabled": False}
    finally:
        proc.stop()


def test_a_second_server_on_the_same_data_dir_is_refused(fresh_server: ServerProcess) -> None:
    second = ServerProcess(fresh_server.data_dir, "--clock", "manual")
    with pytest.raises(RuntimeError) as refused:
        second.start()
    assert "is in use by another hyperpod-local" in str(refused.value)
    # The first one is untouched.
    assert fresh_server.client().list_clusters()["ClusterSummaries"] == []


def test_the_lock_goes_with_the_process_that_held_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ServerProcess(data_dir, "--clock", "manual").start().kill()
    # SIGKILL left no lock behind; an open backend holds one until it closes.
    first = Backend(Settings(data_dir=data_dir, clock="manual"))
    try:
        with pytest.raises(DataDirInUse, match="in use by another hyperpod-local"):
            Backend(Settings(data_dir=data_dir, clock="manual"))
    finally:
        first.close()
    Backend(Settings(data_dir=data_dir, clock="manual")).close()


# Property: the same requests to a backend with the cache and one without get the same
# answers, whatever the order of reads, writes and time.

START = 1_767_225_600.0
NAMES = ("alpha", "beta")

_reads = st.one_of(
    st.tuples(st.just("DescribeCluster"), st.sampled_from(NAMES)),
    st.tuples(st.just("ListClusters"), st.sampled_from([1, 2, 10])),
    st.tuples(st.just("ListClusterNodes"), st.sampled_from(NAMES)),
    st.tuples(st.just("ListClusterEvents"), st.sampled_from(NAMES)),
    st.tuples(st.just("DescribeFirstNode"), st.sampled_from(NAMES)),
)
_writes = st.one_of(
    st.tuples(st.just("CreateCluster"), st.sampled_from(NAMES)),
    st.tuples(st.just("ReplaceFirstNode"), st.sampled_from(NAMES)),
    st.tuples(st.just("RebootFirstNode"), st.sampled_from(NAMES)),
    st.tuples(st.just("DeleteCluster"), st.sampled_from(NAMES)),
    st.tuples(st.just("advance"), st.sampled_from([5, 60, 600, 3600])),
)
_steps = st.lists(st.one_of(_reads, _reads, _writes), min_size=5, max_size=40)


class _World:
    def __init__(self, data_dir: Path, cached: bool) -> None:
        self.backend = Backend(
            Settings(data_dir=data_dir, clock="manual", seed=7, response_cache=cached),
            clock=ManualClock(START),
        )
        self.protocol: JsonProtocol = build_protocol(self.backend)
        self.backend.start()

    def call(self, operation: str, params: dict[str, Any]) -> tuple[int, Any]:
        response = self.protocol.handle(
            HttpRequest(
                "POST",
                "/",
                {"x-amz-target": f"SageMaker.{operation}"},
                json.dumps(params).encode(),
            )
        )
        return response.status, json.loads(response.body)

    def close(self) -> None:
        self.backend.close()


def _first_node(world: _World, cluster: str) -> str | None:
    status, page = world.call("ListClusterNodes", {"ClusterName": cluster})
    nodes = page.get("ClusterNodeSummaries", []) if status == 200 else []
    return nodes[0]["InstanceId"] if nodes else None


def _request(world: _World, step: tuple[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The request a step makes of `world` (None: the step has nothing to act on)."""
    kind, arg = step
    if kind == "DescribeCluster":
        return kind, {"ClusterName": arg}
    if kind == "ListClusters":
        return kind, {"MaxResults": arg}
    if kind in ("ListClusterNodes", "ListClusterEvents"):
        return kind, {"ClusterName": arg}
    if kind == "CreateCluster":
        return kind, {
            "ClusterName": arg,
            "InstanceGroups": [group("workers", 2), group("spare", 1)],
            "NodeRecovery": "Automatic",
        }
    if kind == "DeleteCluster":
        return kind, {"ClusterName": arg}
    node = _first_node(world, arg)
    if node is None:
        return None
    if kind == "DescribeFirstNode":
        return "DescribeClusterNode", {"ClusterName": arg, "NodeId": node}
    operation = (
        "BatchReplaceClusterNodes" if kind == "ReplaceFirstNode" else ("BatchRebootClusterNodes")
    )
    return operation, {"ClusterName": arg, "NodeIds": [node]}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=_steps)
def test_answers_are_the_same_with_and_without_the_cache(
    tmp_path: Path, steps: list[tuple[str, Any]]
) -> None:
    run = tmp_path / uuid.uuid4().hex
    cached, plain = _World(run / "cached", True), _World(run / "plain", False)
    try:
        for step in steps:
            if step[0] == "advance":
                assert cached.backend.engine.advance(step[1]) == plain.backend.engine.advance(
                    step[1]
                )
                continue
            request = _request(plain, step)
            assert request == _request(cached, step)
            if request is None:
                continue
            # Every read is asked twice, so the second can come from the cache.
            repeats = 2 if request[0].startswith(("Describe", "List")) else 1
            for _ in range(repeats):
                assert cached.call(*request) == plain.call(*request), request
        assert plain.protocol.cache is None
    finally:
        cached.close()
        plain.close()


def test_the_property_run_does_hit_the_cache(tmp_path: Path) -> None:
    """The property above means something only if the cache answers some of its reads."""
    world = _World(tmp_path / "w", True)
    try:
        world.call("CreateCluster", _request(world, ("CreateCluster", "alpha"))[1])  # type: ignore[index]
        world.call("DescribeCluster", {"ClusterName": "alpha"})
        world.call("DescribeCluster", {"ClusterName": "alpha"})
        assert world.protocol.cache is not None
        assert world.protocol.cache.stats()["Hits"] == 1
    finally:
        world.close()


def test_memory_is_bounded_whatever_clients_send() -> None:
    generation = 1
    cache = ResponseCache(lambda: generation, max_total_bytes=10_000)
    assert not cache.admits(b" " * (MAX_REQUEST_BYTES + 1))
    keys = [CacheKey("123456789012", "us-east-1", "DescribeCluster", b"%d" % i) for i in range(8)]
    for key in keys:
        assert cache.lookup(key) is None
        cache.keep(key, cache.generation(), b"x" * 3_000)
    stats = cache.stats()
    assert stats["Bytes"] <= 10_000 and stats["Entries"] == 3
    # The newest are kept, the oldest went first.
    assert cache.lookup(keys[-1]) is not None and cache.lookup(keys[0]) is None
    generation = 2  # a write: everything goes
    assert cache.lookup(keys[-1]) is None and cache.stats()["Bytes"] == 0


def test_a_mock_that_fails_to_open_leaves_its_data_dir_free(tmp_path: Path) -> None:
    import hyperpod_local

    with pytest.raises(ValueError, match="credentials"):
        hyperpod_local.mock(tmp_path / "d", auth="strict").__enter__()
    with hyperpod_local.mock(tmp_path / "d") as hp:
        assert hp.client().list_clusters()["ClusterSummaries"] == []


def test_without_the_data_dir_lock_there_is_no_cache(tmp_path: Path) -> None:
    """A store named by URL may have other writers: its answers are always computed."""
    backend = Backend(
        Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'shared.db'}")
    )
    try:
        assert build_protocol(backend).cache is None
    finally:
        backend.close()
