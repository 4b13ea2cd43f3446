"""Benchmark: a flow by user shards on a local Dask cluster, beside the one-shard run.

    .venv/bin/python bench/scale.py --profile S [--flow backfill|nightly] [--days 90]
        [--workers 2] [--shards K] [--worker-memory 2GiB] [--json out.json]

Generates the profile once (bench/profiles.py), then runs the flow twice, alternately fresh:
the backfill of the profile's last `--days` dates, or the nightly of its last date with a
window of `--days` days (publishing whatever its quality gate says: both runs see the same
data). (1) one shard on the default runner, in a process of its own (its peak RSS is the
run's); (2) `--shards K` (default: one per worker) with the shard tasks on a local Dask
cluster of `--workers` single-threaded processes that this benchmark starts (each worker's
peak RSS read from the worker after the run), the flow itself in a process of its own. Each
run reports the checksums of what it published (bench/checksums.py's columns, run columns
aside): equal means the same rows to the last bit. Rows read from the event tables are the
server's count (pg_stat_user_tables over their partitions) around each run, beside the rows
in the window. The wall of (2) over (1) is the figure of overhead (this machine has 2 cores:
no speed-up expected).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from dask.utils import key_split
from distributed import Client, LocalCluster, WorkerPlugin, get_task_stream
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_dask import DaskTaskRunner

from bench.checksums import OUTPUTS
from bench.nightly import EVENT_READS, RUN_DATE, in_fresh_process
from bench.profiles import PROFILES, emit_report, ensure_profile, machine
from flows.backfill import backfill, run_backfill
from flows.cluster import local_cluster
from flows.nightly import nightly, run_nightly
from flows.params import NightlyParams
from flows.storage.database import ENV_VAR
from flows.tracking import peak_rss_bytes

EVENTS = ("play_history", "usage_metrics")
WINDOW_ROWS = {
    "play_history": "SELECT count(*) FROM play_history WHERE played_at >= %s AND played_at < %s",
    "usage_metrics": "SELECT count(*) FROM usage_metrics "
    "WHERE occurred_at >= %s AND occurred_at < %s",
}


def event_reads(url: str) -> dict[str, int]:
    """Return the rows the server has counted as read of each event table (all partitions)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(0.7)  # the other backends' counters reach the statistics on their flush
        return {t: int(conn.execute(EVENT_READS, (t,)).fetchone()[0]) for t in EVENTS}


def window_rows(url: str, days: int) -> dict[str, int]:
    """Return the rows of each event table in the backfill's window."""
    start = RUN_DATE - timedelta(days=days - 1)
    end = RUN_DATE + timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        return {t: int(conn.execute(q, (start, end)).fetchone()[0]) for t, q in WINDOW_ROWS.items()}


def nightly_params(days: int, shards: int | None = None) -> NightlyParams:
    """Return the benchmark's nightly: the last date, a window of `days`, published."""
    return NightlyParams(run_date=RUN_DATE, window_days=days, force_publish=True, shards=shards)


def one_shard_process(db, flow: str, days: int) -> dict:
    """Run the flow with one shard on the default runner; return wall, peak and status."""
    start = time.perf_counter()
    if flow == "nightly":
        result = run_nightly(db, nightly_params(days))
    else:
        result = run_backfill(db, RUN_DATE - timedelta(days=days - 1), RUN_DATE)
    return {
        "status": result.status,
        "wall_seconds": time.perf_counter() - start,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def sharded_process(
    url: str, flow: str, days: int, shards: int, address: str, api_url: str
) -> dict:
    """Run the flow with its shard tasks on the scheduler at `address`."""
    os.environ[ENV_VAR] = url
    runner = DaskTaskRunner(address=address)
    start = time.perf_counter()
    # the benchmark's server, as the workers': Prefect read its settings when imported
    with temporary_settings({PREFECT_API_URL: api_url}):
        if flow == "nightly":
            params = dataclasses.asdict(nightly_params(days, shards))
            summary = nightly.with_options(task_runner=runner)(**params)
        else:
            first = RUN_DATE - timedelta(days=days - 1)
            backfill_flow = backfill.with_options(task_runner=runner)
            summary = backfill_flow(date_from=first, date_to=RUN_DATE, shards=shards)
    return {
        "status": summary["status"],
        "wall_seconds": time.perf_counter() - start,
        "peak_rss_bytes": peak_rss_bytes(),
    }


class WorkerSampler:
    """Sample every worker's memory on the scheduler each `interval` seconds, in a thread:
    per worker name, its peak resident memory seen, the bytes Dask held of task results
    (managed) at that moment, how many times it was restarted (a new address) and whether
    it was lost (absent from the last sample: a restart that never came back)."""

    def __init__(self, client: Client, interval: float = 0.5) -> None:
        self.client, self.interval = client, interval
        self.workers: dict[str, dict] = {}
        self.present: set[str] = set()  # the workers of the last sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a worker restarting between two samples
                self.sample(self.client.scheduler_info(n_workers=-1)["workers"])

    def sample(self, workers: dict) -> None:
        """Fold one scheduler view of the workers into the peaks."""
        self.present = {str(info["name"]) for info in workers.values()}
        for address, info in workers.items():
            metrics = info.get("metrics", {})
            seen = self.workers.setdefault(
                str(info["name"]), {"rss": 0, "managed_at_peak": 0, "addresses": set()}
            )
            seen["addresses"].add(address)
            if metrics.get("memory", 0) > seen["rss"]:
                seen["rss"] = metrics["memory"]
                seen["managed_at_peak"] = metrics.get("managed_bytes", 0)

    def names(self) -> dict[str, str]:
        """Return each address a worker had (one per start) and its name."""
        return {a: name for name, seen in self.workers.items() for a in seen["addresses"]}

    def report(self) -> dict:
        """Return, per worker name, its sampled peak, the managed bytes then and restarts."""
        return {
            name: {
                "sampled_peak_rss_bytes": seen["rss"],
                "managed_bytes_at_peak": seen["managed_at_peak"],
                "restarts": len(seen["addresses"]) - 1,
                "lost": name not in self.present,  # gone, not back by the last sample
            }
            for name, seen in sorted(self.workers.items())
        }


def _status_bytes(field: str) -> int:
    """Return a size field of this process's /proc status (VmHWM, VmRSS) in bytes."""
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))
    return kib * 1024


def _high_water_mark() -> int:
    """Return this process's peak RSS in bytes since it started or since the mark was reset.

    Its address space's high-water mark (VmHWM), not ru_maxrss: the workers are spawned from
    this benchmark's process, and a spawned child's ru_maxrss starts from its parent's
    resident size (it survives the exec), the gigabytes of a profile generated here.
    """
    return _status_bytes("VmHWM")


class TaskPeaks(WorkerPlugin):
    """On each worker: its peak RSS over the run and, per task name, the highest peak while
    a task of that name ran (the high-water mark reset as each starts: a worker runs one
    task at a time), so that a shard's tasks and the item models' show apart, and how far
    above the worker's resident size at its start (what the task itself needed, apart from
    what the worker held); per task name the largest result it kept (Dask's size of it: a
    shard's data, its lists, the item side every worker is sent), and the most it held
    spilled to disk at once."""

    name = "task-peaks"

    def setup(self, worker) -> None:
        self.worker, self.overall, self.spilled, self.started = worker, 0, 0, 0
        self.tasks, self.rises, self.results = {}, {}, {}

    def transition(self, key, start: str, finish: str, **kwargs) -> None:
        if finish == "executing":
            self.overall = max(self.overall, _high_water_mark())
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # resets VmHWM to the resident size now
            self.started = _status_bytes("VmRSS")
        elif start == "executing":
            name, peak = key_split(key), _high_water_mark()
            self.tasks[name] = max(self.tasks.get(name, 0), peak)
            self.rises[name] = max(self.rises.get(name, 0), peak - self.started)
        if finish == "memory":
            name, task = key_split(key), self.worker.state.tasks.get(key)
            self.results[name] = max(self.results.get(name, 0), task.nbytes if task else 0)
        spilled = getattr(self.worker.data, "spilled_total", None)  # a SpillBuffer's
        self.spilled = max(self.spilled, spilled.memory if spilled else 0)

    def report(self) -> dict:
        """Return the worker's peak, its peak and rise per task name, the largest result
        per task name and the most it held spilled (bytes)."""
        return {
            "peak_rss_bytes": max(self.overall, _high_water_mark()),
            "task_peak_rss_bytes": dict(sorted(self.tasks.items())),
            "task_rise_bytes": dict(sorted(self.rises.items())),
            "result_bytes": dict(sorted(self.results.items())),
            "spilled_peak_bytes": self.spilled,
        }


def _task_peaks(dask_worker) -> dict:
    """Return the worker's TaskPeaks report (run on each worker)."""
    return dask_worker.plugins[TaskPeaks.name].report()


#: The tasks on one shard's users (flows/stages/shards.py, held_rows.py): the rest read the
#: whole catalogue, fit or hold the item models, or combine every shard's partials.
SHARD_TASKS = (
    "load_shard",
    "shard_fit_inputs",
    "shard_track_matrix",
    "shard_partials",
    "shard_lists",
)


def peaks_by_side(task_peaks: dict[str, dict]) -> dict[str, int]:
    """Return the highest peak of any worker while a shard's task ran, and while any other
    task ran, and the most a shard's task rose above its worker's resident size at its start
    (TaskPeaks' reports by worker)."""
    shard, other, rise = 0, 0, 0
    for report in task_peaks.values():
        for name, peak in report["task_peak_rss_bytes"].items():
            if name in SHARD_TASKS:
                shard = max(shard, peak)
                rise = max(rise, report["task_rise_bytes"][name])
            else:
                other = max(other, peak)
    return {"shard_tasks": shard, "other_tasks": other, "shard_task_rise": rise}


def held_by_workers(task_peaks: dict[str, dict]) -> dict[str, int]:
    """Return the largest result any worker kept of a shard's data, of its lists and of the
    shared values (the item side), and the most a worker held spilled at once (bytes)."""
    results = [report["result_bytes"] for report in task_peaks.values()]
    held = {
        what: max((r.get(name, 0) for r in results), default=0)
        for what, name in (("shard", "load_shard"), ("lists", "shard_lists"), ("shared", "shared"))
    }
    held["spilled"] = max((r["spilled_peak_bytes"] for r in task_peaks.values()), default=0)
    return held


#: The tables each flow publishes.
PUBLISHED = {"backfill": ("daily_metrics",), "nightly": tuple(OUTPUTS)}


def stage_peaks(url: str, flow: str) -> dict[str, dict]:
    """Return the last `flow` job's stages: per stage its seconds and the run process's peak
    RSS at its end (MiB; the peak so far, so the stage that raised it shows)."""
    sql = "SELECT result FROM jobs WHERE job_type = %s ORDER BY started_at DESC LIMIT 1"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, (flow,)).fetchone()
    stages = (row[0] or {}).get("stages", []) if row else []
    return {s["stage"]: {"seconds": s["seconds"], "peak_rss_mb": s["peak_rss_mb"]} for s in stages}


def measured(url: str, flow: str, run) -> dict:
    """Return `run()`'s figures with the event rows read during it, its job's stages and the
    output checksums."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE daily_metrics")  # both runs start from a fresh table
    before = event_reads(url)
    figures = run()
    after = event_reads(url)
    figures["rows_read"] = {t: after[t] - before[t] for t in EVENTS}
    figures["stages"] = stage_peaks(url, flow)
    figures["checksums"] = {table: table_checksum(url, table) for table in PUBLISHED[flow]}
    return figures


def tasks_by_worker(stream: list[dict], names: dict[str, str]) -> dict[str, dict[str, int]]:
    """Return, per worker name, how many tasks of each name it ran (a task stream's records;
    `names`: worker address to name), so the worker that ran the catalogue's task shows."""
    counts: dict[str, dict[str, int]] = {}
    for record in stream:
        worker = names.get(record["worker"], record["worker"])
        task = key_split(record["key"])
        counts.setdefault(str(worker), {}).setdefault(task, 0)
        counts[str(worker)][task] += 1
    return {worker: dict(sorted(tasks.items())) for worker, tasks in sorted(counts.items())}


#: A table's rows and the md5 of its groups' md5s (bench/checksums.py's text, a group of the
#: key's first two columns at a time: a 90-day backfill at L is 34M rows of daily_metrics,
#: past PostgreSQL's 1 GB string limit whole).
CHECKSUM = """
SELECT coalesce(sum(n), 0), md5(coalesce(string_agg(digest, '' ORDER BY {groups}), ''))
FROM (SELECT {groups}, count(*) AS n,
             md5(string_agg(t::text, E'\\n' ORDER BY {order})) AS digest
      FROM (SELECT {columns} FROM {table}) AS t GROUP BY {groups}) AS groups
"""


def table_checksum(url: str, table: str) -> dict:
    """Return a published table's rows and checksum, run columns aside."""
    columns, order = OUTPUTS[table]
    groups = ", ".join(order.split(", ")[:2])
    sql = CHECKSUM.format(columns=columns, order=order, groups=groups, table=table)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        rows, digest = conn.execute(sql).fetchone()  # trusted names: OUTPUTS
    return {"rows": int(rows), "md5": digest}


@contextlib.contextmanager
def prefect_server() -> Iterator[str]:
    """Yield the API URL the flow and the workers report to: the configured one, else a
    server started for the benchmark (stopped after)."""
    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    # as the command line: no telemetry heartbeat, whose writes met the runs' on its SQLite
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    server = SubprocessASGIServer()
    server.start()
    try:
        yield server.api_url
    finally:
        server.stop()


def run(
    profile: str, days: int, workers: int, shards: int, memory: str, db=None, flow="backfill"
) -> dict:
    """Return the report of both runs of `flow` on the profile (generated into `db` if given)."""
    db = ensure_profile(PROFILES[profile], db=db)
    report = {"machine": machine(), "profile": profile, "flow": flow, "days": days}
    report |= {"workers": workers, "shards": shards, "window_rows": window_rows(db.url, days)}
    one_shard = (one_shard_process, db, flow, days)
    report["one_shard"] = measured(db.url, flow, lambda: in_fresh_process(*one_shard))
    with prefect_server() as api_url:
        cluster = LocalCluster(**local_cluster(workers, memory, api_url))  # as --workers
        with cluster, Client(cluster) as client:
            client.register_plugin(TaskPeaks())
            args = (db.url, flow, days, shards, cluster.scheduler_address, api_url)
            sharded = (sharded_process, *args)
            with WorkerSampler(client) as sampler, get_task_stream(client) as stream:
                report["sharded"] = measured(db.url, flow, lambda: in_fresh_process(*sharded))
            peaks = client.run(_task_peaks)
            report["sharded"]["workers_sampled"] = sampler.report()
            report["sharded"]["task_peaks"] = {
                sampler.names().get(address, address): peak for address, peak in peaks.items()
            }
            ran = tasks_by_worker(stream.data, sampler.names())  # a restarted one's too
            report["sharded"]["tasks_by_worker"] = ran
            report["sharded"]["peaks_by_side"] = peaks_by_side(report["sharded"]["task_peaks"])
            report["sharded"]["worker_peak_rss_bytes"] = sorted(
                peak["peak_rss_bytes"] for peak in peaks.values()
            )
    one, many = report["one_shard"], report["sharded"]
    report["wall_ratio"] = many["wall_seconds"] / one["wall_seconds"]
    total = sum(report["window_rows"].values())
    report["rows_read_over_window"] = {
        "one_shard": sum(one["rows_read"].values()) / total,
        "sharded": sum(many["rows_read"].values()) / total,
    }
    report["same_rows"] = one["checksums"] == many["checksums"]
    report["machine_after"] = machine()
    return report


def main() -> None:
    """Parse arguments, run both backfills, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="S")
    parser.add_argument("--flow", choices=("backfill", "nightly"), default="backfill")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=None, help="default: one per worker")
    parser.add_argument("--worker-memory", default="2GiB")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    shards = args.shards or args.workers
    report = run(args.profile, args.days, args.workers, shards, args.worker_memory, flow=args.flow)
    one, many, gib = report["one_shard"], report["sharded"], 2**30
    workers = [round(p / gib, 2) for p in many["worker_peak_rss_bytes"]]
    restarts = sum(w["restarts"] for w in many["workers_sampled"].values())
    lost = sum(w["lost"] for w in many["workers_sampled"].values())
    sides = {name: round(peak / gib, 2) for name, peak in many["peaks_by_side"].items()}
    held = {what: round(size / 2**20) for what, size in held_by_workers(many["task_peaks"]).items()}
    what = "nightly with a window of" if args.flow == "nightly" else "backfill of"
    print(
        f"{what} {args.days} dates at {args.profile}: one shard {one['wall_seconds']:.1f} s, "
        f"peak {one['peak_rss_bytes'] / gib:.2f} GiB; {shards} shards on {args.workers} "
        f"workers {many['wall_seconds']:.1f} s (x {report['wall_ratio']:.2f}), flow peak "
        f"{many['peak_rss_bytes'] / gib:.2f} GiB, worker peaks {workers} GiB (during "
        f"a shard's tasks and the others: {sides}), the most a worker held of each {held} "
        f"MiB, worker "
        f"restarts {restarts}, workers lost {lost}; rows read over "
        f"the window's {report['rows_read_over_window']}; same rows: {report['same_rows']}"
    )
    emit_report(report, args.json)


if __name__ == "__main__":
    main()
