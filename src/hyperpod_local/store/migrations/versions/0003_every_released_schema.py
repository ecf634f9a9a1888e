"""Every schema a release made under 0001 or 0002, brought to one.

Revision 0001 was edited after it was released, so a store stamped 0001 or 0002 has one of
several schemas (tests/fixtures/schemas holds each): it may lack tables (tasks, events,
operations, sim_instances, sim_volumes, faults, client_tokens), columns (clusters.seq,
eks_cluster_arn and legacy, nodes.busy), a unique constraint or indexes, or have an index on
other columns. This revision reads what the store has and makes it the schema below, a
frozen copy of schema.py at this revision: schema.py moves on, a released revision never
does. On a store that has it all already it changes nothing, and it refuses to finish
(rolling back) if the result is still not that schema.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TARGET = MetaData()

settings = Table(
    "settings",
    TARGET,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

clusters = Table(
    "clusters",
    TARGET,
    Column("id", String(12), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("name", String(63), nullable=False),
    Column("arn", String(256), nullable=False),
    Column("status", String(32), nullable=False),
    Column("failure_message", Text),
    Column("creation_time", Float, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("ip_base", Integer, nullable=False),
    Column("next_ip", Integer, nullable=False, server_default="0"),
    Column("seq", Integer, nullable=False),
    Column("eks_cluster_arn", String(2048)),
    Column("legacy", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("account_id", "region", "name", name="uq_clusters_scope_name"),
    UniqueConstraint("account_id", "region", "eks_cluster_arn", name="uq_clusters_scope_eks"),
    Index("ix_clusters_scope_time", "account_id", "region", "creation_time", "seq"),
    Index("ix_clusters_scope_name", "account_id", "region", "name", "seq"),
)

instance_groups = Table(
    "instance_groups",
    TARGET,
    Column(
        "cluster_id", String(12), ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("name", String(63), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("target_count", Integer, nullable=False),
    Column("min_count", Integer),
    Column("status", String(32), nullable=False),
)

nodes = Table(
    "nodes",
    TARGET,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster_id", String(12), ForeignKey("clusters.id", ondelete="CASCADE"), nullable=False),
    Column("group_name", String(63), nullable=False),
    Column("instance_id", String(19), unique=True),
    Column("name_key", String(19), nullable=False, server_default=""),
    Column("logical_id", String(128)),
    Column("status", String(32), nullable=False),
    Column("status_message", Text),
    Column("instance_type", String(32), nullable=False),
    Column("launch_time", Float),
    Column("sort_time", Float, nullable=False),
    Column("private_ip", String(15)),
    Column("hostname", String(128)),
    Column("availability_zone", String(32)),
    Column("availability_zone_id", String(16)),
    Column("image_id", String(21), nullable=False),
    Column("image_release_version", String(64), nullable=False),
    Column("last_software_update_time", Float),
    Column("busy", String(16)),
    Index("ix_nodes_cluster_time", "cluster_id", "sort_time", "id"),
    Index("ix_nodes_cluster_name", "cluster_id", "group_name", "name_key", "id"),
    Index("ix_nodes_cluster_group_time", "cluster_id", "group_name", "sort_time", "id"),
    Index("ix_nodes_cluster_logical", "cluster_id", "logical_id"),
    Index(
        "ix_nodes_cluster_counts",
        "cluster_id",
        "group_name",
        "instance_type",
        "image_release_version",
        "status",
    ),
)

tasks = Table(
    "tasks",
    TARGET,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster_id", String(12), nullable=False),
    Column("node_id", Integer),
    Column("group_name", String(63)),
    Column("kind", String(32), nullable=False),
    Column("step", String(32), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("data", JSON, nullable=False),
    Column("operation_id", String(36)),
    Index("ix_tasks_due", "due_at", "id"),
    Index("ix_tasks_cluster", "cluster_id", "kind"),
)

events = Table(
    "events",
    TARGET,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("cluster_id", String(12), nullable=False),
    Column("event_time", Float, nullable=False),
    Column("resource_type", String(16), nullable=False),
    Column("group_name", String(63)),
    Column("instance_id", String(19)),
    Column("description", Text, nullable=False),
    Column("level", String(8), nullable=False),
    Column("operation_id", String(36)),
    Column("event_metadata", JSON),
    Index("ix_events_cluster_time", "cluster_id", "event_time", "seq"),
)

operations = Table(
    "operations",
    TARGET,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(36), nullable=False, unique=True),
    Column("cluster_id", String(12), nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("creation_time", Float, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_operations_cluster_time", "cluster_id", "creation_time", "seq"),
)

sim_instances = Table(
    "sim_instances",
    TARGET,
    Column("instance_id", String(19), primary_key=True),
    Column("cluster_id", String(12), nullable=False),
    Column("launched_at", Float, nullable=False),
    Column("image_id", String(21), nullable=False),
    Column("boot_count", Integer, nullable=False),
    Index("ix_sim_instances_cluster", "cluster_id"),
)

sim_volumes = Table(
    "sim_volumes",
    TARGET,
    Column("volume_id", String(21), primary_key=True),
    Column("instance_id", String(19), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("size_gb", Integer, nullable=False),
    Column("marker", Text),
    Index("ix_sim_volumes_instance", "instance_id", "position"),
)

faults = Table(
    "faults",
    TARGET,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("fault_id", String(36), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("cluster_id", String(12)),
    Column("group_name", String(63)),
    Column("instance_id", String(19)),
    Column("instance_type", String(32)),
    Column("remaining", Integer),
    Column("params", JSON, nullable=False),
    Index("ix_faults_kind", "kind", "cluster_id"),
)

client_tokens = Table(
    "client_tokens",
    TARGET,
    Column("cluster_id", String(12), primary_key=True),
    Column("token", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("response", JSON, nullable=False),
)

tags = Table(
    "tags",
    TARGET,
    Column("resource_arn", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("position", Integer, nullable=False),
)

# How to fill a NOT NULL column without a default that an older table lacks, as SQL over the
# old row. Clusters were numbered in the order they were made, which is their rowid order.
FILL = {("clusters", "seq"): "rowid"}


def upgrade() -> None:
    conn = op.get_bind()
    for table in TARGET.sorted_tables:
        found = sa.inspect(conn)  # afresh each time: an inspector caches what it saw
        if not found.has_table(table.name):
            table.create(conn)  # with its indexes
            continue
        if _needs_rebuild(conn, found, table):
            _rebuild(conn, found, table)
        else:
            _add_columns(found, table)
        _match_indexes(conn, sa.inspect(conn), table)
    _fill_eks_cluster_arns(conn)
    differences = _differences(conn)
    if differences:
        raise RuntimeError(f"the store's schema is none this release knows: {differences}")


def downgrade() -> None:
    # What a store had before is not recorded anywhere; going back would lose data.
    raise NotImplementedError("revision 0003 cannot be undone")


def _columns(conn: sa.Connection, table: Table) -> list[tuple[str, str, bool, bool]]:
    return [
        (
            c.name,
            str(c.type.compile(dialect=conn.dialect)),
            bool(c.nullable),
            c.server_default is not None,
        )
        for c in table.columns
    ]


def _found_columns(found: Any, name: str) -> list[tuple[str, str, bool, bool]]:
    return [
        (c["name"], str(c["type"]), bool(c["nullable"]), c.get("default") is not None)
        for c in found.get_columns(name)
    ]


def _constraints(table: Table) -> tuple[set[Any], set[Any], list[str]]:
    """The table's unique constraints, foreign keys and primary key, as inspection shows them."""
    uniques = {
        (c.name, tuple(c.columns.keys()))
        for c in table.constraints
        if isinstance(c, UniqueConstraint)
    }
    foreign = {
        (
            tuple(fk.parent.name for fk in c.elements),
            c.referred_table.name,
            tuple(fk.column.name for fk in c.elements),
            c.ondelete,
        )
        for c in table.foreign_key_constraints
    }
    return uniques, foreign, [c.name for c in table.primary_key.columns]


def _found_constraints(found: Any, name: str) -> tuple[set[Any], set[Any], list[str]]:
    uniques = {(u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(name)}
    foreign = {
        (
            tuple(fk["constrained_columns"]),
            fk["referred_table"],
            tuple(fk["referred_columns"]),
            fk.get("options", {}).get("ondelete"),
        )
        for fk in found.get_foreign_keys(name)
    }
    return uniques, foreign, list(found.get_pk_constraint(name)["constrained_columns"])


def _needs_rebuild(conn: sa.Connection, found: Any, table: Table) -> bool:
    """Whether the table must be made anew: SQLite can add a column at the end that is
    nullable or has a default, and nothing else."""
    have = _found_columns(found, table.name)
    want = _columns(conn, table)
    if have != want[: len(have)]:
        return True
    if any(not nullable and not default for _, _, nullable, default in want[len(have) :]):
        return True
    return _found_constraints(found, table.name) != _constraints(table)


def _add_columns(found: Any, table: Table) -> None:
    have = {c["name"] for c in found.get_columns(table.name)}
    for column in table.columns:
        if column.name not in have:
            # A column belongs to one table: the target's is copied, its default by value.
            default = getattr(column.server_default, "arg", None)
            op.add_column(
                table.name,
                Column(column.name, column.type, nullable=column.nullable, server_default=default),
            )


def _rebuild(conn: sa.Connection, found: Any, table: Table) -> None:
    """SQLite's way to change a table: make the new one, copy the rows, drop the old one and
    rename the new. The Store turns foreign keys off around migrations, so dropping the old
    table deletes no rows that refer to it."""
    have = {c["name"] for c in found.get_columns(table.name)}
    unknown = have - set(table.columns.keys())
    if unknown:  # no release had it; dropping it would lose what it holds
        raise RuntimeError(f"unknown columns {sorted(unknown)} in {table.name}")
    new_name = f"_new_{table.name}"
    # The copy goes beside copies of the other tables, for its foreign keys to resolve.
    scratch = MetaData()
    for other in TARGET.tables.values():
        other.to_metadata(scratch)
    new = table.to_metadata(scratch, name=new_name)
    for index in list(new.indexes):  # index names are global; the old table still has them
        new.indexes.discard(index)
    conn.execute(sa.schema.CreateTable(new))
    names, values = [], []
    for column in table.columns:
        fill = FILL.get((table.name, column.name))
        if column.name in have:
            names.append(column.name)
            values.append(_quote(conn, column.name))
        elif fill is not None:
            names.append(column.name)
            values.append(fill)
        elif not column.nullable and column.server_default is None:
            raise RuntimeError(f"no value for the new column {table.name}.{column.name}")
    conn.exec_driver_sql(
        f"INSERT INTO {_quote(conn, new_name)} ({', '.join(_quote(conn, n) for n in names)}) "
        f"SELECT {', '.join(values)} FROM {_quote(conn, table.name)}"
    )
    op.drop_table(table.name)
    op.rename_table(new_name, table.name)
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"rows refer to rows that are gone: {broken[:5]}")


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _match_indexes(conn: sa.Connection, found: Any, table: Table) -> None:
    have = {
        i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
        for i in found.get_indexes(table.name)
    }
    want = {i.name: i for i in table.indexes}
    for name, shape in have.items():
        index = want.get(name)
        if index is None or shape != _index_shape(index):
            op.drop_index(name, table_name=table.name)
            have[name] = ((), False)
    for name, index in want.items():
        if have.get(name) != _index_shape(index):
            index.create(conn)


def _index_shape(index: Index) -> tuple[tuple[str, ...], bool]:
    return tuple(c.name for c in index.columns), bool(index.unique)


def _fill_eks_cluster_arns(conn: sa.Connection) -> None:
    """Clusters made before eks_cluster_arn had a column name their EKS cluster only in the
    spec. The first of them (in creation order) to name one gets it: one EKS cluster serves
    one HyperPod cluster, and the column is unique per account and region."""
    clusters = TARGET.tables["clusters"]
    taken = {
        (row.account_id, row.region, row.eks_cluster_arn)
        for row in conn.execute(
            sa.select(clusters.c.account_id, clusters.c.region, clusters.c.eks_cluster_arn).where(
                clusters.c.eks_cluster_arn.is_not(None)
            )
        )
    }
    rows = conn.execute(
        sa.select(clusters.c.id, clusters.c.account_id, clusters.c.region, clusters.c.spec)
        .where(clusters.c.eks_cluster_arn.is_(None))
        .order_by(clusters.c.seq)
    ).all()
    for row in rows:
        spec = json.loads(row.spec) if isinstance(row.spec, str) else row.spec
        arn = ((spec or {}).get("Orchestrator") or {}).get("Eks", {}).get("ClusterArn")
        if arn is None or (row.account_id, row.region, arn) in taken:
            continue
        taken.add((row.account_id, row.region, arn))
        conn.execute(clusters.update().where(clusters.c.id == row.id).values(eks_cluster_arn=arn))


def _differences(conn: sa.Connection) -> list[str]:
    """What still differs between the store and the target schema, table by table."""
    found = sa.inspect(conn)
    names = set(found.get_table_names()) - {"alembic_version"}
    differences = [f"unknown table {name}" for name in sorted(names - set(TARGET.tables))]
    for table in TARGET.sorted_tables:
        if table.name not in names:
            differences.append(f"no table {table.name}")
            continue
        indexes = {
            i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
            for i in found.get_indexes(table.name)
        }
        if _found_columns(found, table.name) != _columns(conn, table):
            differences.append(f"columns of {table.name}")
        if _found_constraints(found, table.name) != _constraints(table):
            differences.append(f"constraints of {table.name}")
        if indexes != {i.name: _index_shape(i) for i in table.indexes}:
            differences.append(f"indexes of {table.name}")
    return differences
