"""A covering index for DescribeCluster's per-group node counts.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_nodes_cluster_counts",
        "nodes",
        ["cluster_id", "group_name", "instance_type", "image_release_version", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_nodes_cluster_counts", table_name="nodes")
