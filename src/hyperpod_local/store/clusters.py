"""Clusters and their instance groups."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from hyperpod_local.domain.model import (
    LATEST_IMAGE_RELEASE,
    SERVING_STATUSES,
    Cluster,
    InstanceGroup,
)
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store import node_counts
from hyperpod_local.store.errors import Conflict
from hyperpod_local.store.paging import keyset
from hyperpod_local.store.prepared import Prepared
from hyperpod_local.store.schema import (
    clusters,
    group_node_counts,
    instance_groups,
    nodes,
    operations,
)

CLUSTER_SORT_KEYS = {
    "CREATION_TIME": (clusters.c.creation_time, clusters.c.seq),
    "NAME": (clusters.c.name, clusters.c.seq),
}


@dataclass(frozen=True, slots=True)
class ClusterListing:
    """What a ListClusters summary needs of a cluster; the fields in _LISTING_COLUMNS' order."""

    id: str
    name: str
    arn: str
    status: str
    creation_time: float
    seq: int


_LISTING_COLUMNS = (
    clusters.c.id,
    clusters.c.name,
    clusters.c.arn,
    clusters.c.status,
    clusters.c.creation_time,
    clusters.c.seq,
)


def cluster_sort_key(cluster: ClusterListing, sort_by: str) -> list[Any]:
    """The keyset position of a cluster, as a page's NextToken remembers it."""
    first = cluster.name if sort_by == "NAME" else cluster.creation_time
    return [first, cluster.seq]


@dataclass(frozen=True)
class _Statements:
    id_by_name: Select[Any]
    id_by_eks_cluster: Select[Any]
    last_seq: Select[Any]
    # A cluster's row and its groups' (with their counts): every request that names a
    # cluster runs them, and every engine step that loads one.
    by_name: Prepared
    by_id: Prepared
    any_by_id: Prepared
    counted_groups: Prepared
    active_operations: Select[Any]
    groups: Prepared


_ACTIVE_WHERE = (
    operations.c.cluster_id == bindparam("cluster_id"),
    operations.c.status == "InProgress",
)
_ACTIVE = select(operations.c.seq).where(*_ACTIVE_WHERE)


@functools.cache
def _statements() -> _Statements:
    """The statements every DescribeCluster (and CreateCluster's checks) runs, built once:
    building one costs more than SQLite takes to answer it. Built on first use, not at
    import, which a cold start pays."""
    in_scope = (
        clusters.c.account_id == bindparam("account_id"),
        clusters.c.region == bindparam("region"),
    )
    return _Statements(
        id_by_name=select(clusters.c.id).where(*in_scope, clusters.c.name == bindparam("key")),
        id_by_eks_cluster=select(clusters.c.id).where(
            *in_scope, clusters.c.eks_cluster_arn == bindparam("key")
        ),
        last_seq=select(func.coalesce(func.max(clusters.c.seq), 0)),
        by_name=Prepared(select(clusters).where(*in_scope, clusters.c.name == bindparam("key"))),
        by_id=Prepared(select(clusters).where(*in_scope, clusters.c.id == bindparam("key"))),
        any_by_id=Prepared(select(clusters).where(clusters.c.id == bindparam("key"))),
        # Each group with its node counts (a row per type, release and status; one row of
        # NULL counts for a group without nodes): one query, not one for each.
        # And whether the cluster has an operation in progress (asked once, a subquery of
        # no row's): most have none, and the statement that reads them is then not run.
        counted_groups=Prepared(
            select(
                instance_groups,
                group_node_counts.c.instance_type.label("counted_type"),
                group_node_counts.c.image_release_version.label("counted_release"),
                group_node_counts.c.status.label("counted_status"),
                group_node_counts.c.count.label("counted"),
                select(_ACTIVE.exists()).scalar_subquery().label("operating"),
            )
            .select_from(
                instance_groups.outerjoin(
                    group_node_counts,
                    (group_node_counts.c.cluster_id == instance_groups.c.cluster_id)
                    & (group_node_counts.c.group_name == instance_groups.c.name),
                )
            )
            .where(instance_groups.c.cluster_id == bindparam("cluster_id"))
            .order_by(instance_groups.c.position, instance_groups.c.name)
        ),
        active_operations=select(operations.c.details).where(*_ACTIVE_WHERE),
        groups=Prepared(
            select(instance_groups)
            .where(instance_groups.c.cluster_id == bindparam("cluster_id"))
            .order_by(instance_groups.c.position)
        ),
    )


# Every engine step that touches a cluster runs it: built once.
_SAVE = (
    update(clusters)
    .where(clusters.c.id == bindparam("cluster_id"))
    .values(
        status=bindparam("status"),
        failure_message=bindparam("failure_message"),
        next_ip=bindparam("next_ip"),
        legacy=bindparam("legacy"),
    )
)


class ClusterMemory:
    """Clusters as ClusterRepository.get loads them (a row and its groups' rows, no counts),
    kept between the write transactions of a store this process alone writes: an engine step
    then has its cluster without two statements and a JSON document a group. Forgotten whole
    whenever a cluster or a group is written, and whenever a transaction or a savepoint is
    rolled back, so what is kept is what the store holds; each get hands out copies, so what
    a step changes on its copy stays its own until it saves it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._kept: dict[str, Cluster] = {}

    def generation(self) -> int:
        return self._generation

    def recall(self, cluster_id: str) -> Cluster | None:
        kept = self._kept.get(cluster_id)
        return None if kept is None else _copy(kept)

    def peek(self, cluster_id: str) -> Cluster | None:
        """The cluster as kept, not a copy: for a reader that changes nothing of it."""
        return self._kept.get(cluster_id)

    def keep(self, cluster: Cluster, generation: int) -> None:
        """Keep a copy of `cluster`, loaded when the memory was at `generation`: unless
        something was forgotten since."""
        with self._lock:
            if generation == self._generation:
                self._kept[cluster.id] = _copy(cluster)

    def forget(self, *_args: Any) -> None:
        with self._lock:
            self._generation += 1
            self._kept.clear()


class ClusterRepository:
    def __init__(
        self,
        conn: Connection,
        memory: ClusterMemory | None = None,
        moves: node_counts.Moves | None = None,
    ) -> None:
        self.conn = conn
        # The unit of work's count moves not yet written (NodeRepository's too).
        self.moves = node_counts.Moves(conn) if moves is None else moves
        # A write transaction's: what earlier ones loaded (None: keep nothing across them).
        self._memory = memory
        # For each cluster loaded here, what save() would write as it was loaded or last
        # saved: a save that changes nothing writes nothing (most engine steps save theirs).
        self._as_saved: dict[int, tuple[Cluster, tuple[Any, ...]]] = {}

    def add(self, cluster: Cluster, *, eks_cluster_arn: str | None = None) -> None:
        """Store a new cluster; Conflict('name') or Conflict('eks_cluster') if it clashes."""
        statements = _statements()
        scope = {"account_id": cluster.scope.account_id, "region": cluster.scope.region}
        # Checked first for a clear answer; the unique constraints still hold under a race.
        if self.conn.scalar(statements.id_by_name, {**scope, "key": cluster.name}):
            raise Conflict("name")
        if eks_cluster_arn and self.conn.scalar(
            statements.id_by_eks_cluster, {**scope, "key": eks_cluster_arn}
        ):
            raise Conflict("eks_cluster")
        cluster.seq = int(self.conn.scalar(statements.last_seq)) + 1
        self._written(cluster.id)
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    clusters.insert(),
                    dict(
                        id=cluster.id,
                        account_id=cluster.scope.account_id,
                        region=cluster.scope.region,
                        name=cluster.name,
                        arn=cluster.arn,
                        status=cluster.status,
                        failure_message=cluster.failure_message,
                        creation_time=cluster.creation_time,
                        spec=cluster.spec,
                        ip_base=cluster.ip_base,
                        next_ip=cluster.next_ip,
                        seq=cluster.seq,
                        eks_cluster_arn=eks_cluster_arn,
                        legacy=cluster.legacy,
                    ),
                )
        except IntegrityError as error:
            raise Conflict("eks_cluster" if "eks" in str(error.orig) else "name") from None
        if cluster.groups:
            self.conn.execute(
                instance_groups.insert(),
                [
                    {
                        "cluster_id": cluster.id,
                        "name": group.name,
                        "position": group.position,
                        "spec": group.spec,
                        "target_count": group.target_count,
                        "min_count": group.min_count,
                        "status": group.status,
                    }
                    for group in cluster.groups
                ],
            )

    def by_name(self, scope: Scope, name: str, *, with_groups: bool = True) -> Cluster | None:
        return self._one(
            _statements().by_name,
            {"account_id": scope.account_id, "region": scope.region, "key": name},
            with_groups,
        )

    def by_id(self, scope: Scope, cluster_id: str, *, with_groups: bool = True) -> Cluster | None:
        return self._one(
            _statements().by_id,
            {"account_id": scope.account_id, "region": scope.region, "key": cluster_id},
            with_groups,
        )

    def page(
        self,
        scope: Scope,
        sort_by: str,
        descending: bool,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[ClusterListing]:
        """A page of ListClusters: the summary's columns only, no spec to decode."""
        stmt = select(*_LISTING_COLUMNS).where(
            clusters.c.account_id == scope.account_id, clusters.c.region == scope.region
        )
        rows = self.conn.execute(
            keyset(stmt, CLUSTER_SORT_KEYS[sort_by], after, descending=descending, limit=limit)
        )
        return [ClusterListing(*row) for row in rows]

    def training_plans(self, cluster_ids: Sequence[str]) -> dict[str, list[str]]:
        """The TrainingPlanArns of each cluster's groups, for ListClusters' summaries."""
        plans: dict[str, list[str]] = {}
        if not cluster_ids:
            return plans
        # Only the one member is read out of each group's spec, by the database.
        arn = instance_groups.c.spec["TrainingPlanArn"].as_string()
        rows = self.conn.execute(
            select(instance_groups.c.cluster_id, arn)
            .where(instance_groups.c.cluster_id.in_(list(cluster_ids)), arn.is_not(None))
            .order_by(instance_groups.c.cluster_id, instance_groups.c.position)
        )
        for cluster_id, plan in rows:
            if plan not in plans.setdefault(cluster_id, []):
                plans[cluster_id].append(plan)
        return plans

    def behind(self, cluster_ids: Sequence[str], latest: str) -> set[str]:
        """The clusters with a group not on the `latest` platform release (ListClusters'
        ImageVersionStatus); a group that names none is on the first release there was."""
        if not cluster_ids:
            return set()
        release = func.coalesce(
            instance_groups.c.spec["ImageReleaseVersion"].as_string(), LATEST_IMAGE_RELEASE
        )
        return set(
            self.conn.scalars(
                select(instance_groups.c.cluster_id)
                .where(instance_groups.c.cluster_id.in_(list(cluster_ids)), release != latest)
                .distinct()
            )
        )

    def save(self, cluster: Cluster) -> None:
        """Write back what time changes of a cluster: status, failure, counters, legacy."""
        values = _saved_fields(cluster)
        known = self._as_saved.get(id(cluster))
        if known is not None and known[0] is cluster and known[1] == values:
            return  # as loaded or last saved, and no other copy of it written since
        self.conn.execute(
            _SAVE,
            {
                "cluster_id": cluster.id,
                "status": cluster.status,
                "failure_message": cluster.failure_message,
                "next_ip": cluster.next_ip,
                "legacy": cluster.legacy,
            },
        )
        self._written(cluster.id)
        self._as_saved[id(cluster)] = (cluster, values)

    def make_legacy(self, cluster: Cluster, release: str) -> None:
        """Put the cluster on old platform software: the flag, and the old release on its
        groups and nodes. Only those columns: nothing is written back from a stale copy."""
        self._written(cluster.id)
        self.conn.execute(update(clusters).where(clusters.c.id == cluster.id).values(legacy=True))
        self.conn.execute(
            update(nodes)
            .where(nodes.c.cluster_id == cluster.id)
            .values(image_release_version=release)
        )
        self.moves.recount(cluster.id)
        for group in self._groups(cluster.id):
            group.spec = {**group.spec, "ImageReleaseVersion": release}
            self.conn.execute(
                update(instance_groups)
                .where(
                    instance_groups.c.cluster_id == cluster.id,
                    instance_groups.c.name == group.name,
                )
                .values(spec=group.spec)
            )

    def save_group(self, group: InstanceGroup) -> None:
        self._written(group.cluster_id)
        self.conn.execute(
            update(instance_groups)
            .where(
                instance_groups.c.cluster_id == group.cluster_id,
                instance_groups.c.name == group.name,
            )
            .values(
                status=group.status,
                target_count=group.target_count,
                min_count=group.min_count,
                spec=group.spec,
            )
        )

    def add_group(self, group: InstanceGroup) -> None:
        self._written(group.cluster_id)
        self.conn.execute(
            instance_groups.insert(),
            dict(
                cluster_id=group.cluster_id,
                name=group.name,
                position=group.position,
                spec=group.spec,
                target_count=group.target_count,
                min_count=group.min_count,
                status=group.status,
            ),
        )

    def remove_group(self, cluster_id: str, name: str) -> None:
        self._written(cluster_id)
        self.conn.execute(
            delete(instance_groups).where(
                instance_groups.c.cluster_id == cluster_id, instance_groups.c.name == name
            )
        )

    def save_spec(self, cluster: Cluster) -> None:
        self._written(cluster.id)
        self.conn.execute(
            update(clusters).where(clusters.c.id == cluster.id).values(spec=cluster.spec)
        )

    def get(self, cluster_id: str) -> Cluster | None:
        """A cluster by id, whoever owns it, for the engine and the admin API: its groups
        without what DescribeCluster counts of them (CurrentCount and the rest stay 0), which
        none of them reads; tests/test_architecture.py keeps the engine from reading them."""
        if self._memory is None:
            return self._one(_statements().any_by_id, {"key": cluster_id}, True, counted=False)
        cluster = self._memory.recall(cluster_id)
        if cluster is not None:
            self._as_saved[id(cluster)] = (cluster, _saved_fields(cluster))
            return cluster
        generation = self._memory.generation()
        cluster = self._one(_statements().any_by_id, {"key": cluster_id}, True, counted=False)
        if cluster is not None:
            self._memory.keep(cluster, generation)
        return cluster

    def rolled_back(self) -> None:
        """A savepoint of this transaction was rolled back: what was loaded or saved since
        may not be what the store holds now."""
        self._as_saved.clear()
        if self._memory is not None:
            self._memory.forget()

    def _written(self, cluster_id: str) -> None:
        """The cluster (or a group of it) is about to be written: copies loaded before are
        stale for save()'s comparison, and the memory of every cluster is forgotten."""
        for key, (cluster, _values) in list(self._as_saved.items()):
            if cluster.id == cluster_id:
                del self._as_saved[key]
        if self._memory is not None:
            self._memory.forget()

    def remove(self, cluster_id: str) -> None:
        self._written(cluster_id)
        self.conn.execute(delete(nodes).where(nodes.c.cluster_id == cluster_id))
        self.moves.forget(cluster_id)
        self.conn.execute(delete(instance_groups).where(instance_groups.c.cluster_id == cluster_id))
        self.conn.execute(delete(clusters).where(clusters.c.id == cluster_id))

    def _one(
        self, stmt: Prepared, params: dict[str, str], with_groups: bool, *, counted: bool = True
    ) -> Cluster | None:
        row = stmt.first(self.conn, params)
        if row is None:
            return None
        cluster = _cluster(row)
        self._as_saved[id(cluster)] = (cluster, _saved_fields(cluster))
        if with_groups and counted:
            cluster.groups = self._groups(cluster.id)
        elif with_groups:
            groups = _statements().groups.rows(self.conn, {"cluster_id": cluster.id})
            cluster.groups = [_group(group) for group in groups]
        return cluster

    def _groups(self, cluster_id: str) -> list[InstanceGroup]:
        key = {"cluster_id": cluster_id}
        statements = _statements()
        counts: dict[str, int] = {}
        types: dict[str, dict[str, int]] = {}
        releases: dict[str, dict[str, int]] = {}
        members: dict[str, int] = {}
        failed: dict[str, int] = {}
        groups: list[InstanceGroup] = []
        operating = False
        self.moves.flush()
        # A few rows per group (group_node_counts), whatever the number of nodes.
        for row in statements.counted_groups.rows(self.conn, key):
            operating = bool(row.operating)
            name = row.name
            if not groups or groups[-1].name != name:
                groups.append(_group(row))
            count = row.counted
            if count is None:
                continue
            status, instance_type, release = (
                row.counted_status,
                row.counted_type,
                row.counted_release,
            )
            members[name] = members.get(name, 0) + count
            if status in SERVING_STATUSES:
                counts[name] = counts.get(name, 0) + count
                group_types = types.setdefault(name, {})
                group_types[instance_type] = group_types.get(instance_type, 0) + count
            elif status == "Failure":
                failed[name] = failed.get(name, 0) + count
            group_releases = releases.setdefault(name, {})
            group_releases[release] = group_releases.get(release, 0) + count
        scaling: dict[str, int] = {}
        active = self.conn.scalars(statements.active_operations, key) if operating else ()
        for details in active:
            for detail in details.get("ScalingDetails", []):
                name = detail["InstanceGroupName"]
                scaling[name] = scaling.get(name, 0) + 1
        for group in groups:
            group.current_count = counts.get(group.name, 0)
            group.active_scaling = scaling.get(group.name, 0)
            group.release_counts = releases.get(group.name, {})
            group.type_counts = types.get(group.name, {})
            group.failed_count = failed.get(group.name, 0)
            if group.failed_count and group.failed_count == members.get(group.name):
                # Every node failed (rare): whether any is being fixed decides Failed.
                group.stranded = not self.conn.scalar(
                    select(func.count())
                    .select_from(nodes)
                    .where(
                        nodes.c.cluster_id == cluster_id,
                        nodes.c.group_name == group.name,
                        nodes.c.busy.is_not(None),
                    )
                )
        return groups


def _group(row: Row[Any]) -> InstanceGroup:
    return InstanceGroup(
        cluster_id=row.cluster_id,
        name=row.name,
        position=row.position,
        spec=row.spec,
        target_count=row.target_count,
        min_count=row.min_count,
        status=row.status,
    )


def _cluster(row: Row[Any]) -> Cluster:
    return Cluster(
        id=row.id,
        scope=Scope(row.account_id, row.region),
        name=row.name,
        arn=row.arn,
        status=row.status,
        creation_time=row.creation_time,
        spec=row.spec,
        ip_base=row.ip_base,
        next_ip=row.next_ip,
        seq=row.seq,
        legacy=row.legacy,
        failure_message=row.failure_message,
    )


def _saved_fields(cluster: Cluster) -> tuple[Any, ...]:
    """What ClusterRepository.save writes of a cluster."""
    return (cluster.status, cluster.failure_message, cluster.next_ip, cluster.legacy)


def _copy(cluster: Cluster) -> Cluster:
    """A cluster and its groups (as `get` loads them: no counts) that share nothing mutable
    with `cluster`."""
    return Cluster(
        id=cluster.id,
        scope=cluster.scope,
        name=cluster.name,
        arn=cluster.arn,
        status=cluster.status,
        creation_time=cluster.creation_time,
        spec=_json_copy(cluster.spec),
        ip_base=cluster.ip_base,
        next_ip=cluster.next_ip,
        seq=cluster.seq,
        legacy=cluster.legacy,
        failure_message=cluster.failure_message,
        groups=[
            InstanceGroup(
                cluster_id=group.cluster_id,
                name=group.name,
                position=group.position,
                spec=_json_copy(group.spec),
                target_count=group.target_count,
                min_count=group.min_count,
                status=group.status,
            )
            for group in cluster.groups
        ],
    )


def _json_copy(value: Any) -> Any:
    """A deep copy of a JSON document (dicts, lists and scalars), faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value
