"""Upgrades: every schema a release made opens as the head's, keeps its rows, and serves.

tests/fixtures/schemas/*.sql are data dirs that the servers of earlier commits made, dumped
(record.py says how). Revision 0001 was edited after it was released, so one revision id
stands for several schemas there; each must come out as what a new store gets."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from hyperpod_local.startup import StartupError
from hyperpod_local.store import database
from hyperpod_local.store.database import HEAD_REVISION, REVISIONS, NewerStoreError, Store
from tests import postgresql
from tests.support import ServerProcess, group

VERSIONS = Path(database.__file__).parent / "migrations" / "versions"
FIXTURES = Path(__file__).parent / "fixtures" / "schemas"
SCHEMAS = sorted(FIXTURES.glob("*.sql"))
# The commits of main whose new stores had a schema of their own under revision 0001: fresh
# stores were made by schema.metadata.create_all and stamped, so schema.py decided it.
MADE_AT = ["4231732", "9caf4ce", "5eb78c1", "6b7ec6d", "ed6a56e"]

# A released revision never changes: a store that ran it would not get the change. A new
# revision adds its line here; a line that no longer matches means a released file was
# edited: put the change in a new revision instead.
RELEASED = {
    "__init__.py": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "0001_initial.py": "80533502a19c0e604f082587746fbc6b9c25aba8c221f9fd72e47345ba5f81f9",
    "0002_node_counts_index.py": "7f8a69669060d0962682fb1c15eddfed0576604aa9dbc9304ed45c1031a1b9fe",
    "0003_every_released_schema.py": (
        "1c0b50907f88b540d9f805f8e1a76c7e6aab7e10207a59a0344193c61f1fe133"
    ),
    "0004_event_outbox.py": "7c93a88458bbdcc593f7568cf816d610539246b18d98819a5a56d1374d681f4c",
    "0005_group_node_counts.py": "dc346b3bd180c32a8b57140f86a9a85adee9101a9f74b1239a3d09324fbc103a",
    "0006_node_attachments.py": (
        "e7ce30e16e67a12451376425d5a2de9d17436baf343696b09077b4562e4a925c"
    ),
    "0007_extensions_and_task_governance.py": (
        "dd74bb75c832d776837c5c9f841b0a9dc4f3bdf937df433dcc402f7876ea9add"
    ),
    "0008_busy_nodes_index.py": "bed2d79a0bb9e7be8137c34d822e86bdc424320d5237deaba873f3126703ba33",
    "0009_postgresql_node_counts.py": (
        "c7c6d33d9d52c2d630f097303d9041e0757b2d52f51ce029ad65019adc4e35a9"
    ),
    "0010_node_counts_without_triggers.py": (
        "f303b104a2ca6692713ce457329b554bc21b41bde2f850be41e5f9ba95d7d849"
    ),
    "0011_event_ids_from_seqs.py": (
        "b12b1a3fc18d563c7a8be84d6ece167c50c67e6976c314ea7e5eb6c51c9f4964"
    ),
}


def test_released_migrations_are_never_edited() -> None:
    found = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in VERSIONS.iterdir()
        if path.is_file() and path.suffix == ".py"
    }
    assert found == RELEASED


def test_the_store_knows_every_revision_in_order() -> None:
    config = Config()
    config.set_main_option("script_location", str(VERSIONS.parent))
    scripts = ScriptDirectory.from_config(config)
    newest_first = [script.revision for script in scripts.walk_revisions()]
    assert tuple(reversed(newest_first)) == REVISIONS
    assert scripts.get_heads() == [HEAD_REVISION]


def test_there_is_a_fixture_for_every_schema_a_release_made() -> None:
    # 0001 as each commit that changed schema.py before 0002 made it, alone and after
    # 5777f74 (which added 0002) opened it.
    # Then the head of each release that made a new revision (0003 made none of its own: it
    # repairs, and its store is 0004's).
    expected = {f"0001-{c}" for c in MADE_AT} | {f"0002-{c}-5777f74" for c in MADE_AT}
    assert {path.stem for path in SCHEMAS} == expected | {
        "0002-5777f74",
        "0004-7b5de46",
        "0009-bbc4593",
        "0010-18786e2",
    }


def load(fixture: Path, data_dir: Path) -> Path:
    """A data dir holding the fixture's database."""
    data_dir.mkdir()
    path = data_dir / "hyperpod.db"
    conn = sqlite3.connect(path)
    try:
        conn.executescript(fixture.read_text())
    finally:
        conn.close()
    return path


def shape(path: Path) -> dict[str, Any]:
    """Everything inspection tells of the schema, names and column order included."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        found = inspect(engine)
        return {
            table: {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                    for c in found.get_columns(table)
                ],
                "pk": found.get_pk_constraint(table)["constrained_columns"],
                "fks": sorted(
                    (
                        tuple(fk["constrained_columns"]),
                        fk["referred_table"],
                        tuple(fk["referred_columns"]),
                        fk.get("options", {}).get("ondelete"),
                    )
                    for fk in found.get_foreign_keys(table)
                ),
                "uniques": sorted(
                    (u["name"] or "", tuple(u["column_names"]))
                    for u in found.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in found.get_indexes(table)
                ),
            }
            for table in found.get_table_names()
        } | {"triggers": triggers(path)}
    finally:
        engine.dispose()


def triggers(path: Path) -> list[tuple[str, str]]:
    """The triggers (group_node_counts'), by name and table: inspection leaves them out."""
    conn = sqlite3.connect(path)
    try:
        found = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        return conn.execute(found).fetchall()
    finally:
        conn.close()


def rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names
            if name not in ("alembic_version", "sqlite_sequence")
        }
    finally:
        conn.close()


def kept(before: dict[str, int], after: dict[str, int]) -> bool:
    """Whether an upgrade kept every row, with one setting more: revision 0011's key for
    event ids."""
    return {name: after[name] for name in before} == before | {"settings": before["settings"] + 1}


_COUNTED = "cluster_id, group_name, instance_type, image_release_version, status"


def node_counts(path: Path) -> list[tuple[Any, ...]]:
    """What group_node_counts holds."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            f"SELECT {_COUNTED}, count FROM group_node_counts ORDER BY {_COUNTED}"
        ).fetchall()
    finally:
        conn.close()


def counted_nodes(path: Path) -> list[tuple[Any, ...]]:
    """What group_node_counts should hold: the nodes, counted."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            f"SELECT {_COUNTED}, count(*) FROM nodes GROUP BY {_COUNTED} ORDER BY {_COUNTED}"
        ).fetchall()
    finally:
        conn.close()


def revision_of(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture(scope="module")
def head_shape(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("fresh") / "fresh.db"
    Store(f"sqlite:///{path}").close()
    return shape(path)


@pytest.mark.parametrize("fixture", SCHEMAS, ids=[p.stem for p in SCHEMAS])
def test_a_released_schema_opens_as_the_head_with_its_rows(
    fixture: Path, tmp_path: Path, head_shape: dict[str, Any]
) -> None:
    path = load(fixture, tmp_path / "data")
    before = rows(path)
    Store(f"sqlite:///{path}").close()
    assert revision_of(path) == HEAD_REVISION
    assert shape(path) == head_shape
    after = rows(path)
    # Every row is still there (a rebuilt clusters table cascades no deletes); the tables
    # the old schema lacked are there too, empty, but for the counts of the nodes it had.
    assert kept(before, after)
    made = {"group_node_counts", "legacy_event_ids"}
    assert all(after[name] == 0 for name in set(after) - set(before) - made)
    assert node_counts(path) == counted_nodes(path) and after["group_node_counts"] > 0
    # Each event keeps the id it had.
    assert after["legacy_event_ids"] == after["events"]
    # Opening it again changes nothing.
    Store(f"sqlite:///{path}").close()
    assert shape(path) == head_shape and rows(path) == after


def test_a_table_with_a_constraint_it_lacks_is_rebuilt_with_its_rows(
    tmp_path: Path, head_shape: dict[str, Any]
) -> None:
    # No release made this one, but 0003 must not need one to rebuild a table that others
    # refer to (nodes, to clusters) and that lacks a constraint (UNIQUE instance_id).
    path = load(FIXTURES / "0002-5777f74.sql", tmp_path / "data")
    conn = sqlite3.connect(path)
    conn.executescript(
        "PRAGMA foreign_keys=OFF; BEGIN; CREATE TABLE n AS SELECT * FROM nodes; "
        "DROP TABLE nodes; ALTER TABLE n RENAME TO nodes; COMMIT;"
    )
    conn.close()
    before = rows(path)
    Store(f"sqlite:///{path}").close()
    after = rows(path)
    assert shape(path) == head_shape and kept(before, after)
    # The tables of later revisions (0004's event outbox) are there too, empty, and 0005's
    # node counts are those of the nodes; 0011 kept each event's id.
    made = {"group_node_counts", "legacy_event_ids"}
    assert all(after[name] == 0 for name in set(after) - set(before) - made)
    assert node_counts(path) == counted_nodes(path)
    assert after["legacy_event_ids"] == after["events"]


# A revision no release of ours has yet: the next one after the head.
NEWER = f"{int(HEAD_REVISION) + 1:04d}"


def test_a_store_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    path = load(FIXTURES / "0002-5777f74.sql", tmp_path / "data")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (NEWER,))
        conn.execute("DROP TABLE faults")  # what 0003 would add back, were it to run
    conn.close()
    before = shape(path)
    with pytest.raises(NewerStoreError) as refused:
        Store.open(tmp_path / "data").close()
    assert str(refused.value) == (
        f"the store at {path} was written by a newer hyperpod-local (revision {NEWER}); "
        f"this release knows up to {HEAD_REVISION}: run that release, or use another data dir"
    )
    assert refused.value.revision == NEWER
    assert shape(path) == before and revision_of(path) == NEWER
    # The lock was let go: the data dir can be opened once it is fixed.
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '0002'")
    conn.close()
    Store.open(tmp_path / "data").close()
    assert revision_of(path) == HEAD_REVISION


def test_a_schema_the_upgrade_cannot_make_whole_is_left_as_it_was(tmp_path: Path) -> None:
    path = load(FIXTURES / "0001-4231732.sql", tmp_path / "data")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE stranger (id INTEGER PRIMARY KEY)")
    conn.close()
    before, counted = shape(path), rows(path)
    with pytest.raises(StartupError, match="unknown table stranger") as refused:
        Store(f"sqlite:///{path}").close()
    assert "from revision 0001 to" in str(refused.value)
    assert "it is left as it was" in str(refused.value)
    # One transaction: nothing of the half-done upgrade stayed.
    assert shape(path) == before and rows(path) == counted and revision_of(path) == "0001"


# A server for each release that made a data dir. The stores 5777f74 migrated to 0002 hold
# the same rows as their 0001 originals and come out of 0003 the same (the test above), so
# they are not served again: a server start is the slow part.
SERVED = [FIXTURES / f"0001-{c}.sql" for c in MADE_AT] + [
    FIXTURES / "0002-5777f74.sql",
    FIXTURES / "0004-7b5de46.sql",
    FIXTURES / "0009-bbc4593.sql",
    FIXTURES / "0010-18786e2.sql",
]


@pytest.fixture
def upgraded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    load(request.param, tmp_path / "data")
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    yield server
    server.kill()  # the data dir is thrown away; a clean stop only costs time


@pytest.mark.parametrize("upgraded", SERVED, ids=[p.stem for p in SERVED], indirect=True)
def test_a_server_on_an_upgraded_data_dir_serves_its_clusters(upgraded: ServerProcess) -> None:
    sm = upgraded.client()
    summaries = sm.list_clusters()["ClusterSummaries"]
    assert sorted(s["ClusterName"] for s in summaries) == ["old-eks", "old-plain"]
    plain = sm.describe_cluster(ClusterName="old-plain")
    assert plain["ClusterStatus"] == "InService"
    assert [(g["InstanceGroupName"], g["CurrentCount"]) for g in plain["InstanceGroups"]] == [
        ("workers", 2),
        ("controller", 1),
    ]
    nodes = sm.list_cluster_nodes(ClusterName="old-plain")["ClusterNodeSummaries"]
    assert len(nodes) == 3
    first = nodes[0]["InstanceId"]
    node = sm.describe_cluster_node(ClusterName="old-plain", NodeId=first)["NodeDetails"]
    assert node["InstanceStatus"]["Status"] == "Running"
    tags = sm.list_tags(ResourceArn=plain["ClusterArn"])["Tags"]
    assert tags == [{"Key": "team", "Value": "ml"}]
    # A cluster this store already has keeps its name and its EKS cluster to itself.
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_cluster(
            ClusterName="old-eks",
            InstanceGroups=[group("g", 1)],
        )

    # What the missing tables broke: BatchAddClusterNodes (client_tokens), faults (faults).
    eks_before = len(sm.list_cluster_nodes(ClusterName="old-eks")["ClusterNodeSummaries"])
    added = sm.batch_add_cluster_nodes(
        ClusterName="old-eks",
        ClientToken="after-upgrade",
        NodesToAdd=[{"InstanceGroupName": "g", "IncrementTargetCountBy": 1}],
    )
    assert added["Failed"] == [] and len(added["Successful"]) == 1
    status, body = upgraded.admin(
        "POST",
        "/_hyperpod/faults",
        {"Kind": "hardware", "Cluster": "old-plain", "InstanceId": first, "Type": "GpuXid79"},
    )
    assert status == 201, body
    upgraded.settle()
    status, body = upgraded.admin("GET", "/_hyperpod/faults")
    assert status == 200, body
    eks_nodes = sm.list_cluster_nodes(ClusterName="old-eks")["ClusterNodeSummaries"]
    assert len(eks_nodes) == eks_before + 1
    assert all(n["InstanceStatus"]["Status"] == "Running" for n in eks_nodes)
    # The counts DescribeCluster shows followed the add and the replacement.
    eks = sm.describe_cluster(ClusterName="old-eks")["InstanceGroups"][0]
    assert eks["CurrentCount"] == len(eks_nodes)
    plain = sm.describe_cluster(ClusterName="old-plain")
    assert [g["CurrentCount"] for g in plain["InstanceGroups"]] == [2, 1]
    # The faulty node was replaced on a new instance, as on a store made by this release.
    after = {
        n["InstanceId"]
        for n in sm.list_cluster_nodes(ClusterName="old-plain")["ClusterNodeSummaries"]
    }
    assert first not in after and len(after) == 3


def events_of(path: Path, cluster_name: str) -> list[tuple[str, str]]:
    """A cluster's events as a release before 0011 stored them: (id, description), oldest
    first."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT event_id, description FROM events JOIN clusters ON clusters.id = cluster_id "
            "WHERE clusters.name = ? ORDER BY event_time, events.seq",
            (cluster_name,),
        ).fetchall()
    finally:
        conn.close()


def assert_events_keep_their_ids(sm: Any, written: list[tuple[str, str]], add: Any) -> None:
    """The events of old-eks (Continuous) that an earlier release wrote are listed and
    described by the ids they had; events written since (the fixture's BatchAdd retries
    against its standing capacity fault as the server starts) get ids of their own."""

    def listed() -> list[tuple[str, str]]:
        events = sm.list_cluster_events(
            ClusterName="old-eks", SortOrder="Ascending", MaxResults=100
        )["Events"]
        return [(e["EventId"], e["Description"]) for e in events]

    assert listed()[: len(written)] == written
    for event_id, description in written:
        found = sm.describe_cluster_event(ClusterName="old-eks", EventId=event_id)
        assert found["EventDetails"]["Description"] == description
    add()
    now = listed()
    assert now[: len(written)] == written
    new = [event_id for event_id, _ in now[len(written) :]]
    assert new and len(set(new)) == len(new) and not set(new) & {i for i, _ in written}
    for event_id in new:
        found = sm.describe_cluster_event(ClusterName="old-eks", EventId=event_id)
        assert found["EventDetails"]["EventId"] == event_id
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_cluster_event(ClusterName="old-eks", EventId=str(uuid.uuid4()))


@pytest.mark.parametrize("fixture", ["0009-bbc4593", "0010-18786e2"])
def test_events_written_before_0011_keep_their_ids(fixture: str, tmp_path: Path) -> None:
    path = load(FIXTURES / f"{fixture}.sql", tmp_path / "data")
    written = events_of(path, "old-eks")
    assert written
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    try:
        sm = server.client()

        def add() -> None:
            sm.batch_add_cluster_nodes(
                ClusterName="old-eks",
                NodesToAdd=[{"InstanceGroupName": "g", "IncrementTargetCountBy": 1}],
            )
            server.settle()

        assert_events_keep_their_ids(sm, written, add)
    finally:
        server.kill()


def test_a_store_at_0004_with_clusters_upgrades_to_the_attachment_tables(tmp_path: Path) -> None:
    """0006 adds the attachment tables to a store the release before made, rows kept."""
    path = tmp_path / "hyperpod.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        database.upgrade(engine, "0004")
    finally:
        engine.dispose()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO clusters (id, account_id, region, name, arn, status, creation_time, "
            "spec, ip_base, next_ip, seq, legacy) VALUES ('abcdefghijkl', '123456789012', "
            "'us-east-1', 'kept', 'arn:aws:sagemaker:us-east-1:123456789012:cluster/abcdefghijkl', "
            "'InService', 1.0, '{}', 0, 1, 1, 0)"
        )
        conn.execute(
            "INSERT INTO instance_groups (cluster_id, name, position, spec, target_count, status) "
            "VALUES ('abcdefghijkl', 'g', 0, '{}', 1, 'InService')"
        )
        conn.execute(
            "INSERT INTO nodes (cluster_id, group_name, instance_id, name_key, status, "
            "instance_type, sort_time, image_id, image_release_version) VALUES ('abcdefghijkl', "
            "'g', 'i-0123456789abcdef0', 'i-0123456789abcdef0', 'Running', 'ml.c5.xlarge', 1.0, "
            "'default', '2025.11.20')"
        )
    conn.close()
    assert revision_of(path) == "0004"
    before = rows(path)
    Store(f"sqlite:///{path}").close()
    assert revision_of(path) == HEAD_REVISION
    after = rows(path)
    assert kept(before, after)
    assert before["clusters"] == before["nodes"] == 1
    assert after["volume_attachments"] == after["network_interface_attachments"] == 0


def test_a_store_at_0004_with_clusters_takes_extensions_and_task_governance(
    tmp_path: Path, head_shape: dict[str, Any]
) -> None:
    # A released data dir brought to 0004 (the head before 0005), as that release left it.
    path = load(FIXTURES / "0002-5777f74.sql", tmp_path / "data")
    engine = create_engine(f"sqlite:///{path}")
    try:
        database.upgrade(engine, "0004")
    finally:
        engine.dispose()
    assert revision_of(path) == "0004"
    before = rows(path)
    assert before["clusters"] == 2 and "cluster_extensions" not in before
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    try:
        assert revision_of(path) == HEAD_REVISION and shape(path) == head_shape
        sm = server.client()
        eks = sm.describe_cluster(ClusterName="old-eks")
        assert eks["ClusterStatus"] == "InService"
        made = sm.create_compute_quota(
            Name="after-upgrade",
            ClusterArn=eks["ClusterArn"],
            ComputeQuotaConfig={"ComputeQuotaResources": []},
            ComputeQuotaTarget={"TeamName": "ml"},
        )
        server.settle()
        assert sm.describe_compute_quota(ComputeQuotaId=made["ComputeQuotaId"])["Status"] == (
            "Created"
        )
    finally:
        server.stop()
    after = rows(path)
    before.pop("tasks"), after.pop("tasks")
    assert kept(before, after)
    assert after["governance_policies"] == 1 and after["cluster_extensions"] == 0


# PostgreSQL ----------------------------------------------------------------------------------
# Stores there were made before this release only through Settings.database_url (no flag named
# one), by `create_all`, without revision 0005's triggers: postgresql/ holds such a store.
POSTGRESQL_SCHEMAS = sorted((FIXTURES / "postgresql").glob("*.sql"))


def load_postgresql(fixture: Path) -> str:
    """A new database holding the fixture's; its URL."""
    import psycopg

    url = postgresql.fresh_database()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(fixture.read_text())
    return url


def in_postgresql(url: str, query: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.parametrize("fixture", POSTGRESQL_SCHEMAS, ids=[p.stem for p in POSTGRESQL_SCHEMAS])
def test_a_postgresql_store_of_an_earlier_release_is_upgraded_in_place(
    fixture: Path, tmp_path: Path
) -> None:
    url = load_postgresql(fixture)
    try:
        tables = [name for (name,) in in_postgresql(url, TABLES)]
        before = {name: in_postgresql(url, f"SELECT count(*) FROM {name}")[0][0] for name in tables}
        assert before["nodes"] > 0
        if fixture.stem.startswith("0008"):
            # What that release never kept: no counts, though it has nodes.
            assert before["group_node_counts"] == 0
        written = in_postgresql(
            url,
            "SELECT event_id, description FROM events JOIN clusters ON clusters.id = cluster_id "
            "WHERE clusters.name = 'old-eks' ORDER BY event_time, events.seq",
        )
        server = ServerProcess(tmp_path / "data", "--store", url, "--clock", "manual").start()
        try:
            sm = server.client()
            listed = sm.list_cluster_events(ClusterName="old-eks", SortOrder="Ascending")["Events"]
            assert [(e["EventId"], e["Description"]) for e in listed][: len(written)] == written
            assert written
            plain = sm.describe_cluster(ClusterName="old-plain")
            assert [
                (g["InstanceGroupName"], g["CurrentCount"]) for g in plain["InstanceGroups"]
            ] == [("workers", 2), ("controller", 1)]
            assert sm.list_tags(ResourceArn=plain["ClusterArn"])["Tags"] == [
                {"Key": "team", "Value": "ml"}
            ]
            # The counts are kept from now on: a node added shows at once.
            added = sm.batch_add_cluster_nodes(
                ClusterName="old-eks",
                NodesToAdd=[{"InstanceGroupName": "g", "IncrementTargetCountBy": 1}],
            )
            assert added["Failed"] == []
            server.settle()
            eks = sm.describe_cluster(ClusterName="old-eks")["InstanceGroups"][0]
            assert eks["CurrentCount"] == eks["TargetCount"] == 3
            assert_events_keep_their_ids(sm, written, lambda: None)
        finally:
            server.stop()
        after = {name: in_postgresql(url, f"SELECT count(*) FROM {name}")[0][0] for name in tables}
        assert in_postgresql(url, "SELECT version_num FROM alembic_version") == [(HEAD_REVISION,)]
        assert after["clusters"] == before["clusters"] == 2
        assert in_postgresql(url, COUNTED) == in_postgresql(url, COUNTS)
        # Revision 0009's triggers came and went: the code that writes nodes counts them.
        assert in_postgresql(url, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal") == []
        assert (
            in_postgresql(url, "SELECT proname FROM pg_proc WHERE proname = 'nodes_counted'") == []
        )
    finally:
        postgresql.drop(url)


def test_a_new_postgresql_store_has_the_schema_the_migrations_make() -> None:
    made = postgresql.fresh_database()
    migrated = load_postgresql(POSTGRESQL_SCHEMAS[-1])
    try:
        Store(made).close()
        Store(migrated).close()
        assert postgresql_shape(made) == postgresql_shape(migrated)
    finally:
        postgresql.drop(made)
        postgresql.drop(migrated)


TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
_KEY = "cluster_id, group_name, instance_type, image_release_version, status"
COUNTED = f"SELECT {_KEY}, count(*) FROM nodes GROUP BY {_KEY} ORDER BY {_KEY}"
COUNTS = f"SELECT {_KEY}, count FROM group_node_counts ORDER BY {_KEY}"


def postgresql_shape(url: str) -> dict[str, Any]:
    """Columns, indexes (with their definitions), constraints and triggers of every table."""
    return {
        "columns": in_postgresql(
            url,
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, column_name",
        ),
        "indexes": in_postgresql(
            url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ),
        "constraints": in_postgresql(
            url,
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace ORDER BY 1",
        ),
        "triggers": in_postgresql(
            url,
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
            "ORDER BY 1",
        ),
    }


@pytest.fixture(autouse=True)
def _postgresql_for_its_tests(request: pytest.FixtureRequest) -> None:
    if "postgresql" in request.node.name:
        postgresql.require()
