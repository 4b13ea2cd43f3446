"""A throwaway streaming replication pair for the read-replica tests, one per test session.

bench/pgpair.py makes it: a primary (`initdb`) and a hot standby (`pg_basebackup -R`) in a
temporary directory, on spare ports, run as the `postgres` OS user; both are stopped and
removed at the end. The shared server at 127.0.0.1:5432 is never touched. Without the
PostgreSQL binaries the tests skip locally and fail in CI (ROTATION_REQUIRE_POSTGRES=1), as
tests/conftest.py does for a missing server.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.pgpair import PG_BIN, TEST_CONF, StreamingPair, binaries_present, start_pair, stop_pair

REQUIRE_PG = os.environ.get("ROTATION_REQUIRE_POSTGRES") == "1"
DBNAME = "rotation_replica"


@pytest.fixture(scope="session")
def streaming_pair() -> Iterator[StreamingPair]:
    """Yield a primary and its streaming hot standby, each with an empty rotation database."""
    if not binaries_present():
        message = f"no PostgreSQL server binaries in {PG_BIN} (ROTATION_TEST_PG_BIN)"
        if REQUIRE_PG:
            pytest.fail(message + " (ROTATION_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="rotation-replica-"))
    try:
        yield start_pair(root, DBNAME, TEST_CONF)
    finally:
        stop_pair(root)
