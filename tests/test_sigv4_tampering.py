"""A standing attack on --auth strict: genuine SigV4 requests, built with botocore's own
signers, then changed on the wire the way someone holding a captured request would change
them. Each change is refused with a JSON 403; the untouched request still goes through.

One server for the module and no waiting on time: the whole module takes a few seconds."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.config import Config
from botocore.credentials import Credentials

from tests.support import ServerProcess, exchange, group

ALICE = ("AKIDALICEEXAMPLE", "alice-secret", "111111111111")
MISMATCH = "The request signature we calculated does not match the signature you provided."
CONTENT_MISMATCH = "The provided 'x-amz-content-sha256' header does not match what was computed."
# Standing in `make test`: it must stay quick (about a second of requests, plus the start).
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("tampering")
    credentials = root / "credentials"
    credentials.write_text(" ".join(ALICE) + "\n")
    server = ServerProcess(
        root / "data", "--auth", "strict", "--credentials", str(credentials), "--clock", "manual"
    ).start()
    yield server
    server.stop()


class Raw:
    """One request as bytes go on the wire: a tamperer edits any part of it."""

    def __init__(self, path: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.body = body

    def with_header(self, name: str, value: str) -> Raw:
        """Every header of that name replaced by one with `value`."""
        kept = [(n, v) for n, v in self.headers if n.lower() != name.lower()]
        return Raw(self.path, [*kept, (name, value)], self.body)

    def send(self, server: ServerProcess) -> tuple[int, Any]:
        lines = [f"POST {self.path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines += [f"Content-Length: {len(self.body)}", "Connection: close"]
        payload = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + self.body
        port = urlsplit(server.url).port
        assert port is not None
        statuses, received = exchange(port, payload)
        assert len(statuses) == 1, received
        return statuses[0], json.loads(received.partition(b"\r\n\r\n")[2])


def _request(server: ServerProcess, operation: str, params: dict[str, Any]) -> AWSRequest:
    return AWSRequest(
        method="POST",
        url=server.url + "/",
        data=json.dumps(params).encode(),
        headers={
            "X-Amz-Target": f"SageMaker.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )


def _raw(request: AWSRequest) -> Raw:
    url = urlsplit(request.url)
    path = url.path + (f"?{url.query}" if url.query else "")
    headers = [("Host", url.netloc), *request.headers.items()]
    return Raw(path, headers, request.body or b"")


def signed(
    server: ServerProcess,
    operation: str,
    params: dict[str, Any],
    *,
    extra: dict[str, str] | None = None,
    only: tuple[str, ...] | None = None,
) -> Raw:
    """A request signed by botocore with Alice's secret, over `only` those headers if given."""
    request = _request(server, operation, params)
    for name, value in (extra or {}).items():
        request.headers[name] = value
    signer = _Narrow if only is not None else SigV4Auth
    auth = signer(Credentials(ALICE[0], ALICE[1]), "sagemaker", "us-east-1")
    if only is not None:
        auth.only = only
    auth.add_auth(request)
    return _raw(request)


def presigned(
    server: ServerProcess,
    operation: str = "ListClusters",
    params: dict[str, Any] | None = None,
    expires: int = 60,
) -> Raw:
    """A presigned URL as botocore makes one (the parameters move into the query), sent as
    the POST it was signed for, with an empty body."""
    request = _request(server, operation, params or {})
    SigV4QueryAuth(Credentials(ALICE[0], ALICE[1]), "sagemaker", "us-east-1", expires).add_auth(
        request
    )
    return _raw(request)


class _Narrow(SigV4Auth):
    """A signer that covers fewer headers than botocore would: a client may choose them."""

    only: tuple[str, ...] = ()

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        every = super().headers_to_sign(request)
        chosen = HTTPHeaders()
        for name in self.only:
            for value in every.get_all(name) or []:
                chosen.add_header(name, value)
        return chosen


def refused(answer: tuple[int, Any], message: str = MISMATCH) -> None:
    status, body = answer
    assert status == 403, body
    assert body["__type"] == "InvalidSignatureException"
    assert body["message"].startswith(message), body["message"]


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def clusters(strict: ServerProcess) -> tuple[str, str]:
    """A cluster someone may delete and one nobody may."""
    alice = boto3.session.Session().client(
        "sagemaker",
        endpoint_url=strict.url,
        region_name="us-east-1",
        aws_access_key_id=ALICE[0],
        aws_secret_access_key=ALICE[1],
        config=Config(retries={"total_max_attempts": 1}),
    )
    for name in ("scratch", "prod"):
        alice.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])
    return "scratch", "prod"


def exists(server: ServerProcess, name: str) -> bool:
    status, body = signed(server, "DescribeCluster", {"ClusterName": name}).send(server)
    assert status in (200, 400), body
    return status == 200


def test_an_untouched_request_is_accepted(strict: ServerProcess) -> None:
    status, body = signed(strict, "ListClusters", {}).send(strict)
    assert status == 200, body
    assert "ClusterSummaries" in body


def test_a_true_signed_content_hash_is_accepted(strict: ServerProcess) -> None:
    body = json.dumps({}).encode()
    request = signed(strict, "ListClusters", {}, extra={"X-Amz-Content-SHA256": sha256(body)})
    assert request.send(strict)[0] == 200


def test_a_captured_delete_cannot_be_sent_on_with_another_body(
    strict: ServerProcess, clusters: tuple[str, str]
) -> None:
    scratch, prod = clusters
    captured = signed(strict, "DeleteCluster", {"ClusterName": scratch})
    swapped = json.dumps({"ClusterName": prod}).encode()
    # The repro: the new body, and the old body's hash in an unsigned header.
    claimed = Raw(captured.path, captured.headers, swapped).with_header(
        "X-Amz-Content-SHA256", sha256(captured.body)
    )
    refused(claimed.send(strict), CONTENT_MISMATCH)
    refused(Raw(captured.path, captured.headers, swapped).send(strict))
    # The new body with its own hash claimed: the signature covers the old one.
    honest_hash = claimed.with_header("X-Amz-Content-SHA256", sha256(swapped))
    refused(honest_hash.send(strict))
    assert exists(strict, prod)
    # The captured request itself does what it was signed for.
    assert captured.send(strict)[0] == 200


@pytest.mark.parametrize("claim", ["UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"])
def test_an_unsigned_payload_is_refused(strict: ServerProcess, claim: str) -> None:
    request = signed(strict, "ListClusters", {}, extra={"X-Amz-Content-SHA256": claim})
    refused(request.send(strict), CONTENT_MISMATCH)
    other = Raw(request.path, request.headers, b'{"NameContains": "x"}')
    refused(other.send(strict), CONTENT_MISMATCH)


def test_a_signed_header_changed_or_repeated_is_refused(strict: ServerProcess) -> None:
    request = signed(strict, "DescribeCluster", {"ClusterName": "prod"})
    refused(request.with_header("X-Amz-Target", "SageMaker.DeleteCluster").send(strict))
    refused(request.with_header("Content-Type", "application/json").send(strict))
    date = next(value for name, value in request.headers if name == "X-Amz-Date")
    # A second earlier or later: the same day, within the skew, but not what was signed.
    other = date[:-3] + ("01Z" if date[-3:] == "00Z" else "00Z")
    refused(request.with_header("X-Amz-Date", other).send(strict))
    refused(request.with_header("Host", "other.example").send(strict))
    repeated = Raw(
        request.path, [*request.headers, ("X-Amz-Target", "SageMaker.DeleteCluster")], b"{}"
    )
    refused(repeated.send(strict))
    # An unsigned header added on the way (a proxy's, say) changes nothing.
    assert request.with_header("X-Forwarded-For", "10.0.0.1").send(strict)[0] == 200


def test_a_host_that_cannot_be_parsed_is_a_403(strict: ServerProcess) -> None:
    request = signed(strict, "ListClusters", {})
    for host in ("[", "a b", "\u00e9.example"):
        refused(request.with_header("Host", host).send(strict))


@pytest.mark.parametrize(
    ("only", "message"),
    [
        (("x-amz-date",), "'Host' or ':authority' must be a 'SignedHeader'"),
        (("x-amz-date", "x-amz-target"), "'Host' or ':authority' must be a 'SignedHeader'"),
        (("host", "x-amz-date"), "'X-Amz-Target' must be a 'SignedHeader'"),
    ],
)
def test_host_and_target_must_be_signed(
    strict: ServerProcess, only: tuple[str, ...], message: str
) -> None:
    request = signed(strict, "ListClusters", {}, only=only)
    refused(request.send(strict), message)
    refused(request.with_header("X-Amz-Target", "SageMaker.DeleteCluster").send(strict), message)


def test_signing_host_and_target_is_enough(strict: ServerProcess) -> None:
    request = signed(strict, "ListClusters", {}, only=("host", "x-amz-date", "x-amz-target"))
    assert request.send(strict)[0] == 200


def test_the_query_and_the_path_are_signed(strict: ServerProcess) -> None:
    request = signed(strict, "ListClusters", {})
    # ('//' or '/./' would be '/' again: SigV4 normalizes the path, as AWS does; every path
    # reaches the same API, so such a spelling changes nothing a signature protects.)
    for path in ("/?NameContains=x", "/other", "/%3F", "/%23", "/%E9", "/a%20b"):
        refused(Raw(path, request.headers, request.body).send(strict))


def test_a_presigned_url_works_untouched(strict: ServerProcess) -> None:
    assert presigned(strict, expires=604800).send(strict)[0] == 200


def test_a_presigned_url_carries_no_other_body(
    strict: ServerProcess, clusters: tuple[str, str]
) -> None:
    url = presigned(strict, "DeleteCluster", {"ClusterName": clusters[1]})
    body = json.dumps({"ClusterName": clusters[1]}).encode()
    refused(Raw(url.path, url.headers, body).send(strict))
    claimed = Raw(url.path, url.headers, body).with_header("X-Amz-Content-SHA256", sha256(b""))
    refused(claimed.send(strict), CONTENT_MISMATCH)
    unsigned = Raw(url.path, url.headers, body).with_header(
        "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"
    )
    refused(unsigned.send(strict), CONTENT_MISMATCH)
    assert exists(strict, clusters[1])


def _query(raw: Raw, name: str, value: str) -> Raw:
    path, _, query = raw.path.partition("?")
    pairs = [pair for pair in query.split("&") if not pair.startswith(f"{name}=")]
    return Raw(f"{path}?{'&'.join([*pairs, f'{name}={value}'])}", raw.headers, raw.body)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-Amz-Expires", "600", MISMATCH),
        ("X-Amz-Expires", "604801", "X-Amz-Expires must be less than a week"),
        pytest.param(
            "X-Amz-Expires", "9" * 400, "X-Amz-Expires must be less than a week", id="400-digits"
        ),
        ("X-Amz-Expires", "-1", "X-Amz-Expires must be a non-negative number"),
        ("X-Amz-Expires", quote("\u0666\u0660"), "X-Amz-Expires must be a non-negative number"),
        ("X-Amz-Signature", quote("\u00e9" * 64), MISMATCH),
        ("X-Amz-Signature", "0" * 64, MISMATCH),
        ("X-Amz-SignedHeaders", "host", "'X-Amz-Target' must be a 'SignedHeader'"),
        ("X-Amz-Date", quote("\u00e9"), "Date must be in ISO-8601"),
    ],
)
def test_a_presigned_url_with_a_query_changed_is_refused(
    strict: ServerProcess, name: str, value: str, message: str
) -> None:
    refused(_query(presigned(strict), name, value).send(strict), message)


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        (604801, "X-Amz-Expires must be less than a week"),
        pytest.param(10**400, "X-Amz-Expires must be less than a week", id="400-digits"),
    ],
)
def test_a_presigned_url_signed_for_over_a_week_is_refused(
    strict: ServerProcess, expires: int, message: str
) -> None:
    refused(presigned(strict, expires=expires).send(strict), message)


@pytest.mark.parametrize(("minutes", "accepted"), [(60, False), (24 * 60, False), (5, True)])
def test_a_presigned_url_dated_ahead_is_refused(
    strict: ServerProcess, minutes: int, accepted: bool
) -> None:
    """Beyond the 15 minutes of clock skew a header signature is allowed too."""
    ahead = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(
        minutes=minutes
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=ahead):
        url = presigned(strict, expires=604800)
    answer = url.send(strict)
    if accepted:
        assert answer[0] == 200, answer
    else:
        refused(answer, "Signature not yet current")


def test_a_presigned_url_dated_in_year_9999_is_refused(strict: ServerProcess) -> None:
    url = presigned(strict, expires=604800)
    credential = next(
        pair.split("=", 1)[1] for pair in url.path.split("&") if pair.startswith("X-Amz-Cred")
    )
    rest = credential.split("%2F", 2)[2]
    # The scope's date moved with it, so what is refused is the date itself (whose seven
    # days would overflow any datetime), not a mismatch between the two.
    url = _query(url, "X-Amz-Credential", f"{ALICE[0]}%2F99991231%2F{rest}")
    refused(_query(url, "X-Amz-Date", "99991231T235959Z").send(strict), "Signature not yet")


def test_an_expired_presigned_url_is_refused(strict: ServerProcess) -> None:
    past = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=2)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        url = presigned(strict, expires=60)
    refused(url.send(strict), "Signature expired")
