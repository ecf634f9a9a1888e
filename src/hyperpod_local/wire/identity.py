"""Who is calling, read from the SigV4 Authorization header (not verified here)."""

from __future__ import annotations

import re

from hyperpod_local.domain.scope import DEFAULT_REGION, Scope, account_for_access_key

_CREDENTIAL = re.compile(
    r"Credential=(?P<key>[^/\s,]+)/(?P<date>[0-9]{8})/(?P<region>[a-z0-9-]+)/(?P<service>[^/\s,]+)/"
)


def caller_scope(authorization: str | None) -> Scope:
    """The account (from the access key) and region (from the credential scope) of a request.

    A request with no signature, or one this cannot read, is the default account in us-east-1.
    """
    match = _CREDENTIAL.search(authorization or "")
    if match is None:
        return Scope(account_for_access_key(None), DEFAULT_REGION)
    return Scope(account_for_access_key(match["key"]), match["region"])
