"""BatchReplaceClusterNodes, BatchRebootClusterNodes and BatchDeleteClusterNodes.

Each starts a durable operation per eligible node and answers at once with per-node results;
the engine carries the nodes through their states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.scaling_record import ScalingRecord
from hyperpod_local.api.services import Services
from hyperpod_local.domain import events as text
from hyperpod_local.domain.eligibility import Refusal, busy_message, refusal
from hyperpod_local.domain.errors import ValidationError
from hyperpod_local.domain.faults import FaultKind
from hyperpod_local.domain.model import (
    Cluster,
    ClusterStatus,
    InstanceGroup,
    Node,
)
from hyperpod_local.domain.node_limits import check_node_counts
from hyperpod_local.domain.scope import Scope
from hyperpod_local.engine.operations import ACTION_WORDS, start_node_action
from hyperpod_local.store.unit_of_work import Tx

_OPERATION_NAMES = {
    "replace": "BatchReplaceClusterNodes",
    "reboot": "BatchRebootClusterNodes",
    "delete": "BatchDeleteClusterNodes",
}


@dataclass(slots=True)
class _Outcome:
    successful: list[str] = field(default_factory=list)
    failed: list[tuple[str, Refusal]] = field(default_factory=list)


def batch_replace(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    return _batch(services, scope, params, "replace")


def batch_reboot(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    return _batch(services, scope, params, "reboot")


def batch_delete(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    return _batch(services, scope, params, "delete")


def _batch(services: Services, scope: Scope, params: dict[str, Any], action: str) -> dict[str, Any]:
    node_ids: list[str] = params.get("NodeIds") or []
    logical_ids: list[str] = params.get("NodeLogicalIds") or []
    if not node_ids and not logical_ids:
        raise ValidationError("Either NodeIds or NodeLogicalIds must be specified.")
    check_node_counts(action, node_ids, logical_ids)
    with services.store.write() as tx:
        cluster = find_cluster(tx, scope, params["ClusterName"])
        _check_cluster(cluster, action, logical_ids)
        now = services.clock.now()
        starter = _Starter(services, tx, cluster, action, now)
        by_id = starter.run(node_ids, lambda given: tx.nodes.by_instance_id(cluster.id, given))
        by_logical = starter.run(
            logical_ids, lambda given: tx.nodes.by_logical_id(cluster.id, given)
        )
        if action == "delete" and not by_id.successful and not by_logical.successful:
            failures = by_id.failed + by_logical.failed
            # Documented: HTTP 400 when every node fails validation. Nothing has changed.
            raise ValidationError(
                "All nodes failed validation: "
                + "; ".join(f"{given} ({why.code}): {why.message}" for given, why in failures)
            )
        starter.finish()
    services.engine.notify()
    code_key = "Code" if action == "delete" else "ErrorCode"
    result: dict[str, Any] = {
        "Successful": by_id.successful,
        "Failed": [
            {"NodeId": given, code_key: why.code, "Message": why.message}
            for given, why in by_id.failed
        ],
    }
    if logical_ids:
        result["SuccessfulNodeLogicalIds"] = by_logical.successful
        result["FailedNodeLogicalIds"] = [
            {"NodeLogicalId": given, code_key: why.code, "Message": why.message}
            for given, why in by_logical.failed
        ]
    return result


def _check_cluster(cluster: Cluster, action: str, logical_ids: list[str]) -> None:
    operation = _OPERATION_NAMES[action]
    if logical_ids and not cluster.continuous:
        raise ValidationError(
            "NodeLogicalIds are only supported for clusters with NodeProvisioningMode "
            "Continuous; use NodeIds instead."
        )
    if action in ("replace", "delete") and cluster.legacy:
        raise ValidationError(
            f"Cluster {cluster.name} must be updated to the latest platform software using "
            f"UpdateClusterSoftware before using {operation}."
        )
    if cluster.status != ClusterStatus.IN_SERVICE:
        raise ValidationError(
            f"Cluster {cluster.name} is in {cluster.status} status; {operation} needs an "
            "InService cluster with no cluster-level operation in progress."
        )


class _Starter:
    """Checks each named node and starts the action on the eligible ones, in one unit of work."""

    def __init__(
        self, services: Services, tx: Tx, cluster: Cluster, action: str, now: float
    ) -> None:
        self.services = services
        self.tx = tx
        self.cluster = cluster
        self.action = action
        self.now = now
        # A delete is scaling, and records its operation; the other actions only use its log.
        self.record = ScalingRecord(services, tx, cluster, now)
        self.log = self.record.log
        self.original_counts = {
            group.name: (group.current_count, group.target_count, group.min_count)
            for group in cluster.groups
        }
        # Nodes this request started: naming one again (by its other id) is not a conflict.
        self.claimed: set[int] = set()

    def run(self, given_ids: list[str], lookup: Any) -> _Outcome:
        outcome = _Outcome()
        # A node named twice is acted on once and reported once.
        for given in dict.fromkeys(given_ids):
            node = lookup(given)
            if node is not None and node.row_id in self.claimed:
                outcome.successful.append(given)
                continue
            group = self.cluster.group(node.group_name) if node is not None else None
            why = self._injected_error(node, given) or refusal(
                self.action, self.cluster, node, given, group
            )
            if why is None and node is not None and not self.tx.nodes.claim(node, self.action):
                why = Refusal(
                    "NodeIdInUse" if self.action == "delete" else "InstanceIdInUse",
                    busy_message(given, self.cluster.name, None),
                )
            if why is not None:
                outcome.failed.append((given, why))
                continue
            assert node is not None and group is not None and node.row_id is not None
            self._start(node, group)
            self.claimed.add(node.row_id)
            outcome.successful.append(given)
        return outcome

    def _injected_error(self, node: Node | None, given: str) -> Refusal | None:
        """An injected internal error for this node (the delete codes have none)."""
        if node is None or self.action == "delete" or node.instance_id is None:
            return None
        fault = self.tx.faults.take(
            FaultKind.INTERNAL_ERROR, self.cluster.id, instance_id=node.instance_id
        )
        if fault is None:
            return None
        return Refusal(
            "InternalServerError",
            f"An internal error occurred for node {given} of cluster {self.cluster.name}; "
            "retry the request.",
        )

    def _start(self, node: Node, group: InstanceGroup) -> None:
        operation_id = None
        if self.action == "delete":
            self.record.touched(group, *self.original_counts[group.name])
            operation_id = self.record.operation_id
            group.target_count -= 1
            self.tx.clusters.save_group(group)
        start_node_action(
            self.tx,
            self.cluster,
            node,
            self.action,
            self.now,
            self.services.durations,
            busy=self.action,
            operation_id=operation_id,
        )
        self.log.instance(
            group.name,
            node.instance_id,
            text.instance_operation_started(
                ACTION_WORDS[self.action], self.cluster.name, group.name
            ),
            operation_id=operation_id,
        )

    def finish(self) -> None:
        self.record.finish()
