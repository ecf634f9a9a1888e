"""STS on the SageMaker port: GetCallerIdentity in the AWS query protocol, as botocore's STS
model has it, so tools that ask who they are first (the HyperPod CLI, `hyp`) can start.

A request is STS's when it names no X-Amz-Target and either is signed for the `sts` service
or is a form-encoded body with an Action. Every answer is XML; anything but
GetCallerIdentity is an STS error.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Mapping
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import botocore.loaders
from botocore.model import ServiceModel

from hyperpod_local.domain.errors import ServiceError
from hyperpod_local.wire.auth import (
    REQUIRED_SIGNED,
    Authenticator,
    InvalidSignature,
    MissingAuthenticationToken,
    Principal,
    SignedRequest,
    StrictAuth,
    UnrecognizedClient,
    access_key_of,
)
from hyperpod_local.wire.protocol import HttpRequest, HttpResponse

SERVICE = "sts"
CONTENT_TYPE = "text/xml"
_FORM = "application/x-www-form-urlencoded"
# STS's codes for what the SageMaker JSON protocol calls otherwise.
_AUTH_CODES = {
    MissingAuthenticationToken.code: "MissingAuthenticationToken",
    UnrecognizedClient.code: "InvalidClientTokenId",
    InvalidSignature.code: "SignatureDoesNotMatch",
}


@functools.cache
def sts_model() -> ServiceModel:
    loader = botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))
    return ServiceModel(loader.load_service_model("sts", "service-2"), "sts")


# Only `host` need be signed: the query protocol's operation is in the signed body.
REQUIRED_SIGNED_FOR_STS = tuple(item for item in REQUIRED_SIGNED if item[0] == "host")


def strict_sts_auth(principals: Mapping[str, Principal]) -> StrictAuth:
    """The credentials file's principals, checked for signatures scoped to STS."""
    return StrictAuth(principals, service=SERVICE, required_signed=REQUIRED_SIGNED_FOR_STS)


def is_sts_request(headers: Mapping[str, str], body: bytes) -> bool:
    if "x-amz-target" in headers:
        return False
    authorization = headers.get("authorization", "")
    if "/sts/aws4_request" in authorization:
        return True
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type == _FORM and b"Action=" in body


class StsError(ServiceError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class StsProtocol:
    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth
        self.namespace = sts_model().metadata["xmlNamespace"]
        self.version = sts_model().metadata["apiVersion"]

    def handle(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        signed = SignedRequest(
            request.method, request.path, request.query, request.headers, request.body
        )
        try:
            try:
                scope = self.auth.authenticate(signed)
            except ServiceError as refused:
                code = _AUTH_CODES.get(refused.code, refused.code)
                raise StsError(code, refused.message, refused.status) from None
            form = dict(parse_qsl(request.query, keep_blank_values=True))
            try:
                form.update(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise StsError("MalformedQueryString", "The request body is not UTF-8.") from None
            action = form.get("Action")
            if not action:
                raise StsError("MissingAction", "Missing Action")
            version = form.get("Version", self.version)
            if action not in sts_model().operation_names or version != self.version:
                raise StsError(
                    "InvalidAction",
                    f"Could not find operation {action} for version {version}",
                )
            if action != "GetCallerIdentity":
                raise StsError(
                    "NotImplemented",
                    f"The operation {action} is not implemented by hyperpod-local; of STS, "
                    "only GetCallerIdentity is.",
                    501,
                )
            key = access_key_of(signed) or "anonymous"
            result = {
                "Arn": f"arn:aws:iam::{scope.account_id}:user/{key}",
                "UserId": key,
                "Account": scope.account_id,
            }
            return self._answer(action, result, request_id)
        except StsError as error:
            return self._error(error, request_id)

    def _answer(self, action: str, result: dict[str, str], request_id: str) -> HttpResponse:
        output = sts_model().operation_model(action).output_shape
        assert output is not None
        members = "".join(
            f"<{name}>{escape(result[name])}</{name}>" for name in output.members if name in result
        )
        wrapper = output.serialization["resultWrapper"]
        body = (
            f'<{action}Response xmlns="{self.namespace}">'
            f"<{wrapper}>{members}</{wrapper}>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            f"</{action}Response>"
        )
        return HttpResponse(200, body.encode(), _headers(request_id))

    def _error(self, error: StsError, request_id: str) -> HttpResponse:
        kind = "Sender" if error.status < 500 else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{self.namespace}">'
            f"<Error><Type>{kind}</Type><Code>{escape(error.code)}</Code>"
            f"<Message>{escape(error.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return HttpResponse(error.status, body.encode(), _headers(request_id))


def _headers(request_id: str) -> list[tuple[str, str]]:
    return [("content-type", CONTENT_TYPE), ("x-amzn-requestid", request_id)]
