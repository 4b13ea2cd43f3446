"""Fault harness: SIGKILL the nightly run during publish, or restart PostgreSQL under it.

    .venv/bin/python bench/faults.py --trials 20 [--profile small] [--seed 1]
    .venv/bin/python bench/faults.py --restart 4 [--profile tiny]      # restarts the server!

Kill trials: a scratch database is generated once and published once; each trial starts a
nightly run in a subprocess (with other parameters, so that its rows differ), waits until
the job row says the publish stage started, sleeps a random 0..1.3 × (publish seconds) and
SIGKILLs it. Then `content_similarity` and `recommendation_data` must hold exactly the
previous run's rows or exactly a complete new run's (md5 of the rows ordered by key, run
columns excluded, compared with the checksums of uninterrupted runs), one run_id across both
tables, no duplicate key; the killed job row is left 'running'; the next run finds it unheld
(its process's advisory lock went with the process) and closes it at once: 'failed' when the
kill came before the publish committed, 'completed_with_warnings' after (the publish records
itself on the job in its own transaction); then it publishes.

Restart trials (`--restart N`, runs `pg_ctlcluster --skip-systemctl-redirect VERSION main
restart`: never while anyone else uses the server): the server is restarted while a run is
in its extract (even trials) or publish (odd trials) stage; the run must end within
--hang-seconds either completed (its rows published) or failed with its job row 'failed'
and the previous rows untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench import profiles
from bench.checksums import OUTPUTS
from flows.analyst.generate import generate_into
from flows.nightly import run_nightly
from flows.params import NightlyParams
from flows.storage.database import parse_database

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("ROTATION_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
# Own profiles (events end yesterday) and, by their names, bench/profiles.py's XS/S/M/L
# (generated into the scratch database; events end with profiles.END).
PROFILES = {
    "tiny": {"users": 120, "tracks": 1200, "days": 30, "seed": 7},
    "small": {"users": 500, "tracks": 5000, "days": 30, "seed": 7},
}
SHARED_PROFILES = ("XS", "S", "M", "L")
_RUN = {"date": None}  # the run date of the generated data (set by generate)
# The published tables: their columns minus the run's identity and clock, and their key.
PUBLISHED = {table: OUTPUTS[table] for table in ("content_similarity", "recommendation_data")}
# How the next run closes a killed run's job, by where the kill landed.
DEAD = {"old": "failed", "new": "completed_with_warnings"}
# Two parameter sets whose outputs differ: the runs alternate between them.
VARIANTS = {"A": {}, "B": {"top_n": 15, "similar_k": 15}}
CHILD = """
import sys
from datetime import date
from flows.storage.database import parse_database
from flows.nightly import run_nightly
from flows.params import NightlyParams
url, day, top_n, similar_k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
params = NightlyParams(run_date=date.fromisoformat(day), top_n=top_n, similar_k=similar_k,
                       force_publish=True)
result = run_nightly(parse_database(url), params)
print(result.status, result.run_id)
"""


def run_date() -> date:
    """Return the run date of every trial: the generated data's last day (default yesterday)."""
    return _RUN["date"] or datetime.now(UTC).date() - timedelta(days=1)


def params_of(variant: str, day: date | None = None):
    """Return the NightlyParams of a variant (always force_publish: the gate is not tested)."""
    return NightlyParams(run_date=day or run_date(), force_publish=True, **VARIANTS[variant])


def connect(url: str) -> psycopg.Connection:
    """Return an autocommit connection with a short connect timeout."""
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@contextmanager
def scratch_database(prefix: str = "rotation_faults"):
    """Yield the Database of a new empty PostgreSQL database; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with connect(ADMIN_URL) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parse_database(f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    finally:
        for _ in range(30):  # after a restart the server may need a moment
            try:
                with connect(ADMIN_URL) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.OperationalError:
                time.sleep(1)


def generate(db, profile: str) -> date:
    """Fill `db` with the profile's synthetic data; return (and keep) its last day."""
    if profile in SHARED_PROFILES:
        profiles.ensure_profile(profiles.PROFILES[profile], db=db, log=lambda line: None)
        _RUN["date"] = profiles.END - timedelta(days=1)
        return _RUN["date"]

    _RUN["date"] = datetime.now(UTC).date() - timedelta(days=1)
    generate_into(db, **PROFILES[profile], end=_RUN["date"] + timedelta(days=1))
    return _RUN["date"]


@dataclass(frozen=True)
class TableState:
    """What a published table holds: a checksum of its rows, counts and the run ids."""

    checksum: str | None
    rows: int
    duplicate_keys: int
    run_ids: tuple[str, ...]


def table_state(conn: psycopg.Connection, table: str) -> TableState:
    """Return the state of one published table (rows ordered by key, run columns left out)."""
    columns, key = PUBLISHED[table]
    row = conn.execute(
        f"SELECT md5(string_agg(ROW({columns})::text, E'\\n' ORDER BY {key})), count(*), "
        f"count(*) - count(DISTINCT ROW({key})), "
        f"coalesce(array_agg(DISTINCT run_id), '{{}}') FROM {table}"
    ).fetchone()
    return TableState(row[0], row[1], row[2], tuple(sorted(r for r in row[3] if r is not None)))


def state(url: str) -> dict[str, TableState]:
    """Return the state of both published tables, read in one snapshot."""
    with connect(url) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return {table: table_state(conn, table) for table in PUBLISHED}


def checksums(states: dict[str, TableState]) -> tuple:
    """Return the checksums of both tables."""
    return tuple(states[t].checksum for t in PUBLISHED)


def run_ids(states: dict[str, TableState]) -> set[str]:
    """Return every run_id found in either table."""
    return {r for s in states.values() for r in s.run_ids}


def spawn_nightly(url: str, variant: str, day: date | None = None) -> subprocess.Popen:
    """Start a nightly run of `variant` in a new Python process."""
    p = params_of(variant, day)
    args = [url, (day or run_date()).isoformat(), str(p.top_n), str(p.similar_k)]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def last_job_id(url: str) -> int:
    """Return the newest jobs id (0 when none)."""
    with connect(url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()[0]


def wait_for_stage(
    url: str, proc: subprocess.Popen, stage: str, after_job: int, timeout: float = 300
) -> tuple[int, str] | None:
    """Return (job id, run_id) once a job newer than `after_job` starts `stage`; None if the
    process ended first. The job row's progress_message is 'STAGE…' while the stage runs."""
    deadline = time.monotonic() + timeout
    with connect(url) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT id, run_id FROM jobs WHERE id > %s AND job_status = 'running' "
                "AND progress_message = %s ORDER BY id DESC LIMIT 1",
                (after_job, f"{stage}…"),
            ).fetchone()
            if row:
                return row[0], row[1]
            if proc.poll() is not None:
                return None
            time.sleep(0.003)
    raise TimeoutError(f"no job reached {stage} within {timeout} s")


def job_row(url: str, job_id: int) -> dict:
    """Return one jobs row as a dict."""
    with connect(url) as conn:
        cur = conn.execute(
            "SELECT id, run_id, job_status::text, error_message, result FROM jobs WHERE id = %s",
            (job_id,),
        )
        names = [c.name for c in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))


def reference_runs(db) -> tuple[dict[str, tuple], float]:
    """Run B then A uninterrupted (and B in a subprocess, then A again); return {variant:
    checksums} and the longest publish seconds seen."""
    sums, seconds = {}, []
    for variant in ("B", "A"):
        result = run_nightly(db, params_of(variant))
        assert result.published, result.summary()
        states = state(db.url)
        assert run_ids(states) == {result.run_id}
        sums[variant] = checksums(states)
        seconds += [s["seconds"] for s in result.stages if s["stage"] == "publish"]
    if sums["A"] == sums["B"]:
        raise AssertionError("the two variants publish the same rows: trials would prove nothing")
    # once more as the trials run it, in a subprocess: same rows, and its publish time
    proc = spawn_nightly(db.url, "B")
    out, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"nightly subprocess failed: {err[-500:]}")
    child_run = out.split()[-1]
    if checksums(state(db.url)) != sums["B"]:
        raise AssertionError("a subprocess run published other rows than the same run in-process")
    with connect(db.url) as conn:
        seconds += [
            ms / 1000
            for (ms,) in conn.execute(
                "SELECT duration_ms FROM performance_metrics WHERE run_id = %s "
                "AND stage = 'publish'",
                (child_run,),
            )
        ]
    run_nightly(db, params_of("A"))
    return sums, max(seconds)


@dataclass
class Trial:
    """The outcome of one kill trial."""

    number: int
    delay_ms: float
    outcome: str  # "old" | "new" | "finished" (process ended before the kill) | "broken: …"
    killed_status: str
    recovered: bool

    @property
    def survived(self) -> bool:
        """Return True when the tables, the job row and the next run were all as promised."""
        return not self.outcome.startswith("broken") and self.recovered


def kill_trial(db, number: int, sums: dict, max_delay_s: float, rng: random.Random) -> Trial:
    """SIGKILL a run of variant B during publish, check the tables, recover with variant A."""
    url = db.url
    before = state(url)
    previous_run = run_ids(before)
    assert checksums(before) == sums["A"] and len(previous_run) == 1, before
    after_job = last_job_id(url)
    proc = spawn_nightly(url, "B")
    delay = rng.uniform(0, max_delay_s)
    try:
        job = wait_for_stage(url, proc, "publish", after_job)
        if job is None:
            _, err = proc.communicate()
            return Trial(number, 0, f"broken: run ended before publish: {err[-300:]}", "", False)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    after = state(url)
    ids = run_ids(after)
    problems = [
        f"{t}: {s.duplicate_keys} duplicate keys" for t, s in after.items() if s.duplicate_keys
    ] + [f"{t}: empty" for t, s in after.items() if s.rows == 0]
    if checksums(after) == sums["A"] and ids == previous_run:
        outcome = "old"
    elif checksums(after) == sums["B"] and ids == {job[1]}:
        outcome = "new"
    else:
        problems.append(f"neither the old nor the new rows: run ids {sorted(ids)}")
        outcome = ""
    killed = job_row(url, job[0])
    if killed["job_status"] == "completed" and outcome == "new":
        outcome = "finished"  # the run completed (and closed its job) before the signal landed
    elif killed["job_status"] != "running":
        problems.append(f"killed job is {killed['job_status']}, expected running")
    if problems:
        outcome = "broken: " + "; ".join(problems)
    # recovery: the next run closes the dead job at once, by what its publish had done
    result = run_nightly(db, params_of("A"))
    final = state(url)
    killed_after = job_row(url, job[0])
    recovered = (
        result.status == "completed"
        and result.published
        and checksums(final) == sums["A"]
        and run_ids(final) == {result.run_id}
        and (killed["job_status"] != "running" or killed_after["job_status"] == DEAD.get(outcome))
    )
    return Trial(number, delay * 1000, outcome, killed["job_status"], recovered)


def kill_trials(trials: int, profile: str, seed: int, say=print) -> list[Trial]:
    """Run the kill trials on a scratch database; return their outcomes."""
    rng = random.Random(seed)
    with scratch_database() as db:
        start = time.perf_counter()
        generate(db, profile)
        say(f"generated the {profile} profile in {time.perf_counter() - start:.1f} s")
        sums, publish_s = reference_runs(db)
        say(f"uninterrupted publish: {publish_s * 1000:.0f} ms; kills land in 0..1.3× that")
        done = []
        for number in range(1, trials + 1):
            trial = kill_trial(db, number, sums, publish_s * 1.3, rng)
            done.append(trial)
            say(
                f"trial {number:3d}: killed {trial.delay_ms:6.1f} ms into publish -> "
                f"{trial.outcome}; killed job {trial.killed_status}; "
                f"next run {'ok' if trial.recovered else 'FAILED'}"
            )
    return done


# restarts --------------------------------------------------------------------------------------


def cluster() -> tuple[str, str]:
    """Return (version, name) of the local cluster (pg_lsclusters' first line)."""
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    version, name = out.stdout.split()[:2]
    return version, name


def restart_server() -> float:
    """Restart the local PostgreSQL cluster; return the seconds it took."""
    version, name = cluster()
    start = time.perf_counter()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return time.perf_counter() - start


def outage(db, seconds: float = 3.0) -> float:
    """Simulate a restart of `db` alone: refuse new connections, terminate the open ones,
    wait `seconds`, accept connections again; return the seconds it lasted."""
    name = db.url.rsplit("/", 1)[1].split("?")[0]
    start = time.perf_counter()
    with connect(ADMIN_URL) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            time.sleep(seconds)
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    return time.perf_counter() - start


def others_running_pytest() -> list[str]:
    """Return the command lines of pytest processes that are not this process."""
    out = subprocess.run(["pgrep", "-af", "pytest"], capture_output=True, text=True)
    return [ln for ln in out.stdout.splitlines() if not ln.startswith(f"{os.getpid()} ")]


def restart_trial(
    db, number: int, sums: dict, hang_s: float, simulate: bool = False
) -> tuple[bool, str]:
    """Restart the server (or, simulated, the database alone) during extract (even trials)
    or publish (odd trials); return (survived, story)."""
    url = db.url
    before = state(url)
    stage = "extract" if number % 2 == 0 else "publish"
    after_job = last_job_id(url)
    proc = spawn_nightly(url, "B")
    job = wait_for_stage(url, proc, stage, after_job)
    if job is None:
        proc.wait()
        return False, f"run ended before {stage}"
    if not simulate and others_running_pytest():  # someone started tests meanwhile
        proc.kill()
        proc.wait()
        raise SystemExit("pytest started on the shared server: restart trials stopped")
    took = outage(db) if simulate else restart_server()
    try:
        _, err = proc.communicate(timeout=hang_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False, f"HUNG: still running {hang_s} s after the restart"
    after, row = state(url), job_row(url, job[0])
    if proc.returncode == 0:
        ok = (
            row["job_status"] == "completed"
            and checksums(after) == sums["B"]
            and run_ids(after) == {job[1]}
        )
        story = f"completed after the restart ({took:.1f} s) during {stage}"
    else:
        ok = row["job_status"] == "failed" and after == before
        last = (err.strip().splitlines() or ["?"])[-1][:160]
        story = f"failed cleanly after the restart during {stage}: {last}"
        if not ok:
            story = f"BROKEN: job {row['job_status']}, tables changed={after != before}: {last}"
    # put variant A back for the next trial

    run_nightly(db, params_of("A"))
    return ok, story


def restart_trials(
    trials: int, profile: str, hang_s: float, simulate: bool = False, say=print
) -> list[bool]:
    """Run the restart trials; return which survived."""
    busy = others_running_pytest()
    if busy and not simulate:
        raise SystemExit("refusing to restart PostgreSQL while pytest runs:\n" + "\n".join(busy))
    survived = []
    with scratch_database() as db:
        generate(db, profile)
        sums, _ = reference_runs(db)
        for number in range(1, trials + 1):
            ok, story = restart_trial(db, number, sums, hang_s, simulate)
            survived.append(ok)
            say(f"restart {number}: {'survived' if ok else 'NOT survived'} - {story}")
    return survived


def main(argv: list[str] | None = None) -> int:
    """Run the harness; return 0 when every trial survived."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="SIGKILL trials (default 20)")
    parser.add_argument("--profile", choices=[*PROFILES, *SHARED_PROFILES], default="small")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill delays")
    parser.add_argument("--restart", type=int, default=0, metavar="N",
                        help="instead: N PostgreSQL restarts during runs")  # fmt: skip
    parser.add_argument("--hang-seconds", type=float, default=180)
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="with --restart: a 3 s outage of the scratch database alone (no server restart)",
    )
    args = parser.parse_args(argv)
    if args.restart:
        survived = restart_trials(args.restart, args.profile, args.hang_seconds, args.simulate)
        print(json.dumps({"restarts": len(survived), "survived": sum(survived)}))
        return 0 if all(survived) else 1
    trials = kill_trials(args.trials, args.profile, args.seed)
    outcomes = {o: sum(t.outcome == o for t in trials) for o in ("old", "new", "finished")}
    survived = sum(t.survived for t in trials)
    print(f"survived {survived}/{len(trials)} kill trials ({outcomes})")
    print(json.dumps({"trials": len(trials), "survived": survived, **outcomes}))
    return 0 if survived == len(trials) else 1


if __name__ == "__main__":
    raise SystemExit(main())
