"""StartClusterHealthCheck: deep health checks on demand."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.domain.eligibility import is_controller
from hyperpod_local.domain.errors import ValidationError
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.model import ClusterStatus, InstanceGroup, Node, NodeStatus, Operation
from hyperpod_local.domain.scope import Scope
from hyperpod_local.engine.followups import start_checks


def start_cluster_health_check(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    with services.store.write() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"])
        if cluster.status != ClusterStatus.IN_SERVICE:
            raise ValidationError(
                f"Cluster {cluster.name} is in {cluster.status} status; deep health checks "
                "need an InService cluster."
            )
        if tx.events.operation_in_progress(cluster.id, "DeepHealthCheck"):
            raise ValidationError(
                f"A deep health check is already in progress on cluster {cluster.name}; one "
                "on-demand run per cluster at a time."
            )
        plan: list[tuple[InstanceGroup, list[Node], list[str]]] = []
        for config in params["DeepHealthCheckConfigurations"]:
            group = cluster.group(config["InstanceGroupName"])
            if group is None:
                raise ValidationError(
                    f"Instance group {config['InstanceGroupName']} was not found in cluster "
                    f"{cluster.name}."
                )
            node_type = (group.spec.get("SlurmConfig") or {}).get("NodeType")
            if is_controller(cluster, group) or node_type == "Login":
                raise ValidationError(
                    f"Deep health checks run on worker nodes only; instance group {group.name} "
                    "is not a worker group."
                )
            members = {
                node.instance_id: node
                for node in tx.nodes.in_group(cluster.id, group.name)
                if node.instance_id
            }
            wanted = config.get("InstanceIds") or list(members)
            unknown = [i for i in wanted if i not in members]
            if unknown:
                raise ValidationError(
                    f"Instances not in instance group {group.name}: {', '.join(unknown)}."
                )
            nodes = [members[i] for i in wanted]
            not_ready = [
                f"{n.instance_id} ({n.status})"
                for n in nodes
                if n.status != NodeStatus.RUNNING or n.busy is not None
            ]
            if not_ready:
                raise ValidationError(
                    "Deep health checks need Running nodes no other operation holds: "
                    + ", ".join(not_ready)
                    + "."
                )
            plan.append((group, nodes, list(config["DeepHealthChecks"])))
        now = services.clock.now()
        operation = Operation(
            operation_id=services.ids.uuid(),
            cluster_id=cluster.id,
            type="DeepHealthCheck",
            status="InProgress",
            creation_time=now,
            details={"DeepHealthCheckDetails": params["DeepHealthCheckConfigurations"]},
        )
        tx.events.add_operation(operation)
        log = EventLog(cluster.id, now)
        for group, nodes, checks in plan:
            if nodes:
                start_checks(
                    tx,
                    cluster,
                    group,
                    nodes,
                    checks,
                    now,
                    services.durations,
                    log,
                    operation_id=operation.operation_id,
                )
        if not any(nodes for _, nodes, _ in plan):
            operation.status = "Done"
            tx.events.save_operation(operation)
        tx.events.add_all(log.events)
    services.engine.notify()
    return {"ClusterArn": cluster.arn}
