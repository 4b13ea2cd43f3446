"""Ordered work on a few threads, for numpy / scipy / polars code that releases the GIL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
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


def run_beside(main: Callable[[], Any], *others: Callable[[], Any]) -> tuple[Any, list]:
    """Return (main(), [other() ...]): ``others`` run in order on a second thread meanwhile.

    For independent stages that each keep the cores only partly busy (sparse products,
    polars plans). BLAS is held to one thread while both run, so that no result depends
    on which work overlapped it. Exceptions propagate; work not yet started is cancelled.
    """
    if WORKER_THREADS < 2 or not others:
        return main(), [fn() for fn in others]
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(1) as pool:
        futures = [pool.submit(fn) for fn in others]
        try:
            first = main()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        return first, [future.result() for future in futures]


class RowBlocks:
    """A CSR or CSC matrix cut into WORKER_THREADS row blocks, multiplied on threads.

    scipy computes each output row of a product in the same order whether it multiplies
    the whole matrix or a block of its rows, so the stacked result is bitwise the
    single-threaded one (at L, a 100k × 50k matrix times 26 columns: 0.41 → 0.16 s as
    CSR, 0.40 → 0.16 s as CSC).
    """

    def __init__(self, A):
        bounds = np.linspace(0, A.shape[0], WORKER_THREADS + 1).astype(np.int64)
        self.bounds = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
        self.blocks = [A[a:b] for a, b in self.bounds]

    def __matmul__(self, Q: np.ndarray) -> np.ndarray:
        """Return A @ Q for a dense Q, the row blocks multiplied on their own threads."""
        return np.vstack(map_in_order(lambda block: block @ Q, self.blocks))

    def dense_product(self, other) -> np.ndarray:
        """Return (A @ other) as a dense array, for a sparse ``other``, written in place."""
        dtype = np.result_type(self.blocks[0].dtype, other.dtype)
        out = np.zeros((self.bounds[-1][1], other.shape[1]), dtype=dtype)

        def fill(i: int) -> None:
            a, b = self.bounds[i]
            (self.blocks[i] @ other).toarray(out=out[a:b])

        map_in_order(fill, range(len(self.blocks)))
        return out
