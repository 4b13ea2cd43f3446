"""Storage: the two backends (PostgreSQL, DuckDB) behind one interface."""

from __future__ import annotations

from flows.database import Database
from flows.storage.base import Replacement, Storage, StorageError, load_query


def open_storage(db: Database) -> Storage:
    """Return the Storage backend for `db` (connections open lazily)."""
    if db.is_postgres:
        from flows.storage.postgres import PostgresStorage

        return PostgresStorage(db)
    from flows.storage.duck import DuckStorage

    return DuckStorage(db)


__all__ = ["Replacement", "Storage", "StorageError", "load_query", "open_storage"]
