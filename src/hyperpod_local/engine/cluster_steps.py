"""Steps of a cluster's own lifecycle: creation, scaling of its groups, deletion."""

from __future__ import annotations

import itertools

from hyperpod_local.domain import events as text
from hyperpod_local.domain.cluster_rules import new_node, place_instance
from hyperpod_local.domain.eligibility import slurm_head_groups
from hyperpod_local.domain.events import EventLog
from hyperpod_local.domain.lifecycle import move_cluster, move_node
from hyperpod_local.domain.model import (
    Cluster,
    ClusterStatus,
    InstanceGroup,
    Node,
    NodeStatus,
    Task,
    in_min_count_phase,
)
from hyperpod_local.engine.context import StepContext, step
from hyperpod_local.engine.followups import (
    fail_creation,
    group_gone,
    group_ready,
    lifecycle_event,
    maybe_cluster_created,
    provisioning_failed,
    settle_scaling,
    start_checks,
)
from hyperpod_local.engine.operations import HEAD_DEADLINE, MIN_COUNT_DEADLINE
from hyperpod_local.engine.recovery import resume_recoveries
from hyperpod_local.engine.rollback import ROLLBACK_STEP, roll_back_min_count
from hyperpod_local.providers.base import LaunchError

# Creation -----------------------------------------------------------------------------------


# Nodes one step handles at most: a big cluster's work is split over several transactions at
# the same HyperPod instant, so no transaction holds the store for long.
CHUNK = 500


@step("cluster_create")
def cluster_create(ctx: StepContext, task: Task) -> Task | None:
    """Cluster-level resources are ready: launch every node's instance (CHUNK at a time);
    each group's lifecycle scripts then run until the group's provision task. A classic
    cluster's nodes come into being here, each as its instance launches: CreateCluster wrote
    none, since HyperPod shows a classic node only once it has an instance."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is None:
        return None
    log = ctx.log(cluster)
    done: list[str] = task.data.get("done", [])
    # A Continuous Slurm cluster's controller (and login) group comes up first; the others
    # start once it is InService (maybe_cluster_created schedules this step again).
    heads = slurm_head_groups(cluster) if cluster.continuous else []
    budget = CHUNK
    try:
        for group in cluster.groups:
            if group.name in done:
                continue
            if heads and cluster.status == ClusterStatus.CREATING and group.name not in heads:
                continue
            if group.name not in task.data.get("started", []):
                log.group(group.name, text.group_creation_started(group.name, cluster.name))
                task.data = {**task.data, "started": [*task.data.get("started", []), group.name]}
            try:
                budget -= launch_waiting_nodes(
                    ctx, cluster, group, log, budget, make=_unmade(ctx, cluster, group)
                )
            except LaunchError as error:
                fail_creation(ctx, cluster, str(error), log, keep=task.id)
                return None
            if budget <= 0 and (
                _unmade(ctx, cluster, group)
                or ctx.tx.nodes.some_in_group(cluster.id, group.name, 1, launched=False, busy=None)
            ):
                return task  # more of this group to launch, at the same instant
            done.append(group.name)
            task.data = {**task.data, "done": done}
            if ctx.tx.nodes.some_in_group(cluster.id, group.name, 1, launched=True):
                ctx.later(
                    Task(
                        cluster_id=cluster.id,
                        group_name=group.name,
                        kind="group_provision",
                        step="ready",
                        due_at=0,
                    ),
                    ctx.durations.provision(group.instance_types[0]),
                )
            else:
                group_ready(ctx, cluster, group, log)
            if budget <= 0:
                return task
        if cluster.continuous and not heads and cluster.status == ClusterStatus.CREATING:
            # Continuous EKS clusters are InService once cluster-level resources are; nodes
            # go on.
            move_cluster(cluster, "created")
            log.cluster(text.cluster_creation_completed(cluster.name))
        maybe_cluster_created(ctx, cluster, log)
        return None
    finally:
        ctx.tx.clusters.save(cluster)
        ctx.tx.events.add_all(log.events)


def _unmade(ctx: StepContext, cluster: Cluster, group: InstanceGroup) -> int:
    """The nodes of a classic cluster's group still to come into being: asked for (its
    TargetCount) and not yet made. A Continuous cluster's nodes were all made with it."""
    if cluster.continuous:
        return 0
    return max(0, group.target_count - ctx.tx.nodes.member_count(cluster.id, group.name))


def launch_waiting_nodes(
    ctx: StepContext,
    cluster: Cluster,
    group: InstanceGroup,
    log: EventLog,
    limit: int,
    *,
    make: int = 0,
    retry_failures: bool = False,
    operation_id: str | None = None,
) -> int:
    """Launch instances for up to `limit` nodes of the group: first those that have none,
    then up to `make` new ones, each written once, already launched (a classic creation's);
    returns how many nodes it took up. A classic cluster's creation fails on the first launch
    that cannot be had (LaunchError); a Continuous cluster's node waits in Failure and is
    tried again."""
    # A node made here exists only if it launched: one that could wait in Failure for a
    # retry would need its row first.
    assert not (make and (cluster.continuous or retry_failures))
    waiting = ctx.tx.nodes.some_in_group(cluster.id, group.name, limit, launched=False, busy=None)
    count = min(make, limit - len(waiting))
    made = [new_node(cluster, group, ctx.ids, ctx.now) for _ in range(count)]
    taken = [*waiting, *made] if made else waiting
    shortage: LaunchError | None = None
    try:
        ctx.provider.check_capacity(ctx.tx, cluster, group)
    except LaunchError as error:
        shortage = error
    launched: list[str] = []
    if shortage is None and taken:
        try:
            launched = ctx.provider.launch_many(ctx.tx, cluster, group, ctx.now, len(taken))
        except LaunchError as error:
            # Room for some but not all (a server's --max-nodes of process nodes): the
            # batch is short as a whole, as a capacity shortage would leave it.
            shortage = error
    for node, instance_id in itertools.zip_longest(taken, launched):
        log.instance(group.name, None, text.instance_creation_started(cluster.name, group.name))
        if instance_id is None:
            assert shortage is not None
            if not (cluster.continuous or retry_failures):
                raise shortage
            move_node(node, "launch_failed")
            provisioning_failed(ctx, cluster, group, node, str(shortage), log, operation_id)
            continue
        place_instance(cluster, node, instance_id, ctx.now, keep_address=False)
        log.instance(
            group.name, None, text.instance_provisioned(instance_id, cluster.name, group.name)
        )
        lifecycle_event(log, group, node, "Started")
    ctx.tx.nodes.save_all(waiting)
    ctx.tx.nodes.add_all(made)
    return len(taken)


@step("group_provision")
def group_provision(ctx: StepContext, task: Task) -> Task | None:
    """Lifecycle scripts finished: the group's launched nodes are Running (CHUNK at a time),
    or, where an injected lifecycle-script fault strikes, failed."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(task.group_name or "") if cluster else None
    if cluster is None or group is None:
        return group_gone(ctx, cluster, task)
    log = ctx.log(cluster)
    ready = ctx.tx.nodes.some_in_group(
        cluster.id, group.name, CHUNK, launched=True, status=NodeStatus.PENDING, busy=None
    )
    if ctx.provider.lifecycle_scripts_running(ctx.tx, cluster, group, ready):
        # Scripts that take their real time (the process provider's): look again soon.
        task.due_at = round(ctx.now + ctx.durations.script_poll, 3)
        return task
    failures = ctx.provider.run_lifecycle_scripts(ctx.tx, cluster, group, ready)
    checks: list[str] = group.spec.get("OnStartDeepHealthChecks") or []
    checking: list[Node] = []
    try:
        for node in ready:
            assert node.instance_id is not None
            failure = failures.get(node.row_id or -1)
            if failure is not None:
                if cluster.status == ClusterStatus.CREATING and not cluster.continuous:
                    fail_creation(ctx, cluster, failure, log, keep=task.id)
                    return None
                lifecycle_event(log, group, node, "Failed")
                move_node(node, "provisioning_failed")
                provisioning_failed(ctx, cluster, group, node, failure, log, task.operation_id)
                continue
            lifecycle_event(log, group, node, "Succeeded")
            log.instance(
                group.name,
                node.instance_id,
                text.instance_creation_completed(node.instance_id, cluster.name, group.name),
            )
            if checks:
                checking.append(node)
            else:
                move_node(node, "provisioned")
        ctx.tx.nodes.save_all(ready)
        if checking:
            start_checks(
                ctx.tx,
                cluster,
                group,
                checking,
                checks,
                ctx.now,
                ctx.durations,
                log,
                operation_id=task.operation_id,
            )
        if len(ready) == CHUNK:
            return task  # more of the group, at the same instant
        if not checking:
            group_ready(ctx, cluster, group, log)
        maybe_cluster_created(ctx, cluster, log)
        if task.operation_id:
            settle_scaling(ctx, cluster, task.operation_id, log)
        ctx.tx.clusters.save(cluster)
        resume_recoveries(ctx, cluster, group, log)
        return None
    finally:
        ctx.tx.events.add_all(log.events)


# Scaling -------------------------------------------------------------------------------------


@step("group_scale")
def group_scale(ctx: StepContext, task: Task) -> Task | None:
    """Nodes added to a group (UpdateCluster, BatchAddClusterNodes) launch; their lifecycle
    scripts then run until the group's provision task. A launch that fails is retried."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(task.group_name or "") if cluster else None
    if cluster is None or group is None:
        return group_gone(ctx, cluster, task)
    log = ctx.log(cluster)
    try:
        taken = launch_waiting_nodes(
            ctx, cluster, group, log, CHUNK, retry_failures=True, operation_id=task.operation_id
        )
        if taken == CHUNK:
            return task  # more to launch, at the same instant
        provision = Task(
            cluster_id=cluster.id,
            group_name=group.name,
            kind="group_provision",
            step="ready",
            due_at=0,
            operation_id=task.operation_id,
        )
        ctx.later(provision, ctx.durations.provision(group.instance_types[0]))
        return None
    finally:
        ctx.tx.clusters.save(cluster)
        ctx.tx.events.add_all(log.events)


@step(ROLLBACK_STEP)
def update_rollback(ctx: StepContext, task: Task) -> Task | None:
    """A rolled-back update's own work is over: once its terminations are too, the cluster is
    InService again."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is not None and task.operation_id:
        log = ctx.log(cluster)
        settle_scaling(ctx, cluster, task.operation_id, log)
        ctx.tx.events.add_all(log.events)
    return None


@step(HEAD_DEADLINE)
def slurm_head_deadline(ctx: StepContext, task: Task) -> Task | None:
    """`min_count_window` after CreateCluster, a Continuous Slurm cluster still without its
    controller (or login node) fails, as a creation that cannot be had does."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is None or cluster.status != ClusterStatus.CREATING:
        return None
    log = ctx.log(cluster)
    reasons = [
        node.status_message
        for name in slurm_head_groups(cluster)
        for node in ctx.tx.nodes.in_group(cluster.id, name)
        if node.status_message
    ]
    hours = ctx.durations.nominal("min_count_window") / 3600
    message = (
        f"The Slurm controller and login nodes could not all be provisioned within {hours:g} hours"
    )
    fail_creation(
        ctx, cluster, f"{message}: {reasons[0]}" if reasons else f"{message}.", log, keep=task.id
    )
    ctx.tx.events.add_all(log.events)
    return None


@step(MIN_COUNT_DEADLINE)
def min_count_deadline(ctx: StepContext, task: Task) -> Task | None:
    """`min_count_window` after a group was asked for a MinCount: if it still has not reached
    it (group_ready would have removed this task), it rolls back."""
    cluster = ctx.tx.clusters.get(task.cluster_id)
    group = cluster.group(task.group_name or "") if cluster else None
    if cluster is None or group is None or not in_min_count_phase(cluster, group):
        return None
    log = ctx.log(cluster)
    roll_back_min_count(ctx, cluster, group, task, log)
    ctx.tx.events.add_all(log.events)
    return None


# Deletion -----------------------------------------------------------------------------------


@step("cluster_delete")
def cluster_delete(ctx: StepContext, task: Task) -> Task | None:
    cluster = ctx.tx.clusters.get(task.cluster_id)
    if cluster is None:
        return None
    ctx.provider.terminate(ctx.tx, ctx.provider.instances(ctx.tx, cluster.id))
    ctx.tx.tasks.remove_for_cluster(cluster.id, keep=task.id)
    ctx.tx.events.remove_for_cluster(cluster.id)
    ctx.tx.faults.forget_cluster(cluster.id)
    ctx.tx.tokens.forget_cluster(cluster.id)
    ctx.tx.tags.remove(cluster.arn)
    # Its extensions, cluster policy and compute allocations go with it, tags and all.
    for arn in ctx.tx.extensions.arns_of_cluster(cluster.id):
        ctx.tx.tags.remove(arn)
    for arn in ctx.tx.policies.arns_of_cluster(cluster.id):
        ctx.tx.tags.remove(arn)
    ctx.tx.extensions.forget_cluster(cluster.id)
    ctx.tx.policies.forget_cluster(cluster.id)
    ctx.tx.clusters.remove(cluster.id)
    return None
