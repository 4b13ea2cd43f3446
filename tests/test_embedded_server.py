"""The embedded Prefect server of `rotation run` dies with it, even on SIGKILL, and never
holds the database URL in its environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_fixtures import RUN_DATE, generate

from flows.cli.server import OWNER
from flows.storage.database import ENV_VAR

ROTATION = Path(sys.executable).with_name("rotation")
SERVER_APP = "prefect.server.api.server:create_app"


def _processes() -> dict[int, tuple[int, str, str]]:
    """Return {pid: (parent pid, state, command line)} of every process this user can read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (int(fields[1]), fields[0], cmdline)
    return found


def _server_of(parent: int) -> int | None:
    """Return the pid of `parent`'s embedded Prefect server, if it runs one."""
    for pid, (ppid, _, cmdline) in _processes().items():
        if ppid == parent and SERVER_APP in cmdline:
            return pid
    return None


def _owned_by(parent: int) -> list[int]:
    """Return the live processes whose environment names `parent` as their owner."""
    mark = f"{OWNER}={parent}".encode()
    owned = []
    for pid, (_, state, _) in _processes().items():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if state != "Z" and mark in environ:
            owned.append(pid)
    return owned


def _wait(predicate, seconds: float) -> bool:
    """Poll `predicate` until it holds or `seconds` pass; return whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)  # polling a process table, not asserting on time
    return predicate()


@pytest.mark.prefect_server
def test_a_killed_run_takes_its_embedded_server_with_it(duck_database, tmp_path):
    generate(duck_database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {ENV_VAR: duck_database.url, "PREFECT_HOME": str(tmp_path / "prefect")}
    run = subprocess.Popen(
        [str(ROTATION), "-q", "run", "nightly", "--date", RUN_DATE.isoformat()],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait(lambda: _server_of(run.pid) is not None, 120), "no embedded server started"
        server = _server_of(run.pid)
        environ = Path(f"/proc/{server}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith(ENV_VAR.encode() + b"=")]
        assert server in _owned_by(run.pid)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        assert _wait(lambda: not _owned_by(run.pid), 20), "the server outlived its killed parent"
    finally:
        if run.poll() is None:
            run.kill()
