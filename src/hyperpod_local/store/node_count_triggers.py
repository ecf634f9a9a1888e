"""The triggers that keep `group_node_counts` (schema.py) in step with `nodes`, in SQLite's
dialect and in PostgreSQL's (PL/pgSQL).

A node counts in the row of its (cluster, group, type, release, status); each insert,
delete or change of one of those columns moves it between rows in the same statement's
transaction, so no code path that writes nodes can forget it.
"""

from __future__ import annotations

from sqlalchemy import DDL

_KEY = ("cluster_id", "group_name", "instance_type", "image_release_version", "status")
_COLUMNS = ", ".join(_KEY)


def _match(row: str) -> str:
    return " AND ".join(f"{column} = {row}.{column}" for column in _KEY)


def _count_in(row: str, counted: str = "count") -> str:
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


_CHANGED_SQLITE = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in _KEY)
_CHANGED_POSTGRESQL = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in _KEY)

SQLITE_TRIGGERS = (
    DDL(f"CREATE TRIGGER nodes_counted_in AFTER INSERT ON nodes BEGIN {_count_in('NEW')} END"),
    DDL(f"CREATE TRIGGER nodes_counted_out AFTER DELETE ON nodes BEGIN {_count_out('OLD')} END"),
    DDL(
        f"CREATE TRIGGER nodes_counted_moved AFTER UPDATE OF {_COLUMNS} ON nodes "
        f"WHEN {_CHANGED_SQLITE} BEGIN {_count_out('OLD')} {_count_in('NEW')} END"
    ),
)

# One function for the three triggers: PostgreSQL's triggers call functions.
POSTGRESQL_TRIGGERS = (
    DDL(
        "CREATE FUNCTION nodes_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_count_out('OLD')} END IF; "
        f"IF TG_OP <> 'DELETE' THEN {_count_in('NEW', 'group_node_counts.count')} END IF; "
        "RETURN NULL; END $$"
    ),
    DDL(
        "CREATE TRIGGER nodes_counted_in AFTER INSERT ON nodes "
        "FOR EACH ROW EXECUTE FUNCTION nodes_counted()"
    ),
    DDL(
        "CREATE TRIGGER nodes_counted_out AFTER DELETE ON nodes "
        "FOR EACH ROW EXECUTE FUNCTION nodes_counted()"
    ),
    DDL(
        f"CREATE TRIGGER nodes_counted_moved AFTER UPDATE OF {_COLUMNS} ON nodes "
        f"FOR EACH ROW WHEN ({_CHANGED_POSTGRESQL}) EXECUTE FUNCTION nodes_counted()"
    ),
)
