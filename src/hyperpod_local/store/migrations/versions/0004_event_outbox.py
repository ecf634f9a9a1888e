"""The event outbox and the event targets' places in it (outlets/).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("envelope", sa.JSON, nullable=False),
        sa.Column("enqueued_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "event_outlets",
        sa.Column("target", sa.String(2048), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event_outlets")
    op.drop_table("event_outbox")
