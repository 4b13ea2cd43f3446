"""Crash safety: a nightly run SIGKILLed during publish leaves the old rows or the new ones.

The small CI case of bench/faults.py (which runs 20+ trials at the small profile): three
runs in subprocesses, each killed at a seeded random moment of its publish stage.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

BENCH = Path(__file__).resolve().parents[1] / "bench" / "faults.py"


def _faults():
    spec = importlib.util.spec_from_file_location("bench_faults", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


faults = _faults()


@pytest.fixture(scope="module")
def published(postgres_server):
    """Yield (db, checksums per variant, publish seconds) on a generated tiny database."""
    with faults.scratch_database("rotation_crashtest") as db:
        faults.generate(db, "tiny")
        sums, publish_s = faults.reference_runs(db)
        yield db, sums, publish_s


def test_checksums_tell_the_two_variants_apart(published):
    db, sums, _ = published
    now = faults.state(db.url)
    assert faults.checksums(now) == sums["A"] != sums["B"]
    assert all(s.rows > 0 and s.duplicate_keys == 0 for s in now.values())


@pytest.mark.parametrize("number", [1, 2, 3])
def test_sigkill_during_publish_leaves_old_or_new_rows_and_the_next_run_recovers(
    published, number
):
    db, sums, publish_s = published
    rng = random.Random(number)

    trial = faults.kill_trial(db, number, sums, publish_s * 1.3, rng)

    assert not trial.outcome.startswith("broken"), trial
    assert trial.outcome in ("old", "new", "finished")
    if trial.outcome != "finished":
        assert trial.killed_status == "running"  # the dead process could not close its job
    assert trial.recovered, trial


def test_a_kill_before_commit_keeps_the_previous_run(published):
    """No delay at all: the kill lands while the publish transaction is still open."""
    db, sums, _ = published

    trial = faults.kill_trial(db, 0, sums, 0.0, random.Random(0))

    assert trial.outcome == "old", trial
    assert trial.killed_status == "running"
    assert trial.recovered, trial
