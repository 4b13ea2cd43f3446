"""Connection errors: what may heal is retried during a run; what cannot fails a command at once."""

from __future__ import annotations

import psycopg
import pytest

from flows.cli.checks import preflight
from flows.storage import postgres
from flows.storage.database import parse_database
from flows.storage.errors import StorageError, storage_error

DISPLAY = "postgresql://root@127.0.0.1:5432/x"


@pytest.mark.parametrize(
    "message",
    [
        'connection to server at "127.0.0.1" failed: FATAL:  database "x" does not exist',
        'connection failed: FATAL:  password authentication failed for user "root"',
        'connection failed: FATAL:  no pg_hba.conf entry for host "10.0.0.1"',
        "failed to resolve host 'db.invalid': [Errno -2] Name or service not known",
        "permission denied for table jobs",
    ],
)
def test_a_refusal_for_good_is_not_transient(message):
    error = storage_error(psycopg.OperationalError(message), DISPLAY)
    assert not error.transient
    assert str(error).startswith(f"{DISPLAY}: ")


@pytest.mark.parametrize(
    "message",
    [
        "server closed the connection unexpectedly",
        "terminating connection due to administrator command",
        'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
    ],
)
def test_a_dropped_link_or_a_restarting_server_is_transient(message):
    assert storage_error(psycopg.OperationalError(message), DISPLAY).transient


@pytest.mark.postgres
def test_the_preflight_reports_a_missing_database_without_retrying(monkeypatch, postgres_server):
    sleeps: list[float] = []
    monkeypatch.setattr(postgres.time, "sleep", sleeps.append)
    db = parse_database(postgres_server.rsplit("/", 1)[0] + "/rotation_no_such_database")

    with pytest.raises(StorageError, match="does not exist"):
        preflight(db)

    assert sleeps == []


def test_a_run_retries_a_refused_connection(monkeypatch):
    """Under way (retry=True) a closed port may be a server restarting: 1 + 3 + 6 s of retries."""
    sleeps: list[float] = []
    monkeypatch.setattr(postgres.time, "sleep", sleeps.append)
    db = parse_database("postgresql://root@127.0.0.1:1/x")

    with postgres.PostgresStorage(db) as storage, pytest.raises(StorageError, match="refused"):
        storage.check(retry=True)

    assert sleeps == list(postgres.BOOKKEEPING_RETRY_S)
