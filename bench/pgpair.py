"""A throwaway PostgreSQL primary and streaming hot standby, for the replica tests and benchmarks.

`initdb` makes a primary in a directory of its own and `pg_basebackup -R` a hot standby of it,
each on a spare port of 127.0.0.1, run as the `postgres` OS user (the server refuses root).
The shared server at 127.0.0.1:5432 is never base-backed up: its databases hold gigabytes of
benchmark profiles. tests/replica_fixtures.py makes a small fast pair per test session;
`python bench/pgpair.py start DIR` makes one configured like the shared server for a profile
(bench/nightly.py --replica), `stop DIR` stops it and removes DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from flows.storage.database import Database, parse_database

PG_BIN = Path(os.environ.get("ROTATION_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: Both servers' settings: streaming replication, no autovacuum (nothing reads a table on its
#: own while scans are counted), and what `extra` adds.
BASE_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
wal_level = replica
max_wal_senders = 4
hot_standby = on
hot_standby_feedback = on
autovacuum = off
"""
#: The tests' pair: fast and small.
TEST_CONF = "fsync = off\nfull_page_writes = off\nshared_buffers = 32MB\nmax_connections = 40\n"
#: The benchmark's pair: as the shared server at 127.0.0.1:5432 is configured.
BENCH_CONF = "shared_buffers = 128MB\nmax_connections = 100\nmax_wal_size = 4GB\n"


@dataclass(frozen=True)
class StreamingPair:
    """A primary and its standby: a database of the same name on each, and their directory."""

    primary: Database
    replica: Database
    root: Path

    def primary_sql(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Return the rows of one statement run (autocommit) on the primary."""
        return run_sql(self.primary, sql, params)

    def replica_sql(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Return the rows of one statement run on the standby."""
        return run_sql(self.replica, sql, params)

    def wait_for_replay(self, timeout_s: float = 30) -> None:
        """Return once the standby has replayed everything the primary has written."""
        target = self.primary_sql("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout_s
        sql = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
        while not self.replica_sql(sql, (target,))[0][0]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not replay {target} in {timeout_s:.0f} s")
            time.sleep(0.05)


def run_sql(db: Database, sql: str, params: tuple = ()) -> list[tuple]:
    """Return the rows of one statement run on `db` in autocommit."""
    with psycopg.connect(db.url, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


def binaries_present() -> bool:
    """Whether the server binaries a pair needs are installed (ROTATION_TEST_PG_BIN)."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_basebackup").exists()


def _spare_ports() -> tuple[int, int]:
    """Return two distinct TCP ports of 127.0.0.1 that nothing listens on now."""
    ports: list[int] = []
    while len(ports) < 2:  # closed at once, a port may be handed out again
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            if (port := s.getsockname()[1]) not in ports:
                ports.append(port)
    return ports[0], ports[1]


def _as_postgres(*command: str | Path) -> list[str]:
    """Return `command` run as the postgres OS user when this process is root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return [*prefix, *(str(part) for part in command)]


def _check(*command: str | Path, timeout: float = 3600) -> None:
    """Run a server tool; raise with its output when it fails."""
    done = subprocess.run(
        _as_postgres(*command), capture_output=True, text=True, timeout=timeout, cwd="/"
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")


def _url(port: int, dbname: str) -> str:
    return f"postgresql://root@127.0.0.1:{port}/{dbname}"


def _start(data: Path, log: Path) -> None:
    _check(PG_BIN / "pg_ctl", "start", "-w", "-t", "300", "-D", data, "-l", log)


def _stop(data: Path) -> None:
    """Stop a server at once (nothing of it is worth keeping); ignore one that is not running."""
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _as_postgres(PG_BIN / "pg_ctl", "stop", "-m", "immediate", "-w", "-D", data),
            capture_output=True,
            timeout=120,
            cwd="/",
        )


def start_pair(root: Path, dbname: str, extra: str) -> StreamingPair:
    """Make and start a primary with an empty `dbname` and its standby under `root`."""
    primary, standby = root / "primary", root / "standby"
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    _check(PG_BIN / "initdb", "-D", primary, "-U", "root", "-A", "trust", "--no-sync",
           "-E", "UTF8", "--locale", "C.UTF-8")  # fmt: skip
    ports = _spare_ports()
    with open(primary / "postgresql.conf", "a") as conf:
        conf.write(BASE_CONF.format(port=ports[0], sockets=root) + extra)
    _start(primary, root / "primary.log")
    if dbname != "postgres":
        run_sql(parse_database(_url(ports[0], "postgres")), f'CREATE DATABASE "{dbname}"')
    _check(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", ports[0], "-U", "root",
           "-D", standby, "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
    with open(standby / "postgresql.conf", "a") as conf:
        conf.write(f"port = {ports[1]}\n")
    _start(standby, root / "standby.log")
    pair = StreamingPair(
        parse_database(_url(ports[0], dbname)), parse_database(_url(ports[1], dbname)), root
    )
    if pair.replica_sql("SELECT pg_is_in_recovery()") != [(True,)]:
        raise RuntimeError("the standby is not in recovery")
    return pair


def stop_pair(root: Path) -> None:
    """Stop both servers of the pair under `root` and remove it."""
    _stop(root / "standby")
    _stop(root / "primary")
    shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """`start DIR [--database NAME]` prints the pair's URLs as JSON; `stop DIR` removes it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--database", default="postgres")
    args = parser.parse_args()
    if args.action == "stop":
        stop_pair(args.dir)
        return
    if args.dir.exists():
        parser.error(f"{args.dir} exists: stop that pair first, or name a new directory")
    pair = start_pair(args.dir, args.database, BENCH_CONF)
    print(json.dumps({"primary": pair.primary.url, "replica": pair.replica.url}))


if __name__ == "__main__":
    main()
