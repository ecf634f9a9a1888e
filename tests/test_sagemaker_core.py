"""sagemaker-core's `Cluster` resource, the layer under the SageMaker Python SDK, against the
server, as its users write it.

sagemaker-core makes its own boto3 clients (`session.client("sagemaker", region,
config=...)`, never an `endpoint_url`), so it finds the server the way boto3 finds any
endpoint: `AWS_ENDPOINT_URL_SAGEMAKER`. Credentials and region come from the boto3 session
passed to each call. Its 2.x releases are `sagemaker.core`, its 1.x ones (those `hyp` uses)
`sagemaker_core.main`; the resource is the same generated code in both, and whichever is
installed is tested.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.support import ROLE, ServerProcess

# HyperPod time runs 300 times faster: a CPU cluster is InService in about 2 s, so
# wait_for_status, which polls each second at the least, has real waiting to do.
SPEED = "300"
# sagemaker-core's package -> where its resources, shapes and exceptions live.
LAYERS = {
    "sagemaker.core": ("resources", "shapes", "utils.exceptions"),
    "sagemaker_core.main": ("resources", "shapes", "exceptions"),
}


@dataclass(frozen=True)
class Layer:
    resources: ModuleType
    shapes: ModuleType
    exceptions: ModuleType


def _installed() -> list[str]:
    found = []
    for package in LAYERS:
        try:
            if importlib.util.find_spec(package) is not None:
                found.append(package)
        except ModuleNotFoundError:  # the parent package is not there
            continue
    assert found, "sagemaker-core is in the dev extras: `make .venv/.installed-dev`"
    return found


@pytest.fixture(scope="module", params=_installed())
def layer(request: pytest.FixtureRequest) -> Layer:
    package = request.param
    return Layer(*(importlib.import_module(f"{package}.{name}") for name in LAYERS[package]))


@pytest.fixture(scope="module")
def real_clock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("smcore"), "--speed", SPEED).start()
    yield server
    server.stop()


@pytest.fixture
def session(real_clock_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 session with test credentials, with the environment pointing SageMaker at the
    server, and everything else at a closed port (nothing reaches AWS)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", real_clock_server.url)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def _group(shapes: ModuleType, count: int, instance_type: str = "ml.c5.xlarge") -> Any:
    return shapes.ClusterInstanceGroupSpecification(
        instance_group_name="workers",
        instance_type=instance_type,
        instance_count=count,
        execution_role=ROLE,
        life_cycle_config=shapes.ClusterLifeCycleConfig(
            source_s3_uri="s3://sagemaker-lifecycle/scripts/", on_create="on_create.sh"
        ),
    )


def _node_ids(cluster: Any) -> list[str]:
    return [node.instance_id for node in cluster.get_all_nodes()]


def _name(layer: Layer, what: str) -> str:
    return f"smcore-{what}-{layer.resources.__name__.split('.')[0].replace('_', '-')}"


def test_create_get_wait_update_list_nodes_and_delete(layer: Layer, session: Any) -> None:
    Cluster = layer.resources.Cluster  # as its users name it
    shapes = layer.shapes
    name = _name(layer, "life")

    cluster = Cluster.create(
        cluster_name=name, instance_groups=[_group(shapes, 2)], session=session, region="us-east-1"
    )
    assert cluster.cluster_status == "Creating"
    assert cluster.cluster_arn.startswith("arn:aws:sagemaker:us-east-1:123456789012:cluster/")

    cluster.wait_for_status("InService", poll=1, timeout=60)
    assert cluster.cluster_status == "InService"
    got = Cluster.get(cluster_name=name, session=session, region="us-east-1")
    [workers] = got.instance_groups
    assert (workers.instance_group_name, workers.current_count, workers.target_count) == (
        "workers",
        2,
        2,
    )
    assert workers.life_cycle_config.on_create == "on_create.sh"

    nodes = list(got.get_all_nodes())
    assert len(nodes) == 2
    assert {node.instance_status.status for node in nodes} == {"Running"}
    sm = session.client("sagemaker", region_name="us-east-1")
    listed = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert [node.instance_id for node in nodes] == [node["InstanceId"] for node in listed]
    assert name in [c.cluster_name for c in Cluster.get_all(session=session, region="us-east-1")]

    got.update(instance_groups=[_group(shapes, 3)])
    # update() refreshes: the scale-up is under way, or (under a slow machine) already done.
    assert got.cluster_status in ("Updating", "InService")
    got.wait_for_status("InService", poll=1, timeout=60)
    assert len(_node_ids(got)) == 3
    assert got.instance_groups[0].target_count == 3

    got.delete()
    got.wait_for_delete(poll=1, timeout=60)
    assert name not in [
        c.cluster_name for c in Cluster.get_all(session=session, region="us-east-1")
    ]


def test_wait_for_status_raises_when_the_cluster_fails(
    layer: Layer, session: Any, real_clock_server: ServerProcess
) -> None:
    # No capacity for the group's instance type, before the cluster exists: the classic
    # creation fails whenever the launch comes.
    status, made = real_clock_server.admin(
        "POST", "/_hyperpod/faults", {"Kind": "capacity", "InstanceType": "ml.m5.large"}
    )
    assert status == 201, made
    name = _name(layer, "failed")
    try:
        cluster = layer.resources.Cluster.create(
            cluster_name=name,
            instance_groups=[_group(layer.shapes, 1, "ml.m5.large")],
            session=session,
            region="us-east-1",
        )
        with pytest.raises(
            layer.exceptions.FailedStatusError, match="Final Resource State: Failed"
        ):
            cluster.wait_for_status("InService", poll=1, timeout=60)
    finally:
        real_clock_server.admin("DELETE", f"/_hyperpod/faults/{made['Faults'][0]['FaultId']}")
    assert cluster.cluster_status == "Failed"
    assert "sufficient capacity" in cluster.failure_message
    cluster.delete()
    cluster.wait_for_delete(poll=1, timeout=60)
