"""NextTokens: opaque, signed, and bound to the request they continue.

A token carries the keyset position of the last item of its page, plus what it was made for
(operation, cluster, sort, filters). The HMAC makes a forged or altered token, or one from
another data dir, a ValidationException rather than a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from hyperpod_local.domain.errors import ValidationError

_INVALID = "Invalid pagination token: it was not issued for this request."


class TokenCodec:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def encode(self, context: dict[str, Any], position: list[Any]) -> str:
        payload = json.dumps({"c": context, "p": position}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, token: str | None, context: dict[str, Any]) -> list[Any] | None:
        """The position a token resumes after; None for the first page."""
        if token is None:
            return None
        body, _, signature = token.partition(".")
        try:
            payload = _unb64(body)
            valid = hmac.compare_digest(_unb64(signature), self._sign(payload))
            data = json.loads(payload) if valid else None
        except (ValueError, binascii.Error):
            data = None
        if not isinstance(data, dict) or data.get("c") != context:
            raise ValidationError(_INVALID)
        position = data.get("p")
        if not isinstance(position, list):
            raise ValidationError(_INVALID)
        return position

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
