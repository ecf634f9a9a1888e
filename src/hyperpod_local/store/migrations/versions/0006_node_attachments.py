"""EBS volumes and network interfaces attached to nodes (AttachClusterNodeVolume,
AttachClusterNodeNetworkInterface).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volume_attachments",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("volume_id", sa.String(21), primary_key=True),
        sa.Column("instance_id", sa.String(19), nullable=False),
        sa.Column("device_name", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attach_time", sa.Float, nullable=False),
    )
    op.create_index("ix_volume_attachments_instance", "volume_attachments", ["instance_id"])
    op.create_table(
        "network_interface_attachments",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("network_interface_id", sa.String(21), primary_key=True),
        sa.Column("attachment_id", sa.String(28), nullable=False, unique=True),
        sa.Column("instance_id", sa.String(19), nullable=False),
        sa.Column("device_index", sa.Integer, nullable=False),
        sa.Column("attach_time", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_network_interface_attachments_instance",
        "network_interface_attachments",
        ["instance_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_network_interface_attachments_instance", table_name="network_interface_attachments"
    )
    op.drop_table("network_interface_attachments")
    op.drop_index("ix_volume_attachments_instance", table_name="volume_attachments")
    op.drop_table("volume_attachments")
