"""The tables. A change here needs an Alembic revision in store/migrations/versions/."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
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
    false,
    text,
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
    # On platform software older than the node operations need (set through the admin API).
    Column("legacy", Boolean, nullable=False, server_default=false()),
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
    # The user operation under way on the node (replace, reboot, delete, update), if any.
    Column("busy", String(16)),
    Index("ix_nodes_cluster_time", "cluster_id", "sort_time", "id"),
    Index("ix_nodes_cluster_name", "cluster_id", "group_name", "name_key", "id"),
    Index("ix_nodes_cluster_group_time", "cluster_id", "group_name", "sort_time", "id"),
    # Classic clusters' nodes have no logical id: they are not in it.
    Index(
        "ix_nodes_cluster_logical",
        "cluster_id",
        "logical_id",
        sqlite_where=text("logical_id IS NOT NULL"),
        postgresql_where=text("logical_id IS NOT NULL"),
    ),
    # The few nodes an operation holds, of each group: automatic recovery's group health
    # counts them without reading the group's other nodes.
    Index(
        "ix_nodes_busy",
        "cluster_id",
        "group_name",
        "busy",
        sqlite_where=text("busy IS NOT NULL"),
        postgresql_where=text("busy IS NOT NULL"),
    ),
    # The Running nodes of each group, in creation order: a random_hardware strike takes the
    # k-th of a group from here without reading another row.
    Index(
        "ix_nodes_running",
        "cluster_id",
        "group_name",
        # Always 'Running' here, but SQLite reads a row to check a column its index lacks.
        "status",
        "id",
        sqlite_where=text("status = 'Running'"),
        postgresql_where=text("status = 'Running'"),
    ),
)

# How many nodes each group has of each type, image release and status: what DescribeCluster,
# every engine step's cluster and /metrics show, kept by the repositories that write `nodes`
# (store/node_counts.py) in the transaction that changes a node, so it is exact after any
# crash; a cluster of any size is then counted in a few rows. A count of 0 has no row.
group_node_counts = Table(
    "group_node_counts",
    metadata,
    Column(
        "cluster_id", String(12), ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("group_name", String(63), primary_key=True),
    Column("instance_type", String(32), primary_key=True),
    Column("image_release_version", String(64), primary_key=True),
    Column("status", String(32), primary_key=True),
    Column("count", Integer, nullable=False),
)

# Engine work: each row is the next step of a durable operation, due at a HyperPod time.
tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster_id", String(12), nullable=False),
    Column("node_id", Integer),
    Column("group_name", String(63)),
    Column("kind", String(32), nullable=False),
    Column("step", String(32), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("data", JSON, nullable=False),
    Column("operation_id", String(36)),
    Index("ix_tasks_due", "due_at", "id"),
    Index("ix_tasks_cluster", "cluster_id", "kind"),
)

# An event's EventId is made from its seq (store/event_ids.py), so no id is stored. The seq
# is never used twice (AUTOINCREMENT; PostgreSQL's serial is a sequence), so no id ever
# names a second event, even after every newer event was removed.
events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("cluster_id", String(12), nullable=False),
    Column("event_time", Float, nullable=False),
    Column("resource_type", String(16), nullable=False),
    Column("group_name", String(63)),
    Column("instance_id", String(19)),
    Column("description", Text, nullable=False),
    Column("level", String(8), nullable=False),
    Column("operation_id", String(36)),
    Column("event_metadata", JSON),
    Index("ix_events_cluster_time", "cluster_id", "event_time", "seq"),
    sqlite_autoincrement=True,
)

# The ids of the events written before revision 0011, which stored each event's own random
# id: they keep it. Only an upgraded store has rows here.
legacy_event_ids = Table(
    "legacy_event_ids",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False, unique=True),
)

# Cluster events to be delivered beyond the API (outlets/): written in the unit of work that
# wrote the event, so only what committed goes out, and kept apart from `events`, so a
# cluster's deletion or the events' retention never takes one before its targets have it.
# AUTOINCREMENT: a seq is never used twice, even after every row was delivered and removed.
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    # The EventBridge event, whole (domain/eventbridge.py).
    Column("envelope", JSON, nullable=False),
    # Wall-clock time of the commit (epoch seconds): an event's age for the retry policy,
    # which is the real world's, not HyperPod time's.
    Column("enqueued_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

# Each event target's place in the outbox: every event up to `seq` is done with (delivered,
# given up or dropped).
event_outlets = Table(
    "event_outlets",
    metadata,
    Column("target", String(2048), primary_key=True),
    Column("seq", Integer, nullable=False),
)

operations = Table(
    "operations",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(36), nullable=False, unique=True),
    Column("cluster_id", String(12), nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("creation_time", Float, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_operations_cluster_time", "cluster_id", "creation_time", "seq"),
)

# The simulated provider's instances and their volumes.
sim_instances = Table(
    "sim_instances",
    metadata,
    Column("instance_id", String(19), primary_key=True),
    Column("cluster_id", String(12), nullable=False),
    Column("launched_at", Float, nullable=False),
    Column("image_id", String(21), nullable=False),
    Column("boot_count", Integer, nullable=False),
    Index("ix_sim_instances_cluster", "cluster_id"),
    # Rows in their key's own tree on SQLite: no rowid, and no second tree for the key.
    sqlite_with_rowid=False,
)

sim_volumes = Table(
    "sim_volumes",
    metadata,
    Column("volume_id", String(21), primary_key=True),
    Column("instance_id", String(19), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("size_gb", Integer, nullable=False),
    Column("marker", Text),
    Index("ix_sim_volumes_instance", "instance_id", "position"),
    sqlite_with_rowid=False,
)

# Faults injected through the admin API.
faults = Table(
    "faults",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("fault_id", String(36), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("cluster_id", String(12)),
    Column("group_name", String(63)),
    Column("instance_id", String(19)),
    Column("instance_type", String(32)),
    Column("remaining", Integer),
    Column("params", JSON, nullable=False),
    Index("ix_faults_kind", "kind", "cluster_id"),
)

# BatchAddClusterNodes' ClientTokens: the same token and request within 8 hours answers with
# the same nodes.
client_tokens = Table(
    "client_tokens",
    metadata,
    Column("cluster_id", String(12), primary_key=True),
    Column("token", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("response", JSON, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("resource_arn", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("position", Integer, nullable=False),
)

# Customer EBS volumes attached to nodes (AttachClusterNodeVolume): one row per volume while
# it is attaching, attached or detaching; a detached volume has no row. The volume itself is
# the customer's, outside HyperPod: terminating the instance detaches it, never deletes it.
volume_attachments = Table(
    "volume_attachments",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("volume_id", String(21), primary_key=True),
    Column("instance_id", String(19), nullable=False),
    Column("device_name", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attach_time", Float, nullable=False),
    Index("ix_volume_attachments_instance", "instance_id"),
)

# Elastic network interfaces attached to nodes (AttachClusterNodeNetworkInterface). They
# stay with the instance (a move keeps them) and are detached when it terminates.
network_interface_attachments = Table(
    "network_interface_attachments",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("network_interface_id", String(21), primary_key=True),
    Column("attachment_id", String(28), nullable=False, unique=True),
    Column("instance_id", String(19), nullable=False),
    Column("device_index", Integer, nullable=False),
    Column("attach_time", Float, nullable=False),
    Index("ix_network_interface_attachments_instance", "instance_id"),
)

# Extensions installed on clusters (CreateClusterExtension): one per name and cluster.
cluster_extensions = Table(
    "cluster_extensions",
    metadata,
    Column("arn", String(256), primary_key=True),
    Column("cluster_id", String(12), ForeignKey("clusters.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("state", JSON, nullable=False),
    Column("creation_time", Float, nullable=False),
    Column("seq", Integer, nullable=False),
    UniqueConstraint("cluster_id", "name", name="uq_cluster_extensions_name"),
    Index("ix_cluster_extensions_time", "cluster_id", "creation_time", "seq"),
)

# Task governance: cluster policies and compute allocations, each row a policy with every
# version of its document.
governance_policies = Table(
    "governance_policies",
    metadata,
    Column("policy_id", String(12), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("cluster_id", String(12), ForeignKey("clusters.id", ondelete="CASCADE"), nullable=False),
    Column("state", JSON, nullable=False),
    Column("creation_time", Float, nullable=False),
    Column("seq", Integer, nullable=False),
    Index("ix_governance_policies_scope", "account_id", "region", "kind", "creation_time"),
    Index("ix_governance_policies_cluster", "cluster_id", "kind"),
)
