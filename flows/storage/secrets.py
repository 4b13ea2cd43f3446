"""Where a deployed flow finds its database URL: the environment, else a Prefect Secret block."""

from __future__ import annotations

import os

from flows.storage.database import ENV_VAR, Database, default_database_url, parse_database

SECRET_BLOCK = "rotation-database-url"


def database_url_from_secret_block(block: str = SECRET_BLOCK) -> str:
    """Return ROTATION_DATABASE_URL, else the Secret block's value, else the embedded default."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    try:
        from prefect.blocks.system import Secret  # lazy: Prefect takes 1.6 s to import

        return Secret.load(block).get()
    except Exception:
        return default_database_url()


def resolve_database(database: str | None) -> Database:
    """Return the database of a flow run: the argument, else the environment or Secret block."""
    return parse_database(database if database is not None else database_url_from_secret_block())
