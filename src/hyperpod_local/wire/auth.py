"""Who is calling: SigV4 as botocore, the AWS CLI and aiobotocore sign it.

Two policies:
- `OpenAuth`: any well-formed signature is taken at its word (the account from the access
  key, the region from the credential scope). The default while the server is on loopback.
- `StrictAuth`: the canonical request is rebuilt on the server with botocore's own signing
  code and the signature checked, in constant time, against the secret of the access key in
  the credentials file; the timestamp must be within 15 minutes, and the scope must name
  sagemaker and a real region. The account is the one the file gives the key. What the
  signature covers is the server's to decide, not the client's: the body's hash is computed
  here (an X-Amz-Content-SHA256 header must agree with it), and `host` and `x-amz-target`
  must be signed, so a captured signature cannot be sent on with another body or operation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, quote

from hyperpod_local.domain.errors import ServiceError
from hyperpod_local.domain.scope import DEFAULT_REGION, Scope, account_for_access_key

SERVICE = "sagemaker"
ALGORITHM = "AWS4-HMAC-SHA256"
SKEW = timedelta(minutes=15)
# AWS's cap on a presigned URL's lifetime: seven days.
MAX_EXPIRES = 604800
# The headers a signature must cover: host as AWS requires, and the operation, which the
# AWS JSON protocol carries in a header rather than in the signed path or body.
REQUIRED_SIGNED = (
    ("host", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
    ("x-amz-target", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."),
)
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]+)\s*$"
)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"


class AuthError(ServiceError):
    status = 403


class MissingAuthenticationToken(AuthError):
    code = "MissingAuthenticationToken"


class UnrecognizedClient(AuthError):
    code = "UnrecognizedClientException"


class InvalidSignature(AuthError):
    code = "InvalidSignatureException"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the auth policies need of an HTTP request; header names in lower case."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


class Authenticator(Protocol):
    def authenticate(self, request: SignedRequest) -> Scope: ...


@dataclass(frozen=True, slots=True)
class _Signature:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    timestamp: str
    expires: int | None
    presigned: bool


def _parse(request: SignedRequest) -> _Signature | None:
    authorization = request.headers.get("authorization")
    if authorization:
        match = _HEADER.match(authorization.strip())
        if match is None:
            raise InvalidSignature(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                f"parameters of {ALGORITHM}."
            )
        credential = match["credential"].split("/")
        timestamp = request.headers.get("x-amz-date", "")
        return _signature(credential, match["signed"], match["signature"], timestamp, None, False)
    query = dict(parse_qsl(request.query, keep_blank_values=True))
    if query.get("X-Amz-Algorithm") == ALGORITHM and "X-Amz-Signature" in query:
        return _signature(
            query.get("X-Amz-Credential", "").split("/"),
            query.get("X-Amz-SignedHeaders", ""),
            query["X-Amz-Signature"],
            query.get("X-Amz-Date", ""),
            _expires(query.get("X-Amz-Expires", "")),
            True,
        )
    return None


def _expires(text: str) -> int:
    """X-Amz-Expires as a number; one too long to read is over the cap, whatever it says
    (int() of thousands of digits is slow or refused, and timedelta() overflows far sooner)."""
    if not re.fullmatch(r"[0-9]+", text):
        raise InvalidSignature("X-Amz-Expires must be a non-negative number of seconds.")
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= len(str(MAX_EXPIRES)) else MAX_EXPIRES + 1


def _signature(
    credential: list[str],
    signed: str,
    signature: str,
    timestamp: str,
    expires: int | None,
    presigned: bool,
) -> _Signature:
    if len(credential) != 5 or credential[4] != "aws4_request":
        raise InvalidSignature(
            "Credential should be scoped to a valid region, and the request should be scoped "
            "as <access key>/<date>/<region>/<service>/aws4_request."
        )
    return _Signature(
        access_key=credential[0],
        date=credential[1],
        region=credential[2],
        service=credential[3],
        signed_headers=[h for h in signed.split(";") if h],
        signature=signature,
        timestamp=timestamp,
        expires=expires,
        presigned=presigned,
    )


def access_key_of(request: SignedRequest) -> str | None:
    """The access key a request is signed with (after it was authenticated), None unsigned."""
    parsed = _parse(request)
    return None if parsed is None else parsed.access_key


class OpenAuth:
    """Any well-formed signature; none at all is the default account in us-east-1."""

    def authenticate(self, request: SignedRequest) -> Scope:
        parsed = _parse(request)
        if parsed is None:
            return Scope(account_for_access_key(None), DEFAULT_REGION)
        return Scope(account_for_access_key(parsed.access_key), parsed.region)


@dataclass(frozen=True, slots=True)
class Principal:
    access_key: str
    secret_key: str
    account_id: str


def read_credentials(path: Path) -> dict[str, Principal]:
    """The credentials file: one `ACCESS_KEY SECRET_KEY ACCOUNT_ID` a line; `#` comments."""
    principals: dict[str, Principal] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) != 3 or not re.fullmatch(r"[0-9]{12}", fields[2]):
            raise ValueError(
                f"{path}:{number}: expected 'ACCESS_KEY SECRET_KEY ACCOUNT_ID' (12 digits)"
            )
        # A key given twice is a mistake in the file, not an update: which secret and account
        # it should have is the operator's to say, so neither line wins.
        if fields[0] in principals:
            raise ValueError(
                f"{path}:{number}: access key {fields[0]} is given twice "
                f"(first on line {lines[fields[0]]})"
            )
        principals[fields[0]] = Principal(*fields)
        lines[fields[0]] = number
    if not principals:
        raise ValueError(f"{path}: no credentials")
    return principals


class StrictAuth:
    """Signatures checked for one service: SageMaker's (AWS JSON, so X-Amz-Target is signed
    too), or another served on the same port, such as STS, whose query protocol names the
    operation in the signed body."""

    def __init__(
        self,
        principals: Mapping[str, Principal],
        service: str = SERVICE,
        required_signed: tuple[tuple[str, str], ...] = REQUIRED_SIGNED,
    ) -> None:
        from hyperpod_local.wire.sigv4 import service_regions

        self._principals = dict(principals)
        self.service = service
        self._required = required_signed
        self._regions = service_regions(service)

    def authenticate(self, request: SignedRequest) -> Scope:
        parsed = _parse(request)
        if parsed is None:
            raise MissingAuthenticationToken("Missing Authentication Token")
        principal = self._principals.get(parsed.access_key)
        if principal is None:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        if parsed.service != self.service:
            raise InvalidSignature(
                f"Credential should be scoped to correct service: '{self.service}'."
            )
        if parsed.region not in self._regions:
            raise InvalidSignature("Credential should be scoped to a valid region.")
        self._check_time(parsed)
        signed = {name.lower() for name in parsed.signed_headers}
        for name, message in self._required:
            if name not in signed:
                raise InvalidSignature(message)
        payload_hash = hashlib.sha256(request.body).hexdigest()
        claimed = request.headers.get("x-amz-content-sha256")
        # UNSIGNED-PAYLOAD (and its streaming kin) never equals a hash, so it is refused too:
        # SageMaker signs every body.
        if claimed is not None and claimed != payload_hash:
            raise InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
        expected = self._expected_signature(request, parsed, principal, payload_hash)
        # Checked as text first: compare_digest takes ASCII strings only.
        if not _HEX_SIGNATURE.fullmatch(parsed.signature) or not hmac.compare_digest(
            expected, parsed.signature
        ):
            raise InvalidSignature(
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. Consult the "
                "service documentation for details."
            )
        return Scope(principal.account_id, parsed.region)

    @staticmethod
    def _check_time(parsed: _Signature) -> None:
        try:
            signed_at = datetime.strptime(parsed.timestamp, _TIMESTAMP).replace(tzinfo=UTC)
        except ValueError:
            raise InvalidSignature(
                "Date must be in ISO-8601 'basic format' (yyyyMMdd'T'HHmmss'Z')."
            ) from None
        if parsed.date != parsed.timestamp[:8]:
            raise InvalidSignature(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                "version of date from HTTP."
            )
        now = datetime.now(UTC)
        show = lambda moment: moment.strftime(_TIMESTAMP)  # noqa: E731
        # First, and for presigned URLs too: a URL dated ahead would outlive its seven days
        # (and a date near year 9999 plus its lifetime would overflow).
        if signed_at > now + SKEW:
            raise InvalidSignature(
                f"Signature not yet current: {show(signed_at)} is still later than "
                f"{show(now + SKEW)} ({show(now)} + 15 min.)"
            )
        if parsed.presigned:
            expires = parsed.expires or 0
            if expires > MAX_EXPIRES:
                raise InvalidSignature(
                    f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES}"
                )
            if now > signed_at + timedelta(seconds=expires):
                raise InvalidSignature("Signature expired: the presigned request has expired.")
        elif signed_at < now - SKEW:
            raise InvalidSignature(
                f"Signature expired: {show(signed_at)} is now earlier than "
                f"{show(now - SKEW)} ({show(now)} - 15 min.)"
            )

    def _expected_signature(
        self, request: SignedRequest, parsed: _Signature, principal: Principal, payload_hash: str
    ) -> str:
        query = request.query
        if parsed.presigned:
            kept = [
                (key, value)
                for key, value in parse_qsl(query, keep_blank_values=True)
                if key != "X-Amz-Signature"
            ]
            query = "&".join(
                f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}" for key, value in kept
            )
        # The URL gives botocore only the path and the query: the host is signed as a header.
        # The path comes percent-decoded; quoted again it is what the client signed, and a
        # '?' or '#' in it stays path (a Host header never goes through URL parsing, which
        # raises on some, such as '[').
        url = f"http://localhost{quote(request.path, safe='/')}"
        if query:
            url += f"?{query}"
        from hyperpod_local.wire.sigv4 import expected_signature

        return expected_signature(
            method=request.method,
            url=url,
            headers=request.headers,
            payload_hash=payload_hash,
            timestamp=parsed.timestamp,
            service=self.service,
            region=parsed.region,
            signed_headers=parsed.signed_headers,
            access_key=principal.access_key,
            secret_key=principal.secret_key,
        )
