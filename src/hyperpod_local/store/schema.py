"""The tables. A change here needs an Alembic revision in store/migrations/versions/."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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
)

metadata = MetaData()

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

clusters = Table(
    "clusters",
    metadata,
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
    # Creation order within the store: breaks ties between clusters made in one millisecond.
    Column("seq", Integer, nullable=False),
    # The EKS cluster orchestrating this one: one EKS cluster serves one HyperPod cluster.
    Column("eks_cluster_arn", String(2048)),
    UniqueConstraint("account_id", "region", "name", name="uq_clusters_scope_name"),
    UniqueConstraint("account_id", "region", "eks_cluster_arn", name="uq_clusters_scope_eks"),
    Index("ix_clusters_scope_time", "account_id", "region", "creation_time", "seq"),
    Index("ix_clusters_scope_name", "account_id", "region", "name", "seq"),
)

instance_groups = Table(
    "instance_groups",
    metadata,
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
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster_id", String(12), ForeignKey("clusters.id", ondelete="CASCADE"), nullable=False),
    Column("group_name", String(63), nullable=False),
    Column("instance_id", String(19), unique=True),
    # The instance id, or '' while the node has none: NAME order needs a non-null key.
    Column("name_key", String(19), nullable=False, server_default=""),
    Column("logical_id", String(128)),
    Column("status", String(32), nullable=False),
    Column("status_message", Text),
    Column("instance_type", String(32), nullable=False),
    Column("launch_time", Float),
    # LaunchTime, or when the node was asked for while it has no instance: the CREATION_TIME key.
    Column("sort_time", Float, nullable=False),
    Column("private_ip", String(15)),
    Column("hostname", String(128)),
    Column("availability_zone", String(32)),
    Column("availability_zone_id", String(16)),
    Column("image_id", String(21), nullable=False),
    Column("image_release_version", String(64), nullable=False),
    Column("last_software_update_time", Float),
    Index("ix_nodes_cluster_time", "cluster_id", "sort_time", "id"),
    Index("ix_nodes_cluster_name", "cluster_id", "group_name", "name_key", "id"),
    Index("ix_nodes_cluster_group_time", "cluster_id", "group_name", "sort_time", "id"),
    Index("ix_nodes_cluster_logical", "cluster_id", "logical_id"),
)

tags = Table(
    "tags",
    metadata,
    Column("resource_arn", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("position", Integer, nullable=False),
)
