"""Statements run on the driver's own cursor, for the few that every request and engine step
runs: a cluster's row, by name or id, and its groups' (store/clusters.py).

SQLAlchemy compiles each one once for the connection's dialect, and its column types process
the values as SQLAlchemy's own results would (JSON text into objects on SQLite, integers into
booleans); only SQLAlchemy's execution is left out, which cost 60 to 80 µs a statement, several
times SQLite's answer: a computed DescribeCluster ran three. The rows are named tuples, read
as a SQLAlchemy Row is (`row.name`)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Select


@dataclass
class _Compiled:
    sql: str
    # The bind names in the statement's order for a positional paramstyle (SQLite's ?),
    # None for a named one (psycopg's %(name)s).
    order: tuple[str, ...] | None
    construct: Callable[[dict[str, Any]], dict[str, Any]]
    columns: list[Any]
    row: Any
    # Each column's, made on the first execution: a type's processor may depend on the type
    # the driver says it answered with (psycopg's numbers).
    processors: tuple[Callable[[Any], Any] | None, ...] | None = None


class Prepared:
    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[Any]:
        dialect = conn.dialect
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _compile(self.statement, dialect)
        values = compiled.construct(params)
        bound = values if compiled.order is None else [values[name] for name in compiled.order]
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        try:
            cursor.execute(compiled.sql, bound)
            found = cursor.fetchall()
            processors = compiled.processors
            if processors is None:
                processors = compiled.processors = tuple(
                    column.type.dialect_impl(dialect).result_processor(dialect, described[1])
                    for column, described in zip(compiled.columns, cursor.description, strict=True)
                )
        finally:
            cursor.close()
        make = compiled.row._make
        if not any(processors):
            return [make(row) for row in found]
        return [
            make(
                value if process is None else process(value)
                for process, value in zip(processors, row, strict=True)
            )
            for row in found
        ]

    def first(self, conn: Connection, params: dict[str, Any]) -> Any:
        found = self.rows(conn, params)
        return found[0] if found else None


def _compile(statement: Select[Any], dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    columns = list(statement.selected_columns)
    return _Compiled(
        sql=str(compiled),
        order=None if compiled.positiontup is None else tuple(compiled.positiontup),
        construct=compiled.construct_params,
        columns=columns,
        row=namedtuple("Row", [column.key for column in columns]),  # type: ignore[misc]
    )
