"""The Scaling operation a request records (UpdateCluster, BatchAddClusterNodes,
BatchDeleteClusterNodes), with a line per group it touches and its events."""

from __future__ import annotations

from typing import Any

from hyperpod_local.api.services import Services
from hyperpod_local.domain import events as text
from hyperpod_local.domain.cluster_rules import new_node
from hyperpod_local.domain.events import EventLog, scaling_metadata
from hyperpod_local.domain.model import Cluster, Event, InstanceGroup, Node, Operation, Task
from hyperpod_local.engine.operations import start_node_action
from hyperpod_local.store.unit_of_work import Tx


class ScalingRecord:
    def __init__(self, services: Services, tx: Tx, cluster: Cluster, now: float) -> None:
        self.services, self.tx, self.cluster, self.now = services, tx, cluster, now
        self.log = EventLog(cluster.id, now)
        self.operation: Operation | None = None
        # group name -> (group, its counts before the request)
        self._touched: dict[str, tuple[InstanceGroup, tuple[int, int, int | None]]] = {}
        # group name -> its "scaling started" event, whose metadata is filled in by finish(),
        # when the counts the request aims at are known.
        self._started: dict[str, Event] = {}

    @property
    def operation_id(self) -> str:
        if self.operation is None:
            self.operation = Operation(
                operation_id=self.services.ids.uuid(),
                cluster_id=self.cluster.id,
                type="Scaling",
                status="InProgress",
                creation_time=self.now,
            )
        return self.operation.operation_id

    def touched(self, group: InstanceGroup, current: int, target: int, minimum: int | None) -> None:
        """Note that the request scales the group (once per group; the desired counts are
        read when the request ends)."""
        if group.name in self._touched:
            return
        self._touched[group.name] = (group, (current, target, minimum))
        self._started[group.name] = self.log.group(
            group.name,
            text.group_scaling_started(group.name, self.cluster.name),
            operation_id=self.operation_id,
        )

    def grow(
        self, group: InstanceGroup, count: int, instance_types: list[str] | None = None
    ) -> list[Node]:
        """Add `count` nodes to the group: Pending, no instance yet; they launch after
        `scale_setup`."""
        nodes = [new_node(self.cluster, group, self.services.ids, self.now) for _ in range(count)]
        if instance_types:
            for node in nodes:
                node.instance_type = instance_types[0]
        self.tx.nodes.add_all(nodes)
        self.tx.tasks.add(
            Task(
                cluster_id=self.cluster.id,
                group_name=group.name,
                kind="group_scale",
                step="launch",
                due_at=round(self.now + self.services.durations.scale_setup, 3),
                operation_id=self.operation_id,
            )
        )
        return nodes

    def shrink(self, nodes: list[Node], *, event: str) -> None:
        """Take nodes out: a node without an instance simply goes; the others shut down."""
        for node in nodes:
            if node.busy == "provision":
                # Its launch retry is moot now.
                self.tx.tasks.remove_for_node(node.row_id or -1)
                node.busy = None
            if node.instance_id is None:
                self.tx.nodes.remove(node.row_id or -1)
                continue
            start_node_action(
                self.tx,
                self.cluster,
                node,
                "delete",
                self.now,
                self.services.durations,
                busy="delete",
                operation_id=self.operation_id,
                event=event,
            )

    def finish(self) -> None:
        operation = self.operation
        if operation is not None:
            details: list[dict[str, Any]] = []
            for group, (current, target, minimum) in self._touched.values():
                self._started[group.name].metadata = scaling_metadata(
                    current, group.target_count, group.min_count
                )
                details.append(
                    {
                        "InstanceGroupName": group.name,
                        "Status": "InProgress",
                        "Original": {
                            "CurrentCount": current,
                            "TargetCount": target,
                            "MinCount": minimum,
                        },
                        "Desired": {"TargetCount": group.target_count, "MinCount": group.min_count},
                    }
                )
            if not self.tx.tasks.count(self.cluster.id, operation_id=operation.operation_id):
                # Nothing left for the engine (only unlaunched nodes were removed): done now.
                operation.status = "Done"
                for group, _ in self._touched.values():
                    self.log.scaling_completed(
                        self.cluster.name,
                        group.name,
                        operation.operation_id,
                        (group.current_count, group.target_count, group.min_count),
                    )
                for detail in details:
                    detail["Status"] = "Done"
            operation.details = {"ScalingDetails": details}
            self.tx.events.add_operation(operation)
        self.tx.events.add_all(self.log.events)

    @property
    def pending(self) -> bool:
        """Whether the engine has work left for this request's operation."""
        return (
            self.operation is not None
            and self.operation.status == "InProgress"
            and bool(self.tx.tasks.count(self.cluster.id, operation_id=self.operation.operation_id))
        )
