"""Finding the resources a request names."""

from __future__ import annotations

from hyperpod_local.domain.errors import cluster_not_found
from hyperpod_local.domain.ids import parse_cluster_arn
from hyperpod_local.domain.model import Cluster
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.unit_of_work import Tx


def find_cluster(tx: Tx, scope: Scope, given: str, *, with_groups: bool = True) -> Cluster:
    """The caller's cluster named by name or ARN; another account's or region's is not found."""
    arn = parse_cluster_arn(given)
    if arn is not None:
        cluster = None
        if arn.account_id == scope.account_id and arn.region == scope.region:
            cluster = tx.clusters.by_id(scope, arn.cluster_id, with_groups=with_groups)
    else:
        cluster = tx.clusters.by_name(scope, given, with_groups=with_groups)
    if cluster is None:
        raise cluster_not_found(given)
    return cluster
