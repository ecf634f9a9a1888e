"""Many rows through one statement with no per-row work in SQLAlchemy.

An executemany through SQLAlchemy processes each row's parameters in Python (a dict a row,
each value through its type), which for a fleet's nodes and events cost as much as SQLite's
own work. Here the statement is compiled once per dialect and the rows go straight to the
driver, in the driver's parameter style. Only for columns whose values the driver takes as
they are (text, numbers, None); a JSON column's values are given already serialized.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.expression import Executable

_COMPILED: dict[tuple[int, str], Compiled] = {}


def _compiled(stmt: Executable, conn: Connection) -> Compiled:
    key = (id(stmt), conn.dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        found = stmt.compile(dialect=conn.dialect)  # type: ignore[attr-defined]
        _COMPILED[key] = found
    return found


def executemany(
    conn: Connection, stmt: Executable, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Run `stmt` (built once, at import: it is cached by identity) for each row, a row
    giving the values of its bind parameters `names` in order."""
    compiled = _compiled(stmt, conn)
    if compiled.positional:
        at = {name: index for index, name in enumerate(names)}
        picks = [at[name] for name in compiled.positiontup or ()]
        if picks == list(range(len(names))):
            # Already in the statement's order (the usual case: `names` is its column list):
            # the rows go as they are, with no tuple made again for each.
            batch = rows if isinstance(rows, list) else list(rows)
        else:
            batch = [tuple(row[i] for i in picks) for row in rows]
    else:
        batch = [dict(zip(names, row, strict=True)) for row in rows]
    if batch:
        conn.exec_driver_sql(compiled.string, batch)
