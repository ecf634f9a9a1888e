"""The in-process mock: the same backend as the server, through botocore's before-send."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.handlers
import pytest

import hyperpod_local
from hyperpod_local.mock import HyperPodMock
from tests.support import group


def test_clients_made_inside_the_context_reach_the_mock() -> None:
    with hyperpod_local.mock() as hp:
        sm = boto3.client(
            "sagemaker", region_name="us-west-2", aws_access_key_id="a", aws_secret_access_key="b"
        )
        arn = sm.create_cluster(ClusterName="m", InstanceGroups=[group("g", 2)])["ClusterArn"]
        assert arn.startswith("arn:aws:sagemaker:us-west-2:123456789012:cluster/")
        assert (
            hp.client(region_name="us-west-2").describe_cluster(ClusterName="m")["ClusterArn"]
            == arn
        )


def _mock_hooks(session: boto3.session.Session) -> list[Any]:
    """The mock handlers a session would call for a SageMaker request."""
    emitter = session._session.get_component("event_emitter")._emitter
    found = emitter._handlers.prefix_search("before-send.sagemaker.ListClusters")
    return [h for h in found if isinstance(getattr(h, "__self__", None), HyperPodMock)]


def test_nothing_is_left_patched_after_exit() -> None:
    before = list(botocore.handlers.BUILTIN_HANDLERS)
    boto3.setup_default_session()
    old_default = boto3.DEFAULT_SESSION
    with hyperpod_local.mock():
        assert len(botocore.handlers.BUILTIN_HANDLERS) == len(before) + 1
        made_inside = boto3.session.Session()
        assert len(_mock_hooks(made_inside)) == 1
        assert len(_mock_hooks(old_default)) == 1
        boto3.setup_default_session()  # as boto3.client() does when there is none
        new_default = boto3.DEFAULT_SESSION
        assert len(_mock_hooks(new_default)) == 1
    assert before == botocore.handlers.BUILTIN_HANDLERS
    assert _mock_hooks(old_default) == []
    assert _mock_hooks(new_default) == []
    assert _mock_hooks(boto3.session.Session()) == []


def test_a_client_kept_after_exit_goes_back_to_its_endpoint() -> None:
    with hyperpod_local.mock() as hp:
        sm = hp.client()
        sm.list_clusters()
    stub: list[Any] = []
    sm.meta.events.register("before-send.sagemaker", lambda **kw: stub.append(kw) or _ok())
    sm.list_clusters()
    assert len(stub) == 1


def _ok() -> Any:
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield b'{"ClusterSummaries": []}'

    return AWSResponse("https://x", 200, {}, Raw())


def test_two_mocks_share_nothing_and_the_innermost_answers() -> None:
    with hyperpod_local.mock() as first:
        outer_client = first.client()
        outer_client.create_cluster(ClusterName="only-here", InstanceGroups=[group("g", 1)])
        with hyperpod_local.mock() as second:
            inner_client = second.client()
            for client in (inner_client, outer_client):
                with pytest.raises(client.exceptions.ResourceNotFound):
                    client.describe_cluster(ClusterName="only-here")
        assert outer_client.describe_cluster(ClusterName="only-here")["ClusterName"] == "only-here"


def test_a_mock_on_a_data_dir_keeps_its_state(tmp_path: Any) -> None:
    with HyperPodMock(tmp_path) as hp:
        hp.client().create_cluster(ClusterName="kept", InstanceGroups=[group("g", 1)])
        hp.advance(60)
        created_at = hp.now()
    with HyperPodMock(tmp_path) as hp:
        # HyperPod time goes on from where it stopped, and the creation with it.
        assert hp.now() == created_at
        assert hp.client().describe_cluster(ClusterName="kept")["ClusterStatus"] == "Creating"
        hp.settle()
        assert hp.client().describe_cluster(ClusterName="kept")["ClusterStatus"] == "InService"


def test_the_pytest_fixture(hyperpod: HyperPodMock) -> None:
    sm = hyperpod.client()
    sm.create_cluster(ClusterName="fixture", InstanceGroups=[group("g", 3)])
    hyperpod.settle()
    assert len(sm.list_cluster_nodes(ClusterName="fixture")["ClusterNodeSummaries"]) == 3
