"""Where a run's shard tasks execute: in the run's process (the default), or on Dask workers
through Prefect's own integration (prefect-dask's DaskTaskRunner): the same flow, another
task runner.

`--cluster tcp://HOST:8786` (or ROTATION_DASK_ADDRESS) uses a running scheduler; `--workers N
[--worker-memory 4GiB]` starts a local cluster of N single-threaded worker processes for the
run and stops it after. Workers need the installed package (the tasks are its functions),
network access to the database (the URL reaches them inside each task, never through their
environment or command line) and, for their task runs to show in the flow run, the Prefect
API the run reports to (a local cluster is given the run's; a remote one needs
PREFECT_API_URL in its workers' environment).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

ADDRESS_ENV = "ROTATION_DASK_ADDRESS"


@dataclass(frozen=True)
class ClusterOptions:
    """A scheduler's address, or the size of a local cluster; neither: this process."""

    address: str | None = None
    workers: int | None = None
    worker_memory: str | None = None

    @property
    def distributed(self) -> bool:
        """Return True when the shard tasks run on Dask workers."""
        return bool(self.address or self.workers)

    def describe(self) -> str:
        """Return where the tasks run, for the run's header line."""
        if self.address:
            return f"Dask scheduler {self.address}"
        if self.workers:
            memory = f", {self.worker_memory} each" if self.worker_memory else ""
            return f"a local Dask cluster of {self.workers} worker(s){memory}"
        return "this process"


def cluster_options(
    address: str | None, workers: int | None, worker_memory: str | None, env=os.environ
) -> ClusterOptions:
    """Return the options of the command line (the address from ADDRESS_ENV when not given);
    ValueError (one line) for a combination that means nothing."""
    if address and workers:
        raise ValueError("--cluster and --workers exclude each other: use a scheduler or start one")
    if worker_memory and not workers:
        raise ValueError("--worker-memory sizes the workers --workers starts; give --workers N")
    if not workers:
        address = address or env.get(ADDRESS_ENV) or None
    return ClusterOptions(address, workers, worker_memory)


def refuse_embedded(options: ClusterOptions, is_postgres: bool) -> None:
    """Raise ValueError (one line) for Dask workers on an embedded database."""
    if options.distributed and not is_postgres:
        raise ValueError(
            f"{options.describe()} needs a PostgreSQL database: a DuckDB file is opened by one "
            "process; leave out --cluster/--workers (--shards still works, in this process)"
        )


def cluster_workers(options: ClusterOptions) -> int:
    """Return the number of workers the shard tasks will have: the local cluster's, or the
    scheduler's now (ValueError, one line, when no scheduler answers there)."""
    if options.workers or not options.address:
        return options.workers or 1
    from distributed import Client  # lazy: as in task_runner

    try:
        with Client(options.address, set_as_default=False) as client:
            return max(1, len(client.scheduler_info()["workers"]))
    except OSError as exc:
        raise ValueError(f"{options.describe()}: {exc}; nothing was run") from None


#: Users per shard by default: at L a shard of 6,250 users peaked at 1.0–1.2 GiB on a
#: worker holding four (bench/README.md), within a 2 GiB worker's limit.
USERS_PER_SHARD = 8_000


def default_shards(options: ClusterOptions, shards: int | None, users: int) -> int:
    """Return the shards of a run: as given, else (on a cluster) the fewest multiple of the
    workers with at most USERS_PER_SHARD of the `users` each; one without a cluster."""
    if shards or not options.distributed:
        return shards or 1
    workers = cluster_workers(options)
    return workers * max(1, math.ceil(users / (USERS_PER_SHARD * workers)))


def scheduler_failure(exc: BaseException, options: ClusterOptions) -> str | None:
    """Return the one line that says a run failed because its scheduler did not answer at the
    start, or went away during the run; None for any other error."""
    if not options.address:
        return None
    from distributed.client import FutureCancelledError  # lazy: as in task_runner

    if isinstance(exc, OSError) and options.address in str(exc):  # at the first task
        return f"{options.describe()}: {exc}; the run failed, nothing published"
    if isinstance(exc, FutureCancelledError) and "scheduler-connection-lost" in str(exc):
        return (
            f"{options.describe()}: the connection to the scheduler was lost; the run "
            "failed, and the dates it had not published keep their last rows"
        )
    return None


def task_runner(options: ClusterOptions, api_url: str | None = None):
    """Return the DaskTaskRunner of `options` (None: Prefect's default, in this process).

    `api_url`: the run's Prefect API, given to the workers of a local cluster.
    """
    if not options.distributed:
        return None
    from prefect_dask import DaskTaskRunner  # lazy: distributed takes a second to import

    if options.address:
        return DaskTaskRunner(address=options.address)
    cluster = local_cluster(options.workers, options.worker_memory, api_url)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)


#: The share of a worker's memory limit its task results may take in memory before Dask
#: spills the least recently used to the worker's local disk (Dask's default: 0.6). Between
#: stages a worker holds its shards' data and then their lists, more of them as the users
#: grow; a shard's scoring needs room beside them that Dask does not count (its own blocks).
#: At L on 2 workers of 2 GiB, 10 shards each, up to 608 MiB went to disk (bench/README.md).
SPILL_TARGET = 0.25
#: Dask configuration a local cluster's workers start with (dotted keys: a remote
#: cluster's workers take the same from their environment, DASK_DISTRIBUTED__WORKER__...).
WORKER_CONFIG = {"distributed.worker.memory.target": SPILL_TARGET}


def local_cluster(workers: int, memory: str | None, api_url: str | None = None) -> dict:
    """Return the keyword arguments of a LocalCluster of `workers` single-threaded worker
    processes of `memory` each ("auto": the machine's, shared), spilling as WORKER_CONFIG
    says, reporting their task runs to the Prefect API at `api_url` if given."""
    cluster = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "memory_limit": memory or "auto",
        "dashboard_address": None,
        "silence_logs": logging.WARNING,
        "config": WORKER_CONFIG,
    }
    if api_url:
        cluster["env"] = {"PREFECT_API_URL": api_url}
    return cluster
