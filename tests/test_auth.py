"""SigV4 that means something (--auth strict), an admin API behind a token, and bounded
requests."""

from __future__ import annotations

import datetime
import http.client
import json
import os
import stat
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import CLI, Aws, ServerProcess, asgi_get, error_of, group

ALICE = ("AKIDALICEEXAMPLE", "alice-secret", "111111111111")
BOB = ("AKIDBOBEXAMPLE", "bob-secret", "222222222222")
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("strict")
    credentials = root / "credentials"
    credentials.write_text(
        "# access key, secret, account\n" + "\n".join(" ".join(who) for who in (ALICE, BOB))
    )
    server = ServerProcess(
        root / "data", "--auth", "strict", "--credentials", str(credentials), "--clock", "manual"
    ).start()
    yield server
    server.stop()


def client(server: ServerProcess, key: str, secret: str, region: str = "us-east-1") -> Any:
    return boto3.session.Session().client(
        "sagemaker",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def raw(server: ServerProcess, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_the_right_secret_is_let_in_with_its_account(strict: ServerProcess, name: str) -> None:
    alice = client(strict, ALICE[0], ALICE[1])
    arn = alice.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])["ClusterArn"]
    assert f":{ALICE[2]}:cluster/" in arn
    assert alice.describe_cluster(ClusterName=name)["ClusterArn"] == arn


def test_strict_mode_keeps_accounts_apart(strict: ServerProcess, name: str) -> None:
    alice = client(strict, ALICE[0], ALICE[1])
    bob = client(strict, BOB[0], BOB[1])
    arn = alice.create_cluster(ClusterName=name, InstanceGroups=[group("g", 1)])["ClusterArn"]
    assert name not in [c["ClusterName"] for c in bob.list_clusters()["ClusterSummaries"]]
    with pytest.raises(bob.exceptions.ResourceNotFound):
        bob.describe_cluster(ClusterName=arn)


@pytest.mark.parametrize(
    ("key", "secret", "code", "message"),
    [
        (ALICE[0], "not-her-secret", "InvalidSignatureException", SIGNATURE_MISMATCH),
        (
            "AKIDNOBODY",
            "whatever",
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
    ],
)
def test_bad_credentials_are_403s(
    strict: ServerProcess, key: str, secret: str, code: str, message: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(strict, key, secret).list_clusters()
    assert error_of(excinfo) == (code, message)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_request_without_a_signature_is_missing_its_token(strict: ServerProcess) -> None:
    status, body = raw(strict, b"{}", {"X-Amz-Target": "SageMaker.ListClusters"})
    assert status == 403
    assert body["__type"] == "MissingAuthenticationToken"
    assert body["message"] == "Missing Authentication Token"


@pytest.mark.parametrize(("minutes", "fragment"), [(-20, "Signature expired"), (20, "not yet")])
def test_a_signature_out_of_its_15_minutes_is_refused(
    strict: ServerProcess, minutes: int, fragment: str
) -> None:
    signed_at = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(
        minutes=minutes
    )
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=signed_at),
        pytest.raises(ClientError) as excinfo,
    ):
        client(strict, ALICE[0], ALICE[1]).list_clusters()
    code, message = error_of(excinfo)
    assert code == "InvalidSignatureException"
    assert message.startswith(fragment) or fragment in message
    assert "15 min." in message


def test_the_signed_service_and_region_are_checked(strict: ServerProcess) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(strict, ALICE[0], ALICE[1], region="mars-north-1").list_clusters()
    assert error_of(excinfo) == (
        "InvalidSignatureException",
        "Credential should be scoped to a valid region.",
    )


def test_a_presigned_request_is_checked_too(strict: ServerProcess) -> None:
    alice = client(strict, ALICE[0], ALICE[1])
    url = alice.generate_presigned_url("list_clusters", Params={}, ExpiresIn=60)
    headers = {
        "X-Amz-Target": "SageMaker.ListClusters",
        "Content-Type": "application/x-amz-json-1.1",
    }
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", headers=headers)) as answer:
        assert "ClusterSummaries" in json.loads(answer.read())
    tampered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(urllib.request.Request(tampered, data=b"", headers=headers))
    assert excinfo.value.code == 403


def test_the_aws_cli_signs_in_and_is_refused_with_a_wrong_secret(
    strict: ServerProcess, tmp_path: Path
) -> None:
    aws = Aws(tmp_path, strict.url)
    aws.env.update(AWS_ACCESS_KEY_ID=ALICE[0], AWS_SECRET_ACCESS_KEY=ALICE[1])
    assert "ClusterSummaries" in aws.json("list-clusters")
    aws.env["AWS_SECRET_ACCESS_KEY"] = "nope"
    refused = aws.run("list-clusters")
    assert refused.returncode == 255
    assert "(InvalidSignatureException)" in refused.stderr


def test_the_admin_api_needs_the_token(strict: ServerProcess, tmp_path: Path) -> None:
    token_file = strict.data_dir / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == strict.admin_token
    url = urlsplit(strict.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    for header in ({}, {"Authorization": "Bearer wrong"}):
        conn.request("GET", "/_hyperpod/clock", headers=header)
        response = conn.getresponse()
        assert response.status == 401
        assert json.loads(response.read())["error"] == "Unauthorized"
    conn.close()
    assert strict.admin("GET", "/_hyperpod/clock")[0] == 200
    # The CLI's admin commands take the token from the environment.
    env = {**os.environ, "HYPERPOD_LOCAL_ADMIN_TOKEN": strict.admin_token or ""}
    listed = subprocess.run(
        [CLI, "fault", "list", "--endpoint-url", strict.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"Faults": []}


def test_open_auth_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    refused = subprocess.run(
        [CLI, "serve", "--host", "10.255.255.1", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0
    assert "--auth strict" in refused.stderr and "--insecure-open" in refused.stderr
    no_credentials = subprocess.run(
        [CLI, "serve", "--auth", "strict", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert no_credentials.returncode != 0
    assert "--credentials" in no_credentials.stderr


def test_request_sizes_are_bounded(server: ServerProcess) -> None:
    big = b'{"NameContains": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    status, body = raw(server, big, {"X-Amz-Target": "SageMaker.ListClusters"})
    assert status == 413
    assert body["__type"] == "RequestEntityTooLarge"
    status, body = raw(
        server, b"{}", {"X-Amz-Target": "SageMaker.ListClusters", "X-Padding": "p" * 40000}
    )
    assert status == 431
    assert body["__type"] == "RequestHeaderFieldsTooLarge"
    # And the server is still there.
    assert server.client().list_clusters()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_key_given_twice_in_the_credentials_file_stops_the_start(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"{' '.join(ALICE)}\n# bob\n{ALICE[0]} other-secret {BOB[2]}\n")
    server = _strict_on(tmp_path / "data", credentials)
    refused = subprocess.run(
        server.command(), capture_output=True, text=True, timeout=30, env=server.environment()
    )
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert f"{credentials}:3: access key {ALICE[0]} is given twice (first on line 1)" in lines[0]
    assert "serving" not in refused.stdout


def _strict_on(data_dir: Path, credentials: Path) -> ServerProcess:
    return ServerProcess(data_dir, "--auth", "strict", "--credentials", str(credentials))


def _credentials(tmp_path: Path) -> Path:
    credentials = tmp_path / "credentials"
    credentials.write_text(" ".join(ALICE) + "\n")
    return credentials


def _admin_status(server: ServerProcess, headers: dict[str, str]) -> int:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", "/_hyperpod/clock", headers=headers)
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 200 or "error" in body
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize("left", ["", " \n\t\n"])
def test_an_empty_admin_token_file_is_replaced_and_opens_nothing(tmp_path: Path, left: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "admin-token").write_text(left)
    server = _strict_on(data_dir, _credentials(tmp_path)).start()
    try:
        # A new token, shown as on a first start, and on disk in place of the empty one.
        assert server.admin_token
        assert (data_dir / "admin-token").read_text() == server.admin_token + "\n"
        assert stat.S_IMODE((data_dir / "admin-token").stat().st_mode) == 0o600
        for given in ("Bearer ", "Bearer", "Bearer  ", f"Bearer {left.strip()}"):
            assert _admin_status(server, {"Authorization": given}) == 401
        assert _admin_status(server, {"Authorization": f"Bearer {server.admin_token}"}) == 200
    finally:
        server.stop()
    assert [p.name for p in data_dir.iterdir() if "admin-token" in p.name] == ["admin-token"]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda path: path.mkdir(), "cannot read the admin token"),
        (lambda path: path.write_bytes(b"\xff\xfe token\n"), "cannot read the admin token"),
        (lambda path: path.write_text("two words\n"), "one word of visible ASCII"),
    ],
    ids=["a-directory", "not-ascii", "two-words"],
)
def test_an_admin_token_that_cannot_be_used_stops_the_start(
    tmp_path: Path, make: Any, fragment: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    make(data_dir / "admin-token")
    server = _strict_on(data_dir, _credentials(tmp_path))
    refused = subprocess.run(
        server.command(), capture_output=True, text=True, timeout=30, env=server.environment()
    )
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    assert fragment in refused.stderr and str(data_dir / "admin-token") in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_an_admin_token_is_whole_or_absent_after_a_failed_write(tmp_path: Path) -> None:
    """The token goes to a temporary file, is synced, then renamed into place: a start that
    dies before the rename (here, a disk that refuses the sync) leaves no empty token."""
    from hyperpod_local.cli.commands import _admin_token
    from hyperpod_local.startup import StartupError

    full = OSError(28, "No space left on device")
    with mock.patch("os.fsync", side_effect=full), pytest.raises(StartupError) as error:
        _admin_token(tmp_path)
    assert "No space left on device" in str(error.value)
    assert list(tmp_path.iterdir()) == []
    token, created = _admin_token(tmp_path)
    assert created and len(token) >= 32
    assert (tmp_path / "admin-token").read_text() == token + "\n"
    assert _admin_token(tmp_path) == (token, False)


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Forwarded-For": "203.0.113.7"},
        {"Forwarded": "for=127.0.0.1"},
        {"Forwarded": "for=203.0.113.7;proto=https"},
        {"X-Real-IP": "127.0.0.1"},
    ],
)
def test_open_admin_api_does_not_answer_through_a_proxy(
    server: ServerProcess, forwarded: dict[str, str]
) -> None:
    """A reverse proxy on the same host arrives from loopback for every client it forwards:
    a request that says it was forwarded is not a loopback client's."""
    assert _admin_status(server, {}) == 200
    assert _admin_status(server, forwarded) == 403


def test_an_empty_token_given_to_the_app_opens_nothing(tmp_path: Path) -> None:
    """The app's own rule, whatever its caller hands it: no token text, no admin API."""
    from hyperpod_local.backend import Backend
    from hyperpod_local.server import create_app
    from hyperpod_local.settings import Settings

    backend = Backend(Settings(data_dir=tmp_path, clock="manual"))
    try:

        def status(token: str, given: bytes) -> int:
            start, _body = asgi_get(
                create_app(backend, token), "/_hyperpod/clock", [(b"authorization", given)]
            )
            return int(start["status"])

        for token in ("", " "):
            for given in (b"Bearer ", b"Bearer  ", b"Bearer", b""):
                assert status(token, given) == 401
        assert status("t0ken", b"Bearer t0ken") == 200
    finally:
        backend.close()
