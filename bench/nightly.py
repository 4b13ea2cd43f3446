"""Benchmark: the nightly run at a scale profile against PostgreSQL, beside the anchors.

    .venv/bin/python bench/nightly.py --profile S [--json out.json] [--no-anchors] [--rounds N]
        [--cache redis://HOST:6379/0] [--replica postgresql://HOST:PORT]

Generates the profile once (bench/profiles.py), runs the nightly for the profile's last day,
and prints per stage: wall seconds, rows in/out and the peak RSS of this process tree, beside
the anchors measured on the same rows: a bare ADBC fetch of the event rows right before the
nightly (extract), a bare binary COPY of the published rows into an empty table right after
it (load), then implicit's CosineRecommender(K=50) fit + recommend N=50 for all users on the
same user×record matrix (model). `--rounds N` repeats that nightly between its anchors and
reports each round's ratios and their medians. Then a 90-day backfill, the SQL side
(aggregate_daily_metrics(date) for the run date, and for each of the backfill's dates: metrics)
and the backfill again, the ratio taken over the two backfills' mean; last ADBC's ingest of
the published rows (load_text, for comparison). With `--cache`, each nightly also warms that
Redis and switches (under a key prefix of the benchmark's, deleted at the end): its round
reports the cache_warm stage's seconds over the rest of the nightly's wall, and Redis'
used_memory before, after (the previous round's keys deleted) and at its peak (sampled every
0.2 s: both runs in memory from the first round on). With `--replica` (the server of a
streaming standby of the profile's server, as bench/pgpair.py makes), the nightlies read the
profile's database there and each round reports the rows of the event tables that the primary
read during the nightly (pg_stat_user_tables over their partitions), and the standby's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import adbc_driver_postgresql.dbapi as adbc
import psycopg
from implicit.nearest_neighbours import CosineRecommender

from bench.profiles import DAYS, END, PROFILES, emit_report, ensure_profile, machine
from bench.redis_memory import MemorySampler, bench_target, delete_namespace, target_url
from flows.backfill import run_backfill
from flows.nightly import run_nightly
from flows.params import NightlyParams
from flows.stages.extract import extract_inputs, window_bounds
from flows.stages.interactions import build_interactions, to_matrix, weighting
from flows.stages.validate import validate_inputs
from flows.storage.backends import open_storage
from flows.storage.base import load_query
from flows.storage.cache.target import CacheTarget, parse_cache_url
from flows.storage.database import parse_database
from flows.storage.literals import inline
from flows.storage.partitions import EVENT_TABLES
from flows.storage.postgres import SWAPPED
from flows.storage.queries import QUERIES, sql_files
from flows.tracking import peak_rss_bytes

RUN_DATE = END - timedelta(days=1)


def timed(fn, *args):
    """Return (value, seconds) of one call."""
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def extract_anchor(db, run_date: date) -> dict:
    """Return rows/s of a bare ADBC fetch_arrow_table of the run's play and usage rows.

    The window is inlined as literals, as the pipeline's read does: with bound parameters
    the driver buffers the whole result in libpq instead of streaming it (twice as slow).
    """
    window = window_bounds(run_date, DAYS)
    rows, seconds = 0, 0.0
    with adbc.connect(db.url) as conn, conn.cursor() as cur:
        for name in ("extract/play_history", "extract/usage_metrics"):
            sql, _ = inline(load_query(name), window)  # its fastest form: streamed by COPY
            t0 = time.perf_counter()
            cur.execute(sql)
            rows += cur.fetch_arrow_table().num_rows
            seconds += time.perf_counter() - t0
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


PUBLISHED = sorted(SWAPPED)  # the tables a nightly publishes whole


def load_text_anchor(db) -> dict:
    """Return rows/s of ADBC's ingest of the published rows into tables it creates.

    ADBC types the new columns from Arrow, so the jsonb `reason` becomes text: this one
    measures a cheaper load than the published table's (kept beside `load` for comparison).
    Plain (logged) tables, created in a transaction that is rolled back: a TEMPORARY table
    would skip the write-ahead log, which no published table can.
    """
    rows, seconds = 0, 0.0
    with adbc.connect(db.url) as conn, conn.cursor() as cur:
        for table in PUBLISHED:
            cur.execute(f"SELECT * FROM {table}")
            table_data = cur.fetch_arrow_table()
            data = table_data.drop_columns([c for c in ("id",) if c in table_data.column_names])
            t0 = time.perf_counter()
            cur.adbc_ingest(f"anchor_{table}", data, mode="create")
            seconds += time.perf_counter() - t0
            rows += data.num_rows
        conn.rollback()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def _spool_binary(conn, table: str, columns: str, spool) -> int:
    """Write the server's binary COPY of `table`'s `columns` to file `spool`; return its rows."""
    cur = conn.cursor()
    with cur.copy(f"COPY (SELECT {columns} FROM {table}) TO STDOUT (FORMAT binary)") as cp:
        for block in cp:
            spool.write(block)
    spool.seek(0)
    return cur.rowcount


def load_anchor(db) -> dict:
    """Return rows/s of a bare binary COPY of the published rows into empty same-typed tables.

    Each table's rows (all columns but the id) are first spooled, untimed, from the server's
    own binary COPY output to a temporary file; the timed part streams that file back with
    COPY FROM STDIN into CREATE TABLE (LIKE t): the same column names, types (jsonb stays
    jsonb) and NOT NULLs, no default, identity, check or index. Plain logged tables, in a
    transaction rolled back afterwards.
    """
    rows, seconds = 0, 0.0
    with psycopg.connect(db.url) as conn:
        for table in PUBLISHED:
            columns = ", ".join(
                name
                for (name,) in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                    "AND attnum > 0 AND NOT attisdropped AND attname <> 'id' ORDER BY attnum",
                    (table,),
                )
            )
            conn.execute(f"CREATE TABLE anchor_{table} (LIKE {table})")
            conn.execute(f"ALTER TABLE anchor_{table} DROP COLUMN id")
            with tempfile.TemporaryFile() as spool:
                rows += _spool_binary(conn, table, columns, spool)
                t0 = time.perf_counter()
                with conn.cursor().copy(f"COPY anchor_{table} FROM STDIN (FORMAT binary)") as cp:
                    while block := spool.read(1 << 20):
                        cp.write(block)
                seconds += time.perf_counter() - t0
        conn.rollback()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def model_anchor(db, run_date: date) -> dict:
    """Return implicit CosineRecommender(K=50) fit and recommend(all users, N=50) seconds."""
    with open_storage(db) as storage:
        inputs = extract_inputs(storage, run_date, DAYS)
    params = NightlyParams(run_date=run_date)
    valid = validate_inputs(inputs, window_bounds(run_date, DAYS)[1]).inputs
    pairs = build_interactions(valid, window_bounds(run_date, DAYS)[1], weighting(params))
    matrix = to_matrix(pairs.records).matrix.tocsr()
    model = CosineRecommender(K=50)
    with warnings.catch_warnings():  # its fit hands itself a COO matrix (≈ 0.1 s, counted)
        warnings.filterwarnings("ignore", "Method expects CSR input", module="implicit")
        _, fit_s = timed(lambda: model.fit(matrix, show_progress=False))
    users = list(range(matrix.shape[0]))
    _, rec_s = timed(lambda: model.recommend(users, matrix[users], N=50))
    return {
        "users": matrix.shape[0],
        "items": matrix.shape[1],
        "pairs": matrix.nnz,
        "fit_s": fit_s,
        "recommend_s": rec_s,
        "seconds": fit_s + rec_s,
    }


def vacuum(db, table: str | None = None) -> int:
    """VACUUM (ANALYZE) `table` (every table when None), untimed; return the dead rows found.

    Autovacuum is off on this machine's server: without this, dead rows would pile up from
    run to run (each backfill leaves one per row it replaced) and slow whichever writer
    comes next, and a freshly generated profile's first reader would pay for setting its
    rows' hint bits. So the nightly, ours and the SQL function's backfills each start from
    vacuumed tables, as autovacuum keeps them in production.
    """
    with psycopg.connect(db.url, autocommit=True) as conn:
        dead = conn.execute(
            "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables "
            "WHERE %(t)s::text IS NULL OR relname = %(t)s",
            {"t": table},
        ).fetchone()
        conn.execute(f"VACUUM (ANALYZE) {table or ''}")
    return int(dead[0])


def warm_cache(db, run_date: date) -> int:
    """Run every extract query once, untimed, counting its rows; return them.

    Run before the nightly and before the extract anchor, so that each timed read starts
    from the OS page cache whatever ran on the machine before (a read from disk took 64 s
    where the cached one took 33 s at L). Only what the extract reads: the output tables
    (13 GB of daily_metrics at L) would push the event rows out of the cache.
    """
    window = window_bounds(run_date, DAYS)
    seen = 0
    with psycopg.connect(db.url, autocommit=True) as conn:
        for path in sql_files(QUERIES / "extract"):
            name = f"extract/{path.name.removesuffix('.sql')}"
            sql = inline(load_query(name), window)[0].strip().rstrip(";")
            seen += conn.execute(f"SELECT count(*) FROM (\n{sql}\n) AS q").fetchone()[0]
    return seen


def metrics_anchor(db, run_date: date, backfill_days: int) -> dict:
    """Return seconds of aggregate_daily_metrics(date) once, and once per date of a backfill."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("SELECT aggregate_daily_metrics(%s)", (run_date,))
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(backfill_days):
            conn.execute("SELECT aggregate_daily_metrics(%s)", (run_date - timedelta(days=i),))
        many = time.perf_counter() - t0
    return {"one_date_s": one, "backfill_s": many, "dates": backfill_days}


def timed_backfill(db, days: int) -> float:
    """Return the seconds of run_backfill over `days` dates to the run date, into no rows yet.

    daily_metrics is emptied first (untimed, TRUNCATE), as a fresh profile leaves it, so
    that the backfills run before and after the SQL side (which rewrites every row of
    the first) start from the same table.
    """
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("TRUNCATE daily_metrics")
    first = RUN_DATE - timedelta(days=days - 1)
    return timed(run_backfill, db, first, RUN_DATE)[1]


def stage_table(result) -> list[dict]:
    """Return the per-stage rows of the report, with a total."""
    stages = [dict(s) for s in result.stages]
    stages.append(
        {
            "stage": "total",
            "seconds": round(sum(s["seconds"] for s in stages), 2),
            "rows_in": None,
            "rows_out": sum(result.rows.values()),
            "peak_rss_mb": max(s["peak_rss_mb"] for s in stages),
        }
    )
    return stages


def round_ratios(stages: list[dict], anchors: dict) -> dict:
    """Return one round's pipeline ÷ anchor comparisons, the forms the targets are stated in."""
    stage = {s["stage"]: s for s in stages}
    out = {}
    if "extract" in anchors and stage.get("extract"):
        ours = stage["extract"]["rows_out"] / stage["extract"]["seconds"]
        out["extract_rows_per_s_vs_anchor"] = ours / anchors["extract"]["rows_per_s"]
    if "load" in anchors and stage.get("publish"):
        ours = stage["publish"]["rows_out"] / stage["publish"]["seconds"]
        out["publish_rows_per_s_vs_anchor"] = ours / anchors["load"]["rows_per_s"]
        if "load_text" in anchors:
            out["publish_rows_per_s_vs_text_anchor"] = ours / anchors["load_text"]["rows_per_s"]
    if anchors.get("model", {}).get("seconds"):
        ours = stage["similarity"]["seconds"] + stage["recommendations"]["seconds"]
        out["models_seconds_vs_anchor"] = ours / anchors["model"]["seconds"]
    if "metrics" in anchors:
        out["daily_metrics_vs_sql_one_date"] = (
            stage["daily_metrics"]["seconds"] / anchors["metrics"]["one_date_s"]
        )
    return out


def ratios(report: dict) -> dict:
    """Return the medians of the rounds' ratios, and the backfill's ratio."""
    out = {
        name: statistics.median(r["ratios"][name] for r in report["rounds"])
        for name in report["rounds"][0]["ratios"]
    }
    if "metrics" in (shared := report.get("anchors", {})):
        out["sql_backfill_vs_ours"] = shared["metrics"]["backfill_s"] / report["backfill_seconds"]
    return out


def in_fresh_process(fn, *args):
    """Return fn(*args) run in a new process forked from multiprocessing's fork server.

    Not spawned from this process: a child's ru_maxrss starts from the resident size of the
    process it was forked from, even across exec, so a spawned child would report this
    benchmark's gigabytes as its own peak. The fork server is a small process of its own.
    """
    forkserver = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=1, mp_context=forkserver) as pool:
        return pool.submit(fn, *args).result()


def nightly_process(db, cache_url: str | None = None, replica=None) -> dict:
    """Run the nightly (warming the Redis of `cache_url`, reading `replica`, if any) and return
    its figures; called in a process of its own.

    Its peak RSS is then the nightly's alone, as in a scheduled run's process, not this
    benchmark's high-water mark with the anchors' reads and models in it.
    """
    params = NightlyParams(run_date=RUN_DATE, window_days=DAYS)
    cache = parse_cache_url(cache_url) if cache_url else None
    result, seconds = timed(partial(run_nightly, cache=cache, replica=replica), db, params)
    return {
        "status": result.status,
        "wall_seconds": seconds,
        "rows": result.rows,
        "stages": stage_table(result),
        "peak_rss_bytes": peak_rss_bytes(),
        "quality": result.quality,
    }


#: Rows and scans of an event table's partitions counted by a server since its start.
EVENT_READS = """
SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)::bigint,
       coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint
FROM pg_stat_user_tables WHERE relid IN (SELECT relid FROM pg_partition_tree(%s::regclass))
"""


def event_reads(db) -> dict[str, list[int]]:
    """Return [rows read, scans] of each event table on `db`'s server, sessions' counts sent."""
    time.sleep(1.2)  # a backend sends its counts when idle, at most once a second
    with psycopg.connect(db.url, autocommit=True) as conn:
        return {t: list(conn.execute(EVENT_READS, (t,)).fetchone()) for t in EVENT_TABLES}


def grown(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict[str, list[int]]:
    """Return how much each table's counts grew."""
    return {t: [a - b for a, b in zip(after[t], before[t], strict=True)] for t in before}


def replica_database(db, replica_server: str):
    """Return the profile's database on the standby server `replica_server`."""
    return parse_database(f"{replica_server.rstrip('/')}/{db.url.rsplit('/', 1)[1]}")


def nightly_round(db, anchors: bool, cache: CacheTarget | None = None, replica=None) -> dict:
    """Run the nightly once between the anchors that judge its stages; return the round.

    The extract anchor runs right before the nightly (whose first stage is the extract),
    the load anchor right after it (its last stage is the publish), then the model anchor:
    each ratio compares figures taken at most a few minutes apart, not the tens of minutes after
    the nightly that the backfill and the SQL side take, over which this shared machine's
    speed drifts.
    """
    vacuumed = vacuum(db)
    warm_cache(replica or db, RUN_DATE)
    measured = {"extract": extract_anchor(db, RUN_DATE)} if anchors else {}
    load_average = machine()["load_average"]
    servers = {"primary": db} | ({"replica": replica} if replica is not None else {})
    before = {name: event_reads(server) for name, server in servers.items()}
    if cache is None:
        round_ = in_fresh_process(nightly_process, db, None, replica)
    else:  # Redis memory sampled while the nightly warms and switches
        with MemorySampler(cache) as memory:
            round_ = in_fresh_process(nightly_process, db, target_url(cache), replica)
        warm = next(s["seconds"] for s in round_["stages"] if s["stage"] == "cache_warm")
        round_["cache"] = {
            "warm_seconds": warm,
            "warm_share_of_the_rest": round(warm / (round_["wall_seconds"] - warm), 4),
            "used_memory": memory.figures(),
        }
    round_ |= {"load_average": load_average, "dead_rows_vacuumed_before_nightly": vacuumed}
    round_["event_reads_during_nightly"] = {  # [rows read, scans] per table and server
        name: grown(before[name], event_reads(server)) for name, server in servers.items()
    }
    if anchors:
        measured["load"] = load_anchor(db)
        measured["model"] = model_anchor(db, RUN_DATE)
    round_["anchors"] = measured
    return round_


def run(
    profile_name: str,
    anchors: bool = True,
    backfill_days: int = DAYS,
    log=print,
    db=None,
    rounds: int = 1,
    cache: CacheTarget | None = None,
    replica_server: str | None = None,
) -> dict:
    """Run the benchmark for one profile and return its report (`db`: use this database;
    `cache`: the nightlies warm this Redis; `replica_server`: they read its standby there)."""
    profile = PROFILES[profile_name]
    db = ensure_profile(profile, log=log, db=db)
    replica = replica_database(db, replica_server) if replica_server else None
    report = {"profile": profile.__dict__, "machine": machine(), "run_date": str(RUN_DATE)}
    report["rounds"] = []
    for i in range(rounds):
        log(f"round {i + 1} of {rounds}: the nightly" + " between its anchors" * anchors)
        round_ = nightly_round(db, anchors, cache, replica)
        report["rounds"].append(round_)
        figures = round_ratios(round_["stages"], round_["anchors"])
        log(
            f"round {i + 1}: nightly {round_['wall_seconds']:.1f} s"
            + "".join(f"; {name} {value:.2f}" for name, value in figures.items())
        )
    report["backfill_days"] = backfill_days
    report["backfill_runs_s"] = [timed_backfill(db, backfill_days)]
    if anchors:
        report["dead_rows_vacuumed_before_sql"] = vacuum(db, "daily_metrics")
        report["anchors"] = {"metrics": metrics_anchor(db, RUN_DATE, backfill_days)}
        report["backfill_runs_s"].append(timed_backfill(db, backfill_days))
        report["anchors"]["load_text"] = load_text_anchor(db)
    report["backfill_seconds"] = statistics.mean(report["backfill_runs_s"])
    for round_ in report["rounds"]:  # with the anchors measured once, after the rounds
        measured = {**report.get("anchors", {}), **round_["anchors"]}
        round_["ratios"] = round_ratios(round_["stages"], measured)
    report["ratios"] = ratios(report)
    return report


def print_round(number: int, round_: dict, profile: str) -> None:
    """Print one round: the nightly's stage table, then its anchors and ratios."""
    print(
        f"\nround {number}: nightly at profile {profile} (load {round_['load_average']}): "
        f"{round_['status']}, {round_['wall_seconds']:.1f} s wall, "
        f"peak RSS {round_['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    print(f"{'stage':<16}{'seconds':>10}{'rows in':>14}{'rows out':>14}{'peak MB':>10}")
    for s in round_["stages"]:
        print(
            f"{s['stage']:<16}{s['seconds']:>10.2f}{s['rows_in'] or '':>14}"
            f"{s['rows_out'] or '':>14}{s['peak_rss_mb']:>10}"
        )
    for name, figures in round_["anchors"].items():
        print(f"anchor {name}: " + json.dumps(figures, default=lambda v: round(v, 3)))
    if "cache" in round_:
        print("cache: " + json.dumps(round_["cache"]))
    for server, tables in round_["event_reads_during_nightly"].items():
        print(f"{server} event-table rows read / scans during the nightly: {json.dumps(tables)}")
    for name, value in round_["ratios"].items():
        print(f"round {number} ratio {name}: {value:.2f}")


def print_report(report: dict) -> None:
    """Print the report as tables: each round, the backfill, the shared anchors, the ratios."""
    m = report["machine"]
    rounds = report["rounds"]
    print(
        f"\nnightly at profile {report['profile']['name']} on {m['cores']} cores, "
        f"{m['memory_gib']} GiB (load {m['load_average']}): {len(rounds)} round(s)"
    )
    for number, round_ in enumerate(rounds, 1):
        print_round(number, round_, report["profile"]["name"])
    runs = report["backfill_runs_s"]
    bracket = f" (before and after the SQL side; mean {report['backfill_seconds']:.1f} s)"
    print(
        f"\nbackfill over {report['backfill_days']} days into an emptied daily_metrics: "
        + " and ".join(f"{s:.1f} s" for s in runs)
        + (bracket if len(runs) > 1 else "")
    )
    before = ", ".join(f"{r['dead_rows_vacuumed_before_nightly']:,}" for r in rounds)
    vacuumed = f"every table vacuumed before each nightly (dead rows: {before})"
    if (sql_side := report.get("dead_rows_vacuumed_before_sql")) is not None:
        vacuumed += f"; daily_metrics before the SQL side (dead rows: {sql_side:,})"
    print(vacuumed)
    for name, figures in report.get("anchors", {}).items():
        print(f"anchor {name}: " + json.dumps(figures, default=lambda v: round(v, 3)))
    median = f" (median of {len(rounds)} rounds)" if len(rounds) > 1 else ""
    for name, value in report["ratios"].items():
        label = median if name in rounds[0]["ratios"] else ""  # the backfill's: one figure
        print(f"ratio {name}{label}: {value:.2f}")


def main() -> None:
    """Parse arguments, run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="S")
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="nightlies, each between its own anchors; the ratios are their medians",
    )
    parser.add_argument("--json", default=None, help="also write the report here")
    parser.add_argument(
        "--backfill-days",
        type=int,
        default=DAYS,
        help=f"dates in the backfill and its SQL anchor (default {DAYS}; both scale with it)",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="redis://… : the nightlies warm this Redis (a key prefix of the benchmark's own, "
        "deleted at the end); each round reports the warm's share of the wall and Redis memory",
    )
    parser.add_argument(
        "--replica",
        default=None,
        help="postgresql://HOST:PORT of a streaming standby of the profile's server "
        "(bench/pgpair.py): the nightlies read there",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    cache = bench_target(args.cache) if args.cache else None
    try:
        report = run(
            args.profile,
            anchors=not args.no_anchors,
            backfill_days=args.backfill_days,
            rounds=args.rounds,
            cache=cache,
            replica_server=args.replica,
        )
    finally:
        if cache is not None:
            delete_namespace(cache)
    print_report(report)
    emit_report(report, args.json)


if __name__ == "__main__":
    main()
