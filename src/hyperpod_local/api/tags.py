"""AddTags, ListTags and DeleteTags on the resources this service holds: clusters."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import lookup_cluster, owned_resource
from hyperpod_local.api.services import Services
from hyperpod_local.domain.errors import ResourceLimitExceeded, ResourceNotFound
from hyperpod_local.domain.ids import parse_cluster_arn
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.unit_of_work import Tx

MAX_TAGS = 50
DEFAULT_MAX_RESULTS = 50


def _check_resource(tx: Tx, scope: Scope, arn: str) -> None:
    """Tags live only on the caller's resources (clusters, their extensions, cluster policies
    and compute allocations), named by their exact ARN."""
    if parse_cluster_arn(arn) is not None:
        found = lookup_cluster(tx, scope, arn, with_groups=False) is not None
    else:
        found = owned_resource(tx, scope, arn)
    if not found:
        raise ResourceNotFound(f"Could not find resource '{arn}'.")


def add_tags(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["ResourceArn"]
    with services.store.write() as tx:
        _check_resource(tx, scope, arn)
        tx.tags.put(arn, params["Tags"])
        tags = tx.tags.list(arn)
        if len(tags) > MAX_TAGS:
            raise ResourceLimitExceeded(
                f"The resource {arn} would have {len(tags)} tags; a resource can have at most "
                f"{MAX_TAGS}."
            )
    return {"Tags": tags}


def list_tags(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["ResourceArn"]
    limit = params.get("MaxResults", DEFAULT_MAX_RESULTS)
    context = {"op": "ListTags", "arn": arn}
    start_position = services.tokens.decode(params.get("NextToken"), context)
    start = int(start_position[0]) if start_position else 0
    with services.store.read() as tx:
        _check_resource(tx, scope, arn)
        tags = tx.tags.list(arn)
    result: dict[str, Any] = {"Tags": tags[start : start + limit]}
    if start + limit < len(tags):
        result["NextToken"] = services.tokens.encode(context, [start + limit])
    return result


def delete_tags(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["ResourceArn"]
    with services.store.write() as tx:
        _check_resource(tx, scope, arn)
        tx.tags.remove(arn, params["TagKeys"])
    return {}
