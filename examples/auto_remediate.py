#!/usr/bin/env python3
"""A small remediation agent for SageMaker HyperPod: it replaces nodes that are in Failure.

It uses only the public HyperPod API through boto3, so it runs against real HyperPod as well
as against hyperpod-local (set AWS_ENDPOINT_URL_SAGEMAKER, or pass --endpoint-url):

    python examples/auto_remediate.py --cluster my-cluster --interval 30
    python examples/auto_remediate.py --cluster demo --endpoint-url http://127.0.0.1:4577 --once

Each round it lists every node (all pages), picks the nodes in Failure, and asks for their
replacement with BatchReplaceClusterNodes, at most 25 nodes per call (the API's limit). Per
node outcomes:
  - started: the node will come back on a new instance; nothing more to do.
  - InstanceIdInUse: another operation (HyperPod's own recovery, or another agent) holds the
    node; try again next round.
  - InvalidInstanceStatus: the node is changing state; look again next round.
  - InstanceIdNotFound: it is gone already.
  - InternalServerError: try again next round.
The Slurm controller is never replaced by the API, so the agent leaves controller groups alone.
A call refused for the whole cluster (it is updating or patching) is tried again next round.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

MAX_PER_CALL = 25
RETRY_NEXT_ROUND = {"InstanceIdInUse", "InvalidInstanceStatus", "InternalServerError"}
log = logging.getLogger("auto_remediate")


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def controller_groups(sm: Any, cluster: str) -> set[str]:
    """Slurm controller groups: the API never replaces their nodes, so neither do we."""
    groups = sm.describe_cluster(ClusterName=cluster)["InstanceGroups"]
    return {
        group["InstanceGroupName"]
        for group in groups
        if (group.get("SlurmConfig") or {}).get("NodeType") == "Controller"
    }


def failed_nodes(sm: Any, cluster: str, skip_groups: set[str]) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster)
    return [
        node
        for page in pages
        for node in page["ClusterNodeSummaries"]
        if node["InstanceStatus"]["Status"] == "Failure"
        and node.get("InstanceId")
        and node["InstanceGroupName"] not in skip_groups
    ]


def remediate_once(sm: Any, cluster: str) -> tuple[list[str], list[str]]:
    """One round: returns (replacements started, nodes to look at again next round)."""
    controllers = controller_groups(sm, cluster)
    failed = failed_nodes(sm, cluster, controllers)
    started: list[str] = []
    retry: list[str] = []
    for node in failed:
        reason = node["InstanceStatus"].get("Message", "no message")
        log.info(
            "node %s (%s) is in Failure: %s", node["InstanceId"], node["InstanceGroupName"], reason
        )
    for batch in chunks([node["InstanceId"] for node in failed], MAX_PER_CALL):
        try:
            answer = sm.batch_replace_cluster_nodes(ClusterName=cluster, NodeIds=batch)
        except ClientError as error:
            # The cluster as a whole is busy (updating, patching): every node waits a round.
            code = error.response["Error"]["Code"]
            if code not in ("ValidationException", "ConflictException"):
                raise
            log.info("the cluster is not ready (%s: %s); next round", code, error)
            retry.extend(batch)
            continue
        for node_id in answer.get("Successful", []):
            log.info("replacing %s", node_id)
            started.append(node_id)
        for failure in answer.get("Failed", []):
            code, node_id = failure["ErrorCode"], failure["NodeId"]
            if code in RETRY_NEXT_ROUND:
                log.info("%s: %s (%s); next round", node_id, code, failure["Message"])
                retry.append(node_id)
            else:
                log.warning("%s: %s (%s); leaving it", node_id, code, failure["Message"])
    return started, retry


def client(endpoint_url: str | None, region: str | None) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=endpoint_url,
        region_name=region,
        # Throttling and 5xx answers are retried with backoff by botocore itself.
        config=Config(retries={"max_attempts": 8, "mode": "adaptive"}),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", required=True, help="cluster name or ARN")
    parser.add_argument("--endpoint-url", help="SageMaker endpoint (default: boto3's)")
    parser.add_argument("--region", help="AWS region (default: boto3's)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between rounds")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.add_argument(
        "--until-healthy",
        action="store_true",
        help="exit once a round finds no node in Failure and nothing left to retry",
    )
    parser.add_argument("--timeout", type=float, help="give up after this many seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)

    sm = client(args.endpoint_url, args.region)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    total = 0
    while True:
        started, retry = remediate_once(sm, args.cluster)
        total += len(started)
        healthy = (
            not started
            and not retry
            and not failed_nodes(sm, args.cluster, controller_groups(sm, args.cluster))
        )
        if args.once or (args.until_healthy and healthy):
            log.info("done: %d replacement(s) started", total)
            return 0
        if deadline is not None and time.monotonic() > deadline:
            log.error("timed out with nodes still failing")
            return 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
