"""One log line per API request, and the observer the protocol calls with each answer."""

from __future__ import annotations

import logging

from hyperpod_local.telemetry.metrics import Metrics
from hyperpod_local.wire.protocol import Answered, Observer

# At INFO: `--log-level info` (or debug) shows every API request. Its fields are the record's
# extras, so `--log-format json` writes them as the JSON object's keys.
log = logging.getLogger("hyperpod_local.requests")


def log_request(answered: Answered) -> None:
    scope = answered.scope
    account = scope.account_id if scope is not None else None
    region = scope.region if scope is not None else None
    milliseconds = round(answered.seconds * 1e3, 3)
    outcome = answered.error or "ok"
    log.info(
        "%s %d %s in %.3f ms (request %s, account %s, region %s%s)",
        answered.operation,
        answered.status,
        outcome,
        milliseconds,
        answered.request_id,
        account or "-",
        region or "-",
        ", cached" if answered.cached else "",
        extra={
            "request_id": answered.request_id,
            "operation": answered.operation,
            "account": account,
            "region": region,
            "status": answered.status,
            "error": answered.error,
            "duration_ms": milliseconds,
            "cached": answered.cached,
        },
    )


def request_observer(metrics: Metrics) -> Observer:
    """Counts every answer in `metrics`, and logs it when INFO is on."""
    count = metrics.request
    # Asked per request (logging caches the answer): a change of level takes effect at once.
    enabled = log.isEnabledFor

    def observe(answered: Answered) -> None:
        count(answered)
        if enabled(logging.INFO):
            log_request(answered)

    return observe
