"""Writing a run into Redis: its keys warmed in bounded chunks, then the one switch.

Each chunk of keys is one call of WRITE_SCRIPT (pipelined, a few chunks per round trip): a
key and its expiry are set in one atomic script, so a connection lost mid-warm leaves no key
without a TTL, and Redis answers once per chunk rather than twice per key (the client's
parsing of per-command replies was half of the warm's time). Frames are encoded a slice of
rows at a time (transforms/cache_codec.py): a whole run's values never sit in memory at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from functools import partial

import polars as pl
import redis

from flows.storage.base import FrameParts, frame_parts
from flows.storage.cache import keys
from flows.storage.cache.target import CacheTarget
from flows.storage.database import redact
from transforms.cache_codec import (
    merged_meta,
    popularity_value,
    recommendation_values,
    run_meta,
    similarity_values,
)

#: Keys per script call. Redis runs one command at a time: every reader waits for the script
#: in progress, so a chunk is kept to ≈ 120 KB of values (≈ 0.3 ms of Redis' time at L).
CHUNK_KEYS = 32
CHUNKS_PER_TRIP = 32  # script calls sent before their replies are read (one round trip)
SLICE_ROWS = 250_000  # rows encoded at once
CONNECT_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 30.0  # one chunk; a Redis that stalls longer fails the warm
SCAN_COUNT = 250  # keys a SCAN step looks at: each step blocks readers too
#: KEYS: a chunk's keys; ARGV[1]: their expiry (Unix ms); then per key its field count n and
#: n field/value pairs (a hash), or 0 and one value (a string).
WRITE_SCRIPT = """
local at, i = ARGV[1], 2
for k = 1, #KEYS do
  local n = tonumber(ARGV[i])
  if n == 0 then
    redis.call('SET', KEYS[k], ARGV[i + 1])
    i = i + 2
  else
    redis.call('HSET', KEYS[k], unpack(ARGV, i + 1, i + 2 * n))
    i = i + 1 + 2 * n
  end
  redis.call('PEXPIREAT', KEYS[k], at)
end
return #KEYS
"""


class CacheError(RuntimeError):
    """A cache operation that failed; one line, never holding the password."""


def connect(target: CacheTarget, timeout: float = WRITE_TIMEOUT_S) -> redis.Redis:
    """Return a client of the target's Redis (no round trip yet)."""
    return redis.Redis.from_url(
        target.url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=timeout
    )


def cache_error(exc: BaseException, target: CacheTarget) -> CacheError:
    """Return a one-line, redacted CacheError for a Redis client's error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.rpartition("caused error: ")[2]  # not the pipeline's command and its values
    return CacheError(f"{target.display}: {redact(text)}")


def group_slices(frame: pl.DataFrame, by: list[str], rows: int) -> Iterator[pl.DataFrame]:
    """Yield consecutive slices of about `rows` rows of `frame`, none splitting a group of `by`.

    `frame` is sorted by `by` first when its groups are not contiguous already.
    """
    runs = frame.select(pl.struct(by).rle_id()).to_series()
    if frame.height and runs[-1] + 1 != frame.select(pl.struct(by).n_unique()).item():
        frame = frame.sort(by, maintain_order=True)
        runs = frame.select(pl.struct(by).rle_id()).to_series()
    start = 0
    while start < frame.height:
        end = min(start + rows, frame.height)
        if end < frame.height:  # back to the start of the group that row `end` is in
            end = max(int(runs.search_sorted(runs[end], side="left")), start + 1)
            end = int(runs.search_sorted(runs[end - 1], side="right"))
        yield frame.slice(start, end - start)
        start = end


def _hashes(values: pl.DataFrame, key_of, field: str) -> Iterator[tuple[str, dict]]:
    """Yield (key, {field value: JSON}) per group of an encoded frame, in its order."""
    key, mapping = None, {}
    group_columns = [c for c in values.columns if c not in (field, "value")]
    for row in values.iter_rows(named=True):
        this = key_of(*(row[c] for c in group_columns))
        if this != key and mapping:
            yield key, mapping
            mapping = {}
        key = this
        mapping[row[field]] = row["value"]
    if mapping:
        yield key, mapping


class CacheWriter:
    """Writes runs into one Redis key namespace; every method raises CacheError on failure."""

    def __init__(self, target: CacheTarget) -> None:
        self.target = target
        self.client = connect(target)
        self.prefix = target.prefix
        self._write = self.client.register_script(WRITE_SCRIPT)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise cache_error(exc, self.target) from None

    def warm(
        self,
        run_id: str,
        recommendations: pl.DataFrame | FrameParts,
        neighbours: pl.DataFrame | FrameParts,
        popular: pl.DataFrame,
        deadline: datetime,
    ) -> dict[str, int]:
        """Write a run's lists under its tag, each key expiring at `deadline`; return counts.

        `recommendations` and `neighbours` may come in parts, fetched one at a time (a
        user's rows, a source item's, all in one part)."""
        tag, at_ms = keys.run_tag(run_id), int(deadline.timestamp() * 1000)
        written = {"keys": 0, "value_bytes": 0}
        pipe = self.client.pipeline(transaction=False)
        chunk_keys: list[str] = []
        chunk_args: list = [at_ms]

        def flush() -> None:
            if chunk_keys:
                self._write(keys=list(chunk_keys), args=list(chunk_args), client=pipe)
                chunk_keys.clear()
                del chunk_args[1:]
            if len(pipe) >= CHUNKS_PER_TRIP:
                self._call(pipe.execute)

        def put(key: str, mapping: dict | None = None, value: str | None = None) -> None:
            chunk_keys.append(key)
            if mapping is not None:
                chunk_args.append(len(mapping))
                for pair in mapping.items():
                    chunk_args.extend(pair)
                written["value_bytes"] += sum(len(v) for v in mapping.values())
            else:
                chunk_args.extend((0, value))
                written["value_bytes"] += len(value)
            written["keys"] += 1
            if len(chunk_keys) >= CHUNK_KEYS:
                flush()

        metas = []
        for frame in frame_parts(recommendations):
            for part in group_slices(frame, ["user_id"], SLICE_ROWS):
                values = recommendation_values(part)
                user = partial(keys.user_key, self.prefix, tag)
                for key, mapping in _hashes(values, user, "list_name"):
                    put(key, mapping)
            metas.append(run_meta(frame))
            del frame  # one part held at a time
        for frame in frame_parts(neighbours):  # parts by source: a source's rows in one
            for part in group_slices(frame, ["source_type", "source_id"], SLICE_ROWS):
                values = similarity_values(part)
                item = partial(keys.item_key, self.prefix, tag)
                for key, mapping in _hashes(values, item, "similarity_type"):
                    put(key, mapping)
            del frame
        put(keys.popular_key(self.prefix, tag), value=popularity_value(popular))
        meta = {"run_id": run_id, **merged_meta(metas)}
        put(keys.meta_key(self.prefix, tag), value=json.dumps(meta))
        flush()
        if len(pipe):
            self._call(pipe.execute)
        return written

    def unpoint(self) -> str | None:
        """Remove the live pointer (reads go to Postgres); return the tag it named."""
        tag = self._call(self.client.getdel, keys.live_key(self.prefix))
        return tag.decode() if tag else None

    def switch(self, run_id: str, deadline: datetime) -> None:
        """Point readers at the run `run_id` until `deadline` (its keys' expiry)."""
        at_ms = int(deadline.timestamp() * 1000)
        self._call(self.client.set, keys.live_key(self.prefix), keys.run_tag(run_id), pxat=at_ms)

    def drop(self, tag: str) -> int:
        """Delete every key of the run `tag`; return how many were deleted."""
        deleted, batch = 0, []
        pattern = keys.run_pattern(self.prefix, tag)
        try:
            for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
                batch.append(key)
                if len(batch) >= CHUNK_KEYS:
                    deleted += self.client.unlink(*batch)
                    batch = []
            if batch:
                deleted += self.client.unlink(*batch)
        except (redis.RedisError, OSError) as exc:
            raise cache_error(exc, self.target) from None
        return deleted

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
