"""The embedded Prefect server of a command's flow run, tied to this process's life.

Without PREFECT_API_URL, Prefect starts a server of its own in a child process and stops it
at exit; a SIGKILL leaves no exit, and the server lived on. It is started here instead (the
same server: Prefect keeps one per process and uses it), with a small watchdog process that
stops it as soon as this process is gone, however it ended. Neither inherits the database
URL: flows/cli/main.py takes ROTATION_DATABASE_URL out of the environment first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL

#: The environment variable naming the process whose embedded server a process is: the
#: server inherits it from this process, and keeps it when this one dies and it is re-parented.
OWNER = "ROTATION_EMBEDDED_SERVER_OF"

#: The watchdog: once its parent (this process) is gone, it was re-parented; it then stops
#: every process that names that parent in OWNER (the server, however many times Prefect
#: started it): SIGTERM, then SIGKILL after 5 s. Linux's /proc, as the process table.
WATCHDOG = """
import os, signal, sys, time
parent, mark = int(sys.argv[1]), f"{sys.argv[2]}={sys.argv[1]}".encode()
while os.getppid() == parent:
    time.sleep(0.25)
def owned():
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if mark in f.read().split(b"\\0") and int(entry) != os.getpid():
                    yield int(entry)
        except OSError:
            continue
for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
    for pid in owned():
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(True for _ in owned()):
        time.sleep(0.1)
"""


@contextmanager
def embedded_server() -> Iterator[str | None]:
    """Yield the API URL of the embedded server (None when PREFECT_API_URL names one)."""
    if PREFECT_API_URL.value():
        yield None
        return
    os.environ[OWNER] = str(os.getpid())  # the server inherits it
    watchdog = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(os.getpid()), OWNER],
        start_new_session=True,  # no terminal signal (Ctrl-C) reaches it: it outlives us
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server = SubprocessASGIServer()
        server.start()
        yield server.api_url
    finally:
        watchdog.kill()  # this process ends normally: Prefect stops its server at exit
        watchdog.wait()
