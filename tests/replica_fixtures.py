"""A throwaway streaming replication pair for the read-replica tests, one per test session.

`initdb` makes a primary in a temporary directory and `pg_basebackup -R` a hot standby of it,
each on a spare port of 127.0.0.1, run as the `postgres` OS user (the server refuses root);
both are stopped (`pg_ctl -m immediate`) and their directories removed at the end. The shared
server at 127.0.0.1:5432 is never touched: its databases hold gigabytes of benchmark profiles.
Without the PostgreSQL binaries the tests skip locally and fail in CI
(ROTATION_REQUIRE_POSTGRES=1), as tests/conftest.py does for a missing server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from flows.storage.database import Database, parse_database

PG_BIN = Path(os.environ.get("ROTATION_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
REQUIRE_PG = os.environ.get("ROTATION_REQUIRE_POSTGRES") == "1"
DBNAME = "rotation_replica"
#: The primary's settings: streaming replication, and nothing else that reads a table on its
#: own (autovacuum off: the tests count the scans of the event tables), fast and small.
PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
wal_level = replica
max_wal_senders = 4
hot_standby = on
autovacuum = off
fsync = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 40
"""


@dataclass(frozen=True)
class StreamingPair:
    """The test cluster: its rotation database on the primary and on the standby."""

    primary: Database
    replica: Database
    root: Path

    def primary_sql(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Return the rows of one statement run (autocommit) on the primary."""
        return _run(self.primary, sql, params)

    def replica_sql(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Return the rows of one statement run on the standby."""
        return _run(self.replica, sql, params)

    def wait_for_replay(self, timeout_s: float = 30) -> None:
        """Return once the standby has replayed everything the primary has written."""
        target = self.primary_sql("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout_s
        sql = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
        while not self.replica_sql(sql, (target,))[0][0]:
            assert time.monotonic() < deadline, f"the standby did not replay {target}"
            time.sleep(0.05)


def _run(db: Database, sql: str, params: tuple) -> list[tuple]:
    with psycopg.connect(db.url, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


def _spare_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*command: str | Path) -> list[str]:
    """Return `command` run as the postgres OS user when this process is root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return [*prefix, *(str(part) for part in command)]


def _check(*command: str | Path, timeout: float = 120) -> None:
    """Run a server tool; fail the test with its output when it fails."""
    done = subprocess.run(
        _as_postgres(*command), capture_output=True, text=True, timeout=timeout, cwd="/"
    )
    assert done.returncode == 0, f"{command[0]} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}"


def _url(port: int, dbname: str = DBNAME) -> str:
    return f"postgresql://root@127.0.0.1:{port}/{dbname}"


def _start(data: Path, log: Path) -> None:
    _check(PG_BIN / "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", log)


def _stop(data: Path) -> None:
    """Stop a server at once (nothing of it is worth keeping); ignore one that is not running."""
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _as_postgres(PG_BIN / "pg_ctl", "stop", "-m", "immediate", "-w", "-D", data),
            capture_output=True,
            timeout=60,
            cwd="/",
        )


@pytest.fixture(scope="session")
def streaming_pair() -> Iterator[StreamingPair]:
    """Yield a primary and its streaming hot standby, each with an empty rotation database."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_basebackup").exists():
        message = f"no PostgreSQL server binaries in {PG_BIN} (ROTATION_TEST_PG_BIN)"
        if REQUIRE_PG:
            pytest.fail(message + " (ROTATION_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="rotation-replica-"))
    primary, standby = root / "primary", root / "standby"
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        _check(PG_BIN / "initdb", "-D", primary, "-U", "root", "-A", "trust", "--no-sync",
               "-E", "UTF8", "--locale", "C.UTF-8")  # fmt: skip
        ports = _spare_port(), _spare_port()
        while ports[1] == ports[0]:  # closed at once, the first may be handed out again
            ports = ports[0], _spare_port()
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(PRIMARY_CONF.format(port=ports[0], sockets=root))
        _start(primary, root / "primary.log")
        _run(parse_database(_url(ports[0], "postgres")), f'CREATE DATABASE "{DBNAME}"', ())
        _check(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", ports[0], "-U", "root",
               "-D", standby, "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        with open(standby / "postgresql.conf", "a") as conf:
            conf.write(f"port = {ports[1]}\n")
        _start(standby, root / "standby.log")
        pair = StreamingPair(parse_database(_url(ports[0])), parse_database(_url(ports[1])), root)
        assert pair.replica_sql("SELECT pg_is_in_recovery()") == [(True,)]
        yield pair
    finally:
        _stop(standby)
        _stop(primary)
        shutil.rmtree(root, ignore_errors=True)
