"""Faults for a fleet: many specs in one POST, and random_hardware, a fault kind that strikes
every serving node at a mean time between failures, reproducibly, without a driver script.
Through the real server, its admin API and boto3, under the manual clock."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ServerProcess, group
from tests.test_faults import events_of, nodes_of

HOUR = 3600.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    yield server
    server.stop()


def fleet(server: ServerProcess, name: str, *groups: dict[str, Any]) -> Any:
    sm = server.client()
    sm.create_cluster(ClusterName=name, NodeRecovery="Automatic", InstanceGroups=list(groups))
    server.settle()
    return sm


def faults(server: ServerProcess, kind: str | None = None) -> list[dict[str, Any]]:
    status, body = server.admin("GET", "/_hyperpod/faults")
    assert status == 200, body
    return [f for f in body["Faults"] if kind is None or f["Kind"] == kind]


def test_many_faults_go_in_with_one_post_all_or_none(server: ServerProcess) -> None:
    sm = fleet(server, "bulk", group("a", 3), group("b", 2))
    # One node of each group: two at once in one group would stop automatic recovery (over
    # the 20% of a group unhealthy that it allows).
    nodes = nodes_of(sm, "bulk")
    first_a = next(n["InstanceId"] for n in nodes if n["InstanceGroupName"] == "a")
    first_b = next(n["InstanceId"] for n in nodes if n["InstanceGroupName"] == "b")
    ids = [
        first_a,
        first_b,
        *(n["InstanceId"] for n in nodes if n["InstanceId"] not in (first_a, first_b)),
    ]
    specs = [
        {"Kind": "hardware", "Cluster": "bulk", "InstanceId": ids[0], "Type": "GpuXid79"},
        {"Kind": "hardware", "Cluster": "bulk", "InstanceId": ids[1], "Type": "EfaDown"},
        {"Kind": "capacity", "InstanceType": "ml.p5.48xlarge"},
    ]
    # One spec at fault refuses the whole list, naming it by its place; nothing is kept.
    bad = [*specs, {"Kind": "hardware", "Cluster": "bulk", "InstanceId": ids[2], "Type": "X"}]
    status, body = server.admin("POST", "/_hyperpod/faults", bad)
    assert status == 400, body
    assert body["error"] == "InvalidFault"
    assert body["message"].startswith("Fault 3: Unknown hardware fault type 'X'")
    missing = [*specs, {"Kind": "hardware", "Cluster": "bulk", "InstanceId": ids[2]}]
    status, body = server.admin("POST", "/_hyperpod/faults", missing)
    assert (status, body["message"]) == (400, "Fault 3: A hardware fault needs Type.")
    nowhere = [
        *specs,
        {"Kind": "hardware", "Cluster": "nope", "InstanceId": ids[2], "Type": "EfaDown"},
    ]
    status, body = server.admin("POST", "/_hyperpod/faults", nowhere)
    assert (status, body["message"]) == (400, "Fault 3: Could not find cluster 'nope'.")
    assert faults(server) == []
    status, body = server.admin("POST", "/_hyperpod/faults", [])
    assert (status, body["message"]) == (400, "Give 1 to 10000 fault specs.")
    status, body = server.admin("POST", "/_hyperpod/faults", [["not", "an", "object"]])
    assert (status, body["message"]) == (400, "A fault spec must be a JSON object.")

    status, body = server.admin("POST", "/_hyperpod/faults", specs)
    assert status == 201, body
    assert [(f["Kind"], f.get("InstanceId")) for f in body["Faults"]] == [
        ("hardware", ids[0]),
        ("hardware", ids[1]),
        ("capacity", None),
    ]
    assert len(faults(server)) == 3
    # Both hardware faults are noticed and answered: the Xid 79 node is replaced, the EFA
    # node rebooted.
    server.settle()
    after = {n["InstanceId"] for n in nodes_of(sm, "bulk")}
    assert ids[0] not in after and ids[1] in after and len(after) == 5
    assert [f["Kind"] for f in faults(server)] == ["capacity"]


def test_random_hardware_strikes_serving_nodes_at_their_mtbf(server: ServerProcess) -> None:
    sm = fleet(server, "rand", group("gpu", 40, "ml.p5.48xlarge"), group("cpu", 10))
    status, body = server.admin(
        "POST",
        "/_hyperpod/faults",
        {
            "Kind": "random_hardware",
            "Cluster": "rand",
            "InstanceGroupName": "gpu",
            "MtbfHours": 100,
            "Types": {"GpuXid79": 1, "GpuXid13": 1},
            "Seed": 42,
        },
    )
    assert status == 201, body
    [made] = body["Faults"]
    assert made["Kind"] == "random_hardware" and made["Strikes"] == 0
    assert (made["Seed"], made["MtbfHours"], made["InstanceGroupName"]) == (42, 100.0, "gpu")
    cpu_before = {n["InstanceId"] for n in nodes_of(sm, "rand") if n["InstanceGroupName"] == "cpu"}

    # 40 nodes, each failing once in 100 hours: about 10 strikes in 25 hours.
    server.advance(25 * HOUR)
    [source] = faults(server, "random_hardware")
    assert 3 <= source["Strikes"] <= 25, source
    # A settle runs the recoveries the strikes set off, and ends although strikes go on.
    server.settle()
    nodes = nodes_of(sm, "rand")
    assert all(n["InstanceStatus"]["Status"] == "Running" for n in nodes)
    assert len(nodes) == 50
    # Only the gpu group was struck; GpuXid79 needs new instances, GpuXid13 a reboot.
    assert {n["InstanceId"] for n in nodes if n["InstanceGroupName"] == "cpu"} == cpu_before

    # Removed, it strikes no more.
    [source] = faults(server, "random_hardware")
    assert server.admin("DELETE", f"/_hyperpod/faults/{source['FaultId']}")[0] == 204
    server.advance(100 * HOUR)
    assert faults(server) == []


def run_of(tmp_path: Path, name: str) -> list[tuple[float, str, str]]:
    """A fresh server, a 30-node cluster and a seeded random_hardware fault: the faults it
    made in 20 HyperPod hours, as (time since the fault, node's place in the group, type)."""
    server = ServerProcess(tmp_path / name, "--clock", "manual").start()
    try:
        sm = server.client()
        # NodeRecovery None: struck nodes stay in Failure, so their faults stay listed.
        sm.create_cluster(
            ClusterName="seeded", NodeRecovery="None", InstanceGroups=[group("g", 30)]
        )
        server.settle()
        place = {n["InstanceId"]: i for i, n in enumerate(nodes_of(sm, "seeded"))}
        status, body = server.admin(
            "POST",
            "/_hyperpod/faults",
            {"Kind": "random_hardware", "Cluster": "seeded", "MtbfHours": 60, "Seed": 2026},
        )
        assert status == 201, body
        began = body["Faults"][0]["CreatedAt"]
        server.advance(20 * HOUR)
        return [
            (round(f["CreatedAt"] - began, 3), str(place[f["InstanceId"]]), f["Type"])
            for f in faults(server, "hardware")
        ]
    finally:
        server.stop()


def test_the_same_seed_strikes_the_same_nodes_at_the_same_times(tmp_path: Path) -> None:
    first, second = run_of(tmp_path, "one"), run_of(tmp_path, "two")
    assert len(first) >= 3
    assert first == second
    assert [t for t, _place, _type in first] == sorted(t for t, _place, _type in first)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "A random_hardware fault needs MtbfHours."),
        ({"MtbfHours": 0}, "MtbfHours must be a number in [0.01, 1e+07]."),
        (
            {"MtbfHours": 1, "Types": {}},
            "Types must be an object of hardware fault types and weights.",
        ),
        ({"MtbfHours": 1, "Types": {"Bogus": 1}}, "Unknown hardware fault type 'Bogus'"),
        (
            {"MtbfHours": 1, "Types": {"EfaDown": 0}},
            "Types.EfaDown must be a number in (0, 1e+06].",
        ),
        ({"MtbfHours": 1, "Seed": -1}, "Seed must be an integer from 0 to 9007199254740991."),
        (
            {"MtbfHours": 1, "InstanceGroupName": "g"},
            "A random_hardware fault with InstanceGroupName needs Cluster.",
        ),
        (
            {"MtbfHours": 1, "InstanceId": "i-0"},
            "A random_hardware fault takes no field 'InstanceId'",
        ),
    ],
)
def test_a_random_hardware_spec_is_checked(
    server: ServerProcess, spec: dict[str, Any], message: str
) -> None:
    status, body = server.admin("POST", "/_hyperpod/faults", {"Kind": "random_hardware", **spec})
    assert status == 400, body
    assert body["message"].startswith(message), body


def test_a_fleet_wide_random_fault_strikes_every_cluster(server: ServerProcess) -> None:
    fleet(server, "east-a", group("g", 20))
    fleet(server, "east-b", group("g", 20))
    status, body = server.admin(
        "POST", "/_hyperpod/faults", {"Kind": "random_hardware", "MtbfHours": 20, "Seed": 1}
    )
    assert status == 201, body
    assert "Cluster" not in body["Faults"][0]
    server.advance(10 * HOUR)
    [source] = faults(server, "random_hardware")
    assert source["Strikes"] >= 5
    # Each strike is a hardware fault on a node of one of the clusters; with recovery on, a
    # settle brings every node back.
    server.settle()
    sm = server.client()
    for name in ("east-a", "east-b"):
        assert all(n["InstanceStatus"]["Status"] == "Running" for n in nodes_of(sm, name))


def test_the_readme_month_of_failures_runs_as_written(tmp_path: Path) -> None:
    from tests.test_docs import free_port, sh_block, shell

    result = shell(sh_block('"Kind": "random_hardware"'), tmp_path, {"4582": free_port()})
    assert result.returncode == 0, result.stdout + result.stderr
    [strikes] = re.findall(r"^\[(\d+)\]$", result.stdout, flags=re.MULTILINE)
    # 1,000 nodes for 30 days at one failure per 720 hours: a Poisson count around 1,000.
    assert 850 <= int(strikes) <= 1150, result.stdout


def test_under_a_real_clock_the_mtbf_is_hyperpod_time_that_speed_shortens(
    tmp_path: Path,
) -> None:
    # At --speed 3600 a HyperPod hour takes a wall second: 20 nodes failing once an hour
    # strike about 20 times a wall second. Counted in wall time, they would take 20 minutes
    # for one strike each; the wait below gives up long before that.
    server = ServerProcess(tmp_path / "data", "--speed", "3600").start()
    try:
        sm = server.client()
        sm.create_cluster(ClusterName="fast", NodeRecovery="None", InstanceGroups=[group("g", 20)])
        deadline = time.monotonic() + 60
        while sm.describe_cluster(ClusterName="fast")["ClusterStatus"] != "InService":
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.05)
        spec = {"Kind": "random_hardware", "Cluster": "fast", "MtbfHours": 1, "Seed": 3}
        assert server.admin("POST", "/_hyperpod/faults", spec)[0] == 201
        while not faults(server, "hardware"):
            assert time.monotonic() < deadline, faults(server)
            time.sleep(0.05)
    finally:
        server.stop()


def test_replacements_due_together_each_get_what_one_alone_gets(server: ServerProcess) -> None:
    # 25 replacements of one call are due at one instant, and the engine runs them as one
    # batch; a failing script in one group sends that group's back to one at a time. What a
    # client sees of each node must not tell the two apart.
    sm = server.client()
    sm.create_cluster(
        ClusterName="together",
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/t"}},
        InstanceGroups=[group("a", 20), group("b", 10)],
    )
    server.settle()
    before = nodes_of(sm, "together")
    # Interleaved: a, b, a, b... so that the batch spans both groups.
    a = [n for n in before if n["InstanceGroupName"] == "a"]
    b = [n for n in before if n["InstanceGroupName"] == "b"]
    chosen = [n["InstanceId"] for pair in zip(a, b, strict=False) for n in pair][:20] + [
        n["InstanceId"] for n in a[10:15]
    ]
    assert len(chosen) == 25
    status, _body = server.admin(
        "POST",
        "/_hyperpod/faults",
        {"Kind": "lifecycle_script", "Cluster": "together", "InstanceGroupName": "b", "Count": 1},
    )
    assert status == 201
    answer = sm.batch_replace_cluster_nodes(ClusterName="together", NodeIds=chosen)
    assert sorted(answer["Successful"]) == sorted(chosen) and not answer.get("Failed")
    server.settle()

    after = nodes_of(sm, "together")
    assert len(after) == 30
    assert all(n["InstanceStatus"]["Status"] == "Running" for n in after)
    logical = {n["InstanceId"]: n.get("NodeLogicalId") for n in before}
    now = {n["NodeLogicalId"]: n for n in after}
    events = events_of(sm, "together")
    texts = [e["Description"] for e in events]
    for old in chosen:
        new = now[logical[old]]["InstanceId"]
        assert new != old
        group_name = now[logical[old]]["InstanceGroupName"]
        assert (
            texts.count(
                f"EC2 Instance {old} successfully terminated in Cluster together and "
                f"InstanceGroup {group_name}"
            )
            == 1
        )
        assert (
            texts.count(f"Instance lifecycle script execution for EC2 Instance {new} has Succeeded")
            == 1
        )
        assert (
            texts.count(
                f"Instance {new} replacement in Cluster together and InstanceGroup {group_name} "
                "completed successfully"
            )
            == 1
        )
    # The one failing script failed once, on one of b's new instances, which then tried
    # again on another.
    failed = [t for t in texts if t.endswith("has Failed")]
    assert len(failed) == 1
    untouched = {n["InstanceId"] for n in before} - set(chosen)
    assert untouched <= {n["InstanceId"] for n in after}
    described = sm.describe_cluster(ClusterName="together")["InstanceGroups"]
    assert [(g["InstanceGroupName"], g["CurrentCount"]) for g in described] == [
        ("a", 20),
        ("b", 10),
    ]
