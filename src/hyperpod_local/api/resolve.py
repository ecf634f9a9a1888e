"""Finding the resources a request names."""

from __future__ import annotations

from hyperpod_local.domain.errors import cluster_not_found
from hyperpod_local.domain.ids import parse_cluster_arn
from hyperpod_local.domain.model import Cluster
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.unit_of_work import Tx


def lookup_cluster(tx: Tx, scope: Scope, given: str, *, with_groups: bool = True) -> Cluster | None:
    """The caller's cluster named by name or ARN. An ARN must be the cluster's own, to the
    letter: another account's, region's or partition's names nothing here."""
    arn = parse_cluster_arn(given)
    if arn is None:
        return tx.clusters.by_name(scope, given, with_groups=with_groups)
    if arn.account_id != scope.account_id or arn.region != scope.region:
        return None
    cluster = tx.clusters.by_id(scope, arn.cluster_id, with_groups=with_groups)
    return cluster if cluster is not None and cluster.arn == given else None


def find_cluster(tx: Tx, scope: Scope, given: str, *, with_groups: bool = True) -> Cluster:
    cluster = lookup_cluster(tx, scope, given, with_groups=with_groups)
    if cluster is None:
        raise cluster_not_found(given)
    return cluster


def owned_resource(tx: Tx, scope: Scope, arn: str) -> bool:
    """Whether `arn` is, to the letter, one of the caller's cluster extensions, cluster
    policies or compute allocations."""
    prefix = f"arn:aws:sagemaker:{scope.region}:{scope.account_id}:"
    if not arn.startswith(prefix):
        return False
    kind, _, rest = arn[len(prefix) :].partition("/")
    if kind == "extension":
        return tx.extensions.get(arn) is not None
    if kind in ("cluster-scheduler-config", "compute-quota"):
        policy = tx.policies.get(scope, kind, rest)
        return policy is not None and policy.arn == arn
    return False
