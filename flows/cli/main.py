"""The `rotation` entry point: parse, resolve the command's handler, one clear line on errors."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from flows.analyst.terminal import printable
from flows.cli.parsers import build_parser
from flows.cli.progress import LogLine, announce, end_progress, show_progress
from flows.params import last_complete_day
from flows.storage.database import ENV_VAR, DatabaseUrlError, parse_database, redact
from flows.storage.errors import MigrationError, StorageError

PREFLIGHT = "flows.cli.checks:preflight"  # the database check of the commands that need one
PASSWORD_IN_ARGV = (
    "rotation: warning: a password in --database is visible to every user of this machine "
    "(ps, /proc); keep it in ~/.pgpass or PGPASSWORD, or in ROTATION_DATABASE_URL"
)


def _dates(args) -> str:
    """Return the dates a run command works on, as its first progress line names them."""
    if hasattr(args, "date_from"):
        return f" {args.date_from} to {args.date_to}"
    if hasattr(args, "run_date"):
        return f" for {args.run_date or last_complete_day()}"
    return ""


def load_handler(reference: str) -> Callable:
    """Return the handler named "module:function", importing its module now."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def package_version() -> str:
    """Return the installed version of rotation-analytics (or 'unknown' in a bare checkout)."""
    try:
        return version("rotation-analytics")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    stderr_log = LogLine(sys.stderr)
    stderr_log.setLevel(logging.WARNING)  # not a flow's INFO stage lines: the progress has them
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", handlers=[stderr_log]
    )
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Prefect's client-side telemetry and its banner
    # the ephemeral API server's first start creates and migrates its database: over
    # Prefect's default 20 s on a busy 2-core machine, and `rotation demo` then failed
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    args = build_parser(package_version()).parse_args(argv)
    try:
        show_progress(args.quiet)
        if hasattr(args, "database"):
            args.db = parse_database(args.database)
            if args.database and args.db.has_password:
                print(PASSWORD_IN_ARGV, file=sys.stderr)
        os.environ.pop(ENV_VAR, None)  # read: child processes (Prefect's server) never see it
        if getattr(args, "announce", None):
            announce(f"{args.announce}{_dates(args)} on {args.db.display}: starting")
        if args.ready:
            load_handler(PREFLIGHT)(args.db)
        code = int(load_handler(args.handler)(args) or 0)
        end_progress()
        return code
    except (DatabaseUrlError, StorageError, MigrationError, ValueError, FileNotFoundError) as exc:
        end_progress()
        print(f"rotation: error: {printable(redact(str(exc)))}", file=sys.stderr)
        return 2 if isinstance(exc, DatabaseUrlError) else 1
    except KeyboardInterrupt:
        end_progress()
        print("rotation: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
