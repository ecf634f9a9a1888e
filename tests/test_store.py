"""The store's schema: migrations and the fast path for a new data dir agree."""

from __future__ import annotations

from pathlib import Path

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


def test_a_store_at_revision_0001_gets_the_node_counts_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    engine = create_engine(url)
    upgrade(engine, "0001")
    with engine.connect() as conn:
        assert "ix_nodes_cluster_counts" not in {
            index["name"] for index in inspect(conn).get_indexes("nodes")
        }
    engine.dispose()
    Store(url).close()
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == HEAD_REVISION
        assert "ix_nodes_cluster_counts" in {
            index["name"] for index in inspect(conn).get_indexes("nodes")
        }
    engine.dispose()


def test_node_columns_are_in_the_order_of_the_node_fields() -> None:
    from dataclasses import fields

    from hyperpod_local.domain.model import Node
    from hyperpod_local.store.nodes import NODE_COLUMNS

    names = ["row_id" if column.name == "id" else column.name for column in NODE_COLUMNS]
    assert names == [field.name for field in fields(Node)]
