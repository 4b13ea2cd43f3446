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
from flows.storage.database import ENV_VAR, DatabaseUrlError, parse_database, redact
from flows.storage.errors import MigrationError, StorageError

PROGRESS_LOG = "rotation.progress"  # flows/tracking.py's progress lines
PASSWORD_IN_ARGV = (
    "rotation: warning: a password in --database is visible to every user of this machine "
    "(ps, /proc); keep it in ~/.pgpass or PGPASSWORD, or in ROTATION_DATABASE_URL"
)


class ProgressLine(logging.Handler):
    """Draws the run's progress (the `rotation.progress` log) as one status line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        percent = getattr(record, "percent", 0.0)
        tty = sys.stderr.isatty()
        line = f"[{percent:5.1f}%] {record.getMessage()}"
        sys.stderr.write(f"\r{line:<72}" if tty else f"{line}\n")
        if tty and percent >= 100:
            sys.stderr.write("\n")
        sys.stderr.flush()


def show_progress(quiet: bool) -> None:
    """Attach the progress line to the `rotation.progress` log unless quiet."""
    logger = logging.getLogger(PROGRESS_LOG)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not quiet and not logger.handlers:
        logger.addHandler(ProgressLine())


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
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
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
        return int(load_handler(args.handler)(args) or 0)
    except (DatabaseUrlError, StorageError, MigrationError, ValueError, FileNotFoundError) as exc:
        print(f"rotation: error: {printable(redact(str(exc)))}", file=sys.stderr)
        return 2 if isinstance(exc, DatabaseUrlError) else 1
    except KeyboardInterrupt:
        print("rotation: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
