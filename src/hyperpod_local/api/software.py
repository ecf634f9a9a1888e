"""UpdateClusterSoftware: every targeted node re-imaged (SystemUpdating, then Running).

The rolling version (DeploymentConfig batches, waits, rollback) is a later issue; here every
targeted group is patched at once.
"""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.domain import events as text
from hyperpod_local.domain.errors import ConflictError, ValidationError
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.lifecycle import move_cluster, node_sources
from hyperpod_local.domain.model import ClusterStatus, GroupStatus, Task
from hyperpod_local.domain.scope import Scope


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
            node.instance_id
            for group in targets
            for node in tx.nodes.in_group(cluster.id, group.name)
            if node.busy is not None
        ]
        if busy:
            raise ConflictError(
                f"Nodes of cluster {cluster.name} are busy with other operations "
                f"({', '.join(str(i) for i in busy[:10])}); update the software when they "
                "have finished."
            )
        now = services.clock.now()
        log = EventLog(services.ids, cluster.id, now)
        move_cluster(cluster, "update_software")
        log.cluster(text.cluster_software_update_started(cluster.name))
        scheduled = 0
        for group in targets:
            release = (requested.get(group.name) or {}).get("ImageReleaseVersion")
            if release:
                group.spec["ImageReleaseVersion"] = release
            if params.get("ImageId"):
                group.spec["ImageId"] = params["ImageId"]
            sources, target = node_sources("update")
            nodes = tx.nodes.claim_group(cluster.id, group.name, "update", sources, target)
            if params.get("ImageId"):
                tx.nodes.set_image(cluster.id, group.name, params["ImageId"])
            for node in nodes:
                log.instance(
                    group.name,
                    node.instance_id,
                    text.instance_operation_started("software update", cluster.name, group.name),
                )
            group.status = GroupStatus.SYSTEM_UPDATING if nodes else group.status
            tx.clusters.save_group(group)
            if nodes:
                scheduled += 1
                tx.tasks.add(
                    Task(
                        cluster_id=cluster.id,
                        group_name=group.name,
                        kind="software_update",
                        step="reimage",
                        due_at=round(
                            now + services.durations.software_update(group.instance_types[0]), 3
                        ),
                    )
                )
        if not scheduled:
            # Nothing to patch: done at once.
            move_cluster(cluster, "software_updated")
            cluster.legacy = False
            log.cluster(text.cluster_software_update_completed(cluster.name))
        tx.clusters.save(cluster)
        tx.events.add_all(log.events)
    services.engine.notify()
    return {"ClusterArn": cluster.arn}
