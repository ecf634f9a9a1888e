"""Smaller rows and fewer indexes for a fleet's nodes, instances, volumes and events.

- An event's id is made from its seq (store/event_ids.py) and no longer stored. Each event
  stored a random UUID of its own, with a unique index on it: about 90 bytes an event, and
  an index written at every insert. The events already written keep the ids they have, in
  `legacy_event_ids`, so an id a client holds still names its event. The seqs are never
  used twice from here on (AUTOINCREMENT on SQLite; PostgreSQL's serial already was a
  sequence), and the key the ids are made with is drawn here, once per store.
- ix_nodes_cluster_counts (five columns of every node, written at every status change) was
  DescribeCluster's count until group_node_counts; a random_hardware strike still walked it.
  It goes, and ix_nodes_running holds only the Running nodes, by group.
- ix_nodes_cluster_logical leaves out the nodes without a logical id (classic clusters').
- SQLite: sim_instances and sim_volumes keep their rows in their key's tree (WITHOUT
  ROWID), not in a rowid tree beside a second tree for the key.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import secrets
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Copies, not imports: a released revision must do the same thing however the running code
# changes later.
_KEY_SETTING = "event_id_key"
_KEPT = (
    "seq, cluster_id, event_time, resource_type, group_name, instance_id, description, "
    "level, operation_id, event_metadata"
)
# schema.events as SQLite's dialect creates it, and its index.
_SQLITE_EVENTS = (
    "CREATE TABLE {name} ("
    "seq INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "
    "cluster_id VARCHAR(12) NOT NULL, "
    "event_time FLOAT NOT NULL, "
    "resource_type VARCHAR(16) NOT NULL, "
    "group_name VARCHAR(63), "
    "instance_id VARCHAR(19), "
    "description TEXT NOT NULL, "
    "level VARCHAR(8) NOT NULL, "
    "operation_id VARCHAR(36), "
    "event_metadata JSON)"
)
_INDEX = "CREATE INDEX ix_events_cluster_time ON events (cluster_id, event_time, seq)"
_RUNNING = (
    "CREATE INDEX ix_nodes_running ON nodes (cluster_id, group_name, status, id) "
    "WHERE status = 'Running'"
)
_LOGICAL = (
    "CREATE INDEX ix_nodes_cluster_logical ON nodes (cluster_id, logical_id) "
    "WHERE logical_id IS NOT NULL"
)
# SQLite: schema.sim_instances and schema.sim_volumes as its dialect creates them.
_SIM_TABLES = {
    "sim_instances": (
        "(instance_id VARCHAR(19) NOT NULL, cluster_id VARCHAR(12) NOT NULL, "
        "launched_at FLOAT NOT NULL, image_id VARCHAR(21) NOT NULL, "
        "boot_count INTEGER NOT NULL, PRIMARY KEY (instance_id))",
        "instance_id, cluster_id, launched_at, image_id, boot_count",
        "CREATE INDEX ix_sim_instances_cluster ON sim_instances (cluster_id)",
    ),
    "sim_volumes": (
        "(volume_id VARCHAR(21) NOT NULL, instance_id VARCHAR(19) NOT NULL, "
        "position INTEGER NOT NULL, kind VARCHAR(16) NOT NULL, size_gb INTEGER NOT NULL, "
        "marker TEXT, PRIMARY KEY (volume_id))",
        "volume_id, instance_id, position, kind, size_gb, marker",
        "CREATE INDEX ix_sim_volumes_instance ON sim_volumes (instance_id, position)",
    ),
}


def upgrade() -> None:
    _events_without_ids()
    op.execute("DROP INDEX ix_nodes_cluster_counts")
    op.execute(_RUNNING)
    op.execute("DROP INDEX ix_nodes_cluster_logical")
    op.execute(_LOGICAL)
    if op.get_bind().dialect.name == "sqlite":
        for name, (columns, kept, index) in _SIM_TABLES.items():
            op.execute(f"CREATE TABLE {name}_0011 {columns} WITHOUT ROWID")
            op.execute(f"INSERT INTO {name}_0011 ({kept}) SELECT {kept} FROM {name}")
            op.execute(f"DROP TABLE {name}")
            op.execute(f"ALTER TABLE {name}_0011 RENAME TO {name}")
            op.execute(index)


def _events_without_ids() -> None:
    op.create_table(
        "legacy_event_ids",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    )
    op.execute("INSERT INTO legacy_event_ids (seq, event_id) SELECT seq, event_id FROM events")
    if op.get_bind().dialect.name == "postgresql":
        # With its unique constraint.
        op.drop_column("events", "event_id")
    else:
        # SQLite cannot drop a column with a unique index, nor make a table AUTOINCREMENT:
        # the table is made anew. Copying the seqs sets AUTOINCREMENT's last one.
        op.execute(_SQLITE_EVENTS.format(name="events_0011"))
        op.execute(f"INSERT INTO events_0011 ({_KEPT}) SELECT {_KEPT} FROM events")
        op.execute("DROP TABLE events")
        op.execute("ALTER TABLE events_0011 RENAME TO events")
        op.execute(_INDEX)
    op.execute(
        sa.text(
            "INSERT INTO settings (key, value) SELECT :key, :value "
            "WHERE NOT EXISTS (SELECT 1 FROM settings WHERE key = :key)"
        ).bindparams(key=_KEY_SETTING, value=secrets.token_hex(32))
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name, (columns, kept, index) in _SIM_TABLES.items():
            op.execute(f"CREATE TABLE {name}_0010 {columns}")
            op.execute(f"INSERT INTO {name}_0010 ({kept}) SELECT {kept} FROM {name}")
            op.execute(f"DROP TABLE {name}")
            op.execute(f"ALTER TABLE {name}_0010 RENAME TO {name}")
            op.execute(index)
    op.execute("DROP INDEX ix_nodes_cluster_logical")
    op.execute("CREATE INDEX ix_nodes_cluster_logical ON nodes (cluster_id, logical_id)")
    op.execute("DROP INDEX ix_nodes_running")
    op.execute(
        "CREATE INDEX ix_nodes_cluster_counts ON nodes "
        "(cluster_id, group_name, instance_type, image_release_version, status)"
    )
    _events_with_ids()


def _events_with_ids() -> None:
    """Every event stores an id again: its kept one, or else a new random one. The key
    stays, so that upgrading once more keeps every id as it was."""
    bind = op.get_bind()
    unnamed = bind.scalars(
        sa.text("SELECT seq FROM events WHERE seq NOT IN (SELECT seq FROM legacy_event_ids)")
    ).all()
    if unnamed:
        bind.execute(
            sa.text("INSERT INTO legacy_event_ids (seq, event_id) VALUES (:seq, :event_id)"),
            [{"seq": seq, "event_id": str(uuid.uuid4())} for seq in unnamed],
        )
    if bind.dialect.name == "postgresql":
        op.add_column("events", sa.Column("event_id", sa.String(36)))
        op.execute(
            "UPDATE events SET event_id = legacy_event_ids.event_id FROM legacy_event_ids "
            "WHERE legacy_event_ids.seq = events.seq"
        )
        op.alter_column("events", "event_id", nullable=False)
        op.create_unique_constraint("events_event_id_key", "events", ["event_id"])
    else:
        op.execute(
            _SQLITE_EVENTS.replace("PRIMARY KEY AUTOINCREMENT", "PRIMARY KEY")
            .replace(
                "cluster_id VARCHAR(12)",
                "event_id VARCHAR(36) NOT NULL UNIQUE, cluster_id VARCHAR(12)",
            )
            .format(name="events_0010")
        )
        op.execute(
            f"INSERT INTO events_0010 (event_id, {_KEPT}) SELECT legacy_event_ids.event_id, "
            + ", ".join(f"events.{column}" for column in _KEPT.split(", "))
            + " FROM events JOIN legacy_event_ids ON legacy_event_ids.seq = events.seq"
        )
        op.execute("DROP TABLE events")
        op.execute("ALTER TABLE events_0010 RENAME TO events")
        op.execute(_INDEX)
    op.drop_table("legacy_event_ids")
