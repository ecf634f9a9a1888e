"""Alembic environment: migrations run on the connection the Store hands over."""

from __future__ import annotations

from alembic import context

from hyperpod_local.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the Store always passes its connection
    raise RuntimeError("run migrations through hyperpod_local.store.database.upgrade()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
