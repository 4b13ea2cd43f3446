"""Readers during publish: the API's lookups never fail, block or come back empty.

The small CI case of bench/readers.py: four loopback readers (lock_timeout 100 ms, so any
lock wait longer than that is an error) loop over random users and records while two
nightly runs, in subprocesses, replace every published row.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    """Return bench/NAME.py as a module (the harnesses are also scripts)."""
    sys.path.insert(0, str(BENCH))  # readers.py imports its sibling faults.py
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


readers = _load("readers")
faults = readers.faults


@pytest.fixture(scope="module")
def under_readers(postgres_server):
    """Return the figures and errors of 4 readers across two publishes, and the database."""
    from flows.nightly import run_nightly

    with faults.scratch_database("rotation_readertest") as db:
        faults.generate(db, "tiny")
        run_nightly(db, faults.params_of("A"))
        before = faults.state(db.url)
        figures, errors = readers.runs_under_readers(db, 4, runs=2, seed=3)
        after = faults.state(db.url)
        yield figures, errors, before, after


def test_readers_overlap_the_publishes(under_readers):
    figures, *_ = under_readers
    assert figures["readers"] == 4
    assert figures["publish_windows_s"] > 0
    assert figures["queries_during_publish"] > 100  # the readers really ran during publish


def test_no_reader_error_and_no_lock_wait_over_100_ms(under_readers):
    figures, errors, *_ = under_readers
    assert errors == []
    assert figures["errors"] == 0


def test_no_empty_list_for_users_and_records_that_had_one(under_readers):
    figures, *_ = under_readers
    assert figures["empty_lists"] == 0


def test_the_publishes_did_replace_the_rows(under_readers):
    *_, before, after = under_readers
    # the second run published variant A again: same rows as before, under a new run id
    assert faults.checksums(after) == faults.checksums(before)
    assert faults.run_ids(after) != faults.run_ids(before)
