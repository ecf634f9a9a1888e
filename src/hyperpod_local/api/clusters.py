"""CreateCluster, DescribeCluster, ListClusters, DeleteCluster."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.api.views import UP_TO_DATE, cluster_view
from hyperpod_local.domain import events as text
from hyperpod_local.domain.cluster_rules import (
    check_create_request,
    eks_cluster_arn,
    plan_cluster,
)
from hyperpod_local.domain.eligibility import slurm_head_groups
from hyperpod_local.domain.errors import ConflictError, ResourceInUse, ValidationError
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.lifecycle import cluster_allows, move_cluster
from hyperpod_local.domain.model import ClusterStatus, NodeStatus, Task, in_min_count_phase
from hyperpod_local.domain.scope import Scope
from hyperpod_local.engine.operations import schedule_head_deadline, schedule_min_count_deadline
from hyperpod_local.store.clusters import ClusterListing, cluster_sort_key
from hyperpod_local.store.errors import Conflict

DEFAULT_MAX_RESULTS = 10


def create_cluster(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    check_create_request(params, services.limits)
    name = params["ClusterName"]
    eks_arn = eks_cluster_arn(params)
    try:
        with services.store.write() as tx:
            now = services.clock.now()
            plan = plan_cluster(scope, params, services.ids, now, services.store.latest_release())
            cluster = plan.cluster
            tx.clusters.add(cluster, eks_cluster_arn=eks_arn)
            tx.nodes.add_all(plan.nodes)
            tx.tags.put(cluster.arn, plan.tags)
            log = EventLog(cluster.id, now)
            log.cluster(text.cluster_creation_started(cluster.name))
            tx.events.add_all(log.events)
            tx.tasks.add(
                Task(
                    cluster_id=cluster.id,
                    kind="cluster_create",
                    step="setup",
                    due_at=round(now + services.durations.cluster_setup, 3),
                )
            )
            for group in cluster.groups:
                if in_min_count_phase(cluster, group):
                    schedule_min_count_deadline(tx, cluster, group, now, services.durations, (0, 0))
            if cluster.continuous and slurm_head_groups(cluster):
                schedule_head_deadline(tx, cluster, now, services.durations)
    except Conflict as conflict:
        if conflict.what == "eks_cluster":
            raise ValidationError(
                f"Specified cluster external resource id {eks_arn} already in use"
            ) from None
        raise ResourceInUse(
            f"Resource Already Exists: Cluster with name '{name}' already exists. "
            "Choose a different name."
        ) from None
    services.engine.notify()
    return {"ClusterArn": plan.cluster.arn}


def describe_cluster(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    with services.store.read() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"])
    return cluster_view(cluster, services.store.latest_release())


def list_clusters(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    """A page evaluates MaxResults clusters in sort order, then filters them, as the model's
    documentation of MaxResults says: a page can hold fewer matches, even none, and still
    carry a NextToken."""
    sort_by = params.get("SortBy", "CREATION_TIME")
    descending = params.get("SortOrder", "Ascending") == "Descending"
    limit = params.get("MaxResults", DEFAULT_MAX_RESULTS)
    after_time, before_time = params.get("CreationTimeAfter"), params.get("CreationTimeBefore")
    name_contains = (params.get("NameContains") or "").lower()
    plan_arn = params.get("TrainingPlanArn")
    context = {
        "op": "ListClusters",
        "scope": [scope.account_id, scope.region],
        "sort": [sort_by, descending],
        "filter": [after_time, before_time, name_contains, plan_arn],
    }
    latest = services.store.latest_release()
    with services.store.read() as tx:
        after = services.tokens.decode(params.get("NextToken"), context)
        rows = tx.clusters.page(scope, sort_by, descending, after, limit)
        evaluated = rows[:limit]
        plans = tx.clusters.training_plans([cluster.id for cluster in evaluated])
        behind = tx.clusters.behind([cluster.id for cluster in evaluated], latest)
    summaries = [
        _summary(cluster, plans.get(cluster.id, []), cluster.id in behind)
        for cluster in evaluated
        if (after_time is None or cluster.creation_time > after_time)
        and (before_time is None or cluster.creation_time < before_time)
        and name_contains in cluster.name.lower()
        and (plan_arn is None or plan_arn in plans.get(cluster.id, []))
    ]
    result: dict[str, Any] = {"ClusterSummaries": summaries}
    if len(rows) > limit:
        result["NextToken"] = services.tokens.encode(
            context, cluster_sort_key(evaluated[-1], sort_by)
        )
    return result


def _summary(cluster: ClusterListing, training_plans: list[str], behind: bool) -> dict[str, Any]:
    return {
        "ClusterArn": cluster.arn,
        "ClusterName": cluster.name,
        "CreationTime": cluster.creation_time,
        "ClusterStatus": cluster.status,
        "TrainingPlanArns": training_plans,
        "ImageVersionStatus": "UpdateAvailable" if behind else UP_TO_DATE,
    }


def delete_cluster(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    """Deleting, then gone: every instance terminates and every volume with it. Deleting a
    cluster that is already Deleting answers its ARN again."""
    with services.store.write() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"])
        if cluster.status == ClusterStatus.DELETING:
            return {"ClusterArn": cluster.arn}
        if not cluster_allows(cluster.status, "delete"):
            raise ConflictError(
                f"Cluster {cluster.name} is {cluster.status} and cannot be deleted now."
            )
        now = services.clock.now()
        move_cluster(cluster, "delete")
        tx.clusters.save(cluster)
        tx.nodes.set_status_all(cluster.id, NodeStatus.SHUTTING_DOWN)
        # Whatever was under way stops; the teardown is the cluster's only work now.
        tx.tasks.remove_for_cluster(cluster.id)
        tx.tasks.add(
            Task(
                cluster_id=cluster.id,
                kind="cluster_delete",
                step="teardown",
                due_at=round(now + services.durations.cluster_teardown, 3),
            )
        )
        log = EventLog(cluster.id, now)
        log.cluster(text.cluster_deletion_started(cluster.name))
        tx.events.add_all(log.events)
    services.engine.notify()
    return {"ClusterArn": cluster.arn}
