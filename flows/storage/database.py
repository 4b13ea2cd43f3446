"""The one database option: a PostgreSQL URL or `duckdb:PATH`, parsed, checked and redacted."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENV_VAR = "ROTATION_DATABASE_URL"
EMBEDDED_DEFAULT = "duckdb:rotation.duckdb"
ACCEPTED = "accepted: postgresql://[user[:password]@]host[:port]/dbname or duckdb:PATH"


class DatabaseUrlError(ValueError):
    """A --database value that is neither a PostgreSQL URL nor duckdb:PATH."""


@dataclass(frozen=True)
class Database:
    """Where the pipeline reads and writes; `url` holds the secret, `display` never does."""

    kind: str  # "postgres" | "duckdb"
    url: str
    path: Path | None = None

    @property
    def display(self) -> str:
        """Return the URL with any password replaced by ***."""
        return redact(self.url)

    @property
    def is_postgres(self) -> bool:
        """Return True for a PostgreSQL database."""
        return self.kind == "postgres"

    def __repr__(self) -> str:  # never leak the password through a repr in a traceback
        return f"Database({self.kind!r}, {self.display!r})"

    __str__ = __repr__


def redact(url: str) -> str:
    """Return `url` with the password of any user:password@ part replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
    if parts.password is None:
        return re.sub(r"(password=)[^\s&]+", r"\1***", url)
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    safe = urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
    return re.sub(r"(password=)[^\s&]+", r"\1***", safe)


def default_database_url() -> str:
    """Return ROTATION_DATABASE_URL when set, else the embedded default duckdb:rotation.duckdb."""
    return os.environ.get(ENV_VAR) or EMBEDDED_DEFAULT


def parse_database(value: str | None) -> Database:
    """Return the Database for a --database value (None: the default); raise DatabaseUrlError."""
    value = (value if value is not None else default_database_url()).strip()
    if value.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(value)
        if not parts.path.strip("/") and "dbname=" not in parts.query:
            raise DatabaseUrlError(f"database URL {redact(value)!r} names no database; {ACCEPTED}")
        return Database("postgres", value)
    if value.startswith("duckdb:"):
        path = value.removeprefix("duckdb:").removeprefix("//")
        if not path:
            raise DatabaseUrlError(f"duckdb: needs a file path; {ACCEPTED}")
        return Database("duckdb", value, Path(path).expanduser())
    raise DatabaseUrlError(f"unsupported database {redact(value)!r}; {ACCEPTED}")
