"""The recommendation API's read module: the read functions of sql/postgres/0008 (and 0011),
from the Redis cache first, from Postgres when the live pointer, the key or Redis is missing.

Either way a call returns the same rows in the same order as the Postgres function would
(dicts keyed by its columns). A read starts from the pointer key (the live run's tag) and
reads only that run's keys. The writer removes the pointer right before the Postgres swap and
sets it right after the COMMIT, so a reader that has seen run N from either side never sees
run N-1 again: Redis before the switch holds run N-1 only while Postgres does too.

- get_recommendations: the user's cached list; a user cached without that list gets what the
  function gives: for records and records_in_stock the popularity fallback, computed here
  from the run's cached popularity list and the user's records (one indexed Postgres query),
  else no row. A user not cached at all (new since the run, or evicted) → Postgres.
- get_similar: the item's cached neighbours of that type, else its content ones (as the
  function does); an item not cached → Postgres.
- get_user_preferences: the user's cached preference lists; not cached → Postgres.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import psycopg
import redis
from psycopg.rows import dict_row

from flows.storage.base import load_query
from flows.storage.cache import keys
from flows.storage.cache.target import CacheTarget
from flows.storage.database import Database
from flows.storage.errors import storage_error
from transforms.cache_codec import (
    decode_preferences,
    decode_recommendations,
    decode_similar,
    popularity_fallback,
)
from transforms.columns import RECOMMENDATION_LISTS, SIMILARITY_TYPES

SOURCE_TYPES = ("record", "track", "store")
FALLBACK_LISTS = ("records", "records_in_stock")
MAX_LIMIT = 100  # the functions cap their limit at 100 rows
CONNECT_TIMEOUT_S = 0.25
READ_TIMEOUT_S = 1.0  # slower than this, a read goes to Postgres
RETRY_AFTER_S = 1.0  # after Redis failed, the next second of reads go straight to Postgres
RUNS_REMEMBERED = 4  # runs whose meta and popularity list stay decoded in memory
PREFERENCE_LISTS = tuple(
    sorted(name for name, (kind, _) in RECOMMENDATION_LISTS.items() if kind == "preference")
)
#: One round trip, atomic: the live pointer, then the fields of one key of that run, whether
#: the key exists, and the run's meta unless the caller knows that run (ARGV[3]: its tag).
#: The key is built inside from the pointer's value, so a read never mixes two runs.
READ_SCRIPT = """
local tag = redis.call('GET', KEYS[1])
if not tag then return false end
local base = ARGV[1] .. ':' .. tag .. ':'
local key = base .. ARGV[2]
local values = {}
if #ARGV > 3 then values = redis.call('HMGET', key, unpack(ARGV, 4)) end
local meta = false
if tag ~= ARGV[3] then meta = redis.call('GET', base .. 'meta') end
return {tag, redis.call('EXISTS', key), meta, unpack(values)}
"""


@dataclass(frozen=True)
class Served:
    """A read's rows, where they came from ('redis' or 'postgres') and the run's tag (Redis)."""

    rows: list[dict]
    source: str
    tag: str | None = None


def _check_limit(limit: int) -> int:
    """Return the effective limit (at most 100); ValueError as the functions word it."""
    if limit is None or limit < 0:
        raise ValueError(f"p_limit must be a non-negative integer, got {limit}")
    return min(limit, MAX_LIMIT)


def _check_one_of(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}: must be one of {', '.join(allowed)}")


class CacheReader:
    """Reads the published lists through the cache; thread-safe (a Postgres link per thread)."""

    def __init__(self, db: Database, cache: CacheTarget | None) -> None:
        self.db, self.cache = db, cache
        self.client = (
            redis.Redis.from_url(
                cache.url,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
                socket_timeout=READ_TIMEOUT_S,
            )
            if cache
            else None
        )
        self._local = threading.local()
        self._runs: dict[str, dict] = {}  # tag → decoded meta and popularity (immutable)
        self._last = ""  # the tag whose meta was read last: the script skips it
        self._read = self.client.register_script(READ_SCRIPT) if self.client else None
        self._down_until = 0.0

    # the three functions ------------------------------------------------------------------------
    def get_recommendations(self, user_id: int, list_name: str, limit: int = 20) -> list[dict]:
        """Return get_recommendations(user_id, list_name, limit)'s rows."""
        return self.read("get_recommendations", user_id, list_name, limit).rows

    def get_similar(
        self, source_type: str, source_id: int, similarity_type: str = "hybrid", limit: int = 20
    ) -> list[dict]:
        """Return get_similar(source_type, source_id, similarity_type, limit)'s rows."""
        return self.read("get_similar", source_type, source_id, similarity_type, limit).rows

    def get_user_preferences(self, user_id: int) -> list[dict]:
        """Return get_user_preferences(user_id)'s rows."""
        return self.read("get_user_preferences", user_id).rows

    def read(self, function: str, *args) -> Served:
        """Return one function's rows and where they came from."""
        check, cached = {
            "get_recommendations": (self._check_recommendations, self._cached_recommendations),
            "get_similar": (self._check_similar, self._cached_similar),
            "get_user_preferences": (self._check_user, self._cached_preferences),
        }[function]
        args = check(*args)
        served = self._from_redis(cached, *args)
        return served or Served(self._postgres(f"cache/{function}", args), "postgres")

    # argument checks (the functions' own, so that both paths refuse alike) ----------------------
    @staticmethod
    def _check_user(user_id: int) -> tuple:
        if user_id is None:
            raise ValueError("p_user_id must not be null")
        return (user_id,)

    def _check_recommendations(self, user_id: int, list_name: str, limit: int) -> tuple:
        self._check_user(user_id)
        _check_one_of("list name", list_name, tuple(RECOMMENDATION_LISTS))
        return user_id, list_name, _check_limit(limit)

    @staticmethod
    def _check_similar(source_type: str, source_id: int, kind: str, limit: int) -> tuple:
        _check_one_of("source type", source_type, SOURCE_TYPES)
        if source_id is None:
            raise ValueError("p_source_id must not be null")
        _check_one_of("similarity type", kind, SIMILARITY_TYPES)
        return source_type, source_id, kind, _check_limit(limit)

    # Redis --------------------------------------------------------------------------------------
    def _from_redis(self, cached, *args) -> Served | None:
        """Return `cached`'s answer from the live run, or None (read Postgres instead)."""
        if self.client is None or time.monotonic() < self._down_until:
            return None
        try:
            return cached(*args)
        except (redis.RedisError, OSError):
            self._down_until = time.monotonic() + RETRY_AFTER_S
            return None

    def _lookup(self, suffix: str, fields: tuple[str, ...]) -> tuple | None:
        """Return (tag, run, key exists, field values) of the live run's key `suffix`, read in
        one round trip (READ_SCRIPT), or None when there is no live run or its meta is gone."""
        live = keys.live_key(self.cache.prefix)
        reply = self._read(keys=[live], args=[self.cache.prefix, suffix, self._last, *fields])
        if not reply:
            return None
        tag, exists, meta, *values = reply
        tag = tag.decode()
        if meta:
            if len(self._runs) >= RUNS_REMEMBERED:
                self._runs.pop(next(iter(self._runs)))
            self._runs[tag] = {"meta": json.loads(meta), "popular": None}
            self._last = tag
        run = self._runs.get(tag)
        return (tag, run, bool(exists), values) if run else None

    def _cached_recommendations(self, user_id: int, list_name: str, limit: int):
        found = self._lookup(keys.user_suffix(user_id), (list_name,))
        if found is None or not found[2]:
            return None
        tag, run, _, (value,) = found
        if value is not None:
            rows = decode_recommendations(value, list_name, run["meta"], limit)
            return Served(rows, "redis", tag)
        if list_name not in FALLBACK_LISTS or limit == 0:
            return Served([], "redis", tag)
        popular = self._popular(tag, run)
        if not popular:  # no published popularity: the function aggregates daily_metrics
            return None
        (history,) = self._postgres("cache/user_history", (user_id,))
        rows = popularity_fallback(
            popular, set(history["record_ids"]), history["genres"], list_name, limit
        )
        return Served(rows, "redis", tag)

    def _popular(self, tag: str, run: dict) -> list | None:
        if run["popular"] is None:
            value = self.client.get(keys.popular_key(self.cache.prefix, tag))
            if value is None:
                return None
            run["popular"] = json.loads(value)
        return run["popular"]

    def _cached_similar(self, source_type: str, source_id: int, kind: str, limit: int):
        found = self._lookup(keys.item_suffix(source_type, source_id), (kind, "content"))
        if found is None or not found[2]:
            return None
        tag, _, _, (value, content) = found
        if value is not None:
            return Served(decode_similar(value, source_type, kind, limit), "redis", tag)
        if kind == "content" or content is None or limit == 0:
            return Served([], "redis", tag)
        return Served(decode_similar(content, source_type, "content", limit), "redis", tag)

    def _cached_preferences(self, user_id: int):
        found = self._lookup(keys.user_suffix(user_id), PREFERENCE_LISTS)
        if found is None or not found[2]:
            return None
        tag, run, _, values = found
        published = set(run["meta"]["preference_lists"])
        lists = {n: v for n, v in zip(PREFERENCE_LISTS, values, strict=True) if n in published}
        return Served(decode_preferences(lists, MAX_LIMIT), "redis", tag)

    # Postgres -----------------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(
                self.db.url,
                autocommit=True,
                connect_timeout=10,
                cursor_factory=psycopg.RawCursor,
                row_factory=dict_row,
                options="-c TimeZone=UTC",
            )
            self._local.conn = conn
        return conn

    def _postgres(self, query: str, args: tuple) -> list[dict]:
        """Return the named query's rows; StorageError (one line, redacted) on failure."""
        try:
            return self._connection().execute(load_query(query), args).fetchall()
        except psycopg.Error as exc:
            conn = getattr(self._local, "conn", None)
            if conn is not None and conn.broken:
                conn.close()
            raise storage_error(exc, self.db.display) from None

    def close(self) -> None:
        """Close this thread's Postgres connection and the Redis client."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        if self.client is not None:
            self.client.close()
