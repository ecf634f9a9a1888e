"""A standing fuzz of the admin API through the real server: random paths under /_hyperpod/,
methods and bodies (JSON with any Unicode, lone surrogates, NaN and Infinity, huge numbers,
deep nesting, fault-shaped objects, bytes that are not JSON). Every answer is JSON (a 204 has
no body), none is a 5xx, and the faults and the clock can still be read afterwards.

Bounded for `make test` (about a hundred requests); HYPERPOD_FUZZ=long runs a thousand.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperpod_local.domain.faults import HARDWARE_FAULTS, FaultKind
from tests.support import ServerProcess, group

LONG = os.environ.get("HYPERPOD_FUZZ") == "long"
FUZZ = settings(
    max_examples=1000 if LONG else 100,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLUSTER = "fuzzed"
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
FAULT_FIELDS = [
    "Cluster",
    "Account",
    "Region",
    "InstanceId",
    "InstanceGroupName",
    "Type",
    "DetectionDelaySeconds",
    "Count",
    "InstanceType",
    "Operations",
    "Rate",
    "Seconds",
    "AlarmName",
]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict]]:
    """A server of the fuzz's own (its faults and clock moves must not reach other tests),
    with one cluster so that paths and specs can name real things."""
    server = ServerProcess(Path(tmp_path_factory.mktemp("admin-fuzz")), "--clock", "manual")
    server.start()
    try:
        sm = server.client()
        sm.create_cluster(ClusterName=CLUSTER, InstanceGroups=[group("g", 1)])
        server.settle()
        node = sm.list_cluster_nodes(ClusterName=CLUSTER)["ClusterNodeSummaries"][0]
        status, view = server.admin(
            "GET", f"/_hyperpod/clusters/{CLUSTER}/nodes/{node['InstanceId']}"
        )
        assert status == 200, view
        names = {
            "instance": node["InstanceId"],
            "volume": view["Volumes"][0]["VolumeId"],
        }
        yield server, names
    finally:
        server.stop()


# -- Values ------------------------------------------------------------------------------------

# Any code point, lone surrogates included (hypothesis leaves them out by default).
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.5, 1e308, 10**30, 86400, 86401, 1_000_001, 2**63]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def fault_specs(draw: st.DrawFn, names: dict[str, str]) -> dict[str, Any]:
    """Objects shaped like fault specs, with values sometimes right and sometimes not."""
    known = {
        "Cluster": st.sampled_from([CLUSTER, "nope"]),
        "InstanceId": st.just(names["instance"]),
        "InstanceGroupName": st.just("g"),
        "Type": st.sampled_from(list(HARDWARE_FAULTS)),
        # Not the cluster's own type: a standing shortage would keep every settle busy.
        "InstanceType": st.sampled_from(["ml.g5.xlarge", "ml.p5.48xlarge"]),
        "Operations": st.just(["DescribeClusterNode"]),
        "AlarmName": st.just("fuzz-alarm"),
    }
    spec: dict[str, Any] = {"Kind": draw(st.sampled_from([*FaultKind, "meteor"]))}
    for field in draw(st.lists(st.sampled_from(FAULT_FIELDS), max_size=5, unique=True)):
        right = known.get(field)
        spec[field] = draw(right if right is not None and draw(st.booleans()) else JSON_VALUES)
    return spec


def paths(names: dict[str, str]) -> st.SearchStrategy[str]:
    segment = TEXT.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe=""))
    part = st.one_of(st.sampled_from([CLUSTER, names["instance"], names["volume"], "x"]), segment)
    node = st.builds(lambda c, i: f"clusters/{c}/nodes/{i}", part, part)
    return st.one_of(
        st.sampled_from(
            ["health", "stats", "clock", "clock/advance", "clock/settle", "instances", "faults"]
        ),
        node,
        st.builds(lambda n, v: f"{n}/volumes/{v}/marker", node, part),
        st.builds(lambda c: f"clusters/{c}/legacy", part),
        st.builds(lambda f: f"faults/{f}", part),
        st.lists(segment, max_size=4).map("/".join),
    ).map(lambda rest: "/_hyperpod/" + rest)


def as_json(value: Any) -> bytes:
    # ensure_ascii: lone surrogates as \\uXXXX escapes; NaN and Infinity as Python writes them.
    return json.dumps(value).encode()


def bodies(names: dict[str, str]) -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.none(),
        fault_specs(names).map(as_json),
        st.builds(lambda seconds: as_json({"seconds": seconds}), NUMBERS),
        JSON_VALUES.map(as_json),
        st.integers(1, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(1, 100_000).map(lambda depth: b'{"Kind": ' + b"[" * depth),
        st.binary(max_size=64),
        TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
    )


# -- The fuzz ----------------------------------------------------------------------------------


def call(server: ServerProcess, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def strict_json(raw: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON: {raw[:300]!r}")

    return json.loads(raw, parse_constant=refuse)


def test_every_admin_answer_is_json_and_none_is_a_5xx(
    target: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, names = target

    @FUZZ
    @given(method=st.sampled_from(METHODS), path=paths(names), body=bodies(names))
    def fuzz(method: str, path: str, body: bytes | None) -> None:
        status, raw = call(server, method, path, body)
        assert status < 500, (method, path, body, raw[:500])
        if status == 204:
            assert raw == b""
            return
        answer = strict_json(raw)
        assert isinstance(answer, dict), answer
        if status >= 400:
            assert isinstance(answer.get("error"), str), answer
            assert isinstance(answer.get("message"), str), answer

    fuzz()
    # Whatever the fuzz stored can be shown again, and removed.
    for path in ("/_hyperpod/faults", "/_hyperpod/clock", "/_hyperpod/instances"):
        status, raw = call(server, "GET", path, None)
        assert status == 200, raw[:500]
        strict_json(raw)
    status, raw = call(server, "GET", "/_hyperpod/faults", None)
    for fault in strict_json(raw)["Faults"]:
        assert call(server, "DELETE", f"/_hyperpod/faults/{fault['FaultId']}", None)[0] == 204
    assert server.client().describe_cluster(ClusterName=CLUSTER)["ClusterName"] == CLUSTER
