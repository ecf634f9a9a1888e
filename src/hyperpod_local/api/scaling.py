"""UpdateCluster and BatchAddClusterNodes: scaling groups up and down, adding and deleting
groups, and changing what may change of a cluster."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.scaling_record import ScalingRecord
from hyperpod_local.api.services import Services
from hyperpod_local.domain import events as text
from hyperpod_local.domain.errors import ConflictError, ResourceLimitExceeded, ValidationError
from hyperpod_local.domain.ids import availability_zone
from hyperpod_local.domain.lifecycle import move_cluster
from hyperpod_local.domain.model import (
    Cluster,
    ClusterStatus,
    GroupStatus,
    InstanceGroup,
    Task,
    in_min_count_phase,
)
from hyperpod_local.domain.scope import Scope
from hyperpod_local.domain.software import UPDATE_KEY
from hyperpod_local.domain.update_rules import check_update_request, pick_for_scale_down
from hyperpod_local.engine.operations import end_group_wait, schedule_min_count_deadline
from hyperpod_local.store.unit_of_work import Tx

# Cluster-level members UpdateCluster may set.
_CLUSTER_MEMBERS = (
    "NodeRecovery",
    "TieredStorageConfig",
    "ClusterRole",
    "AutoScaling",
    "Orchestrator",
    "NodeProvisioningMode",
)
MAX_NODES_PER_ADD = 50
TOKEN_LIFETIME = 8 * 3600.0


def update_cluster(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    with services.store.write() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"])
        check_update_request(cluster, params)
        if cluster.failure_message is not None:
            # The reason an earlier update rolled back is history once another is accepted.
            cluster.failure_message = None
            tx.clusters.save(cluster)
        to_delete = params.get("InstanceGroupsToDelete") or []
        busy = [
            node.label
            for name in to_delete
            for node in tx.nodes.in_group(cluster.id, name)
            if node.busy is not None
        ]
        if busy:
            raise ConflictError(
                f"Nodes of the groups to delete are busy with other operations "
                f"({', '.join(busy[:10])}); try again when they have finished."
            )
        total = sum(g.target_count for g in cluster.groups if g.name not in to_delete)
        total += sum(
            spec["InstanceCount"]
            - (cluster.group(spec["InstanceGroupName"]) or _EMPTY).target_count
            for spec in params.get("InstanceGroups") or []
        )
        if total > services.limits.max_instances_per_cluster:
            raise ResourceLimitExceeded(
                f"The cluster would have {total} instances; the limit is "
                f"{services.limits.max_instances_per_cluster}."
            )
        recovery_on = (
            params.get("NodeRecovery") == "Automatic"
            and cluster.spec.get("NodeRecovery") != "Automatic"
        )
        for key in _CLUSTER_MEMBERS:
            if key in params:
                cluster.spec[key] = params[key]
        tx.clusters.save_spec(cluster)
        if recovery_on:
            # Nodes already in Failure get their automatic recovery now.
            for each in cluster.groups:
                tx.tasks.add(
                    Task(
                        cluster_id=cluster.id,
                        group_name=each.name,
                        kind="resume_recoveries",
                        step="look",
                        due_at=services.clock.now(),
                    )
                )
        scaling = ScalingRecord(services, tx, cluster, services.clock.now())
        for spec in params.get("InstanceGroups") or []:
            _update_group(scaling, cluster, dict(spec))
        for name in to_delete:
            group = cluster.group(name)
            assert group is not None
            original = (group.current_count, group.target_count, group.min_count)
            group.status, group.target_count = GroupStatus.DELETING, 0
            tx.clusters.save_group(group)
            members = tx.nodes.in_group(cluster.id, name)
            if members:
                scaling.touched(group, *original)
                scaling.shrink(members, event="group_deleted")
            if not tx.nodes.some_in_group(cluster.id, name, 1):
                tx.clusters.remove_group(cluster.id, name)
        if scaling.pending and not cluster.continuous:
            move_cluster(cluster, "update")
            tx.clusters.save(cluster)
        elif not cluster.continuous:
            for group in cluster.groups:
                if group.status == GroupStatus.UPDATING:
                    group.status = GroupStatus.IN_SERVICE
                    tx.clusters.save_group(group)
        scaling.finish()
    services.engine.notify()
    return {"ClusterArn": cluster.arn}


_EMPTY = InstanceGroup(cluster_id="", name="", position=0, spec={}, target_count=0)


def _update_group(scaling: ScalingRecord, cluster: Cluster, spec: dict[str, Any]) -> None:
    tx = scaling.tx
    group = cluster.group(spec["InstanceGroupName"])
    # A group's ThreadsPerCore is what it was created with (1 if not given); an update that
    # leaves it out keeps it.
    spec.setdefault("ThreadsPerCore", (group.spec if group else {}).get("ThreadsPerCore", 1))
    count = spec["InstanceCount"]
    if group is None:
        spec.setdefault("ImageReleaseVersion", scaling.services.store.latest_release())
        group = InstanceGroup(
            cluster_id=cluster.id,
            name=spec["InstanceGroupName"],
            position=max((g.position for g in cluster.groups), default=-1) + 1,
            spec=spec,
            target_count=count,
            min_count=spec.get("MinInstanceCount"),
            status=GroupStatus.CREATING if count else GroupStatus.IN_SERVICE,
        )
        tx.clusters.add_group(group)
        cluster.groups.append(group)
        scaling.log.group(group.name, text.group_creation_started(group.name, cluster.name))
        if count:
            scaling.touched(group, 0, 0, None)
            scaling.grow(group, count)
            if in_min_count_phase(cluster, group):
                schedule_min_count_deadline(
                    tx, cluster, group, scaling.now, scaling.services.durations, (0, 0)
                )
        else:
            scaling.log.group(group.name, text.group_creation_completed(group.name, cluster.name))
        return
    original = (group.current_count, group.target_count, group.min_count)
    change = count - group.target_count
    # What the platform keeps of a group (its image, a software update's state) is not the
    # request's to drop.
    for kept in ("ImageId", "ImageReleaseVersion", UPDATE_KEY):
        if kept in group.spec and kept not in spec:
            spec[kept] = group.spec[kept]
    group.spec, group.target_count = spec, count
    was_waiting = in_min_count_phase(cluster, group)
    group.min_count = spec.get("MinInstanceCount")
    _min_count_phase(scaling, cluster, group, was_waiting, original)
    if change:
        if not cluster.continuous:
            group.status = GroupStatus.UPDATING
        scaling.touched(group, *original)
        if change > 0:
            scaling.grow(group, change)
        else:
            members = tx.nodes.in_group(cluster.id, group.name)
            chosen = pick_for_scale_down(members, -change, scaling.services.ids.random)
            if len(chosen) < -change:
                raise ConflictError(
                    f"Instance group {group.name} has only {len(chosen)} nodes free to remove; "
                    f"{-change} were asked for. Try again when its other operations finish."
                )
            scaling.shrink(chosen, event="scaled_in")
    tx.clusters.save_group(group)


def _min_count_phase(
    scaling: ScalingRecord,
    cluster: Cluster,
    group: InstanceGroup,
    was_waiting: bool,
    original: tuple[int, int, int | None],
) -> None:
    """A Continuous group asked for a MinCount above the nodes it has is Updating until it
    gets them (spec 4.2); a group already waiting keeps its deadline and the values it goes
    back to, and is InService at once if the new MinCount is met."""
    if not cluster.continuous:
        return
    wanted = group.min_count or 0
    if was_waiting:
        if wanted <= group.current_count:
            end_group_wait(scaling.tx, cluster, group, scaling.log)
    elif wanted > group.current_count:
        group.status = GroupStatus.UPDATING
        schedule_min_count_deadline(
            scaling.tx,
            cluster,
            group,
            scaling.now,
            scaling.services.durations,
            (original[1], original[2]),
        )


def batch_add_cluster_nodes(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    token = params.get("ClientToken")
    digest = hashlib.sha256(
        json.dumps(params.get("NodesToAdd"), sort_keys=True).encode()
    ).hexdigest()
    with services.store.write() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"])
        if not cluster.continuous:
            raise ValidationError(
                "BatchAddClusterNodes is only supported for clusters with NodeProvisioningMode "
                f"set to Continuous; cluster {cluster.name} is not."
            )
        now = services.clock.now()
        if token:
            # A replay answers whatever state the cluster is in now.
            prior = tx.tokens.get(cluster.id, token, now - TOKEN_LIFETIME)
            if prior is not None:
                if prior[0] != digest:
                    raise ValidationError(
                        f"The ClientToken {token} was already used with different parameters."
                    )
                return _replay(tx, cluster, prior[1])
        if cluster.status not in (ClusterStatus.IN_SERVICE, ClusterStatus.UPDATING):
            raise ValidationError(
                f"Cluster {cluster.name} is in {cluster.status} status; nodes can be added only "
                "to an InService cluster."
            )
        requests: list[dict[str, Any]] = params["NodesToAdd"]
        total = sum(spec["IncrementTargetCountBy"] for spec in requests)
        if total > MAX_NODES_PER_ADD:
            raise ValidationError(
                f"A BatchAddClusterNodes request can add at most {MAX_NODES_PER_ADD} nodes in "
                f"total; this one asks for {total}."
            )
        size = sum(g.target_count for g in cluster.groups)
        if size + total > services.limits.max_instances_per_cluster:
            raise ResourceLimitExceeded(
                f"The cluster would have {size + total} instances; the limit is "
                f"{services.limits.max_instances_per_cluster}."
            )
        scaling = ScalingRecord(services, tx, cluster, now)
        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for spec in requests:
            group = cluster.group(spec["InstanceGroupName"])
            refusal = _add_refusal(cluster, group, spec)
            echo = {k: spec[k] for k in ("AvailabilityZones", "InstanceTypes") if k in spec}
            if refusal is not None:
                failed.append(
                    {
                        "InstanceGroupName": spec["InstanceGroupName"],
                        "ErrorCode": refusal[0],
                        "FailedCount": spec["IncrementTargetCountBy"],
                        "Message": refusal[1],
                        **echo,
                    }
                )
                continue
            assert group is not None
            original = (group.current_count, group.target_count, group.min_count)
            group.target_count += spec["IncrementTargetCountBy"]
            tx.clusters.save_group(group)
            scaling.touched(group, *original)
            for node in scaling.grow(
                group, spec["IncrementTargetCountBy"], spec.get("InstanceTypes")
            ):
                successful.append(
                    {
                        "NodeLogicalId": node.logical_id,
                        "InstanceGroupName": group.name,
                        "Status": node.status,
                        **echo,
                    }
                )
        scaling.finish()
        response = {"Successful": successful, "Failed": failed}
        if token:
            tx.tokens.put(cluster.id, token, digest, now, response)
    services.engine.notify()
    return response


def _add_refusal(
    cluster: Cluster, group: InstanceGroup | None, spec: dict[str, Any]
) -> tuple[str, str] | None:
    name = spec["InstanceGroupName"]
    if group is None:
        return (
            "InstanceGroupNotFound",
            f"Instance group {name} was not found in cluster {cluster.name}.",
        )
    if group.status != GroupStatus.IN_SERVICE:
        return (
            "InvalidInstanceGroupStatus",
            f"Instance group {name} is {group.status}; nodes can be added when it is InService.",
        )
    foreign = [t for t in spec.get("InstanceTypes") or [] if t not in group.instance_types]
    if foreign:
        return (
            "IncompatibleInstanceTypes",
            f"Instance group {name} does not have instance types {', '.join(foreign)}.",
        )
    zones = [
        z
        for z in spec.get("AvailabilityZones") or []
        if z != availability_zone(cluster.scope.region)
    ]
    if zones:
        return (
            "IncompatibleAvailabilityZones",
            f"Instance group {name} has no subnet in {', '.join(zones)}.",
        )
    return None


def _replay(tx: Tx, cluster: Cluster, response: dict[str, Any]) -> dict[str, Any]:
    """The same request again: the same logical ids, with their status now (NotFound for a
    node deleted since)."""
    replayed = []
    for entry in response["Successful"]:
        node = tx.nodes.by_logical_id(cluster.id, entry["NodeLogicalId"])
        replayed.append({**entry, "Status": node.status if node else "NotFound"})
    return {"Successful": replayed, "Failed": response["Failed"]}
