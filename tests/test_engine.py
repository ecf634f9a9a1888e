"""The engine itself: time that moves only when told, persisted progress, and a step that
keeps failing does not wedge the rest."""

from __future__ import annotations

from typing import Any

import pytest

from hyperpod_local.domain.cluster_rules import new_node
from hyperpod_local.domain.model import Task
from hyperpod_local.engine.clock import ManualClock
from hyperpod_local.engine.steps import STEPS, StepContext
from hyperpod_local.mock import HyperPodMock
from tests.support import group

EKS = {"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/engine"}}


def test_manual_time_moves_only_when_told(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    start = hyperpod.now()
    sm.create_cluster(ClusterName="t", InstanceGroups=[group("g", 2)])
    assert hyperpod.now() == start
    assert sm.describe_cluster(ClusterName="t")["ClusterStatus"] == "Creating"
    hyperpod.advance(299)
    assert sm.list_cluster_nodes(ClusterName="t")["ClusterNodeSummaries"] == []
    hyperpod.advance(1)  # cluster_setup: 300 s
    nodes = sm.list_cluster_nodes(ClusterName="t")["ClusterNodeSummaries"]
    assert [n["InstanceStatus"]["Status"] for n in nodes] == ["Pending", "Pending"]
    assert {n["LaunchTime"].timestamp() for n in nodes} == {start + 300}
    assert hyperpod.settle() == 240  # provision_cpu
    assert sm.describe_cluster(ClusterName="t")["ClusterStatus"] == "InService"
    assert hyperpod.settle() == 0


def test_durations_are_configurable(tmp_path: Any) -> None:
    with HyperPodMock(tmp_path, durations={"cluster_setup": 10, "provision_accelerated": 50}) as hp:
        sm = hp.client()
        sm.create_cluster(ClusterName="d", InstanceGroups=[group("g", 1, "ml.p5.48xlarge")])
        assert hp.settle() == 60
    with pytest.raises(ValueError, match="unknown durations: nope"):
        HyperPodMock(tmp_path, durations={"nope": 1}).__enter__()


def test_a_step_that_keeps_failing_is_given_up_with_an_error_event(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    arn = sm.create_cluster(
        ClusterName="p",
        InstanceGroups=[group("g", 1)],
        NodeProvisioningMode="Continuous",
        Orchestrator=EKS,
    )["ClusterArn"]
    backend = hyperpod.backend
    assert backend is not None
    with backend.store.write() as tx:
        # A step no version of the engine knows, as a damaged store could hold.
        tx.tasks.add(
            Task(cluster_id=arn.rsplit("/", 1)[1], kind="bogus", step="x", due_at=hyperpod.now())
        )
    hyperpod.settle()
    # The cluster's own work went on and finished.
    assert sm.describe_cluster(ClusterName="p")["ClusterStatus"] == "InService"
    errors = [
        e
        for e in sm.list_cluster_events(ClusterName="p")["Events"]
        if e.get("EventLevel") == "Error"
    ]
    assert len(errors) == 1
    assert "Internal error in bogus" in errors[0]["Description"]


def test_a_classic_creation_an_earlier_release_accepted_launches_its_nodes_once(
    hyperpod: HyperPodMock,
) -> None:
    sm = hyperpod.client()
    arn = sm.create_cluster(ClusterName="old", InstanceGroups=[group("g", 600)])["ClusterArn"]
    backend = hyperpod.backend
    assert backend is not None
    with backend.store.write() as tx:
        # As releases before nodes were made at launch left it: a row per node asked for,
        # written by CreateCluster, with no instance.
        cluster = tx.clusters.get(arn.rsplit("/", 1)[1])
        assert cluster is not None
        [made] = cluster.groups
        tx.nodes.add_all([new_node(cluster, made, backend.ids, hyperpod.now()) for _ in range(600)])
    hyperpod.settle()
    [described] = sm.describe_cluster(ClusterName="old")["InstanceGroups"]
    assert (described["CurrentCount"], described["TargetCount"]) == (600, 600)
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName="old")
    nodes = [node for page in pages for node in page["ClusterNodeSummaries"]]
    assert len({n["InstanceId"] for n in nodes}) == len(nodes) == 600


def _cluster_id(hyperpod: HyperPodMock, name: str) -> str:
    sm = hyperpod.client()
    return str(sm.describe_cluster(ClusterName=name)["ClusterArn"].rsplit("/", 1)[1])


def test_steps_due_by_now_run_in_due_order(
    hyperpod: HyperPodMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several due instants may share one of the engine's transactions: still earliest first,
    a step it runs late happens at the time it runs, and one a step schedules for a time
    already past runs in its place in the same run."""
    sm = hyperpod.client()
    sm.create_cluster(ClusterName="o", InstanceGroups=[group("g", 1)])
    hyperpod.settle()
    cluster_id = _cluster_id(hyperpod, "o")
    ran: list[tuple[str, float]] = []

    def probe(ctx: StepContext, task: Task) -> Task | None:
        ran.append((task.step, ctx.now))
        if task.step == "first":
            ctx.later(Task(cluster_id=cluster_id, kind="probe", step="added", due_at=0.0), 0.0)
        return None

    monkeypatch.setitem(STEPS, "probe", probe)
    backend = hyperpod.backend
    assert backend is not None
    start = hyperpod.now()
    with backend.store.write() as tx:
        for step, after in (("third", 3.0), ("first", 1.0), ("second", 2.5)):
            tx.tasks.add(Task(cluster_id=cluster_id, kind="probe", step=step, due_at=start + after))
    clock = backend.clock
    assert isinstance(clock, ManualClock)
    # Past all of them at once, as a real clock is when the engine falls behind.
    clock.set(start + 5)
    assert backend.engine.run_due() == 4
    assert ran == [(step, start + 5) for step in ("first", "second", "third", "added")]


def test_a_failing_step_leaves_none_of_its_work_behind(
    hyperpod: HyperPodMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that raises after writing is rolled back to before it, every time it is tried;
    the steps beside it in the same run keep their work."""
    sm = hyperpod.client()
    sm.create_cluster(
        ClusterName="h",
        InstanceGroups=[group("g", 1)],
        NodeProvisioningMode="Continuous",
        Orchestrator=EKS,
    )
    hyperpod.settle()
    cluster_id = _cluster_id(hyperpod, "h")

    def half(ctx: StepContext, task: Task) -> Task | None:
        cluster = ctx.tx.clusters.get(cluster_id)
        assert cluster is not None
        log = ctx.log(cluster)
        log.cluster(f"{task.step} wrote this")
        ctx.tx.events.add_all(log.events)
        if task.step == "breaks":
            raise RuntimeError("half way")
        return None

    monkeypatch.setitem(STEPS, "half", half)
    backend = hyperpod.backend
    assert backend is not None
    with backend.store.write() as tx:
        for step in ("breaks", "works"):
            tx.tasks.add(Task(cluster_id=cluster_id, kind="half", step=step, due_at=hyperpod.now()))
    hyperpod.settle()
    descriptions = [
        e["Description"] for e in sm.list_cluster_events(ClusterName="h", MaxResults=100)["Events"]
    ]
    assert "works wrote this" in descriptions
    assert "breaks wrote this" not in descriptions
    assert sum("Internal error in half (breaks): half way" in d for d in descriptions) == 1


def test_the_engine_knows_when_to_look_again(
    hyperpod: HyperPodMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a run, the background loop sleeps until the next due step, as the run's own
    transaction saw it: a step scheduled by the run itself, before the work seen after it,
    comes first."""
    sm = hyperpod.client()
    sm.create_cluster(ClusterName="w", InstanceGroups=[group("g", 1)])
    hyperpod.settle()
    cluster_id = _cluster_id(hyperpod, "w")

    def probe(ctx: StepContext, task: Task) -> Task | None:
        if task.step == "schedules":
            ctx.later(Task(cluster_id=cluster_id, kind="probe", step="soon", due_at=0.0), 0.5)
        return None

    monkeypatch.setitem(STEPS, "probe", probe)
    backend = hyperpod.backend
    assert backend is not None
    clock = backend.clock
    assert isinstance(clock, ManualClock)
    start = hyperpod.now()
    assert backend.engine._run_due() == (0, None)
    with backend.store.write() as tx:
        for step, after in (("schedules", 1.0), ("quiet", 2.0), ("later", 10.0)):
            tx.tasks.add(Task(cluster_id=cluster_id, kind="probe", step=step, due_at=start + after))
    clock.set(start + 1)
    assert backend.engine._run_due() == (1, start + 1.5)
    clock.set(start + 1.5)
    assert backend.engine._run_due() == (1, start + 2)
    clock.set(start + 2)
    assert backend.engine._run_due() == (1, start + 10)
    clock.set(start + 10)
    assert backend.engine._run_due() == (1, None)


def test_a_step_sees_the_cluster_as_stored_not_as_another_step_left_its_copy(
    hyperpod: HyperPodMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What one step changes on its cluster without saving, or saves and is rolled back, is
    not what the next step reads."""
    sm = hyperpod.client()
    sm.create_cluster(ClusterName="c", InstanceGroups=[group("g", 1)])
    hyperpod.settle()
    cluster_id = _cluster_id(hyperpod, "c")
    seen: list[tuple[str, object, object]] = []
    # Each marks its copy of the cluster and of a group, and the next must not see the mark.
    in_order = ("loads", "changes", "reads", "saves then breaks", "last")

    def probe(ctx: StepContext, task: Task) -> Task | None:
        cluster = ctx.tx.clusters.get(cluster_id)
        assert cluster is not None
        seen.append((task.step, cluster.spec.get("Mark"), cluster.groups[0].spec.get("Mark")))
        cluster.spec["Mark"] = cluster.groups[0].spec["Mark"] = task.step
        if task.step == "saves then breaks":
            ctx.tx.clusters.save_spec(cluster)
            ctx.tx.clusters.save_group(cluster.groups[0])
            ctx.tx.clusters.get(cluster_id)  # read back inside the step: then rolled back
            raise RuntimeError("rolled back")
        return None

    monkeypatch.setitem(STEPS, "probe", probe)
    backend = hyperpod.backend
    assert backend is not None
    start = hyperpod.now()
    with backend.store.write() as tx:
        for after, step in enumerate(in_order):
            tx.tasks.add(
                Task(cluster_id=cluster_id, kind="probe", step=step, due_at=start + after + 1)
            )
    hyperpod.advance(5)
    assert seen == [(step, None, None) for step in in_order]
