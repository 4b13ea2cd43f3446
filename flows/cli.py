"""The `rotation` command line: one --database option everywhere, one clear line on bad input."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, date, datetime, timedelta

from flows.database import ENV_VAR, DatabaseUrlError, parse_database, redact

DATABASE_HELP = (
    "postgresql://user[:password]@host[:port]/dbname or duckdb:PATH "
    f"(default: ${ENV_VAR}, else duckdb:rotation.duckdb)"
)


def iso_date(value: str) -> date:
    """Return the date of an ISO string (YYYY-MM-DD), or an argparse error that says so."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (expected YYYY-MM-DD)") from None


def non_negative(value: str) -> int:
    """Return a non-negative integer, or an argparse error that says so."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return number


def positive(value: str) -> int:
    """Return a positive integer, or an argparse error that says so."""
    number = non_negative(value)
    if number == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def last_complete_day() -> date:
    """Return yesterday in UTC: the last complete day, the default run date."""
    return datetime.now(UTC).date() - timedelta(days=1)


def add_database(parser: argparse.ArgumentParser) -> None:
    """Add the --database option to a sub-command."""
    parser.add_argument("--database", default=None, help=DATABASE_HELP)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (`--help` still shows the usage)."""

    def error(self, message: str):
        """Print `prog: error: message` alone and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every sub-command."""
    from flows import commands

    parser = OneLineParser(
        prog="rotation", description="Rotation analytics and recommendation pipeline."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.register(sub)
    return parser


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
    logger = logging.getLogger("rotation.progress")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not quiet and not logger.handlers:
        logger.addHandler(ProgressLine())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    from flows.migrate import MigrationError
    from flows.storage import StorageError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the ephemeral API server's first start creates and migrates its database: over
    # Prefect's default 20 s on a busy 2-core machine, and `rotation demo` then failed
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        show_progress(args.quiet)
        if hasattr(args, "database"):
            args.db = parse_database(args.database)
        return int(args.handler(args) or 0)
    except (DatabaseUrlError, StorageError, MigrationError, ValueError, FileNotFoundError) as exc:
        print(f"rotation: error: {redact(str(exc))}", file=sys.stderr)
        return 2 if isinstance(exc, DatabaseUrlError) else 1
    except KeyboardInterrupt:
        print("rotation: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
