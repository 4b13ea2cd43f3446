"""API read benchmark: the three read functions of migration 0008 under concurrent clients.

    .venv/bin/python bench/api.py [--profile M] [--clients 4] [--seconds 20] [--json OUT]
        [--cache redis://HOST:6379/0] [--rate CALLS_PER_S]

The profile's database is generated once and reused (bench/profiles.py). If it holds no
unexpired recommendation_data row (never published, or the last run's rows are older than
their 48 h lifetime), one nightly run publishes first (run_date = the profile's last day,
window_days 90, force_publish). Then `--clients` separate processes, each with its own
loopback psycopg connection (autocommit, `SET ROLE service_role`, statement_timeout 5 s),
loop for `--seconds` calling, at random (seeded per client):

- get_recommendations(user, list, 20) for a (user, list) pair that has a published list, or,
  for `--fallback-share` of these calls, for a user without any published row (the
  popularity fallback computed in SQL, reported as `get_recommendations:fallback`);
- get_similar('record', record, type, 20) for any record (hybrid 1/2, collaborative 1/4,
  content 1/4; a record without neighbours of that type gets its content ones);
- get_user_preferences(user) for a user with a published list.

Each client warms its session up (plan caches, as a pooled API connection would have) and
then times every call (execute + fetch, client side). Phase `at_rest`: nothing else runs.
Phase `during_publish`: a publisher process re-publishes the same content_similarity and
recommendation_data rows through the pipeline's own `Storage.publish` (one transaction:
DELETE + COPY of both tables, as the nightly's publish stage does) in a loop for the whole
phase; the report says how much of the phase those transactions covered. Printed: per phase
and function, queries, queries/s, p50/p95/p99/max latency (ms), empty results and errors, as
a table and as JSON, with the machine and the profile. Exit status 1 if any call failed or a
p99 target (10 ms at rest, 25 ms during publish) was missed.

With `--cache URL` the clients call the read module (flows/storage/cache/reader.py) through
that Redis instead (bench/api_cache.py), each call reported by function and by the side that
served it (`[redis]`, `[postgres]`: the fallbacks apart). The published rows are read back and
warmed under a key prefix of the benchmark's own (deleted at the end), with Redis memory per
user, per list and per item measured (MEMORY USAGE). Phase `cache_at_rest`; phase
`cache_during_switch`: a warmer process re-warms the same rows under new runs and switches in
a loop. Targets: p99 of the calls served by Redis ≤ 1 ms at rest, ≤ 2 ms during the switches.
Every fifth call of a client is the anchor instead, one plain GET on the same connection
(`anchor: one GET`): each phase prints the read module's p99 against the anchor's, the floor
of a Redis read on this machine at that moment.

By default each client calls back to back (a closed loop): with more clients than cores the
figures are mostly the wait for a core. `--rate R` paces each client at R calls/s instead
(an open loop, as an API's independent requests arrive), each call timed from its scheduled
instant so that a stall counts against every call it held up (no coordinated omission); client
i of n starts i / n of an interval late, so that the clients' calls interleave instead of
arriving together at every tick.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from api_cache import (
    ANCHOR,
    anchor_figures,
    cache_client,
    memory_figures,
    published_frames,
    warm_and_switch,
    warmer,
)
from api_clients import FUNCTIONS, client, percentile, prepare
from profiles import END, PROFILES, Profile, ensure_profile, machine
from redis_memory import bench_target, delete_namespace, target_url

from flows.storage.backends import open_storage
from flows.storage.base import Replacement
from flows.storage.cache.writer import CacheWriter
from flows.storage.database import ENV_VAR, Database, parse_database

TARGET_P99_MS = {
    "at_rest": 10.0,
    "during_publish": 25.0,
    "cache_at_rest": 1.0,  # calls served by Redis (those served by Postgres: reported apart)
    "cache_during_switch": 2.0,
}
PAIRS_SAMPLE = 20_000  # (user, list) pairs drawn by the clients
NEW_USERS_SAMPLE = 1_000
START_DELAY_S = 1.0  # once every client process is up: their warm-up calls, then the start
READY_TIMEOUT_S = 180.0  # for the client processes to start and import their modules
ROOT = Path(__file__).resolve().parent.parent
#: The one nightly run, in a process of its own: the benchmark's processes never load Prefect
#: or the models (each spawned client re-imports this script when it is run as one).
NIGHTLY = """
import sys
from datetime import date
from flows.nightly import run_nightly
from flows.params import NightlyParams
from flows.storage.database import parse_database
params = NightlyParams(run_date=date.fromisoformat(sys.argv[1]), window_days=90, force_publish=True)
result = run_nightly(parse_database(None), params)  # ROTATION_DATABASE_URL: no URL in argv
print(result.status, result.rows)
"""


def published_rows(db: Database) -> int:
    """Return the number of unexpired recommendation_data rows."""
    with psycopg.connect(db.url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM recommendation_data WHERE expires_at > now()")
        return row.fetchone()[0]


def ensure_published(db: Database, log=print) -> None:
    """Run one nightly (the profile's last day, 90-day window) unless unexpired rows exist."""
    if published_rows(db):
        log("published outputs present: no nightly run")
        return

    day = END - timedelta(days=1)
    log(f"no unexpired recommendation_data: one nightly run for {day} (a few minutes at M)")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", NIGHTLY, day.isoformat()],
        cwd=ROOT,
        env=os.environ | {ENV_VAR: db.url},
        capture_output=True,
        text=True,
        check=True,
    )
    log(f"nightly in {time.perf_counter() - started:.0f} s: {done.stdout.strip()}")
    if not published_rows(db):
        raise RuntimeError("the nightly run published no recommendation_data")


def audience(db: Database, seed: int) -> dict:
    """Return the ids the clients draw from: (user, list) pairs, users, new users, records."""
    rng = random.Random(seed)
    with psycopg.connect(db.url, autocommit=True, connect_timeout=10) as conn:
        pairs = conn.execute(
            "SELECT user_id, list_name FROM recommendation_data "
            "WHERE data_type = 'recommendation' AND rank = 1 AND expires_at > now() "
            "ORDER BY user_id, list_name"
        ).fetchall()
        new_users = [
            r[0]
            for r in conn.execute(
                "SELECT u.id FROM users AS u WHERE NOT EXISTS "
                "(SELECT 1 FROM recommendation_data AS d WHERE d.user_id = u.id) ORDER BY 1"
            )
        ]
        top_user = conn.execute("SELECT coalesce(max(id), 0) FROM users").fetchone()[0]
        records = [r[0] for r in conn.execute("SELECT id FROM records ORDER BY 1")]
    if not pairs or not records:
        raise RuntimeError("nothing to query: no published lists or no records")
    if not new_users:  # every known user has rows: users who signed up after the run
        new_users = list(range(top_user + 1, top_user + 1 + NEW_USERS_SAMPLE))
    pairs = rng.sample(pairs, min(PAIRS_SAMPLE, len(pairs)))
    return {
        "pairs": [tuple(p) for p in pairs],
        "users": sorted({u for u, _ in pairs}),
        "new_users": rng.sample(new_users, min(NEW_USERS_SAMPLE, len(new_users))),
        "records": records,
    }


def publisher(url: str, ready, stop, out) -> None:
    """Re-publish the published tables' own rows in a loop until `stop`; put the windows."""
    db = parse_database(url)
    windows: list[tuple[float, float]] = []
    rows: dict[str, int] = {}
    error = None
    try:
        frames = published_frames(db, ("content_similarity", "recommendation_data"))
        ready.set()
        with open_storage(db) as storage:
            while not stop.is_set():
                began = time.time()
                rows = storage.publish([Replacement.whole(t, f) for t, f in frames.items()])
                windows.append((began, time.time()))
    except Exception as exc:  # reported, and the run fails
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        ready.set()
        out.put({"windows": windows, "rows": rows, "error": error})


def figures(latencies: list[float], seconds: float, errors: int, empty: int) -> dict:
    """Return queries, queries/s, p50/p95/p99/max (ms), empty results and errors."""
    ms = 1000.0
    return {
        "queries": len(latencies),
        "queries_per_s": round(len(latencies) / max(seconds, 1e-9), 1),
        "p50_ms": round(percentile(latencies, 0.50) * ms, 2),
        "p95_ms": round(percentile(latencies, 0.95) * ms, 2),
        "p99_ms": round(percentile(latencies, 0.99) * ms, 2),
        "max_ms": round(max(latencies, default=0.0) * ms, 2),
        "empty": empty,
        "errors": errors,
    }


def summarise(results: list[dict], seconds: float, names=FUNCTIONS) -> dict:
    """Return per-function (per `names`) and overall figures of one phase's client results."""
    functions = {}
    every: list[float] = []
    all_errors = [e for r in results for e in r["errors"]]
    names = names or sorted({name for r in results for name in r["samples"]})
    for name in names:
        latencies = [s for r in results for _, s in r["samples"].get(name, [])]
        every += latencies
        errors = sum(1 for e in all_errors if e.startswith(name + "("))
        empty = sum(r["empty"].get(name, 0) for r in results)
        functions[name] = figures(latencies, seconds, errors, empty)
    return {
        "seconds": round(seconds, 2),
        "functions": functions,
        "all": figures(
            every, seconds, len(all_errors), sum(f["empty"] for f in functions.values())
        ),
        "error_samples": all_errors[:10],
    }


def run_clients(
    url: str,
    ids: dict,
    n: int,
    seconds: float,
    seed: int,
    fallback_share: float,
    cache_url: str | None = None,
    rate: float | None = None,
):
    """Run `n` client processes for `seconds` from a common start (each at `rate` calls/s, or
    back to back); return (results, start).

    With `cache_url` the clients call the read module through that Redis (api_cache.py).
    """
    ctx = mp.get_context("spawn")
    worker, prefix = (cache_client, (url, cache_url)) if cache_url else (client, (url,))
    ready = ctx.Barrier(n + 1)  # the start waits for the slowest process's imports, no longer
    with ctx.Pool(n, initializer=prepare, initargs=(worker.__module__, ready)) as pool:
        ready.wait(timeout=READY_TIMEOUT_S)
        start_at = time.time() + START_DELAY_S
        jobs = [
            pool.apply_async(
                worker, (*prefix, ids, seed + i, start_at, seconds, fallback_share, rate, i / n)
            )
            for i in range(n)
        ]
        results = [j.get(timeout=seconds + 120) for j in jobs]
    return results, start_at


def overlap(windows: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Return the seconds of [lo, hi] covered by `windows`."""
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in windows)


def bench(
    db: Database,
    profile: Profile,
    clients: int = 4,
    seconds: float = 20.0,
    seed: int = 42,
    fallback_share: float = 0.1,
    log=print,
    cache_url: str | None = None,
    rate: float | None = None,
) -> dict:
    """Run both phases on a published profile database (with `cache_url`: the cache phases,
    `bench_cache`; `rate`: each client's calls/s, None back to back); return the report."""
    ids = audience(db, seed)
    log(
        f"{len(ids['pairs'])} (user, list) pairs, {len(ids['new_users'])} new users, "
        f"{len(ids['records'])} records; {clients} clients × {seconds:g} s per phase"
    )
    report: dict = {
        "profile": {**asdict(profile), "database": db.display},
        "machine": machine(),
        "clients": clients,
        "seconds": seconds,
        "seed": seed,
        "fallback_share": fallback_share,
        "rate_per_client": rate,
        "targets_p99_ms": TARGET_P99_MS,
        "phases": {},
    }
    if cache_url:
        return bench_cache(db, ids, report, cache_url, log)
    log("phase at_rest")
    results, start = run_clients(db.url, ids, clients, seconds, seed, fallback_share, rate=rate)
    report["phases"]["at_rest"] = summarise(results, seconds)
    report["phases"]["at_rest"]["load_average"] = machine()["load_average"]

    log("phase during_publish: reading the published rows")
    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    pub = ctx.Process(target=publisher, args=(db.url, ready, stop, out))
    pub.start()
    try:
        if not ready.wait(timeout=600):
            raise RuntimeError("the publisher did not read the published rows within 600 s")
        log("phase during_publish: publishing in a loop")
        results, start = run_clients(
            db.url, ids, clients, seconds, seed + 100, fallback_share, rate=rate
        )
    finally:
        stop.set()
    published = out.get(timeout=900)
    pub.join(timeout=60)
    phase = summarise(results, seconds)
    windows = published["windows"]
    covered = overlap(windows, start, start + seconds)
    inside = [
        s
        for r in results
        for name in FUNCTIONS
        for wall, s in r["samples"][name]
        if any(a <= wall <= b for a, b in windows)
    ]
    phase["load_average"] = machine()["load_average"]
    phase["publisher"] = {
        "publishes": len(windows),
        "publish_s": [round(b - a, 2) for a, b in windows],
        "rows": published["rows"],
        "phase_covered_share": round(covered / seconds, 3),
        "queries_inside_publish": len(inside),
        "p99_ms_inside_publish": round(percentile(inside, 0.99) * 1000, 2),
        "error": published["error"],
    }
    report["phases"]["during_publish"] = phase
    report["verdict"] = verdict(report)
    return report


def bench_cache(db: Database, ids: dict, report: dict, cache_url: str, log=print) -> dict:
    """Run the cache phases (the read module through Redis) and complete `report`:
    `cache_at_rest`, then `cache_during_switch` beside a warmer that re-warms and switches."""
    clients, seconds, seed = report["clients"], report["seconds"], report["seed"]
    rate = report["rate_per_client"]
    fallback_share = report["fallback_share"]
    target = bench_target(cache_url)
    writer = CacheWriter(target)
    report["profile"]["cache"] = target.display
    report["targets_p99_ms"] = {k: v for k, v in TARGET_P99_MS.items() if k.startswith("cache")}
    try:
        log("reading the published rows, warming them into Redis")
        frames = published_frames(db)
        before = writer.client.info("memory")["used_memory"]
        first = str(uuid.uuid4())
        report["first_warm"] = warm_and_switch(writer, frames, first)
        report["memory"] = memory_figures(writer, frames, first, before)
        report["redis"] = {
            k: writer.client.config_get(k)[k] for k in ("maxmemory", "maxmemory-policy")
        }
        cached_url = target_url(target)
        log("phase cache_at_rest")
        results, _ = run_clients(
            db.url, ids, clients, seconds, seed, fallback_share, cached_url, rate
        )
        report["phases"]["cache_at_rest"] = summarise(results, seconds, names=None)
        report["phases"]["cache_at_rest"]["anchor"] = anchor_figures(results)
        report["phases"]["cache_at_rest"]["load_average"] = machine()["load_average"]

        log("phase cache_during_switch: warming and switching in a loop")
        ctx = mp.get_context("spawn")
        ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        warm = ctx.Process(target=warmer, args=(db.url, cached_url, ready, stop, out))
        warm.start()
        try:
            ready.wait(timeout=600)
            results, start = run_clients(
                db.url, ids, clients, seconds, seed + 100, fallback_share, cached_url, rate
            )
        finally:
            stop.set()
        rounds = out.get(timeout=900)
        warm.join(timeout=60)
        phase = summarise(results, seconds, names=None)
        phase["anchor"] = anchor_figures(results)
        windows = [(r["began"], r["switched"]) for r in rounds["rounds"]]
        inside = [
            s
            for r in results
            for label, samples in r["samples"].items()
            if "[redis]" in label
            for wall, s in samples
            if any(a <= wall <= b for a, b in windows)
        ]
        phase["load_average"] = machine()["load_average"]
        phase["warmer"] = {
            "rounds": len(rounds["rounds"]),
            "warm_s": [r["warm_s"] for r in rounds["rounds"]],
            "phase_covered_share": round(overlap(windows, start, start + seconds) / seconds, 3),
            "redis_reads_inside_warm_switch": len(inside),
            "p99_ms_inside_warm_switch": round(percentile(inside, 0.99) * 1000, 2),
            "peak_used_memory_two_runs": max(
                (r["used_memory_two_runs"] for r in rounds["rounds"]), default=None
            ),
            "error": rounds["error"],
        }
        report["phases"]["cache_during_switch"] = phase
    finally:
        writer.close()
        delete_namespace(target)
    report["verdict"] = verdict(report)
    return report


def verdict(report: dict) -> dict:
    """Return, per phase, whether every function met its p99 target with zero errors (in cache
    phases, every function served by Redis: calls served by Postgres are reported apart)."""
    out = {}
    for name, phase in report["phases"].items():
        target = TARGET_P99_MS[name]
        slow = {
            f: v["p99_ms"]
            for f, v in phase["functions"].items()
            if v["queries"] and v["p99_ms"] > target and "[postgres]" not in f and f != ANCHOR
        }
        background = phase.get("publisher") or phase.get("warmer") or {}
        errors = phase["all"]["errors"] + (1 if background.get("error") else 0)
        out[name] = {
            "target_p99_ms": target,
            "over_target": slow,
            "errors": errors,
            "ok": not slow and errors == 0,
        }
    return out


def table(report: dict) -> str:
    """Return the report's figures as a plain-text table."""
    head = (
        f"{'phase':<15} {'function':<29} {'queries':>8} {'q/s':>8} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'empty':>6} {'errors':>6}"
    )
    lines = [head, "-" * len(head)]
    for phase, data in report["phases"].items():
        rows = [*data["functions"].items(), ("all", data["all"])]
        for name, v in rows:
            lines.append(
                f"{phase:<15} {name:<29} {v['queries']:>8} {v['queries_per_s']:>8} "
                f"{v['p50_ms']:>8} {v['p95_ms']:>8} {v['p99_ms']:>8} {v['max_ms']:>8} "
                f"{v['empty']:>6} {v['errors']:>6}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when every p99 target was met with zero errors."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="M")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--fallback-share",
        type=float,
        default=0.1,
        help="share of get_recommendations calls for users without rows",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument(
        "--cache",
        default=None,
        help="redis://… : measure the read module through this Redis instead (cache phases; "
        "a key prefix of the benchmark's own, deleted at the end)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="calls/s per client on an open-loop schedule (default: back to back)",
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or not 0 <= args.fallback_share <= 1:
        parser.error("--clients ≥ 1, --seconds > 0 and 0 ≤ --fallback-share ≤ 1")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    profile = PROFILES[args.profile]
    db = ensure_profile(profile)
    ensure_published(db)
    report = bench(
        db,
        profile,
        args.clients,
        args.seconds,
        args.seed,
        args.fallback_share,
        cache_url=args.cache,
        rate=args.rate,
    )
    m = report["machine"]
    print(
        f"profile {profile.name} ({profile.users:,} users, {profile.tracks // 10:,} records) "
        f"on {m['cores']} cores, {m['memory_gib']} GiB, load {m['load_average']}"
    )
    print(table(report))
    for name, phase in report["phases"].items():
        for line in phase["error_samples"]:
            print(f"error ({name}): {line}")
    if "during_publish" in report["phases"]:
        pub = report["phases"]["during_publish"]["publisher"]
        print(
            f"publisher: {pub['publishes']} publishes {pub['publish_s']} s, "
            f"{pub['phase_covered_share']:.0%} of the phase; rows {pub['rows']}"
            + (f"; error {pub['error']}" if pub["error"] else "")
        )
    for name, phase in report["phases"].items():
        if "anchor" in phase:
            a = phase["anchor"]
            print(
                f"{name}: calls served by Redis p99 {a['redis_p99_ms']} ms; the anchor "
                f"(one GET, same clients) p99 {a['anchor_p99_ms']} ms: {a['ratio']} ×"
            )
    if "memory" in report:
        print(f"redis memory: {report['memory']}; first warm: {report['first_warm']}")
    for name, v in report["verdict"].items():
        status = "ok" if v["ok"] else f"MISSED: over {v['over_target']}, errors {v['errors']}"
        print(f"{name}: p99 target {v['target_p99_ms']} ms: {status}")
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0 if all(v["ok"] for v in report["verdict"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
