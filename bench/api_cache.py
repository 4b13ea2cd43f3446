"""The API benchmark's cache mode (bench/api.py --cache URL): the read module
(flows/storage/cache/reader.py) through Redis, its clients, a warmer that re-warms and
switches in a loop, and Redis memory per user and per list.

The published rows are read back from Postgres once and warmed under a run of the
benchmark's own (key prefix `rotation-bench-<hex>`, deleted at the end): the measured keys
are exactly what the nightly writes for those rows.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import adbc_driver_postgresql.dbapi as adbc
import polars as pl
from api_clients import WARMUP_CALLS, Pace, percentile, random_call, settle

from flows.storage.cache import keys
from flows.storage.cache.reader import CacheReader
from flows.storage.cache.target import parse_cache_url
from flows.storage.cache.writer import CacheWriter
from flows.storage.database import Database, parse_database
from transforms.columns import CONTENT_SIMILARITY_COLUMNS, RECOMMENDATION_COLUMNS

SELECTS = {
    "content_similarity": ", ".join(CONTENT_SIMILARITY_COLUMNS),
    "recommendation_data": ", ".join(
        "reason::text AS reason" if c == "reason" else c for c in RECOMMENDATION_COLUMNS
    ),
    "record_popularity": "record_id, plays, genres, in_stock",
}
SWAP_S = 0.05  # the unpointed window between the warm and the switch: the swap's COMMIT
#: Every ANCHOR_EVERY-th call of a client is one plain GET of the live pointer on the same
#: connection, timed alike: the floor of any Redis read on this machine at that moment, so a
#: phase's p99 reads against it (a ratio) on a shared, noisy machine.
ANCHOR_EVERY = 5
ANCHOR = "anchor: one GET"
MEMORY_SAMPLE = 2_000  # keys whose MEMORY USAGE is read


def published_frames(db: Database, tables=tuple(SELECTS)) -> dict[str, pl.DataFrame]:
    """Return the published tables as they are, in publish's columns (reason as JSON text)."""
    frames = {}
    conn = adbc.connect(db.url, autocommit=False)
    try:
        for table in tables:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {SELECTS[table]} FROM {table}")
                frames[table] = pl.from_arrow(cur.fetch_arrow_table())
        conn.commit()
    finally:
        conn.close()
    return frames


def deadline() -> datetime:
    """Return the expiry of the benchmark's keys: an hour (they are deleted before)."""
    return datetime.now(UTC) + timedelta(hours=1)


def warm_and_switch(writer: CacheWriter, frames: dict, run_id: str) -> dict:
    """Warm a run, unpoint, wait SWAP_S, switch, drop the previous run; return the timings."""
    began = time.time()
    written = writer.warm(
        run_id,
        frames["recommendation_data"],
        frames["content_similarity"],
        frames["record_popularity"],
        deadline(),
    )
    warmed = time.time()
    used_two_runs = writer.client.info("memory")["used_memory"]
    previous = writer.unpoint()
    time.sleep(SWAP_S)
    writer.switch(run_id, deadline())
    switched = time.time()
    dropped = writer.drop(previous) if previous else 0
    return {
        "began": began,
        "warm_s": round(warmed - began, 2),
        "switched": switched,
        "drop_s": round(time.time() - switched, 2),
        "keys": written["keys"],
        "value_bytes": written["value_bytes"],
        "dropped": dropped,
        "used_memory_two_runs": used_two_runs,
    }


def memory_figures(writer: CacheWriter, frames: dict, run_id: str, before: int) -> dict:
    """Return Redis memory of the live run: in all, per user, per list, per item (sampled)."""
    client, tag, prefix = writer.client, keys.run_tag(run_id), writer.prefix
    recs, sims = frames["recommendation_data"], frames["content_similarity"]
    users = recs["user_id"].unique().sort().to_list()
    items = sims.select("source_type", "source_id").unique().rows()
    rng = random.Random(1)
    user_sample = rng.sample(users, min(MEMORY_SAMPLE, len(users)))
    item_sample = rng.sample(items, min(MEMORY_SAMPLE, len(items)))
    user_bytes = [
        client.memory_usage(keys.user_key(prefix, tag, u), samples=0) for u in user_sample
    ]
    item_bytes = [
        client.memory_usage(keys.item_key(prefix, tag, t, i), samples=0) for t, i in item_sample
    ]
    lists = recs.select("user_id", "list_name").unique().height
    per_user = sum(user_bytes) / len(user_bytes)
    used = client.info("memory")["used_memory"]
    return {
        "used_memory_delta": used - before,
        "users": len(users),
        "lists": lists,
        "items": len(items),
        "bytes_per_user_key": round(per_user),
        "bytes_per_list": round(per_user * len(users) / lists),
        "bytes_per_item_key": round(sum(item_bytes) / len(item_bytes)),
        "used_memory_delta_per_user": round((used - before) / len(users)),
        "popular_key_bytes": client.memory_usage(keys.popular_key(prefix, tag), samples=0),
    }


def warmer(db_url: str, cache_url: str, ready, stop, out) -> None:
    """Re-warm the published rows under new runs and switch to each, until `stop`."""
    rounds, error = [], None
    try:
        frames = published_frames(parse_database(db_url))
        writer = CacheWriter(parse_cache_url(cache_url))
        ready.set()
        while not stop.is_set():
            rounds.append(warm_and_switch(writer, frames, str(uuid.uuid4())))
        writer.close()
    except Exception as exc:  # reported, and the run fails
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        ready.set()
        out.put({"rounds": rounds, "error": error})


def anchor_figures(results: list[dict]) -> dict:
    """Return the p99 of the calls Redis served, of the anchor, and their ratio (ms)."""
    served = [
        s
        for r in results
        for label, samples in r["samples"].items()
        if label.endswith("[redis]")
        for _, s in samples
    ]
    anchor = [s for r in results for _, s in r["samples"].get(ANCHOR, [])]
    ours, floor = percentile(served, 0.99) * 1000, percentile(anchor, 0.99) * 1000
    return {
        "redis_p99_ms": round(ours, 2),
        "anchor_p99_ms": round(floor, 2),
        "ratio": round(ours / floor, 2) if floor else None,
    }


def module_call(name: str, args: tuple) -> tuple[str, tuple]:
    """Return the read module's function and arguments of one of api_clients' random calls."""
    function = name.split(":")[0]
    return function, (("record", *args) if function == "get_similar" else args)


def cache_client(
    db_url: str,
    cache_url: str,
    ids: dict,
    seed: int,
    start_at: float,
    seconds: float,
    fallback_share: float,
    rate: float | None = None,
    phase: float = 0.0,
) -> dict:
    """Call the read module from `start_at` for `seconds` (`rate` calls/s from `phase` of an
    interval, or back to back), every ANCHOR_EVERY-th call the anchor; samples keyed
    'function [source]'."""
    rng = random.Random(seed)
    samples: dict[str, list[tuple[float, float]]] = {}
    empty: dict[str, int] = {}
    errors: list[str] = []
    reader = CacheReader(parse_database(db_url), parse_cache_url(cache_url))
    try:
        warm = random.Random(seed + 1_000_003)
        for _ in range(WARMUP_CALLS):
            function, args = module_call(*random_call(warm, ids, 0.1))
            reader.read(function, *args)
        settle()
        time.sleep(max(0.0, start_at - time.time()))
        end, pace = start_at + seconds, Pace(rate, phase)
        live = keys.live_key(reader.cache.prefix)
        while time.time() < end:
            anchor = pace.calls % ANCHOR_EVERY == ANCHOR_EVERY - 1  # before start() counts it
            name, args = (ANCHOR, ()) if anchor else random_call(rng, ids, fallback_share)
            began = pace.start()
            wall = time.time()
            try:
                if anchor:
                    label, rows = ANCHOR, [reader.client.get(live)]
                else:
                    function, call_args = module_call(name, args)
                    served = reader.read(function, *call_args)
                    label, rows = f"{name} [{served.source}]", served.rows
            except Exception as exc:  # counted: a read must never fail
                errors.append(f"{name}{args}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            samples.setdefault(label, []).append((wall, time.perf_counter() - began))
            empty[label] = empty.get(label, 0) + (not rows)
    finally:
        reader.close()
    return {"samples": samples, "empty": empty, "errors": errors}
