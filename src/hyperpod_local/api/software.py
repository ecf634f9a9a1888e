"""UpdateClusterSoftware: the request checks and records the update; the engine rolls it
through each group (engine/software_steps.py)."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.domain import events as text
from hyperpod_local.domain.errors import ConflictError, ValidationError
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.lifecycle import move_cluster
from hyperpod_local.domain.model import (
    DEFAULT_IMAGE_ID,
    LATEST_IMAGE_RELEASE,
    ClusterStatus,
    GroupStatus,
    Task,
)
from hyperpod_local.domain.scope import Scope
from hyperpod_local.domain.software import UPDATE_KEY
from hyperpod_local.engine.software_steps import start_batch


def update_cluster_software(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    with services.store.write() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"])
        if cluster.status != ClusterStatus.IN_SERVICE:
            raise ConflictError(
                f"Cluster {cluster.name} is in {cluster.status} status; its software can be "
                "updated only when it is InService."
            )
        requested = {g["InstanceGroupName"]: g for g in params.get("InstanceGroups") or []}
        unknown = [name for name in requested if cluster.group(name) is None]
        if unknown:
            raise ValidationError(
                f"Instance groups not found in cluster {cluster.name}: {', '.join(unknown)}."
            )
        targets = [g for g in cluster.groups if not requested or g.name in requested]
        changing = [
            g.name for g in targets if g.status in (GroupStatus.CREATING, GroupStatus.UPDATING)
        ]
        if changing:
            raise ConflictError(
                f"Instance groups of cluster {cluster.name} are still being created or updated "
                f"({', '.join(changing)}); update the software when they are InService."
            )
        busy = [
            node.label
            for group in targets
            for node in tx.nodes.in_group(cluster.id, group.name)
            if node.busy is not None
        ]
        if busy:
            raise ConflictError(
                f"Nodes of cluster {cluster.name} are busy with other operations "
                f"({', '.join(busy[:10])}); update the software when they "
                "have finished."
            )
        latest = services.store.latest_release()
        wanted = {
            group.name: {
                "Release": (requested.get(group.name) or {}).get("ImageReleaseVersion") or latest,
                "ImageId": params.get("ImageId") or group.spec.get("ImageId", DEFAULT_IMAGE_ID),
            }
            for group in targets
        }
        # Groups already on what is asked for have nothing to do: an up-to-date cluster's
        # update does nothing at all (spec 6.6).
        targets = [
            group
            for group in targets
            if any(
                (node.image_id, node.image_release_version)
                != (wanted[group.name]["ImageId"], wanted[group.name]["Release"])
                for node in tx.nodes.in_group(cluster.id, group.name)
                if node.instance_id
            )
        ]
        if not targets:
            return {"ClusterArn": cluster.arn}
        now = services.clock.now()
        log = EventLog(cluster.id, now)
        move_cluster(cluster, "update_software")
        log.cluster(text.cluster_software_update_started(cluster.name))
        for group in targets:
            group.spec[UPDATE_KEY] = {
                "Status": "InProgress",
                "From": {
                    "Release": group.spec.get("ImageReleaseVersion", LATEST_IMAGE_RELEASE),
                    "ImageId": group.spec.get("ImageId", DEFAULT_IMAGE_ID),
                },
                "To": wanted[group.name],
                "Config": params.get("DeploymentConfig"),
            }
            group.status = GroupStatus.SYSTEM_UPDATING
            # The first batch starts at once; the engine carries the rest.
            task = Task(
                cluster_id=cluster.id,
                group_name=group.name,
                kind="software_update",
                step="batch",
                due_at=now,
            )
            start_batch(tx, cluster, group, task, now, services.durations, log)
            tx.tasks.add(task)
            tx.clusters.save_group(group)
        tx.clusters.save(cluster)
        tx.events.add_all(log.events)
    services.engine.notify()
    return {"ClusterArn": cluster.arn}
