"""One handler per operation, grouped by resource. Thin: validated params in, a dict out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hyperpod_local.api import (
    clusters,
    events,
    extensions,
    health,
    node_ops,
    nodes,
    scaling,
    software,
    tags,
    task_governance,
)
from hyperpod_local.api.attachments import attach_network_interface, attach_volume, detach_volume
from hyperpod_local.api.node_moves import move_cluster_nodes
from hyperpod_local.api.services import Services
from hyperpod_local.domain.errors import ThrottlingError
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.errors import Busy

Handler = Callable[[Scope, dict[str, Any]], dict[str, Any]]

_OPERATIONS: dict[str, Callable[[Services, Scope, dict[str, Any]], dict[str, Any]]] = {
    "CreateCluster": clusters.create_cluster,
    "DescribeCluster": clusters.describe_cluster,
    "ListClusters": clusters.list_clusters,
    "DeleteCluster": clusters.delete_cluster,
    "ListClusterNodes": nodes.list_cluster_nodes,
    "DescribeClusterNode": nodes.describe_cluster_node,
    "AddTags": tags.add_tags,
    "ListTags": tags.list_tags,
    "DeleteTags": tags.delete_tags,
    "BatchReplaceClusterNodes": node_ops.batch_replace,
    "BatchRebootClusterNodes": node_ops.batch_reboot,
    "BatchDeleteClusterNodes": node_ops.batch_delete,
    "UpdateClusterSoftware": software.update_cluster_software,
    "UpdateCluster": scaling.update_cluster,
    "BatchAddClusterNodes": scaling.batch_add_cluster_nodes,
    "StartClusterHealthCheck": health.start_cluster_health_check,
    "ListClusterEvents": events.list_cluster_events,
    "DescribeClusterEvent": events.describe_cluster_event,
    "ListClusterOperations": events.list_cluster_operations,
    "DescribeClusterOperation": events.describe_cluster_operation,
    "MoveClusterNodes": move_cluster_nodes,
    "AttachClusterNodeVolume": attach_volume,
    "DetachClusterNodeVolume": detach_volume,
    "AttachClusterNodeNetworkInterface": attach_network_interface,
    "CreateClusterExtension": extensions.create_cluster_extension,
    "DescribeClusterExtension": extensions.describe_cluster_extension,
    "UpdateClusterExtension": extensions.update_cluster_extension,
    "DeleteClusterExtension": extensions.delete_cluster_extension,
    "ListClusterExtensions": extensions.list_cluster_extensions,
    "ListClusterExtensionVersions": extensions.list_cluster_extension_versions,
    "CreateClusterSchedulerConfig": task_governance.create_cluster_scheduler_config,
    "DescribeClusterSchedulerConfig": task_governance.describe_cluster_scheduler_config,
    "UpdateClusterSchedulerConfig": task_governance.update_cluster_scheduler_config,
    "DeleteClusterSchedulerConfig": task_governance.delete_cluster_scheduler_config,
    "ListClusterSchedulerConfigs": task_governance.list_cluster_scheduler_configs,
    "CreateComputeQuota": task_governance.create_compute_quota,
    "DescribeComputeQuota": task_governance.describe_compute_quota,
    "UpdateComputeQuota": task_governance.update_compute_quota,
    "DeleteComputeQuota": task_governance.delete_compute_quota,
    "ListComputeQuotas": task_governance.list_compute_quotas,
}
CLUSTER_OPERATIONS = frozenset(_OPERATIONS)
# Operations whose answer depends on nothing but the request and the store's contents: the
# response cache may send such an answer again while the store is unchanged.
READ_ONLY_OPERATIONS = frozenset(
    name for name in _OPERATIONS if name.startswith(("Describe", "List"))
)


def build_handlers(services: Services) -> dict[str, Handler]:
    return {name: _handler(services, name, function) for name, function in _OPERATIONS.items()}


def _handler(
    services: Services,
    name: str,
    function: Callable[[Services, Scope, dict[str, Any]], dict[str, Any]],
) -> Handler:
    """The operation's handler, behind the injected request faults, with a store that stays
    busy too long answered as throttling (which botocore retries)."""

    def handle(scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
        services.request_faults.before(name)
        try:
            return function(services, scope, params)
        except Busy:
            raise ThrottlingError(
                "The store is busy with other requests; retry the request."
            ) from None

    return handle
