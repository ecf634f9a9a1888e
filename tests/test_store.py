"""The store's schema: migrations and the fast path for a new data dir agree."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from hyperpod_local.store import database
from hyperpod_local.store.database import HEAD_REVISION, Store, upgrade


def _schema(url: str) -> dict[str, object]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {
            table: (
                sorted(
                    (c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)
                ),
                sorted(tuple(i["column_names"]) for i in found.get_indexes(table)),
                sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
                found.get_pk_constraint(table)["constrained_columns"],
            )
            for table in found.get_table_names()
        }
    finally:
        engine.dispose()


def test_head_revision_matches_the_migration_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(database.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_migrations_build_the_same_schema_as_a_new_store(tmp_path: Path) -> None:
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    Store(fresh).close()
    migrated = f"sqlite:///{tmp_path / 'migrated.db'}"
    engine = create_engine(migrated)
    upgrade(engine)
    engine.dispose()
    assert _schema(fresh) == _schema(migrated)
    # A store opened on a migrated database accepts it as current.
    Store(migrated).close()


def test_a_store_at_an_older_revision_is_upgraded_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    upgrade(engine, "base")
    engine.dispose()
    Store(url).close()
    assert "clusters" in _schema(url)


def test_settings_outlive_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(url)
    first = store.setting("token_secret", lambda: "abc")
    store.close()
    store = Store(url)
    assert store.setting("token_secret", lambda: "other") == first == "abc"
    store.close()


def test_a_store_at_revision_0001_gets_the_indexes_of_each_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    engine = create_engine(url)

    def node_indexes() -> set[str]:
        with engine.connect() as conn:
            return {index["name"] for index in inspect(conn).get_indexes("nodes")}

    upgrade(engine, "0001")
    assert "ix_nodes_cluster_counts" not in node_indexes()
    upgrade(engine, "0002")
    assert "ix_nodes_cluster_counts" in node_indexes()
    engine.dispose()
    Store(url).close()
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == HEAD_REVISION
    # 0011: group_node_counts counts; a strike finds the k-th Running node of its group.
    assert "ix_nodes_cluster_counts" not in node_indexes()
    assert "ix_nodes_running" in node_indexes()
    engine.dispose()


def test_node_columns_are_in_the_order_of_the_node_fields() -> None:
    from dataclasses import fields

    from hyperpod_local.domain.model import Node
    from hyperpod_local.store.nodes import NODE_COLUMNS

    names = ["row_id" if column.name == "id" else column.name for column in NODE_COLUMNS]
    assert names == [field.name for field in fields(Node)]


def test_a_node_row_has_the_columns_of_the_table_in_its_order() -> None:
    from hyperpod_local.domain.model import Node
    from hyperpod_local.store.nodes import _COLUMN_NAMES, _row
    from hyperpod_local.store.schema import nodes

    assert tuple(column.name for column in nodes.c if column.name != "id") == _COLUMN_NAMES
    node = Node("c", "g", "ml.t3.medium", "Running", 1.0, instance_id="i-1", busy="replace")
    values = dict(zip(_COLUMN_NAMES, _row(node), strict=True))
    assert values["name_key"] == "i-1" and values["busy"] == "replace"
    assert values["cluster_id"] == "c" and values["sort_time"] == 1.0


_COUNTED = "cluster_id, group_name, instance_type, image_release_version, status"


def _counts(conn: sqlite3.Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """(what group_node_counts holds, what counting the nodes gives)."""
    kept = conn.execute(f"SELECT {_COUNTED}, count FROM group_node_counts ORDER BY {_COUNTED}")
    counted = conn.execute(
        f"SELECT {_COUNTED}, count(*) FROM nodes GROUP BY {_COUNTED} ORDER BY {_COUNTED}"
    )
    return kept.fetchall(), counted.fetchall()


@pytest.mark.parametrize("made_by", ["a new store", "the migrations"])
def test_group_node_counts_follow_every_write_to_nodes(tmp_path: Path, made_by: str) -> None:
    """The repositories are the only writers of nodes; each of their writes keeps the counts
    what counting the nodes gives, including a stale copy of a node saved after another."""
    from hyperpod_local.domain.model import Node

    path = tmp_path / "counts.db"
    if made_by == "the migrations":
        engine = create_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
    store = Store(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for cluster in ("c1", "c2"):
            conn.execute(
                "INSERT INTO clusters (id, account_id, region, name, arn, status, "
                "creation_time, spec, ip_base, next_ip, seq, legacy) VALUES (?, '1', 'r', ?, "
                "'arn', 'InService', 0, '{}', 0, 0, ?, 0)",
                (cluster, cluster, int(cluster[1])),
            )

        def checked(what: str) -> list[tuple[object, ...]]:
            kept, counted = _counts(conn)
            assert kept == counted, what
            return kept

        def node(index: int) -> Node:
            cluster, group = ("c1", f"g{index % 3}") if index < 20 else ("c2", "g0")
            return Node(
                cluster,
                group,
                "ml.c5.xlarge",
                "Pending",
                0.0,
                instance_id=f"i-{index:017x}",
                image_release_version="r1" if index % 2 else "r2",
            )

        with store.write() as tx:
            tx.nodes.add_all([node(index) for index in range(30)])
        checked("added")
        with store.write() as tx:
            every = tx.nodes.in_group("c1") + tx.nodes.in_group("c2")
            for n in every:
                if (n.row_id or 0) % 4:
                    n.status = "Running"
            tx.nodes.save_all(every)
            tx.nodes.save_all(every)  # no change: no move
        checked("status")
        with store.write() as tx:
            first = tx.nodes.get(1)
            assert first is not None
            first.busy = "replace"
            tx.nodes.save(first)  # a column that is not counted
            moved = [n for n in tx.nodes.in_group("c1") if 5 <= (n.row_id or 0) <= 8]
            for n in moved:
                n.group_name = "g9"
            changed = [n for n in tx.nodes.in_group("c1") if (n.row_id or 0) % 3 == 0]
            for n in changed:
                n.image_release_version, n.instance_type = "r3", "ml.m5.xlarge"
            tx.nodes.save_all(moved + changed)
        checked("group, release and type")
        with store.write() as tx:
            # Two copies of one node: the second was read before the first was saved.
            one, other = tx.nodes.get(2), tx.nodes.get(2)
            assert one is not None and other is not None
            one.status = "ShuttingDown"
            tx.nodes.save(one)
            other.status = "Failure"
            tx.nodes.save(other)
            twice = tx.nodes.get(3)
            assert twice is not None
            twice.status = "Failure"
            tx.nodes.save_all([twice, twice])
            for row_id in (5, 10, 15, 999):
                tx.nodes.remove(row_id)
        checked("stale copies and removals")
        with store.write() as tx:
            claimed = tx.nodes.claim_group("c1", "g1", "update", ["Running"], "SystemUpdating")
            assert claimed
            tx.nodes.set_status_all("c2", "ShuttingDown")
            cluster = tx.clusters.get("c1")
            assert cluster is not None
            tx.clusters.make_legacy(cluster, "r0")
        checked("in bulk")
        # What a rolled-back transaction did to the nodes, it did not do to the counts.
        before = checked("before the rollback")
        with pytest.raises(RuntimeError), store.write() as tx:
            tx.nodes.set_status_all("c1", "Failure")
            tx.nodes.add_all([node(40)])
            raise RuntimeError("rolled back")
        assert checked("rolled back") == before
        with store.write() as tx:
            tx.clusters.remove("c2")
        assert {row[0] for row in checked("a cluster gone")} == {"c1"}
    finally:
        conn.close()
        store.close()


def test_event_metadata_is_stored_as_json_dumps_writes_it() -> None:
    import json

    from hyperpod_local.store.events import _metadata_json

    samples: list[Any] = [
        {"Instance": {}},
        {"Cluster": {}},
        {"Instance": {"LcsExecutionState": "Started", "NodeLogicalId": None}},
        {"Instance": {"LcsExecutionState": "Failed", "NodeLogicalId": 'a"b\\c\u00e9\U0001f600\n'}},
        {"InstanceGroupScaling": {"InstanceCount": 3, "TargetCount": 4}},
        {"Instance": {"Nested": ["a"]}, "Other": {}},
        {"Instance": {"Flag": True}},
        {},
    ]
    for metadata in samples:
        assert _metadata_json(metadata) == json.dumps(metadata)
    assert _metadata_json(None) is None


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_an_event_id_never_names_a_second_event(tmp_path: Path, dialect: str) -> None:
    # The newest events removed (their cluster's, as a deletion removes them) and the store
    # opened again: SQLite would give their seqs out again without AUTOINCREMENT.
    from hyperpod_local.domain.model import Event
    from hyperpod_local.store.events import EventFilter
    from tests import postgresql

    if dialect == "postgresql":
        postgresql.require()
    url = f"sqlite:///{tmp_path / 's.db'}" if dialect == "sqlite" else postgresql.fresh_database()

    def add(store: Store, texts: list[str]) -> list[str]:
        with store.write() as tx:
            tx.events.add_all([Event("", "c1", 1.0, "Cluster", text) for text in texts])
        with store.read() as tx:
            listed = tx.events.page("c1", EventFilter(), False, None, 100)
        return [event.event_id for event, _ in listed]

    store = Store(url)
    try:
        first = add(store, ["a", "b", "c"])
        with store.write() as tx:
            tx.events.remove_for_cluster("c1")
        store.close()
        store = Store(url)
        again = add(store, ["d", "e", "f"])
        assert len(set(first + again)) == 6
        with store.read() as tx:
            assert [tx.events.get("c1", event_id) for event_id in first] == [None] * 3
            found = [tx.events.get("c1", event_id) for event_id in again]
            assert [event.description for event in found if event] == ["d", "e", "f"]
            # Another cluster's name does not find them.
            assert tx.events.get("c2", again[0]) is None
    finally:
        store.close()
        if dialect == "postgresql":
            postgresql.drop(url)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_prepared_statement_reads_what_sqlalchemy_reads(tmp_path: Path, dialect: str) -> None:
    # Every type of the statements store/prepared.py runs: text, numbers, JSON, booleans,
    # NULLs, a labelled subquery; none of the rows or none of the values lost or changed.
    from hyperpod_local.store.clusters import _statements
    from tests import postgresql

    if dialect == "postgresql":
        postgresql.require()
    url = f"sqlite:///{tmp_path / 's.db'}" if dialect == "sqlite" else postgresql.fresh_database()
    store = Store(url)
    try:
        with store.write() as tx:
            tx.conn.execute(
                text(
                    "INSERT INTO clusters (id, account_id, region, name, arn, status, "
                    "creation_time, spec, ip_base, next_ip, seq, legacy, failure_message) "
                    "VALUES ('c1', 'a', 'r', 'n', 'arn:c1', 'InService', 12.5, "
                    '\'{"K": [1, null, "x"]}\', 655360, 3, 1, :legacy, NULL)'
                ),
                {"legacy": True},
            )
            for position, name in enumerate(("g1", "g2")):
                tx.conn.execute(
                    text(
                        "INSERT INTO instance_groups (cluster_id, name, position, spec, "
                        "target_count, min_count, status) VALUES ('c1', :name, :position, "
                        "'{\"InstanceType\": \"ml.c5.xlarge\"}', 2, NULL, 'InService')"
                    ),
                    {"name": name, "position": position},
                )
            tx.conn.execute(
                text(
                    "INSERT INTO group_node_counts VALUES "
                    "('c1', 'g1', 'ml.c5.xlarge', 'r1', 'Running', 2)"
                )
            )
        statements = _statements()
        cases = [
            (statements.by_name, {"account_id": "a", "region": "r", "key": "n"}),
            (statements.by_name, {"account_id": "a", "region": "r", "key": "none"}),
            (statements.by_id, {"account_id": "a", "region": "r", "key": "c1"}),
            (statements.any_by_id, {"key": "c1"}),
            (statements.counted_groups, {"cluster_id": "c1"}),
            (statements.groups, {"cluster_id": "c1"}),
        ]
        with store.read() as tx:
            for prepared, params in cases:
                expected = [tuple(row) for row in tx.conn.execute(prepared.statement, params)]
                found = prepared.rows(tx.conn, params)
                assert [tuple(row) for row in found] == expected
                assert [type(v) for row in found for v in row] == [
                    type(v) for row in expected for v in row
                ]
            row = statements.by_name.first(tx.conn, cases[0][1])
            assert row.spec == {"K": [1, None, "x"]} and row.legacy is True and row.next_ip == 3
    finally:
        store.close()
        if dialect == "postgresql":
            postgresql.drop(url)
