"""MoveClusterNodes: running nodes leave one instance group and join another, of the same
cluster or another of the account and region, keeping their instances.

The request checks every node and answers at once; the engine carries each accepted node
through DetachInProgress (in the source cluster) and AttachInProgress (in the target) to
Running in the target group (engine/move_steps.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.scaling import TOKEN_LIFETIME
from hyperpod_local.api.services import Services
from hyperpod_local.domain import moves
from hyperpod_local.domain.eligibility import Refusal, busy_message
from hyperpod_local.domain.errors import ResourceNotFound, ValidationError
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.lifecycle import move_node
from hyperpod_local.domain.model import Cluster, InstanceGroup, Node, NodeStatus, Task
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.unit_of_work import Tx

MOVE = "node_move"
_SELECTORS = ("NodeIds", "NodeLogicalIds", "InstanceCount")
# How many of a group's Running nodes an InstanceCount request looks through for eligible ones.
_CANDIDATES = 1000


def move_cluster_nodes(services: Services, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    chosen = [name for name in _SELECTORS if params.get(name) is not None]
    if len(chosen) != 1:
        raise ValidationError("Specify exactly one of NodeIds, NodeLogicalIds, or InstanceCount.")
    token = params.get("ClientToken")
    digest = hashlib.sha256(
        json.dumps(
            {key: value for key, value in params.items() if key != "ClientToken"}, sort_keys=True
        ).encode()
    ).hexdigest()
    with services.store.write() as tx:
        source = find_cluster(tx, scope, params["SourceClusterArn"])
        target = (
            source
            if params["TargetClusterArn"] == params["SourceClusterArn"]
            else find_cluster(tx, scope, params["TargetClusterArn"])
        )
        now = services.clock.now()
        if token:
            prior = tx.tokens.get(source.id, token, now - TOKEN_LIFETIME)
            if prior is not None:
                if prior[0] != digest:
                    raise ValidationError(
                        f"The ClientToken {token} was already used with different parameters."
                    )
                return dict(prior[1])
        moves.check_clusters(
            source, target, params["SourceInstanceGroupName"], params["TargetInstanceGroupName"]
        )
        source_group = _group(source, params["SourceInstanceGroupName"])
        target_group = _group(target, params["TargetInstanceGroupName"])
        moves.check_target_group(target, target_group)
        mover = _Mover(services, tx, source, source_group, target, target_group, now)
        response = mover.run(chosen[0], params[chosen[0]])
        if token:
            tx.tokens.put(source.id, token, digest, now, response)
    services.engine.notify()
    return response


def _group(cluster: Cluster, name: str) -> InstanceGroup:
    group = cluster.group(name)
    if group is None:
        raise ResourceNotFound(
            f"Could not find instance group '{name}' in cluster '{cluster.name}'."
        )
    return group


class _Mover:
    def __init__(
        self,
        services: Services,
        tx: Tx,
        source: Cluster,
        source_group: InstanceGroup,
        target: Cluster,
        target_group: InstanceGroup,
        now: float,
    ) -> None:
        self.services, self.tx, self.now = services, tx, now
        self.source, self.source_group = source, source_group
        self.target, self.target_group = target, target_group

    def run(self, selector: str, value: Any) -> dict[str, Any]:
        if selector == "InstanceCount":
            chosen = self._by_count(int(value))
            self._start(chosen)
            return {"Successful": [node.instance_id for node in chosen]}
        lookup = (
            self.tx.nodes.by_instance_id if selector == "NodeIds" else self.tx.nodes.by_logical_id
        )
        eligible: list[tuple[str, Node]] = []
        failed: list[tuple[str, Refusal]] = []
        # A node named twice is moved once and reported once.
        for given in dict.fromkeys(value):
            node = lookup(self.source.id, given)
            why = self._refusal(node, given)
            if why is not None:
                failed.append((given, why))
            else:
                assert node is not None
                eligible.append((given, node))
        if not eligible:
            # Documented: if none of the nodes can be moved, the request fails.
            raise ValidationError(
                "None of the nodes can be moved: "
                + "; ".join(f"{given} ({why.code}): {why.message}" for given, why in failed)
            )
        self._check_min_count(len(eligible))
        # The condition is in the UPDATE: a node another request took meanwhile is in use.
        lost = {node.row_id for _, node in eligible if not self.tx.nodes.claim(node, "move")}
        for given, node in eligible:
            if node.row_id in lost:
                failed.append(
                    (given, Refusal("NodeIdInUse", busy_message(given, self.source.name, None)))
                )
        eligible = [(given, node) for given, node in eligible if node.row_id not in lost]
        self._start([node for _, node in eligible])
        ids_key, failed_key, id_name = (
            ("Successful", "Failed", "NodeId")
            if selector == "NodeIds"
            else ("SuccessfulNodeLogicalIds", "FailedNodeLogicalIds", "NodeLogicalId")
        )
        return {
            ids_key: [given for given, _ in eligible],
            failed_key: [
                {id_name: given, "Code": why.code, "Message": why.message} for given, why in failed
            ],
        }

    def _refusal(self, node: Node | None, given: str) -> Refusal | None:
        has_volumes = bool(
            node is not None
            and node.instance_id is not None
            and self.tx.attachments.volumes_of(node.instance_id)
        )
        return moves.refusal(
            node,
            given,
            self.source,
            self.source_group.name,
            self.target,
            self.target_group,
            has_volumes=has_volumes,
        )

    def _by_count(self, count: int) -> list[Node]:
        candidates = self.tx.nodes.some_in_group(
            self.source.id,
            self.source_group.name,
            _CANDIDATES,
            launched=True,
            status=NodeStatus.RUNNING,
            busy=None,
        )
        eligible: list[Node] = []
        for node in candidates:
            if self._refusal(node, node.label) is None:
                eligible.append(node)
                if len(eligible) == count:
                    break
        if len(eligible) < count:
            raise ValidationError(
                f"Only {len(eligible)} node(s) of instance group {self.source_group.name} of "
                f"cluster {self.source.name} can be moved to instance group "
                f"{self.target_group.name} of cluster {self.target.name}; the request asks for "
                f"{count}. No node was moved."
            )
        chosen = eligible
        self._check_min_count(len(chosen))
        for node in chosen:
            if not self.tx.nodes.claim(node, "move"):
                raise ValidationError(
                    f"Node {node.label} was taken by another operation while this request ran; "
                    "no node was moved. Retry the request."
                )
        return chosen

    def _check_min_count(self, leaving: int) -> None:
        serving = self.tx.nodes.serving_count(self.source.id, self.source_group.name)
        error = moves.below_min_count(self.source_group, serving, leaving)
        if error is not None:
            raise error

    def _start(self, chosen: list[Node]) -> None:
        log = EventLog(self.source.id, self.now)
        for node in chosen:
            assert node.instance_id is not None
            move_node(node, "move")
            self.tx.nodes.save(node)
            self.tx.tasks.add(
                Task(
                    cluster_id=self.source.id,
                    kind=MOVE,
                    step="detach",
                    due_at=round(self.now + self.services.durations.move_detach, 3),
                    node_id=node.row_id,
                    data={
                        "target_cluster": self.target.id,
                        "target_group": self.target_group.name,
                        "source_group": self.source_group.name,
                    },
                )
            )
            log.instance(
                self.source_group.name,
                node.instance_id,
                moves.move_started(
                    node.instance_id,
                    self.source.name,
                    self.source_group.name,
                    self.target.name,
                    self.target_group.name,
                ),
                metadata={"Instance": {"NodeLogicalId": node.logical_id}},
            )
        if chosen:
            # The nodes leave the source group: it no longer wants them replaced.
            self.source_group.target_count -= len(chosen)
            self.tx.clusters.save_group(self.source_group)
        self.tx.events.add_all(log.events)
