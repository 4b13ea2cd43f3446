"""run_beside: independent work on a second thread, results in order, errors propagated."""

from __future__ import annotations

import threading

import pytest
from threadpoolctl import threadpool_info

import models.kernels.parallel as parallel
from models.kernels.parallel import run_beside


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_run_beside_returns_main_and_the_others_in_order(monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_THREADS", 2)
    threads, blas = {}, {}

    def note(name, value):
        threads[name] = threading.get_ident()
        blas[name] = _blas_threads()
        return value

    first, rest = run_beside(lambda: note("main", 1), lambda: note("a", 2), lambda: note("b", 3))
    assert (first, rest) == (1, [2, 3])
    assert threads["main"] == threading.get_ident() != threads["a"] == threads["b"]
    assert blas["main"] and blas["a"]  # numpy's BLAS is loaded and seen
    assert all(n == 1 for name in ("main", "a", "b") for n in blas[name])  # no BLAS race


def test_run_beside_on_one_worker_runs_everything_here(monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_THREADS", 1)
    here = threading.get_ident()
    assert run_beside(threading.get_ident, threading.get_ident) == (here, [here])


def test_run_beside_propagates_errors_from_either_side(monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_THREADS", 2)

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_beside(fail, lambda: 1)
    with pytest.raises(ValueError, match="boom"):
        run_beside(lambda: 1, fail)
