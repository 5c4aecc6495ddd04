"""Alembic environment: keel always hands in an open connection (see keel.store.db.migrate)."""

from __future__ import annotations

from alembic import context

from keel.store.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
