"""Clusters, instance groups, nodes, tags and settings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "clusters",
        sa.Column("id", sa.String(12), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("arn", sa.String(256), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("failure_message", sa.Text),
        sa.Column("creation_time", sa.Float, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("ip_base", sa.Integer, nullable=False),
        sa.Column("next_ip", sa.Integer, nullable=False, server_default="0"),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("eks_cluster_arn", sa.String(2048)),
        sa.Column("legacy", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_clusters_scope_name"),
        sa.UniqueConstraint(
            "account_id", "region", "eks_cluster_arn", name="uq_clusters_scope_eks"
        ),
    )
    op.create_index(
        "ix_clusters_scope_time", "clusters", ["account_id", "region", "creation_time", "seq"]
    )
    op.create_index("ix_clusters_scope_name", "clusters", ["account_id", "region", "name", "seq"])
    op.create_table(
        "instance_groups",
        sa.Column(
            "cluster_id",
            sa.String(12),
            sa.ForeignKey("clusters.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("target_count", sa.Integer, nullable=False),
        sa.Column("min_count", sa.Integer),
        sa.Column("status", sa.String(32), nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "cluster_id",
            sa.String(12),
            sa.ForeignKey("clusters.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("group_name", sa.String(63), nullable=False),
        sa.Column("instance_id", sa.String(19), unique=True),
        sa.Column("name_key", sa.String(19), nullable=False, server_default=""),
        sa.Column("logical_id", sa.String(128)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text),
        sa.Column("instance_type", sa.String(32), nullable=False),
        sa.Column("launch_time", sa.Float),
        sa.Column("sort_time", sa.Float, nullable=False),
        sa.Column("private_ip", sa.String(15)),
        sa.Column("hostname", sa.String(128)),
        sa.Column("availability_zone", sa.String(32)),
        sa.Column("availability_zone_id", sa.String(16)),
        sa.Column("image_id", sa.String(21), nullable=False),
        sa.Column("image_release_version", sa.String(64), nullable=False),
        sa.Column("last_software_update_time", sa.Float),
        sa.Column("busy", sa.String(16)),
    )
    op.create_index("ix_nodes_cluster_time", "nodes", ["cluster_id", "sort_time", "id"])
    op.create_index(
        "ix_nodes_cluster_name", "nodes", ["cluster_id", "group_name", "name_key", "id"]
    )
    op.create_index("ix_nodes_cluster_logical", "nodes", ["cluster_id", "logical_id"])
    op.create_index(
        "ix_nodes_cluster_group_time", "nodes", ["cluster_id", "group_name", "sort_time", "id"]
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cluster_id", sa.String(12), nullable=False),
        sa.Column("node_id", sa.Integer),
        sa.Column("group_name", sa.String(63)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("operation_id", sa.String(36)),
    )
    op.create_index("ix_tasks_due", "tasks", ["due_at", "id"])
    op.create_index("ix_tasks_cluster", "tasks", ["cluster_id", "kind"])
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("cluster_id", sa.String(12), nullable=False),
        sa.Column("event_time", sa.Float, nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("group_name", sa.String(63)),
        sa.Column("instance_id", sa.String(19)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("operation_id", sa.String(36)),
        sa.Column("event_metadata", sa.JSON),
    )
    op.create_index("ix_events_cluster_time", "events", ["cluster_id", "event_time", "seq"])
    op.create_table(
        "operations",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("operation_id", sa.String(36), nullable=False, unique=True),
        sa.Column("cluster_id", sa.String(12), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("creation_time", sa.Float, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index(
        "ix_operations_cluster_time", "operations", ["cluster_id", "creation_time", "seq"]
    )
    op.create_table(
        "sim_instances",
        sa.Column("instance_id", sa.String(19), primary_key=True),
        sa.Column("cluster_id", sa.String(12), nullable=False),
        sa.Column("launched_at", sa.Float, nullable=False),
        sa.Column("image_id", sa.String(21), nullable=False),
        sa.Column("boot_count", sa.Integer, nullable=False),
    )
    op.create_index("ix_sim_instances_cluster", "sim_instances", ["cluster_id"])
    op.create_table(
        "sim_volumes",
        sa.Column("volume_id", sa.String(21), primary_key=True),
        sa.Column("instance_id", sa.String(19), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size_gb", sa.Integer, nullable=False),
        sa.Column("marker", sa.Text),
    )
    op.create_index("ix_sim_volumes_instance", "sim_volumes", ["instance_id", "position"])
    op.create_table(
        "faults",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fault_id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("cluster_id", sa.String(12)),
        sa.Column("group_name", sa.String(63)),
        sa.Column("instance_id", sa.String(19)),
        sa.Column("instance_type", sa.String(32)),
        sa.Column("remaining", sa.Integer),
        sa.Column("params", sa.JSON, nullable=False),
    )
    op.create_index("ix_faults_kind", "faults", ["kind", "cluster_id"])
    op.create_table(
        "client_tokens",
        sa.Column("cluster_id", sa.String(12), primary_key=True),
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
    )
    op.create_table(
        "tags",
        sa.Column("resource_arn", sa.String(256), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "tags",
        "client_tokens",
        "faults",
        "sim_volumes",
        "sim_instances",
        "operations",
        "events",
        "tasks",
        "nodes",
        "instance_groups",
        "clusters",
        "settings",
    ):
        op.drop_table(table)
