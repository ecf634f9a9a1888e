"""Who is calling: every resource belongs to one account and one region."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
_ACCOUNT_RE = re.compile(r"[0-9]{12}")


@dataclass(frozen=True, slots=True)
class Scope:
    account_id: str
    region: str


def account_for_access_key(access_key: str | None) -> str:
    """A 12-digit access key is that account; any other key is the default account."""
    if access_key and _ACCOUNT_RE.fullmatch(access_key):
        return access_key
    return DEFAULT_ACCOUNT_ID
