"""POST /console/api/call: the console's actions, each one SageMaker operation run through the
same wire protocol a boto3 client's request goes through (the model's validation, the
handler, the AWS answer), for the account and region the console is looking at. The answer
goes back to the browser as the AWS JSON body it is, with its status and error code, so the
console shows what boto3 would: the 25-node limit's ValidationException, each node's
ErrorCode and Message in Failed."""

from __future__ import annotations

import json
from typing import Any

from hyperpod_local.domain.scope import Scope
from hyperpod_local.wire.protocol import JsonProtocol

# What the console may do: act on nodes, and read what it shows after an action.
OPERATIONS = frozenset(
    {
        "BatchReplaceClusterNodes",
        "BatchRebootClusterNodes",
        "BatchDeleteClusterNodes",
        "DescribeCluster",
        "DescribeClusterNode",
    }
)


class BadCall(Exception):
    pass


def parse_call(body: dict[str, Any]) -> tuple[Scope, str, dict[str, Any]]:
    """The scope, operation and parameters of a call body: {"Operation": name, "Params":
    {...}, "Account": id, "Region": region}."""
    operation = body.get("Operation")
    if operation not in OPERATIONS:
        raise BadCall(
            f"Operation must be one of {', '.join(sorted(OPERATIONS))}; got {operation!r}."
        )
    params = body.get("Params", {})
    account, region = body.get("Account"), body.get("Region")
    if not isinstance(params, dict):
        raise BadCall("Params must be a JSON object.")
    if not (
        isinstance(account, str) and len(account) == 12 and account.isascii() and account.isdigit()
    ):
        raise BadCall("Account must be a 12-digit account id.")
    if not isinstance(region, str) or not region:
        raise BadCall("Region must be a region name.")
    return Scope(account, region), operation, params


def call(
    protocol: JsonProtocol, scope: Scope, operation: str, params: dict[str, Any]
) -> tuple[int, Any, str | None]:
    """(status, the AWS answer's body as JSON, its error code or None)."""
    answer = protocol.invoke(scope, operation, json.dumps(params).encode())
    error = next((value for name, value in answer.headers if name == "x-amzn-errortype"), None)
    return answer.status, json.loads(answer.body), error
