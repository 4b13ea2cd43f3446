"""Handlers of `rotation run nightly|backfill`: the flows, through an embedded Prefect server.

The database goes to the flow inside this process (flows/storage/secrets.py), never through
the environment or a flow parameter: Prefect records neither the URL nor its password."""

from __future__ import annotations

import dataclasses
import json

from flows.backfill import backfill as backfill_flow
from flows.cli.options import params_from
from flows.cli.server import embedded_server
from flows.nightly import nightly as nightly_flow
from flows.params import BackfillParams, NightlyParams
from flows.storage.backends import open_storage
from flows.storage.database import Database
from flows.storage.secrets import for_this_process


def preflight(db: Database) -> None:
    """Raise StorageError (one line) before starting Prefect when the database is unusable."""
    with open_storage(db) as storage:
        storage.check()


def nightly(args) -> int:
    """Run the nightly flow through the embedded (or configured) Prefect server."""
    params = params_from(args, NightlyParams).resolved()
    preflight(args.db)
    with for_this_process(args.db), embedded_server():
        summary = nightly_flow(**dataclasses.asdict(params))
    keys = ("status", "published", "warning", "rows", "quality")
    print(json.dumps({k: summary[k] for k in keys}, indent=2, default=str))
    return 0 if summary["status"] != "failed" else 1


def backfill(args) -> int:
    """Run the backfill flow."""
    params = params_from(args, BackfillParams)  # a backwards range: one line, before Prefect
    preflight(args.db)
    with for_this_process(args.db), embedded_server():
        summary = backfill_flow(date_from=params.date_from, date_to=params.date_to)
    print(json.dumps({k: summary[k] for k in ("status", "rows")}, indent=2))
    return 0
