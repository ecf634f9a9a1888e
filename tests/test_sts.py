"""STS GetCallerIdentity on the SageMaker port, through boto3's STS client, in open and
strict auth; everything else sent to STS an STS XML error."""

from __future__ import annotations

import http.client
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import ServerProcess, error_of

NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
ALICE = ("AKIDALICEEXAMPLE", "alice-secret", "111111111111")


def sts(server: ServerProcess, key: str = "testing", secret: str = "testing") -> Any:
    return boto3.session.Session().client(
        "sts",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("sts-open") / "data", "--clock", "manual")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("sts-strict")
    credentials = root / "credentials"
    credentials.write_text(" ".join(ALICE) + "\n")
    server = ServerProcess(
        root / "data", "--auth", "strict", "--credentials", str(credentials), "--clock", "manual"
    )
    server.start()
    yield server
    server.stop()


def post(server: ServerProcess, body: bytes, headers: dict[str, str]) -> tuple[int, str, Any]:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.getheader("content-type", ""), ET.fromstring(answer.read())
    finally:
        conn.close()


def test_the_caller_is_the_account_its_access_key_names(open_server: ServerProcess) -> None:
    found = sts(open_server, "444455556666").get_caller_identity()
    assert (found["Account"], found["Arn"], found["UserId"]) == (
        "444455556666",
        "arn:aws:iam::444455556666:user/444455556666",
        "444455556666",
    )
    assert found["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "text/xml"
    default = sts(open_server).get_caller_identity()
    assert default["Account"] == "123456789012"
    assert default["Arn"] == "arn:aws:iam::123456789012:user/testing"
    # The SageMaker API goes on beside it, on the same port.
    assert open_server.client().list_clusters()["ClusterSummaries"] == []


def test_other_sts_operations_are_sts_errors(open_server: ServerProcess) -> None:
    with pytest.raises(ClientError) as assumed:
        sts(open_server).assume_role(
            RoleArn="arn:aws:iam::123456789012:role/R", RoleSessionName="session"
        )
    assert error_of(assumed) == (
        "NotImplemented",
        "The operation AssumeRole is not implemented by hyperpod-local; of STS, only "
        "GetCallerIdentity is.",
    )
    assert assumed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    status, content_type, error = post(open_server, b"Action=Nope&Version=2011-06-15", form)
    assert (status, content_type) == (400, "text/xml")
    assert error.tag == f"{NS}ErrorResponse"
    assert error.findtext(f"{NS}Error/{NS}Type") == "Sender"
    assert error.findtext(f"{NS}Error/{NS}Code") == "InvalidAction"
    assert error.findtext(f"{NS}Error/{NS}Message") == (
        "Could not find operation Nope for version 2011-06-15"
    )
    assert error.findtext(f"{NS}RequestId")
    status, _, error = post(open_server, b"Action=GetCallerIdentity&Version=2010-01-01", form)
    assert (status, error.findtext(f"{NS}Error/{NS}Code")) == (400, "InvalidAction")
    signed_for_sts = {
        **form,
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sts/"
        "aws4_request, SignedHeaders=host, Signature=abc",
    }
    status, _, error = post(open_server, b"Version=2011-06-15", signed_for_sts)
    assert (status, error.findtext(f"{NS}Error/{NS}Code")) == (400, "MissingAction")


def test_strict_auth_checks_sts_signatures_with_the_same_credentials(
    strict_server: ServerProcess,
) -> None:
    found = sts(strict_server, ALICE[0], ALICE[1]).get_caller_identity()
    assert found["Account"] == ALICE[2]
    assert found["Arn"] == f"arn:aws:iam::{ALICE[2]}:user/{ALICE[0]}"
    for key, secret, code in (
        (ALICE[0], "wrong", "SignatureDoesNotMatch"),
        ("AKIDNOBODY", "x", "InvalidClientTokenId"),
    ):
        with pytest.raises(ClientError) as refused:
            sts(strict_server, key, secret).get_caller_identity()
        assert error_of(refused)[0] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    status, _, error = post(
        strict_server,
        b"Action=GetCallerIdentity&Version=2011-06-15",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (status, error.findtext(f"{NS}Error/{NS}Code")) == (403, "MissingAuthenticationToken")
    # The same key signs SageMaker requests on the same port.
    sm = boto3.session.Session().client(
        "sagemaker",
        endpoint_url=strict_server.url,
        region_name="us-east-1",
        aws_access_key_id=ALICE[0],
        aws_secret_access_key=ALICE[1],
    )
    assert sm.list_clusters()["ClusterSummaries"] == []


def test_the_mock_answers_sts_too() -> None:
    import hyperpod_local

    with hyperpod_local.mock():
        found = boto3.client("sts", region_name="us-east-1").get_caller_identity()
        assert found["Account"] == "123456789012"
        assert found["Arn"] == "arn:aws:iam::123456789012:user/testing"
