"""Readers during publish: the recommendation API's two lookups, hammered while a run publishes.

    .venv/bin/python bench/readers.py [--profile small] [--readers 4] [--runs 3]

A scratch database is generated and published once (so every reader has users and records
with lists). Then `--readers` threads, each with its own loopback connection and
`lock_timeout = '100ms'`, loop over random users and records — a user's top-20 records
(recommendation_data, list 'records', ORDER BY rank LIMIT 20) and a record's top-20 similar
records (content_similarity, hybrid) — while `--runs` nightly runs (subprocesses, other
parameters each time, so every publish replaces every row) go by. Any error (a lock timeout
included) counts, and so does an empty list for a user or record that had one before. Prints
queries per second and p50/p99/max latency overall and inside the publish windows (from the
runs' performance_metrics rows).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faults
import psycopg

from flows.nightly import run_nightly

USER_RECORDS = (
    "SELECT item_id, score, reason FROM recommendation_data "
    "WHERE user_id = %s AND list_name = 'records' ORDER BY rank LIMIT 20"
)
RECORD_SIMILAR = (
    "SELECT target_id, score FROM content_similarity WHERE source_type = 'record' "
    "AND source_id = %s AND similarity_type = 'hybrid' ORDER BY rank LIMIT 20"
)
READER_LOCK_TIMEOUT = "100ms"


@dataclass
class ReaderStats:
    """What one reader saw: (wall start, seconds) per query, errors and empty lists."""

    samples: list[tuple[float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    empty: int = 0


def audience(url: str) -> tuple[list[int], list[int]]:
    """Return the users with a 'records' list and the records with hybrid neighbours."""
    with faults.connect(url) as conn:
        users = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT user_id FROM recommendation_data WHERE list_name = 'records' "
                "ORDER BY 1"
            )
        ]
        records = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT source_id FROM content_similarity WHERE source_type = 'record' "
                "AND similarity_type = 'hybrid' ORDER BY 1"
            )
        ]
    return users, records


def read_loop(url: str, users, records, stop: threading.Event, seed: int, out: ReaderStats):
    """Alternate the two lookups on one connection until `stop` is set."""
    rng = random.Random(seed)
    conn = None
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        conn.execute(f"SET lock_timeout = '{READER_LOCK_TIMEOUT}'")
        conn.execute("SET statement_timeout = '5s'")
        turn = 0
        while not stop.is_set():
            sql, key = (
                (USER_RECORDS, rng.choice(users))
                if turn % 2 == 0
                else (RECORD_SIMILAR, rng.choice(records))
            )
            turn += 1
            wall, start = time.time(), time.perf_counter()
            try:
                rows = conn.execute(sql, (key,)).fetchall()
            except psycopg.Error as exc:
                out.errors.append(f"{type(exc).__name__}: {str(exc).strip()[:200]}")
                if conn.broken:
                    conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
                    conn.execute(f"SET lock_timeout = '{READER_LOCK_TIMEOUT}'")
                continue
            out.samples.append((wall, time.perf_counter() - start))
            if not rows:
                out.empty += 1
    except Exception as exc:  # a reader that cannot even connect is an error too
        out.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if conn is not None:
            conn.close()


class Readers:
    """N reader threads, started and stopped as a context manager."""

    def __init__(self, url: str, n: int, seed: int = 0) -> None:
        self.users, self.records = audience(url)
        if not self.users or not self.records:
            raise ValueError("nothing published yet: readers need users and records with lists")
        self.stop = threading.Event()
        self.stats = [ReaderStats() for _ in range(n)]
        self.threads = [
            threading.Thread(
                target=read_loop,
                args=(url, self.users, self.records, self.stop, seed + i, self.stats[i]),
                daemon=True,
            )
            for i in range(n)
        ]
        self.started = self.ended = 0.0

    def __enter__(self) -> Readers:
        self.started = time.time()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        self.ended = time.time()

    @property
    def errors(self) -> list[str]:
        """Return every error message of every reader."""
        return [e for s in self.stats for e in s.errors]

    @property
    def empty(self) -> int:
        """Return how many lookups came back empty."""
        return sum(s.empty for s in self.stats)

    def samples(self, windows: list[tuple[float, float]] | None = None) -> list[float]:
        """Return the latencies (s) of queries started inside any of `windows` (all if None)."""
        return [
            seconds
            for s in self.stats
            for wall, seconds in s.samples
            if windows is None or any(lo <= wall <= hi for lo, hi in windows)
        ]


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else 0


def publish_windows(url: str, run_ids: list[str]) -> list[tuple[float, float]]:
    """Return [start, end] (epoch seconds) of the publish stage of each run."""
    with faults.connect(url) as conn:
        rows = conn.execute(
            "SELECT started_at, duration_ms FROM performance_metrics "
            "WHERE stage = 'publish' AND run_id = ANY(%s)",
            (run_ids,),
        ).fetchall()
    return [(s.timestamp(), (s + timedelta(milliseconds=ms)).timestamp()) for s, ms in rows]


def summary(readers: Readers, windows: list[tuple[float, float]]) -> dict:
    """Return the figures of a reader session: rates, latencies, errors, empty lists."""
    every, during = readers.samples(), readers.samples(windows)
    span = max(readers.ended - readers.started, 1e-9)
    in_windows = sum(hi - lo for lo, hi in windows) or 1e-9
    ms = 1000
    return {
        "readers": len(readers.stats),
        "queries": len(every),
        "queries_per_s": round(len(every) / span, 1),
        "p50_ms": round(percentile(every, 0.50) * ms, 3),
        "p99_ms": round(percentile(every, 0.99) * ms, 3),
        "max_ms": round(max(every, default=0) * ms, 3),
        "publish_windows_s": round(in_windows, 3),
        "queries_during_publish": len(during),
        "queries_per_s_during_publish": round(len(during) / in_windows, 1),
        "p50_ms_during_publish": round(percentile(during, 0.50) * ms, 3),
        "p99_ms_during_publish": round(percentile(during, 0.99) * ms, 3),
        "max_ms_during_publish": round(max(during, default=0) * ms, 3),
        "errors": len(readers.errors),
        "empty_lists": readers.empty,
    }


def runs_under_readers(db, n_readers: int, runs: int, seed: int = 0, settle_s: float = 0.5):
    """Publish `runs` nightly runs (subprocesses) under readers; return (summary, errors)."""
    run_ids = []
    with Readers(db.url, n_readers, seed) as readers:
        time.sleep(settle_s)
        for number in range(runs):
            variant = "B" if number % 2 == 0 else "A"
            after = faults.last_job_id(db.url)
            proc = faults.spawn_nightly(db.url, variant)
            out, err = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"nightly run failed: {err[-500:]}")
            run_ids.append(out.split()[-1])
            assert faults.last_job_id(db.url) > after
        time.sleep(settle_s)
    return summary(readers, publish_windows(db.url, run_ids)), readers.errors


def main(argv: list[str] | None = None) -> int:
    """Run the harness; return 0 when no reader saw an error or an empty list."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile", choices=[*faults.PROFILES, *faults.SHARED_PROFILES], default="small"
    )
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="publishes under the readers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with faults.scratch_database("rotation_readers") as db:
        faults.generate(db, args.profile)

        run_nightly(db, faults.params_of("A"))
        print(f"{datetime.now(UTC):%H:%M:%S} published once; {args.readers} readers start")
        figures, errors = runs_under_readers(db, args.readers, args.runs, args.seed)
    for line in errors[:10]:
        print("error:", line)
    for key, value in figures.items():
        print(f"{key:>30}: {value}")
    print(json.dumps(figures))
    return 0 if figures["errors"] == 0 and figures["empty_lists"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
