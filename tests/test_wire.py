"""The AWS JSON 1.1 wire: validation wording, protocol errors, and response framing."""

from __future__ import annotations

import http.client
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from hyperpod_local.wire.model import sagemaker_spec
from hyperpod_local.wire.protocol import HttpRequest, JsonProtocol
from tests.support import ServerProcess, error_of, group

GOOD_ID = "i-0123456789abcdef0"


def raw(
    server: ServerProcess,
    body: bytes | str,
    target: str | None,
    method: str = "POST",
    path: str = "/",
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request as any client could send it, and the parsed answer."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data)
    finally:
        conn.close()


def test_26_node_ids_are_refused_before_the_operation_exists(sm: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.batch_replace_cluster_nodes(ClusterName="any", NodeIds=[GOOD_ID] * 26)
    code, message = error_of(excinfo)
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value '["
        + ", ".join([GOOD_ID] * 26)
        + "]' at 'nodeIds' failed to satisfy constraint: "
        "Member must have length less than or equal to 25"
    )


def test_a_bad_instance_id_names_its_position(sm: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.batch_reboot_cluster_nodes(ClusterName="any", NodeIds=[GOOD_ID, GOOD_ID, "i-nothex"])
    assert error_of(excinfo)[1] == (
        "1 validation error detected: Value 'i-nothex' at 'nodeIds.3.member' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "^i-[a-f0-9]{8}(?:[a-f0-9]{9})?"
    )


def test_max_results_out_of_range(sm: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.list_clusters(MaxResults=1000)
    assert error_of(excinfo)[1] == (
        "1 validation error detected: Value '1000' at 'maxResults' failed to satisfy "
        "constraint: Member must have value less than or equal to 100"
    )


def test_unknown_sort_by(sm: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.list_cluster_nodes(ClusterName="any", SortBy="SIZE")
    assert error_of(excinfo)[1] == (
        "1 validation error detected: Value 'SIZE' at 'sortBy' failed to satisfy constraint: "
        "Member must satisfy enum value set: [CREATION_TIME, NAME]"
    )


def test_two_violations_at_once_are_counted_and_joined(sm: Any) -> None:
    long_name = "x" * 64
    with pytest.raises(ClientError) as excinfo:
        sm.create_cluster(ClusterName=long_name + "_", InstanceGroups=[group("g", 7000)])
    assert error_of(excinfo)[1] == (
        "3 validation errors detected: "
        f"Value '{long_name}_' at 'clusterName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63; "
        f"Value '{long_name}_' at 'clusterName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*; "
        "Value '7000' at 'instanceGroups.1.member.instanceCount' failed to satisfy constraint: "
        "Member must have value less than or equal to 6758"
    )


def test_any_sagemaker_operation_is_validated(sm: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.describe_training_job(TrainingJobName="bad name!")
    assert error_of(excinfo)[0] == "ValidationException"
    assert "at 'trainingJobName'" in error_of(excinfo)[1]


def test_missing_required_member_in_raw_json(server: ServerProcess) -> None:
    status, headers, body = raw(server, "{}", "SageMaker.DescribeCluster")
    assert status == 400
    assert body["__type"] == "ValidationException"
    assert (
        body["message"]
        == body["Message"]
        == (
            "1 validation error detected: Value null at 'clusterName' failed to satisfy "
            "constraint: Member must not be null"
        )
    )
    assert headers["x-amzn-errortype"] == "ValidationException"
    assert headers["x-amzn-requestid"]
    nested = json.dumps({"ClusterName": "c", "InstanceGroups": [{"InstanceGroupName": "g"}]})
    _, _, body = raw(server, nested, "SageMaker.CreateCluster")
    assert body["message"] == (
        "2 validation errors detected: "
        "Value null at 'instanceGroups.1.member.instanceCount' failed to satisfy constraint: "
        "Member must not be null; "
        "Value null at 'instanceGroups.1.member.executionRole' failed to satisfy constraint: "
        "Member must not be null"
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"ClusterName": 5}', "Expected a string at 'clusterName' but found number"),
        ('{"MaxResults": "10"}', "Expected an integer at 'maxResults' but found string"),
        ('{"CreationTimeAfter": true}', "at 'creationTimeAfter' but found boolean"),
    ],
)
def test_malformed_bodies_are_serialization_exceptions(
    server: ServerProcess, body: str, fragment: str
) -> None:
    target = "SageMaker.ListClusters" if "ClusterName" not in body else "SageMaker.DescribeCluster"
    status, _, answer = raw(server, body, target)
    assert status == 400
    assert answer["__type"] == "SerializationException"
    assert fragment in answer["message"]


@pytest.mark.parametrize("target", [None, "SageMaker.NoSuchThing", "Other.ListClusters"])
def test_unknown_targets(server: ServerProcess, target: str | None) -> None:
    status, _, body = raw(server, "{}", target)
    assert status == 400
    assert body["__type"] == "UnknownOperationException"


def test_an_operation_not_implemented_is_a_json_error_botocore_does_not_retry(
    server: ServerProcess,
) -> None:
    client = server.client(retries={"max_attempts": 5, "mode": "standard"})
    with pytest.raises(ClientError) as excinfo:
        client.describe_training_job(TrainingJobName="job")
    response = excinfo.value.response
    assert response["Error"]["Code"] == "NotImplemented"
    assert "DescribeTrainingJob" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


def test_unknown_members_are_ignored(server: ServerProcess) -> None:
    status, _, body = raw(server, '{"MaxResults": 1, "Bogus": {"x": 1}}', "SageMaker.ListClusters")
    assert status == 200
    assert "ClusterSummaries" in body


def test_responses_carry_only_model_members_and_no_empty_lists(
    server: ServerProcess, name: str
) -> None:
    client = server.client()
    client.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    server.settle()
    status, headers, body = raw(
        server, json.dumps({"ClusterName": name}), "SageMaker.DescribeCluster"
    )
    assert status == 200
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-requestid"]
    assert isinstance(body["CreationTime"], float | int)
    assert "FailureMessage" not in body and "RestrictedInstanceGroups" not in body
    assert "OnStartDeepHealthChecks" not in body["InstanceGroups"][0]
    status, _, body = raw(server, json.dumps({"ClusterName": name}), "SageMaker.ListClusterNodes")
    assert isinstance(body["ClusterNodeSummaries"][0]["LaunchTime"], float | int)


def test_an_empty_required_list_is_still_sent(server: ServerProcess) -> None:
    client = server.client(region="eu-north-1")
    assert client.list_clusters(MaxResults=5)["ClusterSummaries"] == []


def test_a_handler_crash_is_a_json_500_with_the_traceback_only_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_scope: Any, _params: Any) -> dict[str, Any]:
        raise RuntimeError("secret detail")

    protocol = JsonProtocol(sagemaker_spec(), {"ListClusters": broken})
    with caplog.at_level(logging.ERROR):
        response = protocol.handle(
            HttpRequest("POST", "/", {"x-amz-target": "SageMaker.ListClusters"}, b"{}")
        )
    body = json.loads(response.body)
    request_id = dict(response.headers)["x-amzn-requestid"]
    assert response.status == 500
    assert body["__type"] == "InternalFailure"
    assert request_id in body["message"]
    assert "secret detail" not in body["message"]
    assert "secret detail" in caplog.text and "Traceback" in caplog.text


def test_region_and_account_come_from_the_signature(server: ServerProcess, name: str) -> None:
    arn = server.client(region="eu-west-1", access_key="210987654321").create_cluster(
        ClusterName=name, InstanceGroups=[group("g", 1)]
    )["ClusterArn"]
    assert arn.startswith("arn:aws:sagemaker:eu-west-1:210987654321:cluster/")
    # A request without a signature is the default account in us-east-1.
    status, _, body = raw(server, json.dumps({"ClusterName": name}), "SageMaker.DescribeCluster")
    assert status == 400 and body["__type"] == "ResourceNotFound"


def _create_raw(server: ServerProcess, name: str, **group_extra: Any) -> tuple[int, Any]:
    body = {
        "ClusterName": name,
        "InstanceGroups": [{**group("g", 2), **group_extra}],
    }
    status, _, answer = raw(server, json.dumps(body), "SageMaker.CreateCluster")
    return status, answer


def test_null_members_are_as_if_absent(server: ServerProcess, name: str) -> None:
    status, answer = _create_raw(
        server, name, SlurmConfig=None, ImageId=None, ThreadsPerCore=None, LifeCycleConfig=None
    )
    assert status == 200, answer
    described = server.client().describe_cluster(ClusterName=name)["InstanceGroups"][0]
    assert described["ThreadsPerCore"] == 1
    assert described["CurrentImageId"] == "default"
    assert "SlurmConfig" not in described


def test_integral_floats_are_integers(server: ServerProcess, name: str) -> None:
    status, answer = _create_raw(server, name, InstanceCount=2.0, ThreadsPerCore=2.0)
    assert status == 200, answer
    _, _, body = raw(server, json.dumps({"ClusterName": name}), "SageMaker.DescribeCluster")
    assert body["InstanceGroups"][0]["ThreadsPerCore"] == 2
    assert body["InstanceGroups"][0]["TargetCount"] == 2
    status, _, body = raw(server, '{"MaxResults": 5.0}', "SageMaker.ListClusters")
    assert status == 200
    status, _, body = raw(server, '{"MaxResults": 5.5}', "SageMaker.ListClusters")
    assert (status, body["__type"]) == (400, "SerializationException")


def test_iso_timestamps_are_read_and_sent_back_as_epoch(server: ServerProcess, name: str) -> None:
    schedule = {
        "PatchingStrategy": "WhenIdle",
        "PatchSchedule": {"NextPatchDate": "2027-01-01T00:00:00Z"},
    }
    status, answer = _create_raw(server, name, AutoPatchConfig=schedule)
    assert status == 200, answer
    _, _, body = raw(server, json.dumps({"ClusterName": name}), "SageMaker.DescribeCluster")
    patch = body["InstanceGroups"][0]["AutoPatchConfig"]
    assert patch["CurrentPatchSchedule"]["NextPatchDate"] == 1798761600
    described = server.client().describe_cluster(ClusterName=name)
    assert described["InstanceGroups"][0]["AutoPatchConfig"]["CurrentPatchSchedule"]


@pytest.mark.parametrize(
    "value", ["1e20", "-1e20", "NaN", "1e400", "1" + "0" * 400, '"yesterday"', "true"]
)
def test_timestamps_no_client_could_print_are_refused(server: ServerProcess, value: str) -> None:
    status, _, body = raw(server, '{"CreationTimeAfter": ' + value + "}", "SageMaker.ListClusters")
    assert status == 400
    assert body["__type"] == "SerializationException"
    assert "creationTimeAfter" in body["message"]


def test_deep_nesting_is_a_serialization_exception(server: ServerProcess) -> None:
    leaf = '{"Filters": [{"Name": "a", "Operator": "Equals", "Value": "b"}]}'
    nested = '{"SubExpressions": [' * 1500 + leaf + "]}" * 1500
    body = '{"Resource": "TrainingJob", "SearchExpression": ' + nested + "}"
    status, _, answer = raw(server, body, "SageMaker.Search")
    assert status == 400
    assert answer["__type"] == "SerializationException"
    # ... and the server is still there.
    assert server.client().list_clusters(MaxResults=1)["ResponseMetadata"]["HTTPStatusCode"] == 200
