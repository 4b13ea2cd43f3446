"""Where the cache is: `--cache URL`, ROTATION_CACHE_URL or the Prefect Secret block
`rotation-cache-url`, parsed with urllib's URL parser and redacted like the database URL.

A URL is redis://[[user]:password@]host[:port][/db], rediss://… (TLS) or unix://PATH?db=N;
`?prefix=NAME` (default `rotation`) names the keys' namespace, so that several deployments
(or tests) share one Redis. The password is remembered (flows.storage.database.redact masks
it everywhere) and never shown: `display` has *** in its place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from flows.storage.database import Database, redacted_url, remember_secret
from flows.storage.secrets import database_url_from_secret_block

CACHE_ENV_VAR = "ROTATION_CACHE_URL"
SECRET_BLOCK = "rotation-cache-url"
SCHEMES = ("redis", "rediss", "unix")
ACCEPTED = "accepted: redis://[:password@]host[:port][/db][?prefix=NAME], rediss://… or unix://PATH"
DEFAULT_PREFIX = "rotation"
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NEEDS_POSTGRES = (
    "--cache needs a PostgreSQL database: a cached read falls back to the database's read "
    "functions (sql/postgres/0008), which a DuckDB file does not have"
)
CACHE_PASSWORD_IN_ARGV = (
    "rotation: warning: a password in --cache is visible to every user of this machine "
    f"(ps, /proc); give it by {CACHE_ENV_VAR} instead"
)
_process_cache: list = []  # the command line's cache (or None: no cache), while its flow runs


class CacheUrlError(ValueError):
    """A --cache value that is not a Redis URL."""


@dataclass(frozen=True)
class CacheTarget:
    """A Redis server and key namespace; `url` holds the secret, `display` never does."""

    url: str = field(repr=False)  # what redis-py connects to (the prefix parameter removed)
    display: str
    prefix: str = DEFAULT_PREFIX
    has_password: bool = False

    def __repr__(self) -> str:
        return f"CacheTarget({self.display!r})"

    __str__ = __repr__


def parse_cache_url(value: str) -> CacheTarget:
    """Return the CacheTarget of a cache URL; CacheUrlError (one line, redacted) when invalid."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise CacheUrlError(f"cache URL {redacted_url(value)!r} is not valid: {exc}") from None
    shown = redacted_url(value)  # remembers the password for redact()…
    remember_secret(unquote(parts.password or ""))  # …and what redis-py decodes it to
    if parts.scheme not in SCHEMES:
        raise CacheUrlError(f"unsupported cache URL {shown!r}; {ACCEPTED}")
    if parts.scheme != "unix" and not parts.hostname:
        raise CacheUrlError(f"cache URL {shown!r} names no host; {ACCEPTED}")
    query = parse_qsl(parts.query)
    prefix = dict(query).get("prefix", DEFAULT_PREFIX)
    if not _PREFIX.match(prefix):
        raise CacheUrlError(f"cache URL {shown!r}: prefix must be 1-64 of A-Z a-z 0-9 _ . -")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return CacheTarget(
        urlunsplit(parts._replace(query=rest)),
        shown,
        prefix,
        has_password=parts.password is not None,
    )


def check_cache_backend(cache: CacheTarget | None, db: Database) -> None:
    """Raise CacheUrlError when a cache is asked for on a database it cannot fall back to."""
    if cache is not None and not db.is_postgres:
        raise CacheUrlError(NEEDS_POSTGRES)


@contextmanager
def for_this_process(cache: CacheTarget | None) -> Iterator[CacheTarget | None]:
    """Make `cache` (None: none) the cache of the flows run by this process until the end."""
    _process_cache.append(cache)
    try:
        yield cache
    finally:
        _process_cache.pop()


def resolve_cache(secret_block: bool = True) -> CacheTarget | None:
    """Return the cache of a flow run: the command line's, ROTATION_CACHE_URL, else the
    Secret block (when `secret_block`); None when none is configured (no cache)."""
    if _process_cache:
        return _process_cache[-1]
    url = os.environ.get(CACHE_ENV_VAR) or (
        database_url_from_secret_block(SECRET_BLOCK) if secret_block else None
    )
    return parse_cache_url(url) if url else None
