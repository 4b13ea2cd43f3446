"""The one database option: a PostgreSQL URL or `duckdb:PATH`, parsed, checked and redacted.

A PostgreSQL URL is parsed by libpq's own conninfo parser (through psycopg), never by a
pattern. Its password is then known by value: every text this process shows or records
(`redact`) has it, raw or percent-encoded, replaced by ***. A password holding characters
that mean something in a URL (# ? @ / a space, a % not starting an escape) makes the URL
ambiguous, whatever parser reads it next: such a URL is refused with one line, redacted,
saying to percent-encode them.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

ENV_VAR = "ROTATION_DATABASE_URL"
REPLICA_ENV_VAR = "ROTATION_REPLICA_URL"  # its read replica (flows/storage/replica.py)
EMBEDDED_DEFAULT = "duckdb:rotation.duckdb"
ACCEPTED = "accepted: postgresql://[user[:password]@]host[:port]/dbname or duckdb:PATH"
MASK = "***"
#: Characters a URL's userinfo may not hold unencoded (RFC 3986: they end or split it).
RESERVED_IN_USERINFO = {"#": "%23", "?": "%3F", "@": "%40", "/": "%2F", " ": "%20"}
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

_secrets: set[str] = set()  # every password parsed in this process, in the forms it may take
_secrets_lock = threading.Lock()


class DatabaseUrlError(ValueError):
    """A --database value that is neither a PostgreSQL URL nor duckdb:PATH."""


@dataclass(frozen=True)
class Database:
    """Where the pipeline reads and writes; `url` holds the secret, `display` never does."""

    kind: str  # "postgres" | "duckdb"
    url: str = field(repr=False)
    path: Path | None = None
    display: str = ""
    has_password: bool = False  # the URL itself holds one (userinfo or password=)

    @property
    def is_postgres(self) -> bool:
        """Return True for a PostgreSQL database."""
        return self.kind == "postgres"

    def __repr__(self) -> str:  # never leak the password through a repr in a traceback
        return f"Database({self.kind!r}, {self.display!r})"

    __str__ = __repr__


def remember_secret(secret: str | None) -> None:
    """Have `redact` mask `secret` (and its percent-encoded forms) from now on."""
    if not secret:
        return
    with _secrets_lock:
        _secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})


def redact(text: str) -> str:
    """Return `text` with every password this process has parsed replaced by ***."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # longest first: no partial masks
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def default_database_url() -> str:
    """Return ROTATION_DATABASE_URL when set, else the embedded default duckdb:rotation.duckdb."""
    return os.environ.get(ENV_VAR) or EMBEDDED_DEFAULT


def _masked_userinfo(value: str) -> str:
    """Return a PostgreSQL URL with everything between its user and its last '@' masked."""
    scheme, _, rest = value.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return value
    user = re.split(r"[:#?/@ ]", userinfo, maxsplit=1)[0]
    return f"{scheme}://{user}:{MASK}@{host}"


def _check_userinfo(value: str) -> None:
    """Raise DatabaseUrlError (redacted) when the URL's user or password is ambiguous."""
    userinfo, at, _ = value.partition("://")[2].rpartition("@")
    found = [c for c in RESERVED_IN_USERINFO if at and c in userinfo]
    if _BAD_PERCENT.search(userinfo):
        found.append("%")
    if "#" in value and not found:  # a fragment: libpq and urllib would read different URLs
        found.append("#")
    if found:
        codes = ", ".join(
            f"{'a space' if c == ' ' else c} as {RESERVED_IN_USERINFO.get(c, '%25')}" for c in found
        )
        raise DatabaseUrlError(
            f"database URL {_masked_userinfo(value)!r} is ambiguous: its user or password "
            f"holds characters that mean something in a URL; percent-encode them ({codes})"
        )


def _display(value: str) -> str:
    """Return the URL with its password (userinfo or `password=` parameter) replaced by ***.

    The password is remembered first (`remember_secret`), for `redact`.
    """
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        raise DatabaseUrlError(
            f"database URL {_masked_userinfo(value)!r} is not valid: {exc}"
        ) from None
    remember_secret(parts.password)
    remember_secret(dict(parse_qsl(parts.query)).get("password"))
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}"
    query = urlencode(
        [(k, MASK if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*/"
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redacted_url(value: str) -> str:
    """Return any URL with its password replaced by *** (and remembered for `redact`)."""
    try:
        return _display(value)
    except DatabaseUrlError:  # not a URL urllib can split: mask all of its user part
        return _masked_userinfo(value)


def _parse_postgres(value: str) -> Database:
    """Return the Database of a PostgreSQL URL, checked by libpq's parser."""
    from psycopg.conninfo import conninfo_to_dict  # lazy: 0.16 s that `--help` need not pay

    _check_userinfo(value)
    display = _display(value)
    try:
        params = conninfo_to_dict(value)
    except Exception as exc:  # psycopg.ProgrammingError: libpq's message, which may quote it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        detail = redact(first.replace(value, display))
        raise DatabaseUrlError(f"database URL {display!r} is not valid: {detail}") from None
    remember_secret(params.get("password"))
    if not params.get("dbname"):
        raise DatabaseUrlError(f"database URL {display!r} names no database; {ACCEPTED}")
    return Database("postgres", value, display=display, has_password="password" in params)


def parse_database(value: str | None) -> Database:
    """Return the Database for a --database value (None: the default); raise DatabaseUrlError."""
    value = (value if value is not None else default_database_url()).strip()
    if value.startswith(("postgresql://", "postgres://")):
        return _parse_postgres(value)
    if value.startswith("duckdb:"):
        path = value.removeprefix("duckdb:").removeprefix("//")
        if not path:
            raise DatabaseUrlError(f"duckdb: needs a file path; {ACCEPTED}")
        return Database("duckdb", value, Path(path).expanduser(), display=value)
    shown = _masked_userinfo(value) if "@" in value else value
    raise DatabaseUrlError(f"unsupported database {shown!r}; {ACCEPTED}")


def parse_replica(value: str | None, primary: Database) -> Database | None:
    """Return the read replica named by `value` for `primary` (None when `value` is empty);
    DatabaseUrlError (one line) when there can be none: a DuckDB primary, a non-PostgreSQL URL.
    """
    if value is None or not value.strip():
        return None
    replica = parse_database(value)
    if not primary.is_postgres:
        raise DatabaseUrlError(
            f"--replica needs a PostgreSQL database: {primary.display} is a DuckDB file, "
            f"read where it is; leave out --replica (and unset {REPLICA_ENV_VAR})"
        )
    if not replica.is_postgres:
        raise DatabaseUrlError(
            f"--replica {replica.display!r} is not a PostgreSQL URL: a read replica is a "
            "streaming standby of the PostgreSQL database, postgresql://user@host[:port]/dbname"
        )
    return replica
