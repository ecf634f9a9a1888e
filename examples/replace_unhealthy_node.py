#!/usr/bin/env python3
"""An EventBridge rule target that replaces unhealthy SageMaker HyperPod nodes.

`handler(event, context)` has AWS Lambda's signature: deploy it as a Lambda function behind an
EventBridge rule on HyperPod's cluster events,

    {"source": ["aws.sagemaker"], "detail-type": ["SageMaker HyperPod Cluster Event"],
     "detail": {"EventDetails": {"ResourceType": ["Instance"], "EventLevel": ["Error"]}}}

and it calls BatchReplaceClusterNodes for the node an event names, when that node is in
Failure (as HyperPod leaves it with NodeRecovery None). It uses only the public HyperPod API
through boto3, so it runs unchanged against real HyperPod and against hyperpod-local.

EventBridge delivers at least once, and so does hyperpod-local: the same event may come twice.
The handler looks at the node before it acts, so a repeat finds the node being replaced (or
gone) and does nothing.

To try it locally without AWS, run it as a webhook (its boto3 client pointed at the server)
and point the server's events at it (the README's "Events out" has the whole walk-through):

    AWS_ENDPOINT_URL_SAGEMAKER=http://127.0.0.1:4578 \
        python examples/replace_unhealthy_node.py --listen 8765 &
    hyperpod-local serve --port 4578 --events-to http://127.0.0.1:8765/
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import logging
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger("replace_unhealthy_node")

DETAIL_TYPE = "SageMaker HyperPod Cluster Event"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Replace the node an Error-level instance event names, if it is in Failure. Returns
    what was done: {"Replaced": [...], "Failed": [...], "Skipped": reason}."""
    if event.get("source") != "aws.sagemaker" or event.get("detail-type") != DETAIL_TYPE:
        return {"Skipped": "not a HyperPod cluster event"}
    details = event.get("detail", {}).get("EventDetails", {})
    node_id = details.get("InstanceId")
    if details.get("ResourceType") != "Instance" or details.get("EventLevel") != "Error":
        return {"Skipped": "not an instance error"}
    if not node_id:
        return {"Skipped": "the event names no instance"}
    cluster = details["ClusterArn"]
    sm = boto3.client("sagemaker", region_name=event["region"])
    try:
        node = sm.describe_cluster_node(ClusterName=cluster, NodeId=node_id)["NodeDetails"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFound":
            return {"Skipped": f"{node_id} is gone"}  # replaced already: a repeated event
        raise  # anything else is worth EventBridge's retry
    status = node["InstanceStatus"]["Status"]
    if status != "Failure":
        return {"Skipped": f"{node_id} is {status}"}
    log.info(
        "%s in %s is in Failure (%s): replacing it",
        node_id,
        details.get("ClusterName"),
        node["InstanceStatus"].get("Message", "no message"),
    )
    answer = sm.batch_replace_cluster_nodes(ClusterName=cluster, NodeIds=[node_id])
    return {"Replaced": answer.get("Successful", []), "Failed": answer.get("Failed", [])}


class _Webhook(http.server.BaseHTTPRequestHandler):
    """Each POSTed envelope goes to the handler, as an EventBridge rule would pass it."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            outcome = handler(json.loads(body), None)
        except Exception:
            log.exception("the handler failed")
            self.send_response(500)  # a 5xx is retried by the sender
            self.end_headers()
            return
        if outcome.get("Replaced") or outcome.get("Failed"):
            log.info("%s", outcome)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per event is too many; the handler logs what it does


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, required=True, help="port for the webhook")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    server = http.server.ThreadingHTTPServer((args.host, args.listen), _Webhook)
    log.info("handling HyperPod events POSTed to http://%s:%d/", args.host, args.listen)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
