"""Keyset pagination: a page is one indexed range scan, whatever the table's size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, tuple_


def keyset(
    stmt: Select[Any],
    key: Sequence[ColumnElement[Any]],
    after: Sequence[Any] | None,
    *,
    descending: bool,
    limit: int,
) -> Select[Any]:
    """Rows strictly after `after` in key order, one more than `limit` to tell if more remain."""
    if after is not None:
        bound = tuple_(*key) < tuple_(*after) if descending else tuple_(*key) > tuple_(*after)
        stmt = stmt.where(bound)
    order = [column.desc() if descending else column.asc() for column in key]
    return stmt.order_by(*order).limit(limit + 1)
