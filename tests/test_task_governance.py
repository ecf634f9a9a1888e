"""Task governance through boto3 against the real server under a manual clock: cluster
policies (ClusterSchedulerConfig) and compute allocations (ComputeQuota), their versions,
statuses, listing, refusals and tags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import ServerProcess, error_of, group

APPLY = 30  # HyperPod seconds until a change is in force
POLICY = {
    "PriorityClasses": [{"Name": "inference", "Weight": 100}, {"Name": "training", "Weight": 50}],
    "FairShare": "Enabled",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("governance") / "data", "--clock", "manual")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sm(server: ServerProcess) -> Any:
    return server.client()


def eks_cluster(server: ServerProcess, name: str) -> str:
    """An EKS cluster with 4 ml.g5.8xlarge and 2 ml.c5.xlarge instances, InService."""
    arn = server.client().create_cluster(
        ClusterName=name,
        InstanceGroups=[group("gpu", 4, "ml.g5.8xlarge"), group("cpu", 2, "ml.c5.xlarge")],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}},
    )["ClusterArn"]
    server.settle()
    return str(arn)


def quota(cluster: str, name: str, team: str, **config: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "ClusterArn": cluster,
        "ComputeQuotaConfig": config
        or {"ComputeQuotaResources": [{"InstanceType": "ml.g5.8xlarge", "Count": 2}]},
        "ComputeQuotaTarget": {"TeamName": team},
    }


def without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    answer.pop("ResponseMetadata", None)
    return answer


# Cluster policies -----------------------------------------------------------------------------


def test_a_cluster_policy_is_created_updated_by_version_and_deleted(
    server: ServerProcess, sm: Any
) -> None:
    cluster = eks_cluster(server, "gov-policy")
    made = sm.create_cluster_scheduler_config(
        Name="policy", ClusterArn=cluster, SchedulerConfig=POLICY, Description="first"
    )
    policy_id = made["ClusterSchedulerConfigId"]
    assert made["ClusterSchedulerConfigArn"] == (
        f"arn:aws:sagemaker:us-east-1:123456789012:cluster-scheduler-config/{policy_id}"
    )
    first = without_metadata(
        sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)
    )
    assert first["Status"] == "Creating" and first["ClusterSchedulerConfigVersion"] == 1
    assert first["StatusDetails"] == {"PriorityClasses": "Creating", "FairShare": "Creating"}
    assert first["SchedulerConfig"] == POLICY and first["Description"] == "first"
    assert first["ClusterArn"] == cluster and first["Name"] == "policy"
    server.advance(APPLY - 1)
    assert (
        sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)["Status"]
        == "Creating"
    )
    server.advance(1)
    created = sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)
    assert created["Status"] == "Created"

    # TargetVersion must be the current version: a stale one is a conflict.
    with pytest.raises(ClientError) as stale:
        sm.update_cluster_scheduler_config(
            ClusterSchedulerConfigId=policy_id, TargetVersion=2, SchedulerConfig=POLICY
        )
    assert error_of(stale) == (
        "ConflictException",
        f"TargetVersion 2 is not the current version of the cluster policy {policy_id}, 1. "
        "Describe it and try again with its current version.",
    )
    second = {"PriorityClasses": [{"Name": "training", "Weight": 10}], "FairShare": "Disabled"}
    updated = sm.update_cluster_scheduler_config(
        ClusterSchedulerConfigId=policy_id, TargetVersion=1, SchedulerConfig=second
    )
    assert updated["ClusterSchedulerConfigVersion"] == 2
    now = sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)
    assert (now["Status"], now["SchedulerConfig"], now["Description"]) == (
        "Updating",
        second,
        "first",
    )
    with pytest.raises(ClientError) as busy:
        sm.update_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id, TargetVersion=2)
    assert error_of(busy)[0] == "ConflictException"
    server.advance(APPLY)
    assert (
        sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)["Status"]
        == "Updated"
    )
    # Each version stays readable.
    old = sm.describe_cluster_scheduler_config(
        ClusterSchedulerConfigId=policy_id, ClusterSchedulerConfigVersion=1
    )
    assert old["SchedulerConfig"] == POLICY and old["ClusterSchedulerConfigVersion"] == 1
    with pytest.raises(ClientError) as no_version:
        sm.describe_cluster_scheduler_config(
            ClusterSchedulerConfigId=policy_id, ClusterSchedulerConfigVersion=3
        )
    assert error_of(no_version)[0] == "ResourceNotFound"

    sm.delete_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)
    assert (
        sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)["Status"]
        == "Deleting"
    )
    with pytest.raises(ClientError) as deleting:
        sm.delete_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)
    assert error_of(deleting)[0] == "ConflictException"
    server.advance(APPLY)
    gone = sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id)
    assert gone["Status"] == "Deleted"
    listed = sm.list_cluster_scheduler_configs(ClusterArn=cluster, Status="Deleted")
    assert [s["ClusterSchedulerConfigId"] for s in listed["ClusterSchedulerConfigSummaries"]] == [
        policy_id
    ]
    for call in (
        lambda: sm.update_cluster_scheduler_config(
            ClusterSchedulerConfigId=policy_id, TargetVersion=2
        ),
        lambda: sm.delete_cluster_scheduler_config(ClusterSchedulerConfigId=policy_id),
    ):
        with pytest.raises(ClientError) as deleted:
            call()
        assert error_of(deleted) == (
            "ResourceNotFound",
            f"Could not find cluster policy '{policy_id}'.",
        )
    # Once deleted, the cluster can have a new one.
    sm.create_cluster_scheduler_config(Name="policy", ClusterArn=cluster, SchedulerConfig=POLICY)


def test_what_a_cluster_policy_refuses(server: ServerProcess, sm: Any) -> None:
    cluster = eks_cluster(server, "gov-refuse")
    slurm = sm.create_cluster(
        ClusterName="gov-slurm",
        InstanceGroups=[group("g", 1)],
    )["ClusterArn"]
    with pytest.raises(ClientError) as on_slurm:
        sm.create_cluster_scheduler_config(Name="p", ClusterArn=slurm, SchedulerConfig=POLICY)
    assert error_of(on_slurm) == (
        "ValidationException",
        "Task governance is supported only for clusters orchestrated by Amazon EKS; cluster "
        "gov-slurm is orchestrated by Slurm.",
    )
    with pytest.raises(ClientError) as repeated:
        sm.create_cluster_scheduler_config(
            Name="p",
            ClusterArn=cluster,
            SchedulerConfig={"PriorityClasses": [{"Name": "a", "Weight": 1}] * 2},
        )
    assert error_of(repeated) == (
        "ValidationException",
        "PriorityClasses must have unique names; a is given more than once.",
    )
    with pytest.raises(ClientError) as model:
        sm.create_cluster_scheduler_config(
            Name="p",
            ClusterArn=cluster,
            SchedulerConfig={"PriorityClasses": [{"Name": "a", "Weight": 101}]},
        )
    assert error_of(model) == (
        "ValidationException",
        "1 validation error detected: Value '101' at "
        "'schedulerConfig.priorityClasses.1.member.weight' failed to satisfy constraint: "
        "Member must have value less than or equal to 100",
    )
    first = sm.create_cluster_scheduler_config(
        Name="p", ClusterArn=cluster, SchedulerConfig=POLICY
    )["ClusterSchedulerConfigId"]
    with pytest.raises(ClientError) as second:
        sm.create_cluster_scheduler_config(Name="q", ClusterArn=cluster, SchedulerConfig=POLICY)
    assert error_of(second) == (
        "ResourceLimitExceeded",
        f"Cluster gov-refuse already has a cluster policy ({first}); a cluster can have 1. "
        "Update it or delete it.",
    )
    with pytest.raises(ClientError) as unknown:
        sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId="aaaaaaaaaaaa")
    assert error_of(unknown) == (
        "ResourceNotFound",
        "Could not find cluster policy 'aaaaaaaaaaaa'.",
    )
    # Another account does not see it.
    with pytest.raises(ClientError) as foreign:
        server.client(access_key="222222222222").describe_cluster_scheduler_config(
            ClusterSchedulerConfigId=first
        )
    assert error_of(foreign)[0] == "ResourceNotFound"


# Compute allocations --------------------------------------------------------------------------


def test_a_compute_allocation_echoes_its_defaults_and_moves_through_versions(
    server: ServerProcess, sm: Any
) -> None:
    cluster = eks_cluster(server, "gov-quota")
    made = sm.create_compute_quota(**quota(cluster, "team-a", "team-a"), Description="a")
    quota_id = made["ComputeQuotaId"]
    assert made["ComputeQuotaArn"].endswith(f":compute-quota/{quota_id}")
    shown = without_metadata(sm.describe_compute_quota(ComputeQuotaId=quota_id))
    assert shown["Status"] == "Creating" and shown["ComputeQuotaVersion"] == 1
    assert shown["ComputeQuotaConfig"] == {
        "ComputeQuotaResources": [{"InstanceType": "ml.g5.8xlarge", "Count": 2}],
        "ResourceSharingConfig": {"Strategy": "LendAndBorrow", "BorrowLimit": 50},
        "PreemptTeamTasks": "LowerPriority",
    }
    assert shown["ComputeQuotaTarget"] == {"TeamName": "team-a", "FairShareWeight": 0}
    assert shown["ActivationState"] == "Enabled" and shown["Description"] == "a"
    server.advance(APPLY)
    assert sm.describe_compute_quota(ComputeQuotaId=quota_id)["Status"] == "Created"
    changed = sm.update_compute_quota(
        ComputeQuotaId=quota_id,
        TargetVersion=1,
        ComputeQuotaTarget={"TeamName": "team-a", "FairShareWeight": 80},
        ActivationState="Disabled",
    )
    assert changed["ComputeQuotaVersion"] == 2
    now = sm.describe_compute_quota(ComputeQuotaId=quota_id)
    assert now["Status"] == "Updating" and now["ActivationState"] == "Disabled"
    assert now["ComputeQuotaTarget"]["FairShareWeight"] == 80
    assert now["ComputeQuotaConfig"]["ComputeQuotaResources"][0]["Count"] == 2
    server.advance(APPLY)
    assert sm.describe_compute_quota(ComputeQuotaId=quota_id)["Status"] == "Updated"
    first = sm.describe_compute_quota(ComputeQuotaId=quota_id, ComputeQuotaVersion=1)
    assert first["ActivationState"] == "Enabled"
    sm.delete_compute_quota(ComputeQuotaId=quota_id)
    assert sm.describe_compute_quota(ComputeQuotaId=quota_id)["Status"] == "Deleting"
    server.advance(APPLY)
    assert sm.describe_compute_quota(ComputeQuotaId=quota_id)["Status"] == "Deleted"
    with pytest.raises(ClientError) as deleted:
        sm.update_compute_quota(ComputeQuotaId=quota_id, TargetVersion=2)
    assert error_of(deleted) == (
        "ResourceNotFound",
        f"Could not find compute allocation '{quota_id}'.",
    )


def test_what_a_compute_allocation_refuses(server: ServerProcess, sm: Any) -> None:
    cluster = eks_cluster(server, "gov-quota-refuse")
    sm.create_compute_quota(**quota(cluster, "alpha", "alpha"))
    refusals = [
        (
            quota(cluster, "alpha", "other"),
            "ConflictException",
            "A compute allocation named alpha already exists on cluster gov-quota-refuse",
        ),
        (
            quota(cluster, "beta", "alpha"),
            "ConflictException",
            "Team alpha already has a compute allocation",
        ),
        (
            quota(
                cluster,
                "beta",
                "beta",
                ComputeQuotaResources=[{"InstanceType": "ml.g5.8xlarge", "Count": 3}],
            ),
            "ResourceLimitExceeded",
            "The compute allocations of cluster gov-quota-refuse would allocate 5 ml.g5.8xlarge "
            "instances; the cluster has 4.",
        ),
        (
            quota(
                cluster,
                "beta",
                "beta",
                ComputeQuotaResources=[{"InstanceType": "ml.p5.48xlarge", "Count": 1}],
            ),
            "ValidationException",
            "Cluster gov-quota-refuse has no instance group of type ml.p5.48xlarge.",
        ),
        (
            quota(
                cluster,
                "beta",
                "beta",
                ComputeQuotaResources=[{"InstanceType": "ml.c5.xlarge", "Count": 1, "VCpu": 2}],
            ),
            "ValidationException",
            "ComputeQuotaResources for ml.c5.xlarge gives Count with VCpu: allocate whole "
            "instances (Count) or resources, not both.",
        ),
        (
            quota(
                cluster, "beta", "beta", ComputeQuotaResources=[{"InstanceType": "ml.c5.xlarge"}]
            ),
            "ValidationException",
            "ComputeQuotaResources for ml.c5.xlarge must give Count, or Accelerators, VCpu, "
            "MemoryInGiB or AcceleratorPartition.",
        ),
        (
            quota(
                cluster,
                "beta",
                "beta",
                ComputeQuotaResources=[
                    {"InstanceType": "ml.c5.xlarge", "Count": 1},
                    {"InstanceType": "ml.c5.xlarge", "Count": 1},
                ],
            ),
            "ValidationException",
            "ComputeQuotaResources must name each instance type once; ml.c5.xlarge is given "
            "more than once.",
        ),
        (
            quota(
                cluster,
                "beta",
                "beta",
                ResourceSharingConfig={"Strategy": "DontLend", "BorrowLimit": 10},
            ),
            "ValidationException",
            "ResourceSharingConfig.BorrowLimit applies only to the LendAndBorrow strategy, not "
            "to DontLend.",
        ),
        (
            {**quota(cluster, "beta", "beta"), "ComputeQuotaTarget": {"TeamName": "Team_B"}},
            "ValidationException",
            "1 validation error detected: Value 'Team_B' at 'computeQuotaTarget.teamName' "
            "failed to satisfy constraint: Member must satisfy regular expression pattern: "
            "^[a-z0-9]([-a-z0-9]*[a-z0-9]){0,39}?",
        ),
    ]
    for params, code, message in refusals:
        with pytest.raises(ClientError) as refused:
            sm.create_compute_quota(**params)
        assert error_of(refused)[0] == code, params
        assert error_of(refused)[1].startswith(message), error_of(refused)
    # A disabled allocation does not count against the cluster's instances.
    sm.create_compute_quota(
        **quota(
            cluster,
            "beta",
            "beta",
            ComputeQuotaResources=[{"InstanceType": "ml.g5.8xlarge", "Count": 3}],
        ),
        ActivationState="Disabled",
    )
    slurm = sm.create_cluster(ClusterName="gov-quota-slurm", InstanceGroups=[group("g", 1)])
    with pytest.raises(ClientError) as on_slurm:
        sm.create_compute_quota(**quota(slurm["ClusterArn"], "x", "x"))
    assert error_of(on_slurm)[0] == "ValidationException"
    with pytest.raises(ClientError) as unknown_cluster:
        sm.create_compute_quota(
            **quota("arn:aws:sagemaker:us-east-1:123456789012:cluster/qqqqqqqqqqqq", "x", "x")
        )
    assert error_of(unknown_cluster)[0] == "ResourceNotFound"


def test_allocations_are_listed_filtered_sorted_and_paged(server: ServerProcess, sm: Any) -> None:
    # Another account and region of their own, so that other tests' allocations stay out.
    sm = server.client(region="eu-west-1", access_key="333333333333")
    cluster = str(
        sm.create_cluster(
            ClusterName="gov-list",
            InstanceGroups=[group("g", 10, "ml.c5.xlarge")],
            NodeProvisioningMode="Continuous",
            Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:eu-west-1:333333333333:cluster/l"}},
        )["ClusterArn"]
    )
    server.settle()
    made = []
    for name in ("delta", "alpha", "charlie", "bravo"):
        made.append(
            sm.create_compute_quota(
                **quota(
                    cluster,
                    name,
                    name,
                    ComputeQuotaResources=[{"InstanceType": "ml.c5.xlarge", "Count": 1}],
                )
            )["ComputeQuotaId"]
        )
        server.advance(1)
    server.advance(APPLY)
    sm.update_compute_quota(ComputeQuotaId=made[0], TargetVersion=1, Description="changed")

    def names(**params: Any) -> list[str]:
        pages = sm.get_paginator("list_compute_quotas").paginate(
            **params, PaginationConfig={"PageSize": 3}
        )
        return [s["Name"] for page in pages for s in page["ComputeQuotaSummaries"]]

    # Newest first unless asked otherwise; paged through with NextToken.
    assert names() == ["bravo", "charlie", "alpha", "delta"]
    assert names(SortBy="Name", SortOrder="Ascending") == ["alpha", "bravo", "charlie", "delta"]
    assert names(SortBy="Status", SortOrder="Ascending")[-1] == "delta"  # Updating
    assert names(Status="Updating") == ["delta"]
    assert names(NameContains="ha") == ["charlie", "alpha"]
    assert names(ClusterArn=cluster, SortBy="ClusterArn")[0] == "bravo"
    first = sm.describe_compute_quota(ComputeQuotaId=made[1])["CreationTime"]
    assert names(CreatedAfter=first, SortOrder="Ascending") == ["charlie", "bravo"]
    assert names(CreatedBefore=first) == ["delta"]
    summary = sm.list_compute_quotas(NameContains="delta")["ComputeQuotaSummaries"][0]
    assert summary["ComputeQuotaVersion"] == 2 and summary["ClusterArn"] == cluster
    assert summary["ComputeQuotaTarget"] == {"TeamName": "delta", "FairShareWeight": 0}
    # A token is bound to the request it continues.
    page = sm.list_compute_quotas(MaxResults=1)
    with pytest.raises(ClientError) as other_request:
        sm.list_compute_quotas(MaxResults=1, NextToken=page["NextToken"], SortBy="Name")
    assert error_of(other_request)[0] == "ValidationException"
    # Cluster policies list the same way.
    sm.create_cluster_scheduler_config(Name="only", ClusterArn=cluster, SchedulerConfig=POLICY)
    policies = sm.list_cluster_scheduler_configs(NameContains="only")
    [policy] = policies["ClusterSchedulerConfigSummaries"]
    assert (policy["Name"], policy["Status"], policy["ClusterSchedulerConfigVersion"]) == (
        "only",
        "Creating",
        1,
    )
    assert (
        sm.list_cluster_scheduler_configs(Status="Created")["ClusterSchedulerConfigSummaries"] == []
    )


def test_tags_on_policies_and_allocations_and_what_a_cluster_deletion_takes(
    server: ServerProcess, sm: Any
) -> None:
    cluster = eks_cluster(server, "gov-tags")
    policy = sm.create_cluster_scheduler_config(
        Name="p", ClusterArn=cluster, SchedulerConfig=POLICY, Tags=[{"Key": "a", "Value": "1"}]
    )
    allocation = sm.create_compute_quota(
        **quota(cluster, "t", "t"), Tags=[{"Key": "b", "Value": "2"}]
    )
    arns = [policy["ClusterSchedulerConfigArn"], allocation["ComputeQuotaArn"]]
    assert sm.list_tags(ResourceArn=arns[0])["Tags"] == [{"Key": "a", "Value": "1"}]
    assert sm.list_tags(ResourceArn=arns[1])["Tags"] == [{"Key": "b", "Value": "2"}]
    for arn in arns:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "c", "Value": "3"}])
        sm.delete_tags(ResourceArn=arn, TagKeys=["c"])
        assert len(sm.list_tags(ResourceArn=arn)["Tags"]) == 1
    # An ARN of the right shape that names nothing here.
    with pytest.raises(ClientError) as nothing:
        sm.list_tags(ResourceArn=arns[1][:-12] + "zzzzzzzzzzzz")
    assert error_of(nothing)[0] == "ResourceNotFound"
    sm.delete_cluster(ClusterName="gov-tags")
    server.settle()
    for arn in arns:
        with pytest.raises(ClientError) as gone:
            sm.list_tags(ResourceArn=arn)
        assert error_of(gone)[0] == "ResourceNotFound"
    with pytest.raises(ClientError) as no_policy:
        sm.describe_cluster_scheduler_config(
            ClusterSchedulerConfigId=policy["ClusterSchedulerConfigId"]
        )
    assert error_of(no_policy)[0] == "ResourceNotFound"


def test_a_task_governance_fault_fails_the_next_change(server: ServerProcess, sm: Any) -> None:
    cluster = eks_cluster(server, "gov-fault")

    def inject(**spec: Any) -> None:
        code, body = server.admin(
            "POST", "/_hyperpod/faults", {"Kind": "task_governance", "Cluster": cluster, **spec}
        )
        assert code == 201, body

    inject(Resource="ClusterSchedulerConfig", Action="Create")
    allocation = sm.create_compute_quota(**quota(cluster, "t", "t"))["ComputeQuotaId"]
    policy = sm.create_cluster_scheduler_config(
        Name="p", ClusterArn=cluster, SchedulerConfig=POLICY
    )["ClusterSchedulerConfigId"]
    server.advance(APPLY)
    # Only the cluster policy was aimed at.
    assert sm.describe_compute_quota(ComputeQuotaId=allocation)["Status"] == "Created"
    failed = sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy)
    assert failed["Status"] == "CreateFailed"
    assert failed["FailureReason"] == (
        f"HyperPod could not apply the change to the cluster policy {policy} (an injected "
        "task_governance fault)."
    )
    # Updated again, it applies, and the reason is gone.
    sm.update_cluster_scheduler_config(ClusterSchedulerConfigId=policy, TargetVersion=1)
    server.advance(APPLY)
    fixed = sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy)
    assert fixed["Status"] == "Updated" and "FailureReason" not in fixed

    inject(Action="Update", Count=1)
    sm.update_compute_quota(ComputeQuotaId=allocation, TargetVersion=1, Description="new")
    server.advance(APPLY)
    update_failed = sm.describe_compute_quota(ComputeQuotaId=allocation)
    assert (update_failed["Status"], update_failed["ComputeQuotaVersion"]) == ("UpdateFailed", 2)
    inject(Action="Delete")
    sm.delete_compute_quota(ComputeQuotaId=allocation)
    server.advance(APPLY)
    assert sm.describe_compute_quota(ComputeQuotaId=allocation)["Status"] == "DeleteFailed"
    sm.delete_compute_quota(ComputeQuotaId=allocation)
    server.advance(APPLY)
    assert sm.describe_compute_quota(ComputeQuotaId=allocation)["Status"] == "Deleted"
