"""The `--events-to` spellings: `http(s)://...` names a webhook, `eventbridge:BUS` a bus."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hyperpod_local.outlets.eventbridge import EventBridgeTarget
from hyperpod_local.outlets.targets import Target
from hyperpod_local.outlets.webhook import WebhookTarget
from hyperpod_local.startup import StartupError


def parse_target(spec: str) -> Target:
    """A target from its --events-to spelling: `http(s)://...` (a webhook that is POSTed each
    event) or `eventbridge:BUS` (PutEvents onto BUS, a name or an ARN; `?source=NAME` sends
    another source than aws.sagemaker, which real EventBridge keeps for AWS)."""
    if spec.startswith(("http://", "https://")):
        url = urlsplit(spec)
        if not url.hostname:
            raise StartupError(f"--events-to {spec}: the URL names no host")
        return WebhookTarget(spec)
    if spec.startswith("eventbridge:"):
        bus, _, query = spec.removeprefix("eventbridge:").partition("?")
        options = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(options) - {"source"})
        if not bus or unknown or any(len(values) != 1 for values in options.values()):
            raise StartupError(
                f"--events-to {spec}: write eventbridge:BUS or eventbridge:BUS?source=NAME "
                "(BUS an event bus name or ARN)"
            )
        source = options["source"][0] if "source" in options else None
        return EventBridgeTarget(spec, bus, source)
    raise StartupError(
        f"--events-to {spec}: a target is http://HOST[:PORT]/PATH (a webhook), or "
        "eventbridge:BUS (PutEvents onto an event bus)"
    )
