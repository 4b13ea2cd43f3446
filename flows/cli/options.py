"""The CLI's option types and the options derived from the run parameters (flows/params.py)."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import date
from types import NoneType
from typing import Any, get_args, get_type_hints

from flows.params import option_name, required
from flows.storage.database import ENV_VAR, REPLICA_ENV_VAR

DATABASE_HELP = (
    "postgresql://user@host[:port]/dbname or duckdb:PATH "
    f"(default: ${ENV_VAR}, else duckdb:rotation.duckdb)"
)

REPLICA_HELP = (
    "a streaming replica (hot standby) of the database, postgresql://…: the inputs are read "
    "there, once it has replayed what the database had written at the start (--replica-wait); "
    f"all writes go to the database (default: ${REPLICA_ENV_VAR}, else none)"
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (`--help` still shows the usage)."""

    def error(self, message: str):
        """Print `prog: error: message` alone and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


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


def fraction(value: str) -> float:
    """Return a sample fraction in (0, 1], or an argparse error that says so."""
    number = bounded_float(None, None)(value)
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0 and at most 1")
    return number


def bounded_float(low: float | None, high: float | None):
    """Return an argparse type: a float within [low, high] (either bound may be None)."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if (low is not None and number < low) or (high is not None and number > high):
            span = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise argparse.ArgumentTypeError(f"{value} must be {span}")
        return number

    return parse


def add_database(parser: argparse.ArgumentParser) -> None:
    """Add the --database option to a sub-command."""
    parser.add_argument("--database", default=None, help=DATABASE_HELP)


def add_cluster(parser: argparse.ArgumentParser) -> None:
    """Add the options of where the shard tasks run (flows/cluster.py) to a sub-command."""
    parser.add_argument(
        "--cluster",
        default=None,
        metavar="tcp://HOST:8786",
        help="a running Dask scheduler: the shard tasks run on its workers "
        "(default: $ROTATION_DASK_ADDRESS, else this process)",
    )
    parser.add_argument(
        "--workers",
        type=positive,
        default=None,
        metavar="N",
        help="start a local Dask cluster of N worker processes for the run (stopped after)",
    )
    parser.add_argument(
        "--worker-memory",
        default=None,
        metavar="SIZE",
        help="each local worker's memory limit, e.g. 4GiB (Dask pauses it at 80 %%)",
    )


def add_replica(parser: argparse.ArgumentParser) -> None:
    """Add the --replica option (where the inputs are read) to a sub-command."""
    parser.add_argument("--replica", default=None, metavar="URL", help=REPLICA_HELP)


def _option_type(kind: Any, low: float | None, high: float | None):
    """Return the argparse type of a parameter of type `kind` (or `kind | None`) in bounds."""
    kind = next((k for k in get_args(kind) if k is not NoneType), kind)
    if kind is int:
        return {None: int, 0: non_negative, 1: positive}[low]
    if kind is float:
        return bounded_float(low, high)
    return iso_date  # date, or date | None


def shown_default(f: dataclasses.Field) -> str | None:
    """Return a parameter's default as the help and README show it (None: no default)."""
    if required(f) or f.default is None:
        return None
    if isinstance(f.default, bool):
        return str(f.default).lower()
    if isinstance(f.default, float):
        return f"{f.default:g}"
    return str(f.default)


def add_params(
    parser: argparse.ArgumentParser, params_cls: type, only: tuple[str, ...] | None = None
) -> None:
    """Add an option per field of `params_cls` (or the `only` ones), help and default shown.

    Each option's dest is its field's name, so that ``params_from`` builds the dataclass.
    """
    hints = get_type_hints(params_cls)
    for f in dataclasses.fields(params_cls):
        if only is not None and f.name not in only:
            continue
        default = shown_default(f)
        help_text = f.metadata["help"]
        if default is not None:
            help_text += f" (default: {default})"
        if hints[f.name] is bool:
            parser.add_argument(option_name(f), dest=f.name, action="store_true", help=help_text)
            continue
        kind = _option_type(hints[f.name], f.metadata["low"], f.metadata["high"])
        parser.add_argument(
            option_name(f),
            dest=f.name,
            type=kind,
            default=None if required(f) else f.default,
            required=required(f),
            metavar="YYYY-MM-DD" if kind is iso_date else "N",
            help=help_text,
        )


def params_from(args: argparse.Namespace, params_cls: type) -> Any:
    """Return the `params_cls` instance of the parsed options that add_params added."""
    names = [f.name for f in dataclasses.fields(params_cls) if hasattr(args, f.name)]
    return params_cls(**{name: getattr(args, name) for name in names})
