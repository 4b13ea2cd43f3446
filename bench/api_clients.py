"""The API benchmark's clients: each a process of its own with one loopback connection.

Light on purpose (psycopg and the standard library only): bench/api.py starts them by
multiprocessing's spawn, and each must be calling the functions when the common start
instant comes, whatever the parent process imported.
"""

from __future__ import annotations

import gc
import importlib
import math
import random
import time

import psycopg

FUNCTIONS = (
    "get_recommendations",
    "get_recommendations:fallback",
    "get_similar",
    "get_user_preferences",
)
SQL = {
    "get_recommendations": "SELECT * FROM get_recommendations(%s, %s, %s)",
    "get_recommendations:fallback": "SELECT * FROM get_recommendations(%s, %s, %s)",
    "get_similar": "SELECT * FROM get_similar('record', %s, %s, %s)",
    "get_user_preferences": "SELECT * FROM get_user_preferences(%s)",
}
SIMILARITY_TYPES = ("hybrid", "hybrid", "collaborative", "content")
FALLBACK_LISTS = ("records", "records_in_stock")
LIMIT = 20
WARMUP_CALLS = 30  # per client, untimed
STATEMENT_TIMEOUT = "5s"


def random_call(rng: random.Random, ids: dict, fallback_share: float) -> tuple[str, tuple]:
    """Return the function and arguments of one random call."""
    pick = rng.randrange(3)
    if pick == 0:
        if rng.random() < fallback_share:
            args = (rng.choice(ids["new_users"]), rng.choice(FALLBACK_LISTS), LIMIT)
            return "get_recommendations:fallback", args
        user, list_name = rng.choice(ids["pairs"])
        return "get_recommendations", (user, list_name, LIMIT)
    if pick == 1:
        return "get_similar", (rng.choice(ids["records"]), rng.choice(SIMILARITY_TYPES), LIMIT)
    return "get_user_preferences", (rng.choice(ids["users"]),)


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of `values`, nearest rank (0 when empty)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def prepare(module: str, ready) -> None:
    """Start a client process: import its client's module, then wait for the others."""
    importlib.import_module(module)
    ready.wait(timeout=180)


def settle() -> None:
    """Move the client's setup objects (the drawn ids, the imported modules) out of the
    garbage collector's reach: a full collection of the harness's own data would otherwise
    land, now and then, inside a timed call."""
    gc.collect()
    gc.freeze()


class Pace:
    """When each call starts and counts from: at once (`rate` None: a closed loop, each call
    right after the last), or on an open-loop schedule of `rate` calls/s, a call's latency
    counted from its scheduled instant, so a stall is charged to every call it delayed
    (no coordinated omission, as wrk2 measures).

    `phase` (0..1) shifts the schedule by that share of one interval: client i of n takes
    i / n, so that the clients' calls interleave. Sharing one origin, n clients would fire
    together at every tick, a burst of n calls that no independent users send.
    """

    def __init__(self, rate: float | None, phase: float = 0.0) -> None:
        self.rate, self.calls = rate, 0
        self.origin = time.perf_counter() + (phase / rate if rate else 0.0)

    def start(self) -> float:
        """Wait for the next call's turn; return the perf_counter instant it counts from."""
        self.calls += 1
        if not self.rate:
            return time.perf_counter()
        due = self.origin + (self.calls - 1) / self.rate
        time.sleep(max(0.0, due - time.perf_counter()))
        return due


def _connect(url: str):
    """Return an autocommit loopback connection acting as service_role."""
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    conn.execute("SET ROLE service_role")
    conn.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    return conn


def client(
    url: str,
    ids: dict,
    seed: int,
    start_at: float,
    seconds: float,
    fallback_share: float,
    rate: float | None = None,
    phase: float = 0.0,
) -> dict:
    """Call the functions from `start_at` for `seconds` (`rate` calls/s from `phase` of an
    interval, or back to back); return samples, empties and errors."""
    rng = random.Random(seed)
    samples: dict[str, list[tuple[float, float]]] = {f: [] for f in FUNCTIONS}
    empty = dict.fromkeys(FUNCTIONS, 0)
    errors: list[str] = []
    conn = _connect(url)
    try:
        warm = random.Random(seed + 1_000_003)
        for _ in range(WARMUP_CALLS):
            name, args = random_call(warm, ids, 0.1)
            conn.execute(SQL[name], args).fetchall()
        settle()
        time.sleep(max(0.0, start_at - time.time()))
        end, pace = start_at + seconds, Pace(rate, phase)
        while time.time() < end:
            name, args = random_call(rng, ids, fallback_share)
            began = pace.start()
            wall = time.time()
            try:
                rows = conn.execute(SQL[name], args).fetchall()
            except psycopg.Error as exc:
                errors.append(f"{name}{args}: {type(exc).__name__}: {str(exc).strip()[:200]}")
                if conn.broken:
                    conn = _connect(url)
                continue
            samples[name].append((wall, time.perf_counter() - began))
            if not rows:
                empty[name] += 1
    finally:
        conn.close()
    return {"samples": samples, "empty": empty, "errors": errors}
