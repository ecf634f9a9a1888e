"""botocore's SigV4 signer run on a received request: the signature it should carry, and the
regions a signature may name. Only strict auth imports this module; botocore's session and
signing modules would add about 50 ms to every cold start."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials


class _Verifier(SigV4Auth):
    """botocore's signer, told which headers the client signed instead of choosing them."""

    def __init__(
        self,
        credentials: Credentials,
        service: str,
        region: str,
        signed: list[str],
        payload_hash: str,
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._payload_hash = payload_hash

    def canonical_request(self, request: AWSRequest) -> str:
        """botocore's canonical request, but with the hash of the body the server received.
        botocore takes the hash from an X-Amz-Content-SHA256 header when there is one, and a
        client sets that header as it likes: signed or not, it would let a captured signature
        carry any body."""
        chosen = self.headers_to_sign(request)
        return "\n".join(
            [
                request.method.upper(),
                self._normalize_url_path(urlsplit(request.url).path),
                self.canonical_query_string(request),
                self.canonical_headers(chosen) + "\n",
                self.signed_headers(chosen),
                self._payload_hash,
            ]
        )

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                chosen.add_header(name, value)
        return chosen


def service_regions(service: str) -> set[str]:
    """Every region of every partition botocore knows the service in."""
    session = botocore.session.get_session()
    return {
        region
        for partition in ("aws", "aws-cn", "aws-us-gov")
        for region in session.get_available_regions(service, partition)
    }


def expected_signature(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    payload_hash: str,
    timestamp: str,
    service: str,
    region: str,
    signed_headers: list[str],
    access_key: str,
    secret_key: str,
) -> str:
    """`payload_hash` is the SHA-256 (hex) of the body as received, never the client's claim."""
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    request.context["timestamp"] = timestamp
    verifier = _Verifier(
        Credentials(access_key, secret_key), service, region, signed_headers, payload_hash
    )
    canonical = verifier.canonical_request(request)
    return verifier.signature(verifier.string_to_sign(request, canonical), request)
