"""An index of the nodes an operation holds, for automatic recovery's health of a group.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_nodes_busy",
        "nodes",
        ["cluster_id", "group_name", "busy"],
        sqlite_where=sa.text("busy IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_nodes_busy", table_name="nodes")
