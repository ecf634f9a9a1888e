"""Persistence: SQLAlchemy Core tables, repositories and the unit of work."""

from hyperpod_local.store.database import Store

__all__ = ["Store"]
