"""The demo cluster `serve --demo` makes, so a newcomer has something to look at."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api import build_handlers
from hyperpod_local.backend import Backend
from hyperpod_local.domain.errors import ResourceNotFound
from hyperpod_local.domain.scope import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Scope

DEMO_NAME = "demo"
DEMO_SCOPE = Scope(DEFAULT_ACCOUNT_ID, DEFAULT_REGION)
_ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/HyperPodExecutionRole"
_LIFECYCLE = {
    "SourceS3Uri": "s3://sagemaker-demo-lifecycle/scripts/",
    "OnCreate": "on_create.sh",
}


def _group(name: str, node_type: str, instance_type: str, count: int) -> dict[str, Any]:
    return {
        "InstanceGroupName": name,
        "InstanceType": instance_type,
        "InstanceCount": count,
        "ExecutionRole": _ROLE,
        "LifeCycleConfig": _LIFECYCLE,
        "ThreadsPerCore": 1,
        "SlurmConfig": {"NodeType": node_type},
        "InstanceStorageConfigs": [{"EbsVolumeConfig": {"VolumeSizeInGB": 500}}],
    }


DEMO_REQUEST: dict[str, Any] = {
    "ClusterName": DEMO_NAME,
    "InstanceGroups": [
        _group("controller", "Controller", "ml.m5.xlarge", 1),
        _group("login", "Login", "ml.m5.xlarge", 1),
        _group("workers", "Compute", "ml.g5.8xlarge", 4),
    ],
    "Orchestrator": {"Slurm": {"SlurmConfigStrategy": "Managed"}},
    "VpcConfig": {
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
        "Subnets": ["subnet-0123456789abcdef0"],
    },
    "NodeRecovery": "Automatic",
    # Continuous, so a newcomer also sees logical ids, events and operations.
    "NodeProvisioningMode": "Continuous",
    "Tags": [{"Key": "created-by", "Value": "hyperpod-local demo"}],
}


def ensure_demo_cluster(backend: Backend) -> bool:
    """Create the demo cluster unless it exists; True when it was created now."""
    handlers = build_handlers(backend)
    try:
        handlers["DescribeCluster"](DEMO_SCOPE, {"ClusterName": DEMO_NAME})
        return False
    except ResourceNotFound:
        handlers["CreateCluster"](DEMO_SCOPE, DEMO_REQUEST)
        return True
