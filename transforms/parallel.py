"""Ordered work on a few threads, for numpy / scipy / polars code that releases the GIL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits

#: Worker threads for blocked work (memory: this many blocks in flight at once).
WORKER_THREADS = min(2, os.cpu_count() or 1)


def map_in_order(fn: Callable, items: Iterable) -> list:
    """Return [fn(item) ...] computed on WORKER_THREADS threads, in the order of `items`.

    BLAS is held to one thread per worker meanwhile, so that the workers do not
    oversubscribe the cores. Deterministic: each item is computed on its own and the
    results are kept in order.
    """
    items = list(items)
    if len(items) < 2 or WORKER_THREADS < 2:
        return [fn(item) for item in items]
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(WORKER_THREADS) as pool:
        return list(pool.map(fn, items))
