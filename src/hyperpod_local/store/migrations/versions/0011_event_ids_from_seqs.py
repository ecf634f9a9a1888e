"""An event's id is made from its seq (store/event_ids.py) and no longer stored.

Each event stored a random UUID of its own, with a unique index on it: about 90 bytes an
event, and an index written at every insert. The events already written keep the ids they
have, in `legacy_event_ids`, so an id a client holds still names its event. The seqs are
never used twice from here on (AUTOINCREMENT on SQLite; PostgreSQL's serial already was a
sequence), and the key the ids are made with is drawn here, once per store.

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


def upgrade() -> None:
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
