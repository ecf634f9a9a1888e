"""Cluster extensions and task governance (cluster policies, compute allocations).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_extensions",
        sa.Column("arn", sa.String(256), primary_key=True),
        sa.Column(
            "cluster_id",
            sa.String(12),
            sa.ForeignKey("clusters.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("creation_time", sa.Float, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.UniqueConstraint("cluster_id", "name", name="uq_cluster_extensions_name"),
    )
    op.create_index(
        "ix_cluster_extensions_time", "cluster_extensions", ["cluster_id", "creation_time", "seq"]
    )
    op.create_table(
        "governance_policies",
        sa.Column("policy_id", sa.String(12), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column(
            "cluster_id",
            sa.String(12),
            sa.ForeignKey("clusters.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("creation_time", sa.Float, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_governance_policies_scope",
        "governance_policies",
        ["account_id", "region", "kind", "creation_time"],
    )
    op.create_index("ix_governance_policies_cluster", "governance_policies", ["cluster_id", "kind"])


def downgrade() -> None:
    op.drop_table("governance_policies")
    op.drop_table("cluster_extensions")
