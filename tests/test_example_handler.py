"""examples/replace_unhealthy_node.py end to end: a fault injected through the admin API, its
event delivered by `serve --events-to` to a webhook that runs the Lambda-style handler, and the
node replaced, as boto3 sees it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.support import ServerProcess, group
from tests.webhooks import Webhook, wait_for

EXAMPLE = Path(__file__).parent.parent / "examples" / "replace_unhealthy_node.py"


def load_handler() -> Any:
    spec = importlib.util.spec_from_file_location("replace_unhealthy_node", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def nodes(sm: Any, cluster: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_cluster_nodes").paginate(
        ClusterName=cluster, IncludeNodeLogicalIds=True
    )
    return [node for page in pages for node in page["ClusterNodeSummaries"]]


def test_the_handler_replaces_the_node_an_event_says_is_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler()
    # As an EventBridge rule would: every event goes to the handler, which picks its own.
    with Webhook(on_event=lambda envelope: handler(envelope, None)) as hook:
        server = ServerProcess(
            tmp_path / "data", "--clock", "manual", "--events-to", hook.url
        ).start()
        try:
            # The handler's boto3 client, as a Lambda's would be, only pointed at the server.
            for key, value in {
                "AWS_ENDPOINT_URL_SAGEMAKER": server.url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            }.items():
                monkeypatch.setenv(key, value)
            sm = server.client()
            sm.create_cluster(
                ClusterName="healed",
                InstanceGroups=[group("workers", 3)],
                NodeProvisioningMode="Continuous",
                NodeRecovery="None",  # HyperPod only detects: the handler must act
            )
            server.settle()
            victim = nodes(sm, "healed")[0]
            old, logical = victim["InstanceId"], victim["NodeLogicalId"]
            status, _ = server.admin(
                "POST",
                "/_hyperpod/faults",
                {"Kind": "hardware", "Cluster": "healed", "InstanceId": old, "Type": "GpuXid79"},
            )
            assert status == 201
            server.advance(20)  # the health agent notices after 15 s; the event goes out
            wait_for(
                lambda: {"Replaced": [old], "Failed": []} in hook.results,
                what="the handler's replacement",
            )
            server.settle()
            after = {node["NodeLogicalId"]: node for node in nodes(sm, "healed")}
            assert len(after) == 3
            assert after[logical]["InstanceId"] != old
            assert {node["InstanceStatus"]["Status"] for node in after.values()} == {"Running"}
            with pytest.raises(sm.exceptions.ResourceNotFound):
                sm.describe_cluster_node(ClusterName="healed", NodeId=old)
            # Every other event was left alone, and the same event again (delivery is at
            # least once) finds the node gone and does nothing.
            failure = next(
                envelope
                for envelope in hook.received
                if envelope["detail"]["EventDetails"].get("EventLevel") == "Error"
            )
            assert handler(failure, None) == {"Skipped": f"{old} is gone"}
            replaced = [result for result in hook.results if "Replaced" in result]
            assert replaced == [{"Replaced": [old], "Failed": []}]
        finally:
            server.stop()
