"""The node counts are kept by the code that writes nodes: the triggers go.

`group_node_counts` was kept by triggers on `nodes` (revision 0005 on SQLite, 0009 on
PostgreSQL), three statements for every row written; the repositories that write nodes now
move the counts themselves, in the same transaction (store/node_counts.py). The counts are
taken afresh from the nodes once, so a store leaves this revision exact whatever it held.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Copies, not imports: a released revision must do the same thing however the running code
# changes later.
_TRIGGERS = ("nodes_counted_in", "nodes_counted_out", "nodes_counted_moved")
_KEY = ("cluster_id", "group_name", "instance_type", "image_release_version", "status")
_COLUMNS = ", ".join(_KEY)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON nodes" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS nodes_counted()")
    op.execute("DELETE FROM group_node_counts")
    op.execute(
        f"INSERT INTO group_node_counts ({_COLUMNS}, count) "
        f"SELECT {_COLUMNS}, count(*) FROM nodes GROUP BY {_COLUMNS}"
    )


def _match(row: str) -> str:
    return " AND ".join(f"{column} = {row}.{column}" for column in _KEY)


def _count_in(row: str, counted: str) -> str:
    values = ", ".join(f"{row}.{column}" for column in _KEY)
    return (
        f"INSERT INTO group_node_counts ({_COLUMNS}, count) VALUES ({values}, 1) "
        f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET count = {counted} + 1;"
    )


def _count_out(row: str) -> str:
    return (
        f"UPDATE group_node_counts SET count = count - 1 WHERE {_match(row)}; "
        f"DELETE FROM group_node_counts WHERE {_match(row)} AND count <= 0;"
    )


def downgrade() -> None:
    """The triggers of revision 0009, as it left each dialect."""
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in _KEY)
        op.execute(
            "CREATE FUNCTION nodes_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP <> 'INSERT' THEN {_count_out('OLD')} END IF; "
            f"IF TG_OP <> 'DELETE' THEN {_count_in('NEW', 'group_node_counts.count')} END IF; "
            "RETURN NULL; END $$"
        )
        for name, when in (("in", "INSERT"), ("out", "DELETE")):
            op.execute(
                f"CREATE TRIGGER nodes_counted_{name} AFTER {when} ON nodes "
                "FOR EACH ROW EXECUTE FUNCTION nodes_counted()"
            )
        op.execute(
            f"CREATE TRIGGER nodes_counted_moved AFTER UPDATE OF {_COLUMNS} ON nodes "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION nodes_counted()"
        )
        return
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in _KEY)
    op.execute(
        "CREATE TRIGGER nodes_counted_in AFTER INSERT ON nodes "
        f"BEGIN {_count_in('NEW', 'count')} END"
    )
    op.execute(
        f"CREATE TRIGGER nodes_counted_out AFTER DELETE ON nodes BEGIN {_count_out('OLD')} END"
    )
    op.execute(
        f"CREATE TRIGGER nodes_counted_moved AFTER UPDATE OF {_COLUMNS} ON nodes "
        f"WHEN {changed} BEGIN {_count_out('OLD')} {_count_in('NEW', 'count')} END"
    )
