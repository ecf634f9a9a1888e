"""Several servers on one PostgreSQL store (README, Running it for a team): any replica
answers any request, each due step runs once across all of them, and a replica killed in the
middle leaves nothing half done.

Every test here needs the PostgreSQL of tests/postgresql.py, and is skipped without one
(failed on CI, which always has one)."""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from hyperpod_local.store.database import HEAD_REVISION
from tests import postgresql
from tests.support import ServerProcess, group
from tests.test_faults import events_of, nodes_of
from tests.webhooks import Webhook, wait_for


class Replicas:
    """Servers started on one store; each its own data dir and port."""

    def __init__(self, root: Path, url: str, *args: str) -> None:
        self.root, self.url, self.args = root, url, args
        self.servers: list[ServerProcess] = []
        self._names = itertools.count()

    def start(self, count: int = 1) -> list[ServerProcess]:
        started = []
        for _ in range(count):
            data_dir = self.root / f"replica-{next(self._names)}"
            started.append(ServerProcess(data_dir, "--store", self.url, *self.args).start())
        self.servers += started
        return started

    def clients(self) -> list[Any]:
        return [server.client() for server in self.servers]

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        """What the store holds, read straight from the database."""
        with psycopg.connect(self.url.replace("+psycopg", "")) as conn:
            return conn.execute(query).fetchall()

    def stop(self) -> None:
        for server in self.servers:
            if server.proc is not None and server.proc.poll() is None:
                server.stop()


@pytest.fixture
def store_url() -> Iterator[str]:
    """A database of the test's own (skipped, or failed on CI, without a PostgreSQL)."""
    url = postgresql.fresh_database()
    yield url
    postgresql.drop(url)


@pytest.fixture
def make_replicas(tmp_path: Path, store_url: str) -> Iterator[Callable[..., Replicas]]:
    """Replicas on the test's own database, with these `serve` options; stopped at the end."""
    made: list[Replicas] = []

    def make(*args: str) -> Replicas:
        made.append(Replicas(tmp_path, store_url, *args))
        return made[-1]

    yield make
    for replicas in made:
        replicas.stop()


def client_for(server: ServerProcess, session: Any) -> Any:
    return session.client(
        "sagemaker",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_fifty_clients_over_three_replicas_act_on_each_node_once(
    make_replicas: Callable[..., Replicas],
) -> None:
    replicas = make_replicas("--clock", "manual")
    first, second, third = replicas.start(3)
    sm = first.client()
    sm.create_cluster(ClusterName="race", InstanceGroups=[group("workers", 20)])
    # The clock is the store's: settled through one replica, it moved for every one.
    second.settle()
    clocks = [server.admin("GET", "/_hyperpod/clock")[1]["Now"] for server in replicas.servers]
    assert len(set(clocks)) == 1, clocks
    original = sorted(n["InstanceId"] for n in nodes_of(third.client(), "race"))
    assert len(original) == 20

    rng = random.Random(20261203)
    actions = ["replace", "reboot", "delete"]
    plan = [(rng.choice(actions), rng.sample(original, 3)) for _ in range(50)]
    session = boto3.session.Session()
    clients = [client_for(replicas.servers[i % 3], session) for i in range(len(plan))]
    barrier = threading.Barrier(len(plan))
    responses: list[Any] = [None] * len(plan)

    def act(index: int) -> None:
        action, nodes = plan[index]
        client = clients[index]
        barrier.wait()
        try:
            if action == "replace":
                responses[index] = client.batch_replace_cluster_nodes(
                    ClusterName="race", NodeIds=nodes
                )
            elif action == "reboot":
                responses[index] = client.batch_reboot_cluster_nodes(
                    ClusterName="race", NodeIds=nodes
                )
            else:
                responses[index] = client.batch_delete_cluster_nodes(
                    ClusterName="race", NodeIds=nodes
                )
        except ClientError as error:
            # A delete whose every node is refused is a ValidationException that names
            # each node and its code (what HyperPod documents).
            message = error.response["Error"]["Message"]
            if action != "delete" or not message.startswith("All nodes failed validation"):
                responses[index] = error
                return
            refused = re.findall(r"(i-[0-9a-f]+) \((\w+)\)", message)
            responses[index] = {
                "Successful": [],
                "Failed": [{"NodeId": node, "Code": code} for node, code in refused],
            }
        except Exception as error:  # a 5xx or a refused call: reported below
            responses[index] = error

    threads = [threading.Thread(target=act, args=(i,)) for i in range(len(plan))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [r for r in responses if isinstance(r, Exception)] == []

    started: dict[str, list[str]] = {}
    for (action, nodes), response in zip(plan, responses, strict=True):
        ok = response.get("Successful", [])
        if action == "delete":
            failed = [f["NodeId"] for f in response.get("Failed", [])]
            codes = {f["Code"] for f in response.get("Failed", [])}
            assert codes <= {"NodeIdInUse"}, response
        else:
            failed = [f["NodeId"] for f in response.get("Failed", [])]
            codes = {f["ErrorCode"] for f in response.get("Failed", [])}
            assert codes <= {"InstanceIdInUse"}, response
        assert sorted(ok + failed) == sorted(nodes)
        for node in ok:
            started.setdefault(node, []).append(action)
    asked = {node for _, nodes in plan for node in nodes}
    # Every node asked for was acted on by exactly one call, whichever replica took it.
    assert {node: len(done) for node, done in started.items()} == dict.fromkeys(asked, 1)

    first.settle()
    after = {n["InstanceId"]: n for n in nodes_of(second.client(), "race")}
    deleted = {node for node, (action,) in started.items() if action == "delete"}
    replaced = {node for node, (action,) in started.items() if action == "replace"}
    rebooted = {node for node, (action,) in started.items() if action == "reboot"}
    assert len(after) == 20 - len(deleted)
    assert not (deleted | replaced) & set(after)
    assert rebooted <= set(after)
    assert {n["InstanceStatus"]["Status"] for n in after.values()} == {"Running"}
    # One instance a node, none left over from a step run twice.
    assert replicas.sql("SELECT count(*) FROM sim_instances") == [(len(after),)]


def test_a_replica_killed_in_the_middle_leaves_its_work_to_the_others(
    make_replicas: Callable[..., Replicas],
) -> None:
    # A replacement takes 20 HyperPod minutes: 6 s at this speed.
    replicas = make_replicas("--clock", "real", "--speed", "200")
    replicas.start(3)
    sm = replicas.servers[1].client()
    sm.create_cluster(
        ClusterName="kill",
        InstanceGroups=[group("workers", 100)],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/k"}},
    )
    # A Continuous cluster is InService before its last nodes are up: wait for all 100.
    wait_for(
        lambda: [n["InstanceStatus"]["Status"] for n in nodes_of(sm, "kill")] == ["Running"] * 100,
        timeout=60,
    )
    original = sorted(n["InstanceId"] for n in nodes_of(sm, "kill"))
    assert len(original) == 100
    accepted: list[str] = []
    for index in range(4):
        client = replicas.servers[index % 3].client()
        answer = client.batch_replace_cluster_nodes(
            ClusterName="kill", NodeIds=original[index * 25 : (index + 1) * 25]
        )
        assert answer.get("Failed", []) == []
        accepted += answer["Successful"]
    # Mid-way: some replacements are terminating, some launching, none done.
    time.sleep(2)
    replicas.servers[0].kill()
    survivor = replicas.servers[2].client()

    def replaced() -> bool:
        nodes = nodes_of(survivor, "kill")
        return len(nodes) == 100 and all(
            n["InstanceStatus"]["Status"] == "Running" and n["InstanceId"] not in original
            for n in nodes
        )

    wait_for(replaced, timeout=120)
    nodes = nodes_of(survivor, "kill")
    assert len({n["InstanceId"] for n in nodes}) == 100
    # Each accepted replacement launched exactly one instance, whichever replica ran it:
    # no orphan instance, no volume of an instance that is gone.
    assert replicas.sql("SELECT count(*) FROM sim_instances") == [(100,)]
    assert replicas.sql(
        "SELECT count(*) FROM sim_volumes WHERE instance_id NOT IN "
        "(SELECT instance_id FROM sim_instances)"
    ) == [(0,)]
    events = survivor.list_cluster_events(ClusterName="kill", MaxResults=100)
    assert events["Events"]
    # Nothing still scheduled for the cluster: no step lost with the killed replica.
    wait_for(lambda: replicas.sql("SELECT count(*) FROM tasks") == [(0,)], timeout=30)
    assert sorted(accepted) == original


def test_a_replica_joins_and_an_alternating_client_never_goes_back(
    make_replicas: Callable[..., Replicas],
) -> None:
    replicas = make_replicas("--clock", "real", "--speed", "60")
    replicas.start(2)
    session = boto3.session.Session()
    created: list[str] = []
    seen_counts: dict[str, int] = {}
    for index in range(24):
        if index == 8:
            replicas.start(1)  # the others go on, unrestarted
        servers = replicas.servers
        writer = client_for(servers[index % len(servers)], session)
        reader = client_for(servers[(index + 1) % len(servers)], session)
        name = f"alt-{index}"
        writer.create_cluster(ClusterName=name, InstanceGroups=[group("g", 3)])
        created.append(name)
        # Read your writes: the next request, on another replica, sees it.
        assert reader.describe_cluster(ClusterName=name)["ClusterName"] == name
        listed = {
            s["ClusterName"]
            for page in reader.get_paginator("list_clusters").paginate()
            for s in page["ClusterSummaries"]
        }
        assert set(created) <= listed
        # Monotonic reads: a count of nodes up never goes down from one replica to the
        # next while the clusters come up.
        for earlier in created[-4:]:
            count = reader.describe_cluster(ClusterName=earlier)["InstanceGroups"][0][
                "CurrentCount"
            ]
            assert count >= seen_counts.get(earlier, 0), (earlier, count, seen_counts)
            seen_counts[earlier] = count
    assert len(replicas.servers) == 3


def test_replicas_starting_together_make_the_schema_once(
    tmp_path: Path, store_url: str, make_replicas: Callable[..., Replicas]
) -> None:
    replicas = make_replicas("--clock", "manual")
    servers = [
        ServerProcess(tmp_path / f"together-{i}", "--store", store_url, "--clock", "manual")
        for i in range(3)
    ]
    threads = [threading.Thread(target=server.start) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    replicas.servers = servers
    assert all(server.url for server in servers)
    assert replicas.sql("SELECT version_num FROM alembic_version") == [(HEAD_REVISION,)]
    servers[0].client().create_cluster(ClusterName="one", InstanceGroups=[group("g", 1)])
    assert servers[2].client().describe_cluster(ClusterName="one")["ClusterName"] == "one"


def test_a_store_of_a_newer_release_is_refused(
    tmp_path: Path, store_url: str, make_replicas: Callable[..., Replicas]
) -> None:
    replicas = make_replicas("--clock", "manual")
    replicas.start(1)
    replicas.stop()
    newer = f"{int(HEAD_REVISION) + 1:04d}"
    replicas.sql(f"UPDATE alembic_version SET version_num = '{newer}' RETURNING version_num")
    refused = ServerProcess(tmp_path / "late", "--store", store_url)
    with pytest.raises(RuntimeError) as failed:
        refused.start()
    assert (
        f"was written by a newer hyperpod-local (revision {newer}); this release knows up to "
        f"{HEAD_REVISION}" in str(failed.value)
    )
    assert "postgresql+psycopg://postgres@127.0.0.1" in str(failed.value)


def test_one_replica_at_a_time_sends_the_events_and_another_takes_over(
    make_replicas: Callable[..., Replicas],
) -> None:
    with Webhook() as hook:
        replicas = make_replicas("--clock", "manual", "--events-to", hook.url)
        _, second, third = replicas.start(3)
        sm = second.client()
        sm.create_cluster(
            ClusterName="told",
            InstanceGroups=[group("workers", 3)],
            NodeProvisioningMode="Continuous",
        )
        third.settle()
        listed = [e["EventId"] for e in events_of(sm, "told")]
        hook.wait_for_ids(set(listed))
        time.sleep(1.5)  # time enough for a second sender to have sent them again
        # Each event once, in order, whichever replica wrote it: one replica sends.
        sent = [e["detail"]["EventDetails"]["EventId"] for e in hook.received]
        assert sent == listed
        delivered = [target(server)["Delivered"] for server in replicas.servers]
        assert sorted(delivered) == [0, 0, len(listed)]
        # The sender dies; another takes over from its saved place.
        sender = replicas.servers[delivered.index(len(listed))]
        sender.kill()
        alive = [server for server in replicas.servers if server is not sender]
        alive[0].client().batch_reboot_cluster_nodes(
            ClusterName="told", NodeIds=[n["InstanceId"] for n in nodes_of(sm, "told")][:1]
        )
        alive[1].settle()
        later = [e["EventId"] for e in events_of(alive[0].client(), "told")]
        assert len(later) > len(listed)
        hook.wait_for_ids(set(later))
        # At least once: what the dead sender sent in its last second may come again,
        # never out of order, and nothing is missing.
        assert hook.event_ids() == later


def target(server: ServerProcess) -> dict[str, Any]:
    status, body = server.admin("GET", "/_hyperpod/stats")
    assert status == 200, body
    (only,) = body["Events"]["Targets"]
    return dict(only)
