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
from flows.storage.cache.target import (
    CACHE_ENV_VAR,
    CACHE_PASSWORD_IN_ARGV,
    CacheUrlError,
    check_cache_backend,
    parse_cache_url,
)
from flows.storage.database import (
    ENV_VAR,
    REPLICA_ENV_VAR,
    DatabaseUrlError,
    parse_database,
    parse_replica,
    redact,
)
from flows.storage.errors import MigrationError, StorageError

PREFLIGHT = "flows.cli.checks:preflight"  # the database check of the commands that need one
PASSWORD_IN_ARGV = (
    "rotation: warning: a password in {option} is visible to every user of this machine "
    "(ps, /proc); keep it in ~/.pgpass or PGPASSWORD, or in {variable}"
)


def _dates(args) -> str:
    """Return the dates a run command works on, as its first progress line names them."""
    if hasattr(args, "date_from"):
        return f" {args.date_from} to {args.date_to}"
    if hasattr(args, "run_date"):
        return f" for {args.run_date or last_complete_day()}"
    return ""


def _replica(args):
    """Return the read replica of a command (--replica, else ROTATION_REPLICA_URL), or None."""
    primary = args.db if hasattr(args, "db") else parse_database(args.source)
    replica = parse_replica(args.replica or os.environ.get(REPLICA_ENV_VAR), primary)
    if args.replica and replica.has_password:
        warning = PASSWORD_IN_ARGV.format(option="--replica", variable=REPLICA_ENV_VAR)
        print(warning, file=sys.stderr)
    return replica


def _cache(args):
    """Return the Redis cache of a command (--cache, else ROTATION_CACHE_URL), or None."""
    url = args.cache or os.environ.get(CACHE_ENV_VAR)
    cache = parse_cache_url(url) if url else None
    if args.cache and cache.has_password:
        print(CACHE_PASSWORD_IN_ARGV, file=sys.stderr)
    check_cache_backend(cache, args.db)
    return cache


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
                warning = PASSWORD_IN_ARGV.format(option="--database", variable=ENV_VAR)
                print(warning, file=sys.stderr)
        if hasattr(args, "replica"):
            args.replica = _replica(args)
        if hasattr(args, "cache"):
            args.cache = _cache(args)
        for name in (ENV_VAR, REPLICA_ENV_VAR, CACHE_ENV_VAR):  # read: child processes
            os.environ.pop(name, None)  # (Prefect's server) never see them
        if getattr(args, "announce", None):
            reading = f", reading {args.replica.display}" if getattr(args, "replica", None) else ""
            announce(f"{args.announce}{_dates(args)} on {args.db.display}{reading}: starting")
        if args.ready:
            load_handler(PREFLIGHT)(args.db, getattr(args, "replica", None))
        code = int(load_handler(args.handler)(args) or 0)
        end_progress()
        return code
    except (DatabaseUrlError, StorageError, MigrationError, ValueError, FileNotFoundError) as exc:
        end_progress()
        print(f"rotation: error: {printable(redact(str(exc)))}", file=sys.stderr)
        return 2 if isinstance(exc, DatabaseUrlError | CacheUrlError) else 1
    except KeyboardInterrupt:
        end_progress()
        print("rotation: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
