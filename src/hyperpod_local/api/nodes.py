"""ListClusterNodes and DescribeClusterNode."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.api.views import node_details, node_summary
from hyperpod_local.domain.errors import ResourceNotFound, ValidationError
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.nodes import NodeFilter, sort_key

DEFAULT_MAX_RESULTS = 10


def list_cluster_nodes(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    sort_by = params.get("SortBy", "CREATION_TIME")
    descending = params.get("SortOrder", "Ascending") == "Descending"
    limit = params.get("MaxResults", DEFAULT_MAX_RESULTS)
    node_filter = NodeFilter(
        launched_after=params.get("CreationTimeAfter"),
        launched_before=params.get("CreationTimeBefore"),
        group_name_contains=params.get("InstanceGroupNameContains"),
        include_without_instance=bool(params.get("IncludeNodeLogicalIds")),
    )
    with services.store.read() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"], with_groups=False)
        context = {
            "op": "ListClusterNodes",
            "cluster": cluster.id,
            "sort": [sort_by, descending],
            "filter": [
                node_filter.launched_after,
                node_filter.launched_before,
                node_filter.group_name_contains,
                node_filter.include_without_instance,
            ],
        }
        after = services.tokens.decode(params.get("NextToken"), context)
        rows = tx.nodes.page(cluster.id, node_filter, sort_by, descending, after, limit)
    page = rows[:limit]
    latest = services.store.latest_release()
    result: dict[str, Any] = {"ClusterNodeSummaries": [node_summary(node, latest) for node in page]}
    if len(rows) > limit:
        result["NextToken"] = services.tokens.encode(context, sort_key(page[-1], sort_by))
    return result


def describe_cluster_node(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    node_id, logical_id = params.get("NodeId"), params.get("NodeLogicalId")
    if node_id and logical_id:
        raise ValidationError("Specify either NodeId or NodeLogicalId, not both.")
    if not node_id and not logical_id:
        raise ValidationError("Either NodeId or NodeLogicalId must be specified.")
    given = params["ClusterName"]
    with services.store.read() as tx:
        cluster = find_cluster(tx, scope, given)
        node = (
            tx.nodes.by_instance_id(cluster.id, node_id)
            if node_id
            else tx.nodes.by_logical_id(cluster.id, logical_id)
        )
    if node is None:
        raise ResourceNotFound(
            f"Could not find node '{node_id or logical_id}' in cluster '{given}'."
        )
    group = next(group for group in cluster.groups if group.name == node.group_name)
    return {"NodeDetails": node_details(group, node, services.store.latest_release())}
