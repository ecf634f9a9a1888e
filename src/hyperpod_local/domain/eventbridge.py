"""The event HyperPod sends to Amazon EventBridge for each cluster event.

The envelope and its `detail` are AWS's "SageMaker HyperPod cluster events reference"
(docs/fidelity.md, "Events out", has the sources and what they leave open):

    {"version": "0", "id": ..., "detail-type": "SageMaker HyperPod Cluster Event",
     "source": "aws.sagemaker", "account": ..., "time": "2026-06-01T17:20:25Z",
     "region": ..., "resources": [cluster ARN], "detail": {"EventDetails": {...}}}

where `detail.EventDetails` is DescribeClusterEvent's record (event_record.py) with
EventTime in epoch milliseconds.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker HyperPod Cluster Event"
# Envelope ids are made from the EventId under this namespace: the same event carries the same
# id each time it is delivered (a receiver can drop repeats), and the id is never the EventId
# (spec 6.14: passing the envelope id to DescribeClusterEvent is a classic mistake).
_ID_NAMESPACE = uuid.UUID("5d0c1f3e-8a1b-4c55-9d39-6f1e2b7a4c10")


def sends_cluster_events(cluster_spec: dict[str, Any]) -> bool:
    """Cluster events exist for Continuous clusters only (the events reference says so of
    the API, the console and EventBridge alike)."""
    return cluster_spec.get("NodeProvisioningMode") == "Continuous"


def envelope_id(event_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, event_id))


def cluster_event_envelope(record: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """The EventBridge event for a cluster event `record` (event_record.event_record)."""
    details = dict(record)
    event_time = float(details["EventTime"])
    details["EventTime"] = round(event_time * 1000)
    return {
        "version": "0",
        "id": envelope_id(str(record["EventId"])),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account_id,
        # EventBridge's time is whole seconds, in UTC; the event's HyperPod time.
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(event_time))),
        "region": region,
        "resources": [record["ClusterArn"]],
        "detail": {"EventDetails": details},
    }
