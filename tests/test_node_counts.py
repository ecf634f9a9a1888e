"""group_node_counts' moves, kept in the unit of work and written once: what a transaction
reads of the counts includes its own moves not yet written, a savepoint rolled back takes
its moves with it (written or not), and a key known from a read is the stored one.

On SQLite, or PostgreSQL with HYPERPOD_TEST_STORE=postgresql."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from hyperpod_local.domain.model import Node
from hyperpod_local.store import counts
from hyperpod_local.store.database import Store
from hyperpod_local.store.schema import clusters, instance_groups
from hyperpod_local.store.unit_of_work import Tx
from tests.postgresql import ON_POSTGRESQL, database_for

_COUNTED = "cluster_id, group_name, instance_type, image_release_version, status"
_SPEC = {"InstanceGroups": []}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = database_for(tmp_path) if ON_POSTGRESQL else f"sqlite:///{tmp_path / 'counts.db'}"
    store = Store(url)
    with store.write() as tx:
        for seq, cluster in enumerate(("c1", "c2"), 1):
            tx.conn.execute(
                clusters.insert(),
                dict(
                    id=cluster,
                    account_id="1",
                    region="r",
                    name=cluster,
                    arn=f"arn:{cluster}",
                    status="InService",
                    creation_time=0.0,
                    spec=_SPEC,
                    ip_base=0,
                    next_ip=0,
                    seq=seq,
                    legacy=False,
                ),
            )
            for position, group in enumerate(("g0", "g1")):
                tx.conn.execute(
                    instance_groups.insert(),
                    dict(
                        cluster_id=cluster,
                        name=group,
                        position=position,
                        spec={},
                        target_count=4,
                        status="InService",
                    ),
                )
        tx.nodes.add_all([_node(index) for index in range(12)])
    try:
        yield store
    finally:
        store.close()


def _node(index: int) -> Node:
    return Node(
        "c1" if index < 8 else "c2",
        f"g{index % 2}",
        "ml.c5.xlarge",
        "Running",
        0.0,
        instance_id=f"i-{index:017x}",
        image_release_version="r1",
    )


def _exact(tx: Tx) -> list[tuple[object, ...]]:
    """What group_node_counts holds once the pending moves are written, checked against
    counting the nodes, in the same transaction."""
    tx.moves.flush()
    kept = tx.conn.execute(
        text(f"SELECT {_COUNTED}, count FROM group_node_counts ORDER BY 1, 2, 3, 4, 5")
    )
    counted = tx.conn.execute(
        text(f"SELECT {_COUNTED}, count(*) FROM nodes GROUP BY {_COUNTED} ORDER BY 1, 2, 3, 4, 5")
    )
    found = [tuple(row) for row in kept]
    assert found == [tuple(row) for row in counted]
    return found


def _committed(store: Store) -> list[tuple[object, ...]]:
    with store.read() as tx:
        return _exact(tx)


def _fail(tx: Tx, row_id: int) -> Node:
    node = tx.nodes.get(row_id)
    assert node is not None
    node.status = "Failure"
    tx.nodes.save(node)
    return node


def test_reads_in_the_transaction_see_its_moves_not_yet_written(store: Store) -> None:
    with store.write() as tx:
        _fail(tx, 1)
        _fail(tx, 3)
        # Not written yet: the reads add them.
        assert tx.nodes.serving_count("c1", "g0") == 2
        assert tx.nodes.serving_count("c1", "g0", ("Failure",)) == 2
        assert tx.nodes.member_count("c1", "g0") == 4
        health = tx.nodes.group_health("c1", "g0")
        assert (health.members, health.unhealthy) == (4, 2)
        assert [node.row_id for node in tx.nodes.failed_idle("c1", "g0")] == [1, 3]
        assert tx.nodes.running_count("c1", "g0") == 2
        assert tx.nodes.running_count("c1", None) == 6
        tx.nodes.remove(5)
        assert tx.nodes.member_count("c1", "g0") == 3
        cluster = tx.clusters.get("c1")
        assert cluster is not None
        described = tx.clusters.by_id(cluster.scope, "c1")
        assert described is not None
        g0 = next(group for group in described.groups if group.name == "g0")
        assert (g0.current_count, g0.failed_count) == (1, 2)
        by_status = {(c.cluster, c.group, c.status): c.count for c in counts.nodes_by_status(tx)}
        assert by_status[("c1", "g0", "Failure")] == 2 and by_status[("c1", "g0", "Running")] == 1
    assert ("c1", "g0", "ml.c5.xlarge", "r1", "Failure", 2) in _committed(store)


def test_a_step_rolled_back_leaves_no_move_written_or_pending(store: Store) -> None:
    with store.write() as tx:
        _fail(tx, 1)  # before the step: pending when it begins
        with pytest.raises(RuntimeError), tx.savepoint():
            _fail(tx, 3)
            # A read that writes what is pending (this step's and the one before it)...
            tx.nodes.running_by_group("c1", None)
            _fail(tx, 7)
            assert tx.nodes.serving_count("c1", "g0", ("Failure",)) == 3
            raise RuntimeError("the step fails")
        # ...is undone with the step: the move made before it is pending again.
        assert tx.nodes.serving_count("c1", "g0", ("Failure",)) == 1
        assert tx.nodes.serving_count("c1", "g1", ("Failure",)) == 0
        with tx.savepoint():
            _fail(tx, 2)
        assert tx.nodes.serving_count("c1", "g1", ("Failure",)) == 1
        _exact(tx)
    kept = _committed(store)
    assert ("c1", "g0", "ml.c5.xlarge", "r1", "Failure", 1) in kept
    assert ("c1", "g1", "ml.c5.xlarge", "r1", "Failure", 1) in kept


def test_a_recount_rolled_back_leaves_the_moves_it_took_in_pending(store: Store) -> None:
    with store.write() as tx:
        _fail(tx, 1)
        _fail(tx, 9)
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.nodes.set_status_all("c1", "ShuttingDown")
            assert tx.nodes.serving_count("c1", "g0", ("Failure",)) == 0
            raise RuntimeError("the step fails")
        assert tx.nodes.serving_count("c1", "g0", ("Failure",)) == 1
        assert tx.nodes.serving_count("c2", "g0", ("Failure",)) == 1
    kept = _committed(store)
    assert ("c1", "g0", "ml.c5.xlarge", "r1", "Failure", 1) in kept
    assert ("c2", "g0", "ml.c5.xlarge", "r1", "Failure", 1) in kept


def test_a_node_saved_after_its_row_changed_under_it_is_counted_from_the_store(
    store: Store,
) -> None:
    with store.write() as tx:
        # Read, then every node of the cluster moved to another release in bulk.
        node = tx.nodes.get(1)
        assert node is not None
        cluster = tx.clusters.get("c1")
        assert cluster is not None
        tx.clusters.make_legacy(cluster, "r0")
        node.status = "Failure"
        tx.nodes.save(node)
        _exact(tx)
        # Read, then changed in a step that is rolled back.
        other = tx.nodes.get(2)
        assert other is not None
        with pytest.raises(RuntimeError), tx.savepoint():
            other.status = "Failure"
            tx.nodes.save(other)
            raise RuntimeError("the step fails")
        other.status = "ShuttingDown"
        tx.nodes.save(other)
        # Claimed with a change to the object not saved, which is saved after.
        third = tx.nodes.get(4)
        assert third is not None
        third.status = "Failure"
        assert tx.nodes.claim(third, "replace")
        tx.nodes.save(third)
        # Two copies, saved in turn, the second removed by its row id.
        one, two = tx.nodes.get(6), tx.nodes.get(6)
        assert one is not None and two is not None
        two.status = "Failure"
        tx.nodes.save(two)
        one.status = "Pending"
        tx.nodes.save(one)
        tx.nodes.remove(6)
        _exact(tx)
    kept = _committed(store)
    assert ("c1", "g0", "ml.c5.xlarge", "r0", "Failure", 1) in kept
    assert ("c1", "g1", "ml.c5.xlarge", "r0", "Failure", 1) in kept


def test_savepoints_inside_savepoints_keep_what_each_rolled_back_did_not(store: Store) -> None:
    with store.write() as tx:
        _fail(tx, 1)
        with pytest.raises(RuntimeError), tx.savepoint():
            _fail(tx, 3)
            with pytest.raises(RuntimeError), tx.savepoint():
                _fail(tx, 5)
                tx.nodes.running_by_group("c1", None)  # writes all three
                raise RuntimeError("the inner step fails")
            assert tx.nodes.serving_count("c1", "g0", ("Failure",)) == 2
            with tx.savepoint():
                _fail(tx, 7)
                tx.nodes.running_by_group("c1", None)
            assert tx.nodes.serving_count("c1", "g0", ("Failure",)) == 3
            raise RuntimeError("the outer step fails")
        assert tx.nodes.serving_count("c1", "g0", ("Failure",)) == 1
    assert ("c1", "g0", "ml.c5.xlarge", "r1", "Failure", 1) in _committed(store)
