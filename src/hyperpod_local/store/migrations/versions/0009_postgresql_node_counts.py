"""PostgreSQL's node-count triggers and partial index, which its stores lacked until now.

A store in PostgreSQL could be made before this release only through Settings.database_url
(no flag named it): `create_all` gave it `group_node_counts` but not revision 0005's
triggers, which are SQLite's, nor revision 0008's partial index, so its counts were never
kept. This revision adds both to such a store and counts its nodes afresh. A SQLite store
has everything already: nothing changes there.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# A copy, not an import of store/node_count_triggers.py: a released revision must do the
# same thing however the running code changes later.
_KEY = ("cluster_id", "group_name", "instance_type", "image_release_version", "status")
_COLUMNS = ", ".join(_KEY)
_MATCH_OLD = " AND ".join(f"{column} = OLD.{column}" for column in _KEY)
_NEW = ", ".join(f"NEW.{column}" for column in _KEY)
_CHANGED = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in _KEY)

_FUNCTION = (
    "CREATE FUNCTION nodes_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP <> 'INSERT' THEN "
    f"UPDATE group_node_counts SET count = count - 1 WHERE {_MATCH_OLD}; "
    f"DELETE FROM group_node_counts WHERE {_MATCH_OLD} AND count <= 0; "
    "END IF; "
    "IF TG_OP <> 'DELETE' THEN "
    f"INSERT INTO group_node_counts ({_COLUMNS}, count) VALUES ({_NEW}, 1) "
    f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET count = group_node_counts.count + 1; "
    "END IF; "
    "RETURN NULL; END $$"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER nodes_counted_in AFTER INSERT ON nodes "
        "FOR EACH ROW EXECUTE FUNCTION nodes_counted()"
    )
    op.execute(
        "CREATE TRIGGER nodes_counted_out AFTER DELETE ON nodes "
        "FOR EACH ROW EXECUTE FUNCTION nodes_counted()"
    )
    op.execute(
        f"CREATE TRIGGER nodes_counted_moved AFTER UPDATE OF {_COLUMNS} ON nodes "
        f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION nodes_counted()"
    )
    op.execute("DELETE FROM group_node_counts")
    op.execute(
        f"INSERT INTO group_node_counts ({_COLUMNS}, count) "
        f"SELECT {_COLUMNS}, count(*) FROM nodes GROUP BY {_COLUMNS}"
    )
    op.execute("DROP INDEX ix_nodes_busy")
    op.execute(
        "CREATE INDEX ix_nodes_busy ON nodes (cluster_id, group_name, busy) WHERE busy IS NOT NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_nodes_busy")
    op.execute("CREATE INDEX ix_nodes_busy ON nodes (cluster_id, group_name, busy)")
    for name in ("nodes_counted_moved", "nodes_counted_out", "nodes_counted_in"):
        op.execute(f"DROP TRIGGER {name} ON nodes")
    op.execute("DROP FUNCTION nodes_counted()")
