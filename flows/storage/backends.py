"""The two storage backends behind one interface: open_storage picks one for a database."""

from __future__ import annotations

from flows.storage.base import Storage
from flows.storage.database import Database
from flows.storage.duck import DuckStorage
from flows.storage.postgres import PostgresStorage


def open_storage(db: Database) -> Storage:
    """Return the Storage backend for `db` (connections open lazily)."""
    return PostgresStorage(db) if db.is_postgres else DuckStorage(db)
