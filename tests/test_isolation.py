"""Every resource belongs to one account and one region; no other caller sees it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support import ServerProcess, cluster_names, error_of, group

ALICE, BOB = "111111111111", "222222222222"


def test_accounts_and_regions_are_kept_apart(server: ServerProcess, name: str) -> None:
    alice = server.client(access_key=ALICE)
    bob = server.client(access_key=BOB)
    alice_west = server.client(access_key=ALICE, region="us-west-2")
    arn = alice.create_cluster(ClusterName=name, InstanceGroups=[group("g", 2)])["ClusterArn"]
    assert f":{ALICE}:" in arn
    server.settle()
    node = alice.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"][0]["InstanceId"]

    for other in (bob, alice_west):
        assert name not in cluster_names(other)
        for given in (name, arn):
            with pytest.raises(other.exceptions.ResourceNotFound):
                other.describe_cluster(ClusterName=given)
            with pytest.raises(other.exceptions.ResourceNotFound):
                other.list_cluster_nodes(ClusterName=given)
            with pytest.raises(other.exceptions.ResourceNotFound):
                other.describe_cluster_node(ClusterName=given, NodeId=node)
            with pytest.raises(other.exceptions.ResourceNotFound):
                other.delete_cluster(ClusterName=given)
        with pytest.raises(ClientError) as excinfo:
            other.list_tags(ResourceArn=arn)
        assert error_of(excinfo)[0] == "ResourceNotFound"
        with pytest.raises(ClientError):
            other.add_tags(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])

    # The same name is free in another account and in another region.
    bob.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    alice_west.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    assert alice.describe_cluster(ClusterName=name)["ClusterArn"] == arn
    assert len(alice.describe_cluster(ClusterName=name)["InstanceGroups"]) == 1


def test_a_token_from_another_account_is_refused(server: ServerProcess, name: str) -> None:
    alice, bob = server.client(access_key=ALICE), server.client(access_key=BOB)
    for suffix in ("a", "b"):
        alice.create_cluster(ClusterName=f"{name}-{suffix}", InstanceGroups=[group("g", 1)])
        bob.create_cluster(ClusterName=f"{name}-{suffix}", InstanceGroups=[group("g", 1)])
    token = alice.list_clusters(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as excinfo:
        bob.list_clusters(MaxResults=1, NextToken=token)
    assert error_of(excinfo)[0] == "ValidationException"


def test_tags_round_trip_on_a_cluster_arn(server: ServerProcess, name: str) -> None:
    sm = server.client()
    arn = sm.create_cluster(
        ClusterName=name, InstanceGroups=[group("g", 1)], Tags=[{"Key": "a", "Value": "1"}]
    )["ClusterArn"]
    added = sm.add_tags(
        ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}]
    )
    assert added["Tags"] == [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == added["Tags"]
    sm.delete_tags(ResourceArn=arn, TagKeys=["a", "missing"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    with pytest.raises(sm.exceptions.ResourceLimitExceeded):
        sm.add_tags(ResourceArn=arn, Tags=too_many)
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_tags_belong_to_the_exact_arn(server: ServerProcess, name: str) -> None:
    sm = server.client()
    arn = sm.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])["ClusterArn"]
    other_partition = arn.replace("arn:aws:", "arn:aws-cn:")
    for call in (
        lambda: sm.add_tags(ResourceArn=other_partition, Tags=[{"Key": "k", "Value": "v"}]),
        lambda: sm.list_tags(ResourceArn=other_partition),
        lambda: sm.describe_cluster(ClusterName=other_partition),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo)[0] == "ResourceNotFound"
