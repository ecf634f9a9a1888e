"""Per-group node counts kept by triggers on nodes, filled from the nodes already there.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A copy, not an import of store/node_count_triggers.py: a released revision must do the
# same thing however the running code changes later.
_KEY = ("cluster_id", "group_name", "instance_type", "image_release_version", "status")
_COLUMNS = ", ".join(_KEY)


def _match(row: str) -> str:
    return " AND ".join(f"{column} = {row}.{column}" for column in _KEY)


def _count_in(row: str) -> str:
    values = ", ".join(f"{row}.{column}" for column in _KEY)
    return (
        f"INSERT INTO group_node_counts ({_COLUMNS}, count) VALUES ({values}, 1) "
        f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET count = count + 1;"
    )


def _count_out(row: str) -> str:
    return (
        f"UPDATE group_node_counts SET count = count - 1 WHERE {_match(row)}; "
        f"DELETE FROM group_node_counts WHERE {_match(row)} AND count <= 0;"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        raise RuntimeError("revision 0005's triggers are written for SQLite only")
    op.create_table(
        "group_node_counts",
        sa.Column(
            "cluster_id",
            sa.String(12),
            sa.ForeignKey("clusters.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("group_name", sa.String(63), primary_key=True),
        sa.Column("instance_type", sa.String(32), primary_key=True),
        sa.Column("image_release_version", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.execute(
        f"INSERT INTO group_node_counts ({_COLUMNS}, count) "
        f"SELECT {_COLUMNS}, count(*) FROM nodes GROUP BY {_COLUMNS}"
    )
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in _KEY)
    op.execute(
        f"CREATE TRIGGER nodes_counted_in AFTER INSERT ON nodes BEGIN {_count_in('NEW')} END"
    )
    op.execute(
        f"CREATE TRIGGER nodes_counted_out AFTER DELETE ON nodes BEGIN {_count_out('OLD')} END"
    )
    op.execute(
        f"CREATE TRIGGER nodes_counted_moved AFTER UPDATE OF {', '.join(_KEY)} ON nodes "
        f"WHEN {changed} BEGIN {_count_out('OLD')} {_count_in('NEW')} END"
    )


def downgrade() -> None:
    for name in ("nodes_counted_moved", "nodes_counted_out", "nodes_counted_in"):
        op.execute(f"DROP TRIGGER {name}")
    op.drop_table("group_node_counts")
