"""Where a flow run finds its database: the command line's own, the environment, or a
Prefect Secret block; never a flow parameter with a password, never a silent default.

`rotation run …` hands its database to the flow inside the process (`for_this_process`):
the URL is not put in the environment, which the embedded Prefect server would inherit. A
deployment's run (a Prefect worker) reads ROTATION_DATABASE_URL, else the Secret block
`rotation-database-url`; with neither it fails saying so. The embedded default
(duckdb:rotation.duckdb) is the command line's only.

A read replica is found the same way (`resolve_replica`): the command line's `--replica` (or
its ROTATION_REPLICA_URL), else a deployment's ROTATION_REPLICA_URL, else the Secret block
`rotation-replica-url`; with none the run reads the database itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from flows.storage.database import (
    ENV_VAR,
    REPLICA_ENV_VAR,
    Database,
    DatabaseUrlError,
    parse_database,
    parse_replica,
)

SECRET_BLOCK = "rotation-database-url"
REPLICA_SECRET_BLOCK = "rotation-replica-url"
NOT_CONFIGURED = (
    f"no database configured: {ENV_VAR} is not set in this process's environment and "
    f"there is no Prefect Secret block named {SECRET_BLOCK!r}; set one of them where the "
    "flow runs (the worker's environment, or `prefect block create secret`)"
)
#: The command line's database and read replica (or None), while its flow runs.
_process_database: list[tuple[Database, Database | None]] = []


@contextmanager
def for_this_process(db: Database, replica: Database | None = None) -> Iterator[Database]:
    """Make `db` (read on `replica` when given) the database of the flows run by this process
    until the block ends."""
    _process_database.append((db, replica))
    try:
        yield db
    finally:
        _process_database.pop()


def database_url_from_secret_block(block: str = SECRET_BLOCK) -> str | None:
    """Return the Secret block's value, or None when there is no such block."""
    from prefect.blocks.system import Secret  # lazy: Prefect takes 1.6 s to import
    from prefect.exceptions import ObjectNotFound  # lazy: as above

    try:
        return Secret.load(block).get()
    except ValueError as exc:
        if isinstance(exc.__cause__, ObjectNotFound):
            return None
        raise


def resolve_database(database: str | None) -> Database:
    """Return the database of a flow run: the parameter, the command line's, the environment,
    else the Secret block; DatabaseUrlError (one line) when none is configured.

    A `database` parameter holding a password is refused: Prefect stores flow parameters.
    """
    if database is not None:
        db = parse_database(database)
        if db.has_password:
            raise DatabaseUrlError(
                f"the database parameter {db.display!r} holds a password, which Prefect "
                f"stores with the run's parameters: give it by {ENV_VAR} or the Secret "
                f"block {SECRET_BLOCK!r} instead"
            )
        return db
    if _process_database:
        return _process_database[-1][0]
    url = os.environ.get(ENV_VAR) or database_url_from_secret_block()
    if not url:
        raise DatabaseUrlError(NOT_CONFIGURED)
    return parse_database(url)


def resolve_replica(replica: str | None, db: Database) -> Database | None:
    """Return the read replica of a flow run on `db`: the parameter, the command line's, the
    environment, else the Secret block; None (read `db` itself) when none is configured.

    A `replica` parameter holding a password is refused, as the database parameter is.
    """
    if replica is not None and replica.strip():
        found = parse_replica(replica, db)
        if found.has_password:
            raise DatabaseUrlError(
                f"the replica parameter {found.display!r} holds a password, which Prefect "
                f"stores with the run's parameters: give it by {REPLICA_ENV_VAR} or the Secret "
                f"block {REPLICA_SECRET_BLOCK!r} instead"
            )
        return found
    if _process_database:
        return _process_database[-1][1]
    url = os.environ.get(REPLICA_ENV_VAR) or database_url_from_secret_block(REPLICA_SECRET_BLOCK)
    return parse_replica(url, db)
