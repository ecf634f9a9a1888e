"""Injecting faults: the one implementation behind POST /_hyperpod/faults, `hp.inject()` and
`hyperpod-local fault add`. A fault spec is a JSON object with PascalCase keys:

    {"Kind": "hardware", "Cluster": "c1", "InstanceId": "i-...", "Type": "GpuXid79"}
    {"Kind": "hardware", "Cluster": "c1", "InstanceGroupName": "workers", "Type": "EfaDown",
     "DetectionDelaySeconds": 30}
    {"Kind": "lifecycle_script", "Cluster": "c1", "InstanceGroupName": "workers", "Count": 2}
    {"Kind": "capacity", "InstanceType": "ml.p5.48xlarge"}          (optionally "Cluster")
    {"Kind": "internal_error", "Cluster": "c1", "InstanceId": "i-...", "Count": 3}
    {"Kind": "throttling", "Operations": ["ListClusterNodes"], "Rate": 0.5}
    {"Kind": "latency", "Operations": ["DescribeCluster"], "Seconds": 0.2}
    {"Kind": "alarm", "AlarmName": "training-loss-spike"}   (rolls back updates that watch it)
    {"Kind": "extension", "Cluster": "c1", "ExtensionName": "sagemaker-observability",
     "Action": "Create", "InstanceId": "i-...", "Code": "AccessDenied", "Count": 1}
    {"Kind": "task_governance", "Cluster": "c1", "Resource": "ComputeQuota",
     "Action": "Update", "Count": 1}

Clusters are named by ARN, or by name with "Account" and "Region" (default 123456789012 and
us-east-1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from hyperpod_local.admin.spec import checked
from hyperpod_local.api.resolve import lookup_cluster
from hyperpod_local.backend import Backend
from hyperpod_local.domain.errors import ValidationError
from hyperpod_local.domain.faults import HARDWARE_FAULTS, Fault, FaultKind, a_fault
from hyperpod_local.domain.ids import parse_cluster_arn
from hyperpod_local.domain.model import Cluster, Node
from hyperpod_local.domain.scope import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Scope
from hyperpod_local.engine.operations import schedule_detection, schedule_random_faults
from hyperpod_local.store.unit_of_work import Tx

# Faults one POST may hold: a fleet's worth in one transaction, and a bound on its work.
MAX_FAULTS_PER_CALL = 10_000


def inject(backend: Backend, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Store the fault (one per node for a group-wide hardware fault) and schedule what it
    sets off; returns the faults as the admin API shows them. Every field is checked first
    (admin/spec.py), so what is stored can always be listed and removed again."""
    return inject_all(backend, [spec])


def inject_all(backend: Backend, specs: list[Any]) -> list[dict[str, Any]]:
    """Many fault specs in one transaction: every one is checked and found first, then all
    are stored, or none (a ValidationError names the first at fault by its index)."""
    if not 1 <= len(specs) <= MAX_FAULTS_PER_CALL:
        raise ValidationError(f"Give 1 to {MAX_FAULTS_PER_CALL} fault specs.")
    named = len(specs) > 1
    kinds: list[tuple[FaultKind, dict[str, Any]]] = []
    for index, spec in enumerate(specs):
        with _at(index, named):
            if not isinstance(spec, dict):
                raise ValidationError("A fault spec must be a JSON object.")
            kinds.append(checked(spec))
    now = backend.clock.now()
    views: list[dict[str, Any]] = []
    with backend.store.write() as tx:
        clusters: dict[tuple[str, str, str], Cluster] = {}
        made: list[tuple[Fault, Node | None, Cluster | None]] = []
        for index, (kind, spec) in enumerate(kinds):
            with _at(index, named):
                cluster = _cluster(tx, spec, clusters) if spec.get("Cluster") else None
                made.extend(
                    (fault, node, cluster)
                    for fault, node in _build(backend, tx, kind, spec, cluster, now)
                )
        for fault, node, cluster in made:
            tx.faults.add(fault)
            if node is not None:
                schedule_detection(tx, node, fault, now, backend.durations)
            if fault.kind == FaultKind.RANDOM_HARDWARE:
                schedule_random_faults(tx, fault, now, backend.durations)
            views.append(view(fault, cluster))
    backend.request_faults.reload()
    backend.engine.notify()
    return views


@contextlib.contextmanager
def _at(index: int, named: bool) -> Iterator[None]:
    """A spec's error, named by its place in a list of them."""
    try:
        yield
    except ValidationError as error:
        if not named:
            raise
        raise ValidationError(f"Fault {index}: {error.message}") from None


def listing(backend: Backend) -> list[dict[str, Any]]:
    with backend.store.read() as tx:
        return [view(fault, tx.clusters.get(fault.cluster_id or "")) for fault in tx.faults.all()]


def remove(backend: Backend, fault_id: str) -> bool:
    with backend.store.write() as tx:
        removed = tx.faults.remove(fault_id)
    backend.request_faults.reload()
    return removed


def view(fault: Fault, cluster: Cluster | None) -> dict[str, Any]:
    shown: dict[str, Any] = {"FaultId": fault.fault_id, "Kind": fault.kind, **fault.params}
    if cluster is not None:
        shown["Cluster"] = cluster.name
        shown["ClusterArn"] = cluster.arn
    for key, value in (
        ("InstanceGroupName", fault.group_name),
        ("InstanceId", fault.instance_id),
        ("InstanceType", fault.instance_type),
        ("Remaining", fault.remaining),
    ):
        if value is not None:
            shown[key] = value
    shown["CreatedAt"] = fault.created_at
    return shown


def _cluster(tx: Tx, spec: dict[str, Any], known: dict[tuple[str, str, str], Cluster]) -> Cluster:
    given = str(spec["Cluster"])
    arn = parse_cluster_arn(given)
    scope = (
        Scope(arn.account_id, arn.region)
        if arn
        else Scope(
            str(spec.get("Account", DEFAULT_ACCOUNT_ID)), str(spec.get("Region", DEFAULT_REGION))
        )
    )
    key = (scope.account_id, scope.region, given)
    if key not in known:
        cluster = lookup_cluster(tx, scope, given)
        if cluster is None:
            raise ValidationError(f"Could not find cluster '{given}'.")
        known[key] = cluster
    return known[key]


def _need(spec: dict[str, Any], key: str, kind: str) -> Any:
    if spec.get(key) in (None, "", []):
        raise ValidationError(f"{a_fault(kind).capitalize()} needs {key}.")
    return spec[key]


def _count(spec: dict[str, Any]) -> int:
    return int(spec.get("Count", 1))


def _build(
    backend: Backend,
    tx: Tx,
    kind: FaultKind,
    spec: dict[str, Any],
    cluster: Cluster | None,
    now: float,
) -> list[tuple[Fault, Node | None]]:
    """The faults a spec makes, each with the node whose health agent must notice it."""

    def fault(**fields: Any) -> Fault:
        return Fault(
            fault_id=backend.ids.uuid(),
            kind=kind,
            created_at=now,
            cluster_id=cluster.id if cluster else None,
            **fields,
        )

    if kind in (FaultKind.HARDWARE, FaultKind.LIFECYCLE_SCRIPT, FaultKind.INTERNAL_ERROR):
        _need(spec, "Cluster", kind)
        assert cluster is not None
    if kind == FaultKind.HARDWARE:
        fault_type = str(_need(spec, "Type", kind))
        delay = spec.get("DetectionDelaySeconds", backend.durations.nominal("health_detection"))
        params = {"Type": fault_type, "DetectionDelaySeconds": float(delay)}
        return [
            (fault(group_name=node.group_name, instance_id=node.instance_id, params=params), node)
            for node in _target_nodes(tx, cluster, spec)  # type: ignore[arg-type]
        ]
    if kind == FaultKind.RANDOM_HARDWARE:
        return [(fault(**_random_fields(backend, spec, cluster)), None)]
    if kind == FaultKind.LIFECYCLE_SCRIPT:
        group = str(_need(spec, "InstanceGroupName", kind))
        if cluster is None or cluster.group(group) is None:
            raise ValidationError(f"No instance group '{group}' in the cluster.")
        return [(fault(group_name=group, remaining=_count(spec)), None)]
    if kind == FaultKind.ALARM:
        name = _need(spec, "AlarmName", kind)
        return [(fault(params={"AlarmName": name}), None)]
    if kind == FaultKind.EXTENSION:
        _need(spec, "Cluster", kind)
        assert cluster is not None
        instance_id = spec.get("InstanceId")
        if instance_id and tx.nodes.by_instance_id(cluster.id, str(instance_id)) is None:
            raise ValidationError(f"No node {instance_id} in cluster {cluster.name}.")
        params = {k: spec[k] for k in ("ExtensionName", "Action", "Code") if k in spec}
        return [(fault(instance_id=instance_id, remaining=_count(spec), params=params), None)]
    if kind == FaultKind.TASK_GOVERNANCE:
        _need(spec, "Cluster", kind)
        params = {k: spec[k] for k in ("Resource", "Action") if k in spec}
        return [(fault(remaining=_count(spec), params=params), None)]
    if kind == FaultKind.CAPACITY:
        return [(fault(instance_type=str(_need(spec, "InstanceType", kind))), None)]
    if kind == FaultKind.INTERNAL_ERROR:
        node_id = str(_need(spec, "InstanceId", kind))
        assert cluster is not None
        if tx.nodes.by_instance_id(cluster.id, node_id) is None:
            raise ValidationError(f"No node {node_id} in cluster {cluster.name}.")
        return [(fault(instance_id=node_id, remaining=_count(spec)), None)]
    # An empty list: every operation.
    operations = spec.get("Operations") or []
    if kind == FaultKind.THROTTLING:
        rate = spec.get("Rate", 1.0)
        return [(fault(params={"Operations": operations, "Rate": float(rate)}), None)]
    seconds = float(_need(spec, "Seconds", kind))
    return [(fault(params={"Operations": operations, "Seconds": seconds}), None)]


def _random_fields(
    backend: Backend, spec: dict[str, Any], cluster: Cluster | None
) -> dict[str, Any]:
    """A random_hardware fault's reach and parameters. Without a Seed one is drawn, and shown,
    so that a run can be made again."""
    mtbf = _need(spec, "MtbfHours", FaultKind.RANDOM_HARDWARE)
    group = spec.get("InstanceGroupName")
    if group is not None:
        if cluster is None:
            raise ValidationError("A random_hardware fault with InstanceGroupName needs Cluster.")
        if cluster.group(str(group)) is None:
            raise ValidationError(f"No instance group '{group}' in cluster {cluster.name}.")
    delay = spec.get("DetectionDelaySeconds", backend.durations.nominal("health_detection"))
    return {
        "group_name": group,
        "params": {
            "MtbfHours": mtbf,
            "Types": spec.get("Types") or {name: 1.0 for name in HARDWARE_FAULTS},
            "Seed": spec.get("Seed", backend.ids.random.getrandbits(31)),
            "DetectionDelaySeconds": float(delay),
            "Strikes": 0,
        },
    }


def _target_nodes(tx: Tx, cluster: Cluster, spec: dict[str, Any]) -> list[Any]:
    if spec.get("InstanceId"):
        node = tx.nodes.by_instance_id(cluster.id, str(spec["InstanceId"]))
        if node is None:
            raise ValidationError(f"No node {spec['InstanceId']} in cluster {cluster.name}.")
        return [node]
    group = spec.get("InstanceGroupName")
    if not group:
        raise ValidationError("A hardware fault needs InstanceId or InstanceGroupName.")
    if cluster.group(str(group)) is None:
        raise ValidationError(f"No instance group '{group}' in cluster {cluster.name}.")
    nodes = [node for node in tx.nodes.in_group(cluster.id, str(group)) if node.instance_id]
    if not nodes:
        raise ValidationError(f"Instance group '{group}' has no instances yet.")
    return nodes


KNOWN_HARDWARE_TYPES = tuple(HARDWARE_FAULTS)
