"""The ClusterSchedulerConfig family (cluster policies) and the ComputeQuota family (compute
allocations) of HyperPod task governance."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.domain.errors import ConflictError, ResourceNotFound, ValidationError
from hyperpod_local.domain.model import Cluster, ClusterStatus, Task
from hyperpod_local.domain.scope import Scope
from hyperpod_local.domain.task_governance import (
    NOUN,
    Policy,
    PolicyKind,
    PolicyStatus,
    PolicyVersion,
    check_can_change,
    check_eks,
    check_one_scheduler_config,
    check_quota_fits,
    policy_arn,
    quota_document,
    scheduler_document,
)
from hyperpod_local.store.unit_of_work import Tx

DEFAULT_MAX_RESULTS = 10
TASK_KIND = "task_governance"
_SCHEDULER = PolicyKind.SCHEDULER_CONFIG
_QUOTA = PolicyKind.COMPUTE_QUOTA


def _cluster(tx: Tx, scope: Scope, arn: str) -> Cluster:
    cluster = find_cluster(tx, scope, arn)
    check_eks(cluster.is_eks, cluster.name)
    if cluster.status in (ClusterStatus.DELETING, ClusterStatus.FAILED):
        raise ValidationError(
            f"Cluster {cluster.name} is in {cluster.status} status; task governance cannot be "
            "configured on it."
        )
    return cluster


def _get(tx: Tx, scope: Scope, kind: PolicyKind, policy_id: str) -> Policy:
    policy = tx.policies.get(scope, kind, policy_id)
    if policy is None:
        raise ResourceNotFound(f"Could not find {NOUN[kind]} '{policy_id}'.")
    return policy


def _changeable(tx: Tx, scope: Scope, kind: PolicyKind, policy_id: str) -> Policy:
    policy = _get(tx, scope, kind, policy_id)
    if policy.status == PolicyStatus.DELETED:
        raise ResourceNotFound(f"Could not find {NOUN[kind]} '{policy_id}'.")
    return policy


def _schedule(services: Services, tx: Tx, policy: Policy) -> None:
    tx.tasks.add(
        Task(
            cluster_id=policy.cluster_id,
            kind=TASK_KIND,
            step="apply",
            due_at=round(services.clock.now() + services.durations.task_governance, 3),
            data={"PolicyId": policy.policy_id, "Status": policy.status},
        )
    )


def _new_policy(
    services: Services,
    scope: Scope,
    kind: PolicyKind,
    cluster: Cluster,
    params: dict[str, Any],
    document: dict[str, Any],
) -> Policy:
    now = services.clock.now()
    policy_id = services.ids.cluster_id()
    return Policy(
        kind=kind,
        policy_id=policy_id,
        arn=policy_arn(scope, kind, policy_id),
        account_id=scope.account_id,
        region=scope.region,
        name=params["Name"],
        cluster_id=cluster.id,
        cluster_arn=cluster.arn,
        status=PolicyStatus.CREATING,
        creation_time=now,
        last_modified_time=now,
        versions=[PolicyVersion(1, document, params.get("Description"), now)],
    )


def _check_name(existing: list[Policy], name: str, kind: PolicyKind, cluster: Cluster) -> None:
    taken = next((p for p in existing if p.live and p.name == name), None)
    if taken is not None:
        raise ConflictError(
            f"A {NOUN[kind]} named {name} already exists on cluster {cluster.name} "
            f"({taken.policy_id})."
        )


def _update(
    services: Services, tx: Tx, policy: Policy, document: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    now = services.clock.now()
    description = params.get("Description", policy.current.description)
    policy.versions.append(PolicyVersion(policy.current.version + 1, document, description, now))
    policy.status = PolicyStatus.UPDATING
    policy.last_modified_time = now
    tx.policies.save(policy)
    _schedule(services, tx, policy)
    return {"Arn": policy.arn, "Version": policy.current.version}


def _delete(services: Services, scope: Scope, kind: PolicyKind, policy_id: str) -> None:
    with services.store.write() as tx:
        policy = _changeable(tx, scope, kind, policy_id)
        check_can_change(policy, None, "deleted")
        policy.status = PolicyStatus.DELETING
        policy.last_modified_time = services.clock.now()
        tx.policies.save(policy)
        _schedule(services, tx, policy)
    services.engine.notify()


def _listed(
    services: Services,
    scope: Scope,
    kind: PolicyKind,
    params: dict[str, Any],
    summary: Any,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the account's policies of `kind`, filtered and sorted as the request says
    (by CreationTime, Descending, when it does not)."""
    sort_by = params.get("SortBy", "CreationTime")
    descending = params.get("SortOrder", "Descending") == "Descending"
    limit = params.get("MaxResults", DEFAULT_MAX_RESULTS)
    context = {
        "op": kind,
        **{
            key: params.get(key)
            for key in (
                "CreatedAfter",
                "CreatedBefore",
                "NameContains",
                "ClusterArn",
                "Status",
                "SortBy",
                "SortOrder",
            )
        },
    }
    position = services.tokens.decode(params.get("NextToken"), context)
    start = int(position[0]) if position else 0
    with services.store.read() as tx:
        policies = tx.policies.of_scope(scope, kind)
    after, before = params.get("CreatedAfter"), params.get("CreatedBefore")
    chosen = [
        p
        for p in policies
        if (after is None or p.creation_time > after)
        and (before is None or p.creation_time < before)
        and params.get("NameContains", "") in p.name
        and (params.get("ClusterArn") is None or p.cluster_arn == params["ClusterArn"])
        and (params.get("Status") is None or p.status == params["Status"])
    ]

    def key(policy: Policy) -> tuple[Any, ...]:
        first = {
            "Name": policy.name,
            "CreationTime": policy.creation_time,
            "Status": policy.status,
            "ClusterArn": policy.cluster_arn,
        }[sort_by]
        return (first, policy.creation_time, policy.seq)

    chosen.sort(key=key, reverse=descending)
    page = chosen[start : start + limit]
    token = None
    if start + limit < len(chosen):
        token = services.tokens.encode(context, [start + limit])
    return [summary(p) for p in page], token


# Cluster policies ----------------------------------------------------------------------------


def create_cluster_scheduler_config(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    document = scheduler_document(params["SchedulerConfig"])
    with services.store.write() as tx:
        cluster = _cluster(tx, scope, params["ClusterArn"])
        existing = tx.policies.of_cluster(cluster.id, _SCHEDULER)
        _check_name(existing, params["Name"], _SCHEDULER, cluster)
        check_one_scheduler_config(existing, cluster.name)
        policy = _new_policy(services, scope, _SCHEDULER, cluster, params, document)
        tx.policies.add(policy)
        tx.tags.put(policy.arn, params.get("Tags", []))
        _schedule(services, tx, policy)
    services.engine.notify()
    return {"ClusterSchedulerConfigArn": policy.arn, "ClusterSchedulerConfigId": policy.policy_id}


def _scheduler_view(policy: Policy, version: PolicyVersion) -> dict[str, Any]:
    view: dict[str, Any] = {
        "ClusterSchedulerConfigArn": policy.arn,
        "ClusterSchedulerConfigId": policy.policy_id,
        "Name": policy.name,
        "ClusterSchedulerConfigVersion": version.version,
        "Status": policy.status,
        "StatusDetails": {component: policy.status for component in version.document},
        "ClusterArn": policy.cluster_arn,
        "SchedulerConfig": version.document,
        "CreationTime": policy.creation_time,
        "LastModifiedTime": version.time,
    }
    if policy.failure_reason:
        view["FailureReason"] = policy.failure_reason
    if version.description is not None:
        view["Description"] = version.description
    return view


def describe_cluster_scheduler_config(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    policy_id = params["ClusterSchedulerConfigId"]
    with services.store.read() as tx:
        policy = _get(tx, scope, _SCHEDULER, policy_id)
    version = policy.version(params.get("ClusterSchedulerConfigVersion"))
    if version is None:
        raise ResourceNotFound(
            f"Could not find version {params['ClusterSchedulerConfigVersion']} of cluster "
            f"policy '{policy_id}'."
        )
    return _scheduler_view(policy, version)


def update_cluster_scheduler_config(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    with services.store.write() as tx:
        policy = _changeable(tx, scope, _SCHEDULER, params["ClusterSchedulerConfigId"])
        check_can_change(policy, params["TargetVersion"], "updated")
        document = (
            scheduler_document(params["SchedulerConfig"])
            if "SchedulerConfig" in params
            else policy.current.document
        )
        done = _update(services, tx, policy, document, params)
    services.engine.notify()
    return {
        "ClusterSchedulerConfigArn": done["Arn"],
        "ClusterSchedulerConfigVersion": done["Version"],
    }


def delete_cluster_scheduler_config(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    _delete(services, scope, _SCHEDULER, params["ClusterSchedulerConfigId"])
    return {}


def list_cluster_scheduler_configs(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    def summary(policy: Policy) -> dict[str, Any]:
        return {
            "ClusterSchedulerConfigArn": policy.arn,
            "ClusterSchedulerConfigId": policy.policy_id,
            "ClusterSchedulerConfigVersion": policy.current.version,
            "Name": policy.name,
            "CreationTime": policy.creation_time,
            "LastModifiedTime": policy.last_modified_time,
            "Status": policy.status,
            "ClusterArn": policy.cluster_arn,
        }

    items, token = _listed(services, scope, _SCHEDULER, params, summary)
    result: dict[str, Any] = {"ClusterSchedulerConfigSummaries": items}
    if token:
        result["NextToken"] = token
    return result


# Compute allocations -------------------------------------------------------------------------


def _capacity(cluster: Cluster) -> dict[str, int]:
    """Instances of each type the cluster's instance groups are to have."""
    capacity: dict[str, int] = {}
    for group in cluster.groups:
        instance_type = group.spec.get("InstanceType")
        if instance_type:
            capacity[instance_type] = capacity.get(instance_type, 0) + group.target_count
    return capacity


def _check_fits(
    tx: Tx, cluster: Cluster, document: dict[str, Any], itself: str | None = None
) -> None:
    others = [p for p in tx.policies.of_cluster(cluster.id, _QUOTA) if p.policy_id != itself]
    team = document["ComputeQuotaTarget"]["TeamName"]
    taken = next(
        (
            p.policy_id
            for p in others
            if p.live and p.current.document["ComputeQuotaTarget"]["TeamName"] == team
        ),
        None,
    )
    check_quota_fits(document, others, _capacity(cluster), cluster.name, taken)


def create_compute_quota(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    document = quota_document(
        params["ComputeQuotaConfig"], params["ComputeQuotaTarget"], params.get("ActivationState")
    )
    with services.store.write() as tx:
        cluster = _cluster(tx, scope, params["ClusterArn"])
        _check_name(tx.policies.of_cluster(cluster.id, _QUOTA), params["Name"], _QUOTA, cluster)
        _check_fits(tx, cluster, document)
        policy = _new_policy(services, scope, _QUOTA, cluster, params, document)
        tx.policies.add(policy)
        tx.tags.put(policy.arn, params.get("Tags", []))
        _schedule(services, tx, policy)
    services.engine.notify()
    return {"ComputeQuotaArn": policy.arn, "ComputeQuotaId": policy.policy_id}


def _quota_summary(policy: Policy, version: PolicyVersion) -> dict[str, Any]:
    return {
        "ComputeQuotaArn": policy.arn,
        "ComputeQuotaId": policy.policy_id,
        "Name": policy.name,
        "ComputeQuotaVersion": version.version,
        "Status": policy.status,
        "ClusterArn": policy.cluster_arn,
        **version.document,
        "CreationTime": policy.creation_time,
        "LastModifiedTime": version.time,
    }


def describe_compute_quota(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    policy_id = params["ComputeQuotaId"]
    with services.store.read() as tx:
        policy = _get(tx, scope, _QUOTA, policy_id)
    version = policy.version(params.get("ComputeQuotaVersion"))
    if version is None:
        raise ResourceNotFound(
            f"Could not find version {params['ComputeQuotaVersion']} of compute allocation "
            f"'{policy_id}'."
        )
    view = _quota_summary(policy, version)
    if policy.failure_reason:
        view["FailureReason"] = policy.failure_reason
    if version.description is not None:
        view["Description"] = version.description
    return view


def update_compute_quota(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    with services.store.write() as tx:
        policy = _changeable(tx, scope, _QUOTA, params["ComputeQuotaId"])
        check_can_change(policy, params["TargetVersion"], "updated")
        current = policy.current.document
        document = quota_document(
            params.get("ComputeQuotaConfig", current["ComputeQuotaConfig"]),
            params.get("ComputeQuotaTarget", current["ComputeQuotaTarget"]),
            params.get("ActivationState", current["ActivationState"]),
        )
        cluster = find_cluster(tx, scope, policy.cluster_arn)
        _check_fits(tx, cluster, document, itself=policy.policy_id)
        done = _update(services, tx, policy, document, params)
    services.engine.notify()
    return {"ComputeQuotaArn": done["Arn"], "ComputeQuotaVersion": done["Version"]}


def delete_compute_quota(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    _delete(services, scope, _QUOTA, params["ComputeQuotaId"])
    return {}


def list_compute_quotas(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    items, token = _listed(
        services, scope, _QUOTA, params, lambda policy: _quota_summary(policy, policy.current)
    )
    result: dict[str, Any] = {"ComputeQuotaSummaries": items}
    if token:
        result["NextToken"] = token
    return result
