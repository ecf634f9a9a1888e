"""What the console shows, read from the store with the repositories the API uses: the
clusters of an account and region, and one cluster's picture (groups as DescribeCluster shows
them, every node, its faults, the newest events and operations), with the changes between two
pictures for the live stream."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hyperpod_local.admin.faults import view as fault_view
from hyperpod_local.api.resolve import lookup_cluster
from hyperpod_local.api.views import cluster_view
from hyperpod_local.domain.event_record import event_summary
from hyperpod_local.domain.faults import FaultKind
from hyperpod_local.domain.model import Cluster, Node, Operation
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.counts import nodes_by_status
from hyperpod_local.store.database import Store
from hyperpod_local.store.events import EventFilter
from hyperpod_local.store.unit_of_work import Tx

# The clusters page lists at most this many clusters of one account and region.
MAX_CLUSTERS = 1000
# The timeline and the operations list beside the grid: the newest of each.
TIMELINE_EVENTS = 60
OPERATIONS = 20
# A node's own last events, in its details.
NODE_EVENTS = 15

# A node as the browser gets it: a row of these fields, in this order (NODE_FIELDS goes to the
# browser too, so the two never disagree).
NODE_FIELDS = (
    "Row",
    "InstanceGroupName",
    "InstanceId",
    "NodeLogicalId",
    "Status",
    "PrivateDnsHostname",
    "InstanceType",
    "ImageReleaseVersion",
    "Message",
    "Busy",
    "LaunchTime",
)
NodeRow = tuple[Any, ...]


class NotFound(Exception):
    pass


def clusters_overview(store: Store, scope: Scope) -> dict[str, Any]:
    """Every cluster of the scope with its status, node counts by status, orchestrator and
    provisioning mode; and the accounts and regions that have nodes, to choose from."""
    with store.read() as tx:
        listings = tx.clusters.page(scope, "CREATION_TIME", True, None, MAX_CLUSTERS)
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        scopes: set[tuple[str, str]] = {(scope.account_id, scope.region)}
        for count in nodes_by_status(tx):
            scopes.add((count.account_id, count.region))
            if (count.account_id, count.region) == (scope.account_id, scope.region):
                by_status = counts[count.cluster]
                by_status[count.status] = by_status.get(count.status, 0) + count.count
        found = []
        for listing in listings[:MAX_CLUSTERS]:
            cluster = tx.clusters.by_id(scope, listing.id, with_groups=False)
            if cluster is None:
                continue  # deleted between the two reads of this one transaction: never
            found.append(
                {
                    "ClusterName": cluster.name,
                    "ClusterArn": cluster.arn,
                    "ClusterStatus": cluster.status,
                    "CreationTime": cluster.creation_time,
                    "Orchestrator": orchestrator(cluster),
                    "NodeProvisioningMode": cluster.spec.get("NodeProvisioningMode", "Classic"),
                    "NodeRecovery": cluster.spec.get("NodeRecovery", "Automatic"),
                    "NodeCounts": counts.get(cluster.name, {}),
                }
            )
    return {
        "Account": scope.account_id,
        "Region": scope.region,
        "Clusters": found,
        "Scopes": [{"Account": a, "Region": r} for a, r in sorted(scopes)],
    }


def orchestrator(cluster: Cluster) -> str:
    given = cluster.spec.get("Orchestrator") or {}
    return "Eks" if "Eks" in given else "Slurm" if "Slurm" in given else "None"


def node_row(node: Node) -> NodeRow:
    return (
        node.row_id,
        node.group_name,
        node.instance_id,
        node.logical_id,
        node.status,
        node.hostname,
        node.instance_type,
        node.image_release_version,
        node.status_message,
        node.busy,
        node.launch_time,
    )


@dataclass(slots=True)
class ClusterWatch:
    """One browser's view of one cluster: the last picture it was sent, so the next one goes
    out as what changed."""

    store: Store
    scope: Scope
    name: str
    cluster_id: str | None = None
    nodes: dict[int, NodeRow] = field(default_factory=dict)
    shown: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """The whole picture; NotFound if the cluster is not there."""
        picture = self._read()
        if picture is None:
            raise NotFound(self.name)
        rows, parts = picture
        self.nodes = {row[0]: row for row in rows}
        self.shown = parts
        return {"NodeFields": NODE_FIELDS, "Nodes": rows, **parts}

    def changes(self) -> dict[str, Any] | None:
        """What changed since the last picture ({} for nothing); None once the cluster is
        gone."""
        picture = self._read()
        if picture is None:
            return None
        rows, parts = picture
        now = {row[0]: row for row in rows}
        changed = [row for key, row in now.items() if self.nodes.get(key) != row]
        removed = [key for key in self.nodes if key not in now]
        self.nodes = now
        delta: dict[str, Any] = {}
        if changed:
            delta["Nodes"] = changed
        if removed:
            delta["Removed"] = removed
        for key, value in parts.items():
            if self.shown.get(key) != value:
                delta[key] = value
        self.shown = parts
        return delta

    def _read(self) -> tuple[list[NodeRow], dict[str, Any]] | None:
        with self.store.read() as tx:
            cluster = lookup_cluster(tx, self.scope, self.name)
            if cluster is None or (self.cluster_id and cluster.id != self.cluster_id):
                return None  # gone, or gone and made again: another cluster of that name
            self.cluster_id = cluster.id
            rows = [node_row(node) for node in tx.nodes.in_group(cluster.id)]
            parts = {
                "Cluster": cluster_view(cluster, self.store.latest_release()),
                "Faults": _hardware_faults(tx, cluster),
                "Events": _events(tx, cluster, EventFilter(), TIMELINE_EVENTS),
                "Operations": _operations(tx, cluster),
            }
        return rows, parts


def node_details(store: Store, scope: Scope, name: str, row_id: int, inside: Any) -> dict[str, Any]:
    """One node: what the grid has of it, its inside view (boot count, volumes), its last
    events and its faults. `inside(tx, node)` is the provider's inside view."""
    with store.read() as tx:
        cluster = lookup_cluster(tx, scope, name, with_groups=False)
        node = tx.nodes.get(row_id) if cluster is not None else None
        if cluster is None or node is None or node.cluster_id != cluster.id:
            raise NotFound(name)
        details: dict[str, Any] = dict(zip(NODE_FIELDS, node_row(node), strict=True))
        details["PrivatePrimaryIp"] = node.private_ip
        details["AvailabilityZone"] = node.availability_zone
        details["Inside"] = inside(tx, node)
        details["Faults"] = []
        details["Events"] = []
        if node.instance_id is not None:
            details["Faults"] = [
                fault_view(fault, cluster) for fault in tx.faults.on_instance(node.instance_id)
            ]
            details["Events"] = _events(
                tx, cluster, EventFilter(instance_id=node.instance_id), NODE_EVENTS
            )
    return details


def _hardware_faults(tx: Tx, cluster: Cluster) -> list[dict[str, Any]]:
    return [
        fault_view(fault, cluster)
        for fault in tx.faults.all(FaultKind.HARDWARE)
        if fault.cluster_id == cluster.id
    ]


def _events(tx: Tx, cluster: Cluster, event_filter: EventFilter, limit: int) -> list[Any]:
    page = tx.events.page(cluster.id, event_filter, True, None, limit)
    return [event_summary(cluster.arn, cluster.name, event) for event, _ in page[:limit]]


def _operations(tx: Tx, cluster: Cluster) -> list[dict[str, Any]]:
    page = tx.events.operations_page(
        cluster.id,
        status=None,
        type_=None,
        after_time=None,
        before_time=None,
        descending=True,
        after=None,
        limit=OPERATIONS,
    )
    return [_operation_view(operation) for operation, _ in page[:OPERATIONS]]


def _operation_view(operation: Operation) -> dict[str, Any]:
    # As ListClusterOperations shows it.
    return {
        "OperationId": operation.operation_id,
        "Type": operation.type,
        "Status": operation.status,
        "CreationTime": operation.creation_time,
        **operation.details,
    }
