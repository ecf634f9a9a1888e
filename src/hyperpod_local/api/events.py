"""ListClusterEvents, DescribeClusterEvent, ListClusterOperations, DescribeClusterOperation."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.domain.errors import ResourceNotFound, ValidationError
from hyperpod_local.domain.event_record import event_record, event_summary
from hyperpod_local.domain.model import Cluster, Operation
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.events import EventFilter

DEFAULT_MAX_RESULTS = 100


def _continuous_only(cluster: Cluster, operation: str) -> None:
    if not cluster.continuous:
        raise ValidationError(
            f"{operation} is only supported for clusters with NodeProvisioningMode set to "
            f"Continuous; cluster {cluster.name} is not."
        )


def list_cluster_events(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    descending = params.get("SortOrder", "Descending") == "Descending"
    limit = params.get("MaxResults", DEFAULT_MAX_RESULTS)
    event_filter = EventFilter(
        group_name=params.get("InstanceGroupName"),
        instance_id=params.get("NodeId"),
        after=params.get("EventTimeAfter"),
        before=params.get("EventTimeBefore"),
        resource_type=params.get("ResourceType"),
        operation_id=params.get("OperationId"),
    )
    with services.store.read() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"], with_groups=False)
        _continuous_only(cluster, "ListClusterEvents")
        context = {
            "op": "ListClusterEvents",
            "cluster": cluster.id,
            "sort": descending,
            "filter": _filter_key(event_filter),
        }
        after = services.tokens.decode(params.get("NextToken"), context)
        rows = tx.events.page(cluster.id, event_filter, descending, after, limit)
    page = rows[:limit]
    result: dict[str, Any] = {
        "Events": [event_summary(cluster.arn, cluster.name, event) for event, _ in page]
    }
    if len(rows) > limit:
        result["NextToken"] = services.tokens.encode(context, page[-1][1])
    return result


def _filter_key(event_filter: EventFilter) -> list[Any]:
    return [
        event_filter.group_name,
        event_filter.instance_id,
        event_filter.after,
        event_filter.before,
        event_filter.resource_type,
        event_filter.operation_id,
    ]


def describe_cluster_event(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    given = params["ClusterName"]
    with services.store.read() as tx:
        cluster = find_cluster(tx, scope, given, with_groups=False)
        _continuous_only(cluster, "DescribeClusterEvent")
        event = tx.events.get(cluster.id, params["EventId"])
    if event is None:
        raise ResourceNotFound(f"Could not find event '{params['EventId']}' in cluster '{given}'.")
    return {"EventDetails": event_record(cluster.arn, cluster.name, event)}


def _operation_view(cluster: Cluster, operation: Operation) -> dict[str, Any]:
    return {
        "OperationId": operation.operation_id,
        "ClusterArn": cluster.arn,
        "Type": operation.type,
        "Status": operation.status,
        "CreationTime": operation.creation_time,
        **operation.details,
    }


def list_cluster_operations(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    descending = params.get("SortOrder", "Descending") == "Descending"
    limit = params.get("MaxResults", DEFAULT_MAX_RESULTS)
    filters = [
        params.get("Status"),
        params.get("Type"),
        params.get("CreationTimeAfter"),
        params.get("CreationTimeBefore"),
    ]
    with services.store.read() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"], with_groups=False)
        context = {
            "op": "ListClusterOperations",
            "cluster": cluster.id,
            "sort": descending,
            "filter": filters,
        }
        after = services.tokens.decode(params.get("NextToken"), context)
        rows = tx.events.operations_page(
            cluster.id,
            status=filters[0],
            type_=filters[1],
            after_time=filters[2],
            before_time=filters[3],
            descending=descending,
            after=after,
            limit=limit,
        )
    page = rows[:limit]
    result: dict[str, Any] = {
        "ClusterOperationSummaries": [_operation_view(cluster, op) for op, _ in page]
    }
    if len(rows) > limit:
        result["NextToken"] = services.tokens.encode(context, page[-1][1])
    return result


def describe_cluster_operation(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    given = params["ClusterName"]
    with services.store.read() as tx:
        cluster = find_cluster(tx, scope, given, with_groups=False)
        operation = tx.events.get_operation(cluster.id, params["OperationId"])
    if operation is None:
        raise ResourceNotFound(
            f"Could not find operation '{params['OperationId']}' in cluster '{given}'."
        )
    return _operation_view(cluster, operation)
