"""Bad parameters not covered by test_cli.py: one clear line and a non-zero exit, never a
traceback, for a PostgreSQL database that is missing, unreachable or not migrated, and for
a backwards backfill range."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_fixtures import PG_ADMIN_URL

from flows.cli import main
from flows.storage.database import ENV_VAR

pytestmark = pytest.mark.postgres
SERVER = PG_ADMIN_URL.rsplit("/", 1)[0]
ROTATION = Path(sys.executable).with_name("rotation")
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_environment(monkeypatch):
    """The CLI sets ROTATION_DATABASE_URL and Prefect variables for its process: undo them."""
    for name in (ENV_VAR, "PREFECT_LOGGING_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED"):
        monkeypatch.delenv(name, raising=False)


def one_error_line(capsys) -> str:
    """Return the only non-empty stderr line, checking that it is an error and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("rotation: error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        (f"{SERVER}/rotation_no_such_database", 'database "rotation_no_such_database" does not'),
        ("postgresql://root@127.0.0.1:1/rotation", "Connection refused"),
        (PG_ADMIN_URL, "has no Rotation schema; run `rotation db migrate`"),
    ],
    ids=["missing-database", "unreachable-server", "not-migrated"],
)
@pytest.mark.parametrize("command", [["run", "nightly", "--date", "2026-01-01"],
                                     ["run", "backfill", "--from", "2026-01-01",
                                      "--to", "2026-01-02"]])  # fmt: skip
def test_an_unusable_postgres_database_is_one_line(postgres_server, capsys, command, database,
                                                   expected):  # fmt: skip
    code = main(["-q", *command, "--database", database])

    assert code == 1
    line = one_error_line(capsys)
    assert expected in line


def test_a_password_in_an_unusable_url_stays_hidden(postgres_server, capsys):
    code = main(["-q", "run", "nightly", "--database",
                 "postgresql://root:hunter2-pw@127.0.0.1:1/rotation"])  # fmt: skip

    assert code == 1
    warning, error = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("rotation: warning: a password in --database is visible")
    assert error.startswith("rotation: error: ") and "Traceback" not in error
    assert "hunter2-pw" not in warning + error and "root:***@" in error


def test_a_backwards_backfill_range_is_one_line(migrated_duck, tmp_path):
    """Through the installed script: Prefect's own logging must not add a traceback."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    done = subprocess.run(
        [str(ROTATION), "-q", "run", "backfill", "--database", migrated_duck.url,
         "--from", "2026-01-05", "--to", "2026-01-01"],
        capture_output=True, text=True, timeout=300, cwd=PROJECT,
        env=env | {"PREFECT_HOME": str(tmp_path / "prefect")},
    )  # fmt: skip

    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["rotation: error: --to 2026-01-01 is before --from 2026-01-05"], lines
