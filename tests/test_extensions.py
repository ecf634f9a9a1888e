"""Cluster extensions through boto3 and the AWS CLI against the real server, under a manual
clock: every status a client can see, every error code, the extension fault."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError

from tests.support import Aws, ServerProcess, error_of, group

NAME = "sagemaker-observability"
INSTALL, UPDATE, REMOVE = 300, 180, 120


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("extensions") / "data", "--clock", "manual")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sm(server: ServerProcess) -> Any:
    return server.client()


def slurm_cluster(server: ServerProcess, name: str, workers: int = 2, **extra: Any) -> str:
    sm = server.client()
    arn = sm.create_cluster(
        ClusterName=name,
        InstanceGroups=[
            group("controller", 1, SlurmConfig={"NodeType": "Controller"}),
            group("workers", workers, SlurmConfig={"NodeType": "Compute"}),
        ],
        Orchestrator={"Slurm": {"SlurmConfigStrategy": "Managed"}},
        **{"NodeProvisioningMode": "Continuous", **extra},
    )["ClusterArn"]
    server.settle()
    return str(arn)


def described(sm: Any, cluster: str, extension: str) -> dict[str, Any]:
    answer = sm.describe_cluster_extension(ClusterArn=cluster, ExtensionArn=extension)
    answer.pop("ResponseMetadata")
    return answer


def status(sm: Any, cluster: str, extension: str) -> str:
    return str(described(sm, cluster, extension)["ExtensionDetails"]["Status"])


def fault(server: ServerProcess, **spec: Any) -> str:
    code, body = server.admin("POST", "/_hyperpod/faults", {"Kind": "extension", **spec})
    assert code == 201, body
    return str(body["Faults"][0]["FaultId"])


def test_an_extension_is_installed_updated_and_removed_over_time(
    server: ServerProcess, sm: Any
) -> None:
    cluster = slurm_cluster(server, "ext-life")
    arn = sm.create_cluster_extension(
        ClusterArn=cluster,
        ExtensionName=NAME,
        ExtensionVersion="1.1.0",
        ConfigurationValues='{"metricsProvider": {"nodeMetrics": {"level": "ADVANCED"}}}',
        Tags=[{"Key": "team", "Value": "ml"}],
    )["ExtensionArn"]
    cluster_id = cluster.rsplit("/", 1)[1]
    assert arn.startswith(
        f"arn:aws:sagemaker:us-east-1:123456789012:extension/{NAME}/{cluster_id}/"
    )
    first = described(sm, cluster, arn)
    details = first["ExtensionDetails"]
    assert details["Status"] == "Creating"
    assert details["ExtensionVersion"] == "1.1.0"
    assert details["ClusterArn"] == cluster and details["ExtensionName"] == NAME
    # Every setting, the defaults of those not given included.
    assert json.loads(details["ConfigurationValues"]) == {
        "logsProvider": {"enabled": False},
        "metricsProvider": {
            "nodeMetrics": {"level": "ADVANCED"},
            "scrapeIntervalSeconds": 60,
            "slurmMetrics": {"enabled": True},
        },
    }
    assert details["CreationTime"] == details["LastModifiedTime"]
    assert first["NodeSummary"] == {"TotalCount": 3, "ActiveCount": 0}
    assert "Health" not in first

    server.advance(INSTALL - 1)
    assert status(sm, cluster, arn) == "Creating"
    server.advance(1)
    active = described(sm, cluster, arn)
    assert active["ExtensionDetails"]["Status"] == "Active"
    assert active["NodeSummary"] == {"TotalCount": 3, "ActiveCount": 3}
    assert active["ExtensionDetails"]["LastModifiedTime"] > details["CreationTime"]
    [summary] = sm.list_cluster_extensions(ClusterArn=cluster)["Extensions"]
    assert summary == {
        "ExtensionArn": arn,
        "ExtensionName": NAME,
        "ExtensionVersion": "1.1.0",
        "Status": "Active",
        "CreationTime": details["CreationTime"],
    }

    # Settings given change, settings left out keep their values, null returns a default.
    sm.update_cluster_extension(
        ClusterArn=cluster,
        ExtensionArn=arn,
        ExtensionVersion="1.2.0",
        ConfigurationValues='{"logsProvider": {"enabled": true}, '
        '"metricsProvider": {"nodeMetrics": {"level": null}}}',
    )
    updating = described(sm, cluster, arn)["ExtensionDetails"]
    assert updating["Status"] == "Updating" and updating["ExtensionVersion"] == "1.2.0"
    config = json.loads(updating["ConfigurationValues"])
    assert config["logsProvider"] == {"enabled": True}
    assert config["metricsProvider"]["nodeMetrics"] == {"level": "BASIC"}
    with pytest.raises(ClientError) as busy:
        sm.update_cluster_extension(ClusterArn=cluster, ExtensionArn=arn)
    assert error_of(busy)[0] == "ConflictException"
    server.advance(UPDATE)
    assert status(sm, cluster, arn) == "Active"

    with pytest.raises(ClientError) as older:
        sm.update_cluster_extension(ClusterArn=cluster, ExtensionArn=arn, ExtensionVersion="1.0.0")
    assert error_of(older) == (
        "ValidationException",
        f"You can't update the extension {NAME} from version 1.2.0 to the earlier version "
        "1.0.0. To use an earlier version, delete the extension and create it again with "
        "that version.",
    )

    assert sm.delete_cluster_extension(ClusterArn=cluster, ExtensionArn=arn)["ExtensionArn"] == arn
    assert status(sm, cluster, arn) == "Deleting"
    for call in (sm.update_cluster_extension, sm.delete_cluster_extension):
        with pytest.raises(ClientError) as deleting:
            call(ClusterArn=cluster, ExtensionArn=arn)
        assert error_of(deleting)[0] == "ConflictException"
    server.advance(REMOVE - 1)
    assert status(sm, cluster, arn) == "Deleting"
    server.advance(1)
    with pytest.raises(ClientError) as gone:
        sm.describe_cluster_extension(ClusterArn=cluster, ExtensionArn=arn)
    assert error_of(gone) == ("ResourceNotFound", f"Could not find extension '{arn}'.")
    assert sm.list_cluster_extensions(ClusterArn=cluster)["Extensions"] == []
    with pytest.raises(ClientError) as untagged:
        sm.list_tags(ResourceArn=arn)
    assert error_of(untagged)[0] == "ResourceNotFound"
    # Created again, it is a new extension with a new ARN, at the latest version.
    again = sm.create_cluster_extension(ClusterArn=cluster, ExtensionName=NAME)["ExtensionArn"]
    assert again != arn
    assert described(sm, cluster, again)["ExtensionDetails"]["ExtensionVersion"] == "1.2.0"


def test_extensions_are_for_continuous_slurm_clusters_only(server: ServerProcess, sm: Any) -> None:
    classic = sm.create_cluster(ClusterName="ext-classic", InstanceGroups=[group("g", 1)])
    eks = sm.create_cluster(
        ClusterName="ext-eks",
        InstanceGroups=[group("g", 1)],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/x"}},
    )
    server.settle()
    for arn, message in (
        (
            classic["ClusterArn"],
            "Extensions are supported only on clusters with NodeProvisioningMode set to "
            "Continuous; cluster ext-classic is not.",
        ),
        (
            eks["ClusterArn"],
            "Extensions are supported only on clusters orchestrated by Slurm; cluster ext-eks "
            "is orchestrated by Amazon EKS.",
        ),
    ):
        with pytest.raises(ClientError) as refused:
            sm.create_cluster_extension(ClusterArn=arn, ExtensionName=NAME)
        assert error_of(refused) == ("ValidationException", message)
    unknown = "arn:aws:sagemaker:us-east-1:123456789012:cluster/aaaaaaaaaaaa"
    with pytest.raises(ClientError) as missing:
        sm.create_cluster_extension(ClusterArn=unknown, ExtensionName=NAME)
    assert error_of(missing) == ("ResourceNotFound", f"Could not find cluster '{unknown}'.")
    # Another account's cluster is not found either.
    cluster = slurm_cluster(server, "ext-mine")
    with pytest.raises(ClientError) as foreign:
        server.client(access_key="111111111111").create_cluster_extension(
            ClusterArn=cluster, ExtensionName=NAME
        )
    assert error_of(foreign)[0] == "ResourceNotFound"


def test_what_create_refuses(server: ServerProcess, sm: Any) -> None:
    cluster = slurm_cluster(server, "ext-refusals")
    cases = [
        (
            {"ExtensionName": "sagemaker-nothing"},
            "The extension 'sagemaker-nothing' is not available. Available extensions: "
            "sagemaker-observability.",
        ),
        (
            {"ExtensionName": NAME, "ExtensionVersion": "9.0.0"},
            f"Version 9.0.0 of extension '{NAME}' is not available. Available versions: "
            "1.2.0, 1.1.0, 1.0.0.",
        ),
        (
            {"ExtensionName": NAME, "ConfigurationValues": "[1, 2]"},
            "ConfigurationValues must be a JSON object serialized as a string.",
        ),
        (
            {"ExtensionName": NAME, "ConfigurationValues": '{"tracing": {"on": true}}'},
            "ConfigurationValues has an unknown setting 'tracing.on' for version 1.2.0.",
        ),
        (
            {
                "ExtensionName": NAME,
                "ExtensionVersion": "1.0.0",
                "ConfigurationValues": '{"metricsProvider": {"slurmMetrics": {"enabled": true}}}',
            },
            "ConfigurationValues has an unknown setting 'metricsProvider.slurmMetrics.enabled' "
            "for version 1.0.0.",
        ),
        (
            {
                "ExtensionName": NAME,
                "ConfigurationValues": '{"metricsProvider": {"nodeMetrics": {"level": "MAX"}}}',
            },
            'ConfigurationValues has an invalid value "MAX" for setting '
            '\'metricsProvider.nodeMetrics.level\': it must be "BASIC", "ADVANCED".',
        ),
        (
            {"ExtensionName": "Observability"},
            "1 validation error detected: Value 'Observability' at 'extensionName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "^[a-z]([a-z0-9]|-[a-z0-9])*",
        ),
    ]
    for params, message in cases:
        with pytest.raises(ClientError) as refused:
            sm.create_cluster_extension(ClusterArn=cluster, **params)
        assert error_of(refused) == ("ValidationException", message), params
    assert sm.list_cluster_extensions(ClusterArn=cluster)["Extensions"] == []

    first = sm.create_cluster_extension(ClusterArn=cluster, ExtensionName=NAME)["ExtensionArn"]
    with pytest.raises(ClientError) as twice:
        sm.create_cluster_extension(ClusterArn=cluster, ExtensionName=NAME)
    assert error_of(twice) == (
        "ResourceInUse",
        f"The cluster ext-refusals already has an extension named {NAME} ({first}). A cluster "
        "can have only one extension with a given name.",
    )


def test_a_client_token_creates_once(server: ServerProcess, sm: Any) -> None:
    cluster = slurm_cluster(server, "ext-token")
    params = {"ClusterArn": cluster, "ExtensionName": NAME, "ClientToken": "retry-me"}
    arn = sm.create_cluster_extension(**params)["ExtensionArn"]
    assert sm.create_cluster_extension(**params)["ExtensionArn"] == arn
    server.advance(INSTALL)
    # Still the same answer once it is Active, within the token's 8 hours.
    assert sm.create_cluster_extension(**params)["ExtensionArn"] == arn
    with pytest.raises(ClientError) as changed:
        sm.create_cluster_extension(**params, ExtensionVersion="1.0.0")
    assert error_of(changed) == (
        "ConflictException",
        "The ClientToken retry-me was already used with different parameters.",
    )
    assert len(sm.list_cluster_extensions(ClusterArn=cluster)["Extensions"]) == 1
    # The same update sent twice with one token is applied once, without an error.
    update = {"ClusterArn": cluster, "ExtensionArn": arn, "ClientToken": "u1"}
    sm.update_cluster_extension(**update, ConfigurationValues='{"logsProvider": {"enabled": true}}')
    sm.update_cluster_extension(**update, ConfigurationValues='{"logsProvider": {"enabled": true}}')
    assert status(sm, cluster, arn) == "Updating"
    with pytest.raises(ClientError) as other:
        sm.update_cluster_extension(**update)
    assert error_of(other)[0] == "ConflictException"
    server.advance(UPDATE)
    assert status(sm, cluster, arn) == "Active"


def test_an_extension_fault_fails_installs_updates_and_removals(
    server: ServerProcess, sm: Any
) -> None:
    cluster = slurm_cluster(server, "ext-faults")
    fault(server, Cluster="ext-faults", ExtensionName=NAME, Action="Create", Code="AccessDenied")
    arn = sm.create_cluster_extension(ClusterArn=cluster, ExtensionName=NAME)["ExtensionArn"]
    server.advance(INSTALL)
    failed = described(sm, cluster, arn)
    assert failed["ExtensionDetails"]["Status"] == "CreateFailed"
    assert failed["NodeSummary"] == {"TotalCount": 3, "ActiveCount": 0}
    assert failed["Health"] == {
        "Issues": [
            {
                "Code": "AccessDenied",
                "Message": "The cluster's execution role is not allowed to call a service the "
                "extension needs.",
                "NodeCount": 3,
            }
        ]
    }
    # The fault struck once: an update that changes nothing tries again, and succeeds.
    sm.update_cluster_extension(ClusterArn=cluster, ExtensionArn=arn)
    assert status(sm, cluster, arn) == "Updating"
    server.advance(UPDATE)
    healed = described(sm, cluster, arn)
    assert healed["ExtensionDetails"]["Status"] == "Active" and "Health" not in healed

    # On one node: the others run it, and the extension is Degraded.
    victim = sm.list_cluster_nodes(ClusterName="ext-faults", InstanceGroupNameContains="workers")[
        "ClusterNodeSummaries"
    ][0]["InstanceId"]
    fault(server, Cluster=cluster, InstanceId=victim)
    sm.update_cluster_extension(
        ClusterArn=cluster,
        ExtensionArn=arn,
        ConfigurationValues='{"logsProvider": {"enabled": true}}',
    )
    server.advance(UPDATE)
    degraded = described(sm, cluster, arn)
    assert degraded["ExtensionDetails"]["Status"] == "Degraded"
    assert degraded["NodeSummary"] == {"TotalCount": 3, "ActiveCount": 2}
    [issue] = degraded["Health"]["Issues"]
    assert (issue["Code"], issue["NodeCount"]) == ("ExtensionUnhealthy", 1)

    # Every node, on an update: UpdateFailed.
    fault(server, Cluster=cluster, Action="Update", Code="DependencyUnreachable")
    sm.update_cluster_extension(ClusterArn=cluster, ExtensionArn=arn)
    server.advance(UPDATE)
    update_failed = described(sm, cluster, arn)
    assert update_failed["ExtensionDetails"]["Status"] == "UpdateFailed"
    assert update_failed["Health"]["Issues"][0]["Code"] == "DependencyUnreachable"

    # A removal that fails leaves it there, DeleteFailed; deleting again removes it.
    fault(server, Cluster=cluster, Action="Delete")
    sm.delete_cluster_extension(ClusterArn=cluster, ExtensionArn=arn)
    server.advance(REMOVE)
    assert status(sm, cluster, arn) == "DeleteFailed"
    sm.delete_cluster_extension(ClusterArn=cluster, ExtensionArn=arn)
    server.advance(REMOVE)
    assert sm.list_cluster_extensions(ClusterArn=cluster)["Extensions"] == []
    code, listed = server.admin("GET", "/_hyperpod/faults")
    assert code == 200 and [f for f in listed["Faults"] if f["Kind"] == "extension"] == []


def test_describe_needs_the_extensions_own_cluster(server: ServerProcess, sm: Any) -> None:
    one = slurm_cluster(server, "ext-one")
    other = slurm_cluster(server, "ext-other")
    arn = sm.create_cluster_extension(ClusterArn=one, ExtensionName=NAME)["ExtensionArn"]
    for call in (
        sm.describe_cluster_extension,
        sm.update_cluster_extension,
        sm.delete_cluster_extension,
    ):
        with pytest.raises(ClientError) as elsewhere:
            call(ClusterArn=other, ExtensionArn=arn)
        assert error_of(elsewhere) == ("ResourceNotFound", f"Could not find extension '{arn}'.")


def test_listing_filters_by_creation_time(server: ServerProcess, sm: Any) -> None:
    cluster = slurm_cluster(server, "ext-list")
    arn = sm.create_cluster_extension(ClusterArn=cluster, ExtensionName=NAME)["ExtensionArn"]
    created = described(sm, cluster, arn)["ExtensionDetails"]["CreationTime"]
    listed = sm.list_cluster_extensions(ClusterArn=cluster, CreationTimeAfter=created)
    assert [e["ExtensionArn"] for e in listed["Extensions"]] == [arn]
    assert sm.list_cluster_extensions(ClusterArn=cluster, CreationTimeBefore=created)[
        "Extensions"
    ] == [listed["Extensions"][0]]
    later = created.timestamp() + 1
    assert (
        sm.list_cluster_extensions(ClusterArn=cluster, CreationTimeAfter=later)["Extensions"] == []
    )
    with pytest.raises(ClientError) as forged:
        sm.list_cluster_extensions(ClusterArn=cluster, NextToken="not-a-token")
    assert error_of(forged)[0] == "ValidationException"
    with pytest.raises(ClientError) as missing:
        sm.list_cluster_extensions(
            ClusterArn="arn:aws:sagemaker:us-east-1:123456789012:cluster/zzzzzzzzzzzz"
        )
    assert error_of(missing)[0] == "ResourceNotFound"


def test_versions_are_listed_highest_first_a_page_at_a_time(sm: Any) -> None:
    pages = sm.get_paginator("list_cluster_extension_versions").paginate(
        ExtensionName=NAME, PaginationConfig={"PageSize": 2}
    )
    seen = [[v["ExtensionVersion"] for v in page["ExtensionVersions"]] for page in pages]
    assert seen == [["1.2.0", "1.1.0"], ["1.0.0"]]
    none = sm.list_cluster_extension_versions(ExtensionName="sagemaker-unknown")
    assert none["ExtensionVersions"] == [] and "NextToken" not in none


def test_the_aws_cli_creates_and_lists_an_extension(server: ServerProcess, tmp_path: Path) -> None:
    cluster = slurm_cluster(server, "ext-cli")
    aws = Aws(tmp_path, server.url)
    # The AWS CLI (v1) carries a botocore of its own whose model predates the extension
    # operations; AWS_DATA_PATH gives it the installed botocore's model, as a user would.
    aws.env["AWS_DATA_PATH"] = str(Path(botocore.__file__).parent / "data")
    versions = aws.json("list-cluster-extension-versions", "--extension-name", NAME)
    assert [v["ExtensionVersion"] for v in versions["ExtensionVersions"]] == [
        "1.2.0",
        "1.1.0",
        "1.0.0",
    ]
    made = aws.json(
        "create-cluster-extension",
        *("--cluster-arn", cluster, "--extension-name", NAME),
        *("--configuration-values", '{"logsProvider": {"enabled": true}}'),
    )
    shown = aws.json(
        "describe-cluster-extension",
        "--cluster-arn",
        cluster,
        "--extension-arn",
        made["ExtensionArn"],
    )
    assert shown["ExtensionDetails"]["Status"] == "Creating"
    server.advance(INSTALL)
    listed = aws.json("list-cluster-extensions", "--cluster-arn", cluster)
    assert [(e["ExtensionName"], e["Status"]) for e in listed["Extensions"]] == [(NAME, "Active")]
    refused = aws.run(
        "create-cluster-extension", "--cluster-arn", cluster, "--extension-name", NAME
    )
    assert refused.returncode != 0 and "(ResourceInUse)" in refused.stderr


def test_a_deleted_cluster_takes_its_extensions_and_their_tags(
    server: ServerProcess, sm: Any
) -> None:
    cluster = slurm_cluster(server, "ext-gone")
    arn = sm.create_cluster_extension(
        ClusterArn=cluster, ExtensionName=NAME, Tags=[{"Key": "k", "Value": "v"}]
    )["ExtensionArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k2", "Value": "v2"}])
    assert len(sm.list_tags(ResourceArn=arn)["Tags"]) == 2
    sm.delete_tags(ResourceArn=arn, TagKeys=["k"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k2", "Value": "v2"}]
    sm.delete_cluster(ClusterName="ext-gone")
    server.settle()
    with pytest.raises(ClientError) as gone:
        sm.list_tags(ResourceArn=arn)
    assert error_of(gone)[0] == "ResourceNotFound"


def test_what_an_extension_or_task_governance_fault_refuses(server: ServerProcess) -> None:
    slurm_cluster(server, "ext-bad-faults")
    for spec, message in (
        ({"Kind": "extension"}, "An extension fault needs Cluster."),
        ({"Kind": "task_governance"}, "A task_governance fault needs Cluster."),
        (
            {"Kind": "extension", "Cluster": "ext-bad-faults", "Action": "Explode"},
            "Action must be one of Create, Update, Delete.",
        ),
        (
            {"Kind": "task_governance", "Cluster": "ext-bad-faults", "Resource": "Cluster"},
            "Resource must be one of ClusterSchedulerConfig, ComputeQuota.",
        ),
        (
            {"Kind": "extension", "Cluster": "ext-bad-faults", "Code": "Meteor"},
            "Code must be one of the model's ExtensionHealthIssueCode values.",
        ),
        (
            {"Kind": "extension", "Cluster": "ext-bad-faults", "InstanceId": "i-0123456789abcdef0"},
            "No node i-0123456789abcdef0 in cluster ext-bad-faults.",
        ),
        (
            {"Kind": "task_governance", "Cluster": "ext-bad-faults", "Code": "AccessDenied"},
            "A task_governance fault takes no field 'Code'",
        ),
    ):
        code, body = server.admin("POST", "/_hyperpod/faults", spec)
        assert code == 400, (spec, body)
        assert body["message"].startswith(message), body


def test_an_install_in_progress_survives_a_kill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data, "--clock", "manual").start()
    try:
        cluster = slurm_cluster(first, "ext-crash")
        sm = first.client()
        arn = sm.create_cluster_extension(ClusterArn=cluster, ExtensionName=NAME)["ExtensionArn"]
        policy_cluster = sm.create_cluster(
            ClusterName="gov-crash",
            InstanceGroups=[group("g", 1)],
            NodeProvisioningMode="Continuous",
            Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/c"}},
        )["ClusterArn"]
        first.settle()
        policy = sm.create_cluster_scheduler_config(
            Name="p", ClusterArn=policy_cluster, SchedulerConfig={"FairShare": "Enabled"}
        )["ClusterSchedulerConfigId"]
        # settle ran the install; a new update is in flight when the server dies.
        sm.update_cluster_extension(ClusterArn=cluster, ExtensionArn=arn)
    finally:
        first.kill()
    second = ServerProcess(data, "--clock", "manual").start()
    try:
        sm = second.client()
        assert status(sm, cluster, arn) == "Updating"
        assert sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy)["Status"] == (
            "Creating"
        )
        second.settle()
        assert status(sm, cluster, arn) == "Active"
        assert sm.describe_cluster_scheduler_config(ClusterSchedulerConfigId=policy)["Status"] == (
            "Created"
        )
    finally:
        second.stop()


def test_a_cluster_still_creating_takes_no_extension(server: ServerProcess, sm: Any) -> None:
    arn = sm.create_cluster(
        ClusterName="ext-early",
        InstanceGroups=[
            group("controller", 1, SlurmConfig={"NodeType": "Controller"}),
            group("workers", 1, SlurmConfig={"NodeType": "Compute"}),
        ],
        Orchestrator={"Slurm": {"SlurmConfigStrategy": "Managed"}},
        NodeProvisioningMode="Continuous",
    )["ClusterArn"]
    with pytest.raises(ClientError) as early:
        sm.create_cluster_extension(ClusterArn=arn, ExtensionName=NAME)
    assert error_of(early) == (
        "ValidationException",
        "Cluster ext-early is in Creating status; extensions can be changed only on an "
        "InService cluster.",
    )
    server.settle()
    sm.create_cluster_extension(ClusterArn=arn, ExtensionName=NAME)
