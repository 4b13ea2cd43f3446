"""What a command checks before its handler's module is imported: the database is usable
(one line at once, no retry: a missing database, a refused connection, no schema)."""

from __future__ import annotations

from flows.storage.backends import open_storage
from flows.storage.database import Database


def preflight(db: Database) -> None:
    """Raise StorageError (one line) when `db` cannot be used: before Prefect starts."""
    with open_storage(db) as storage:
        storage.check(retry=False)
