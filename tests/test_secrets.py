"""The database password never leaves the URL: not in output, job tables, logs or artifacts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from pipeline_fixtures import PG_ADMIN_URL, RUN_DATE, fresh_pg, generate

from flows.nightly import nightly
from flows.storage.database import ENV_VAR

pytest_plugins = ["prefect_fixtures"]
pytestmark = [pytest.mark.postgres, pytest.mark.prefect_server]

ROLE = "rotation_secret_test"
PASSWORD = "S3cr3t-pw-xyz"
#: Every character with a meaning in a URL, percent-encoded in the URL (tests/test_database_url.py
#: shows the raw ones refused).
SPECIAL = "S3#cr?3t@pw/x:y%z&w v"
ROTATION = Path(sys.executable).with_name("rotation")
PROJECT = Path(__file__).resolve().parents[1]
TABLES = ("jobs", "job_logs", "performance_metrics")


@pytest.fixture(scope="module")
def secret_role(postgres_server):
    """Create a LOGIN role with a password (trust auth accepts it); drop it afterwards."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' SUPERUSER")
    yield ROLE
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


@pytest.fixture
def secret_db(secret_role):
    """Yield (admin Database, URL with the role's password) of a database with generated data."""
    with fresh_pg("rotation_secret") as db:
        generate(db)
        parts = urlsplit(db.url)
        yield db, f"postgresql://{ROLE}:{PASSWORD}@{parts.hostname}:{parts.port}{parts.path}"


def leaks(text: str, password: str = PASSWORD) -> bool:
    """Return True when `text` holds the password, raw or percent-encoded."""
    return password in text or quote(password, safe="") in text


def run_cli(api_url: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `rotation` reporting to the session's Prefect server; return what it printed."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env |= {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)}
    return subprocess.run(
        [str(ROTATION), *args], capture_output=True, text=True, env=env, cwd=PROJECT, timeout=300
    )


def table_texts(db) -> dict[str, list[str]]:
    """Return every row of the bookkeeping tables as text (all columns, JSON included)."""
    with psycopg.connect(db.url) as conn:
        return {
            t: [row[0] for row in conn.execute(f"SELECT CAST(x AS text) FROM {t} AS x")]
            for t in TABLES
        }


def prefect_texts(flow_run_id: str) -> list[str]:
    """Return what the Prefect server holds for a flow run: artifacts, parameters, logs."""
    from prefect.logging.handlers import APILogWorker
    from prefect_fixtures import flow_run_artifacts, flow_run_logs, flow_run_parameters

    APILogWorker.drain_all()
    artifacts = [f"{a.key} {a.description} {a.data}" for a in flow_run_artifacts(flow_run_id)]
    return [*artifacts, repr(flow_run_parameters(flow_run_id)), *flow_run_logs(flow_run_id)]


def test_cli_nightly_never_shows_the_password(prefect_harness, secret_db, tmp_path):
    admin, url = secret_db

    done = run_cli(prefect_harness, tmp_path, "run", "nightly", "--database", url,
                   "--date", RUN_DATE.isoformat())  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"nightly {RUN_DATE}: completed, lists published")
    for line in (done.stdout + done.stderr).splitlines():
        assert PASSWORD not in line
    rows = table_texts(admin)
    assert rows["jobs"] and rows["performance_metrics"]
    for name, texts in rows.items():
        assert not [t for t in texts if PASSWORD in t], f"password in {name}"
    with psycopg.connect(admin.url) as conn:
        flow_run_id, payload = conn.execute(
            "SELECT flow_run_id, payload ->> 'database' FROM jobs"
        ).fetchone()
    assert "***" in payload and ROLE in payload  # the redacted URL is kept, readable
    texts = prefect_texts(flow_run_id)
    assert any("nightly-run-report" in t for t in texts)
    assert not [t for t in texts if PASSWORD in t]


@pytest.mark.parametrize("password", [PASSWORD, SPECIAL], ids=["plain", "special"])
def test_flow_with_the_url_in_the_environment_keeps_it_secret(
    prefect_harness, secret_db, monkeypatch, caplog, password
):
    admin, url = secret_db
    monkeypatch.setenv(ENV_VAR, url.replace(PASSWORD, quote(password, safe="")))

    state = nightly(run_date=RUN_DATE, database=None, return_state=True)

    assert state.is_completed()
    assert not leaks(repr(state.result()), password)
    flow_run_id = str(state.state_details.flow_run_id)
    texts = prefect_texts(flow_run_id)
    assert any("nightly-key-metrics" in t for t in texts)
    assert not [t for t in texts if leaks(t, password)]
    assert not [r for r in caplog.records if leaks(r.getMessage(), password)]
    for name, rows in table_texts(admin).items():
        assert not [t for t in rows if leaks(t, password)], f"password in {name}"


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://{role}:{password}@127.0.0.1:5432/rotation_no_such_database",
        "postgresql://{role}@127.0.0.1:5432/rotation_no_such_database?password={password}",
    ],
    ids=["userinfo", "query"],
)
def test_failing_run_prints_the_error_without_the_password(
    prefect_harness, secret_role, tmp_path, template
):
    url = template.format(role=secret_role, password=PASSWORD)

    done = run_cli(prefect_harness, tmp_path, "run", "nightly", "--database", url,
                   "--date", RUN_DATE.isoformat())  # fmt: skip

    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert PASSWORD not in output
    assert "Traceback" not in output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines.pop(0).startswith("rotation: warning: a password in --database")  # argv
    assert lines.pop(0).startswith("[  0.0%] nightly for")  # the header, before anything
    errors = lines
    assert len(errors) == 1, errors
    assert "rotation_no_such_database" in errors[0] and "***" in errors[0]


def test_a_run_with_no_database_configured_says_where_it_looked(prefect_harness, monkeypatch):
    """A deployment's run with neither the variable nor the Secret block: one clear line,
    never the command line's embedded default."""
    monkeypatch.delenv(ENV_VAR, raising=False)

    state = nightly(run_date=RUN_DATE, return_state=True)

    assert state.is_failed()
    assert "no database configured" in state.message
    assert ENV_VAR in state.message and "rotation-database-url" in state.message
    assert "duckdb" not in state.message
