"""The real AWS CLI (v1, `python -m awscli`) against the server, as a user would run it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support import ROLE, Aws, ServerProcess

INSTANCE_ID = re.compile(r"i-[0-9a-f]{17}")
ARN = re.compile(r"arn:aws:sagemaker:us-east-1:123456789012:cluster/[a-z0-9]{12}")
GROUPS = [
    {
        "InstanceGroupName": "controller",
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "ExecutionRole": ROLE,
    },
    {
        "InstanceGroupName": "workers",
        "InstanceType": "ml.g5.8xlarge",
        "InstanceCount": 3,
        "ExecutionRole": ROLE,
    },
]


@pytest.fixture
def aws(server: ServerProcess, tmp_path: Path) -> Aws:
    return Aws(tmp_path, server.url)


@pytest.mark.parametrize("mode", ["flag", "env"])
def test_cluster_lifecycle_through_the_cli(
    server: ServerProcess, tmp_path: Path, name: str, mode: str
) -> None:
    aws = Aws(tmp_path, server.url, mode)

    created = aws.json(
        "create-cluster", "--cluster-name", name, "--instance-groups", json.dumps(GROUPS)
    )
    arn = created["ClusterArn"]
    assert ARN.fullmatch(arn)
    creating = aws.json("describe-cluster", "--cluster-name", name)
    assert creating["ClusterStatus"] == "Creating"
    server.settle()

    listed = aws.json("list-clusters", "--name-contains", name)["ClusterSummaries"]
    assert [(s["ClusterName"], s["ClusterArn"], s["ClusterStatus"]) for s in listed] == [
        (name, arn, "InService")
    ]

    described = aws.json("describe-cluster", "--cluster-name", name)
    assert described["ClusterArn"] == arn
    assert described["ClusterStatus"] == "InService"
    counts = {
        g["InstanceGroupName"]: (g["TargetCount"], g["CurrentCount"], g["Status"])
        for g in described["InstanceGroups"]
    }
    assert counts == {"controller": (1, 1, "InService"), "workers": (3, 3, "InService")}

    nodes = aws.json("list-cluster-nodes", "--cluster-name", name)["ClusterNodeSummaries"]
    assert len(nodes) == 4
    assert sorted(n["InstanceGroupName"] for n in nodes) == ["controller", *["workers"] * 3]
    ids = [n["InstanceId"] for n in nodes]
    assert all(INSTANCE_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == 4
    assert {n["InstanceStatus"]["Status"] for n in nodes} == {"Running"}

    worker = next(n for n in nodes if n["InstanceGroupName"] == "workers")
    details = aws.json(
        "describe-cluster-node", "--cluster-name", name, "--node-id", worker["InstanceId"]
    )["NodeDetails"]
    assert details["InstanceId"] == worker["InstanceId"]
    assert details["InstanceGroupName"] == "workers"
    assert details["InstanceType"] == "ml.g5.8xlarge"
    assert details["InstanceStatus"]["Status"] == "Running"
    assert details["PrivateDnsHostname"] == worker["PrivateDnsHostname"]

    assert aws.json("delete-cluster", "--cluster-name", name) == {"ClusterArn": arn}
    server.settle()
    assert aws.json("list-clusters", "--name-contains", name)["ClusterSummaries"] == []
    gone = aws.run("describe-cluster", "--cluster-name", name)
    assert gone.returncode == 255
    assert "(ResourceNotFound)" in gone.stderr


def test_unknown_cluster_is_a_resource_not_found_message(aws: Aws, name: str) -> None:
    done = aws.run("describe-cluster", "--cluster-name", name)
    assert done.returncode == 255
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "An error occurred (ResourceNotFound) when calling the DescribeCluster operation: "
        f"Could not find cluster '{name}'."
    )


def test_too_many_node_ids_is_a_validation_exception(aws: Aws, name: str) -> None:
    node_ids = [f"i-{index:017x}" for index in range(26)]
    done = aws.run("batch-replace-cluster-nodes", "--cluster-name", name, "--node-ids", *node_ids)
    assert done.returncode == 255
    assert "ValidationException" in done.stderr
    assert "Member must have length less than or equal to 25" in done.stderr
