"""A webhook target: each event POSTed alone as its EventBridge envelope, JSON."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

from hyperpod_local.outlets.targets import DELIVERED, Envelope, Outcome, Result
from hyperpod_local.version import __version__

# A POST that takes longer is given up and tried again later: a target that hangs holds up
# only its own deliveries, and only this long at a time.
POST_TIMEOUT = 10.0
# Statuses worth another try: the target is overloaded, timed out or failed inside; any
# other answer that is not 2xx says the request itself is refused.
_RETRIED = frozenset({408, 425, 429})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (3xx, refused), not a new place to go: urllib would follow a
    302 with a GET that drops the body, and call that delivered."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class WebhookTarget:
    batch_size = 1

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(self, envelopes: list[Envelope]) -> list[Result]:
        return [self._post(envelope) for envelope in envelopes]

    def _post(self, envelope: Envelope) -> Result:
        request = urllib.request.Request(
            self.spec,
            data=json.dumps(envelope).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"hyperpod-local/{__version__}",
            },
        )
        try:
            with self._opener.open(request, timeout=POST_TIMEOUT) as response:
                response.read()
        except urllib.error.HTTPError as error:
            outcome = (
                Outcome.RETRY if error.code in _RETRIED or error.code >= 500 else Outcome.REJECTED
            )
            return Result(outcome, f"HTTP {error.code} {error.reason}")
        except (OSError, http.client.HTTPException) as error:
            # Refused, reset, timed out, a name that does not resolve: the target is not there
            # (yet); URLError is an OSError.
            reason = getattr(error, "reason", None) or error
            return Result(Outcome.RETRY, f"{type(error).__name__}: {reason}")
        return DELIVERED
