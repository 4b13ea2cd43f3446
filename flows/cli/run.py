"""Handlers of `rotation run nightly|backfill|tune`: the flows, through an embedded Prefect server.

The database goes to the flow inside this process (flows/storage/secrets.py), never through
the environment or a flow parameter: Prefect records neither the URL nor its password."""

from __future__ import annotations

import dataclasses
from typing import Any

from flows.backfill import backfill as backfill_flow
from flows.cli.options import params_from
from flows.cli.progress import announce
from flows.cli.server import embedded_server
from flows.cli.summary import report
from flows.cluster import (
    ClusterOptions,
    cluster_options,
    default_shards,
    refuse_embedded,
    scheduler_failure,
    task_runner,
)
from flows.nightly import nightly as nightly_flow
from flows.params import BackfillParams, NightlyParams, TuneParams
from flows.stages.shards import user_count
from flows.storage.cache.target import for_this_process as cache_for_this_process
from flows.storage.secrets import for_this_process
from flows.tune import tune as tune_flow


def nightly(args) -> int:
    """Run the nightly flow (its shard tasks on a Dask cluster with --cluster/--workers)."""
    params = params_from(args, NightlyParams).resolved()
    options, params = _placed(args, params, "nightly")
    with (
        for_this_process(args.db, args.replica),
        cache_for_this_process(args.cache),
        embedded_server() as api_url,
    ):
        summary = _run_flow(nightly_flow, params, options, api_url)
    return report("nightly", summary, f" {params.run_date}", args.json)


def backfill(args) -> int:
    """Run the backfill flow (its shard tasks on a Dask cluster with --cluster/--workers)."""
    params = params_from(args, BackfillParams)  # a backwards range: one line, before Prefect
    options, params = _placed(args, params, "backfill")
    with for_this_process(args.db, args.replica), embedded_server() as api_url:
        summary = _run_flow(backfill_flow, params, options, api_url)
    return report("backfill", summary, f" {params.date_from} to {params.date_to}", args.json)


def _placed(args, params, flow: str) -> tuple[ClusterOptions, Any]:
    """Return where the run's shard tasks go and its parameters with the shards it will have
    (announced when on Dask); ValueError (one line) for Dask on an embedded database."""
    options = cluster_options(args.cluster, args.workers, args.worker_memory)
    refuse_embedded(options, args.db.is_postgres)
    if options.distributed:
        users = user_count(args.db) if params.shards is None else 0
        params = dataclasses.replace(params, shards=default_shards(options, params.shards, users))
        announce(f"{flow}: {params.shards} shard(s) on {options.describe()}")
    return options, params


def _run_flow(flow, params, options: ClusterOptions, api_url: str | None):
    """Return the flow's summary, run on the task runner of `options`; a lost or absent
    scheduler is one line (ValueError)."""
    if options.distributed:
        flow = flow.with_options(task_runner=task_runner(options, api_url))
    try:
        return flow(**dataclasses.asdict(params))
    except Exception as exc:
        failed = scheduler_failure(exc, options)
        if failed is None:
            raise
        raise ValueError(failed) from None


def tune(args) -> int:
    """Run the tune flow: choose and record the record model's parameters."""
    params = params_from(args, TuneParams).resolved()
    with for_this_process(args.db, None), embedded_server():
        summary = tune_flow(**dataclasses.asdict(params))
    return report("tune", summary, f" {params.run_date}", args.json)
