"""Where a deployed flow finds its database URL: the environment, else a Prefect Secret block."""

from __future__ import annotations

import os

from flows.database import ENV_VAR, default_database_url

SECRET_BLOCK = "rotation-database-url"


def database_url_from_secret_block(block: str = SECRET_BLOCK) -> str:
    """Return ROTATION_DATABASE_URL, else the Secret block's value, else the embedded default."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    try:
        from prefect.blocks.system import Secret

        return Secret.load(block).get()
    except Exception:
        return default_database_url()
