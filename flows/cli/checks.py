"""What a command checks before its handler's module is imported: the database is usable
(one line at once, no retry: a missing database, a refused connection, no schema), and so is
its read replica (a standby of it)."""

from __future__ import annotations

from flows.storage.backends import open_storage
from flows.storage.database import Database
from flows.storage.replica import check_replica


def preflight(db: Database, replica: Database | None = None) -> None:
    """Raise StorageError (one line) when `db`, or its read `replica`, cannot be used: before
    Prefect starts."""
    with open_storage(db) as storage:
        storage.check(retry=False)
        if replica is not None:
            check_replica(storage, replica, retry=False)
