"""A cluster event as clients see it: the record DescribeClusterEvent answers with, which is
also the `detail.EventDetails` of the event HyperPod sends to EventBridge (eventbridge.py)."""

from __future__ import annotations

from typing import Any

from hyperpod_local.domain.model import Event


def event_summary(cluster_arn: str, cluster_name: str, event: Event) -> dict[str, Any]:
    """ListClusterEvents' ClusterEventSummary. Members the event lacks are left out, as the
    wire leaves out every None."""
    fields = {
        "EventId": event.event_id,
        "ClusterArn": cluster_arn,
        "ClusterName": cluster_name,
        "InstanceGroupName": event.group_name,
        "InstanceId": event.instance_id,
        "ResourceType": event.resource_type,
        "EventTime": event.event_time,
        "EventLevel": event.level,
        "Description": event.description,
        "OperationId": event.operation_id,
    }
    return {name: value for name, value in fields.items() if value is not None}


def event_record(cluster_arn: str, cluster_name: str, event: Event) -> dict[str, Any]:
    """DescribeClusterEvent's EventDetails (a ClusterEventDetail): the summary and, when the
    event has any, its EventMetadata. EventTime is in epoch seconds, as the API sends it."""
    record = event_summary(cluster_arn, cluster_name, event)
    if event.metadata:
        record["EventDetails"] = {"EventMetadata": event.metadata}
    return record
