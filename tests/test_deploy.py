"""`prefect deploy --all` from prefect.yaml against a real, local `prefect server start`, and a
deployment run by a process worker started in another folder (the installed package only)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from flows.params import NightlyParams
from flows.storage.database import ENV_VAR

pytestmark = pytest.mark.prefect_server

PREFECT = Path(sys.executable).with_name("prefect")
PROJECT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_healthy(api_url: str, server: subprocess.Popen) -> None:
    """Return once the server answers /health; fail if it exits or takes too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited with code {server.returncode}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)  # polling for readiness, not asserting on time
    pytest.fail(f"prefect server not healthy after {STARTUP_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Start `prefect server start` on a free port; yield the environment that points at it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with everything it spawned
    )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_until_healthy(api_url, server)
        yield env | {"PREFECT_API_URL": api_url}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


def prefect(env: dict[str, str], *args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    """Run the prefect CLI (in the project folder unless told) against the test server."""
    return subprocess.run(
        [str(PREFECT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def deployed(prefect_env) -> dict[str, dict]:
    """Create the work pool, run `prefect --no-prompt deploy --all`; return deployments by name."""
    pool = prefect(prefect_env, "work-pool", "create", "rotation-process", "--type", "process")
    assert pool.returncode == 0, pool.stdout + pool.stderr
    done = prefect(prefect_env, "--no-prompt", "deploy", "--all")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    response = httpx.post(f"{prefect_env['PREFECT_API_URL']}/deployments/filter", json={})
    response.raise_for_status()
    return {d["name"]: d for d in response.json()}


def test_deployment_ls_lists_nightly_and_backfill(prefect_env, deployed):
    listed = prefect(prefect_env, "deployment", "ls")

    assert listed.returncode == 0, listed.stderr
    assert "nightly/nightly" in listed.stdout
    assert "backfill/backfill" in listed.stdout


def test_nightly_runs_every_day_at_three_utc(deployed):
    nightly = deployed["nightly"]
    schedules = [s for s in nightly["schedules"] if s["active"]]
    assert [s["schedule"]["cron"] for s in schedules] == ["0 3 * * *"]
    assert schedules[0]["schedule"]["timezone"] == "UTC"


def test_deployments_point_at_the_flows_and_the_pool(deployed):
    assert deployed["nightly"]["entrypoint"] == "flows.nightly.nightly"
    assert deployed["backfill"]["entrypoint"] == "flows.backfill.backfill"
    assert deployed["nightly-dask"]["entrypoint"] == "flows.nightly.nightly_dask"
    assert [s["active"] for s in deployed["nightly-dask"]["schedules"]] == [False]  # nightly's
    assert {d["work_pool_name"] for d in deployed.values()} == {"rotation-process"}
    assert deployed["backfill"]["schedules"] == []
    assert all(not d["pull_steps"] for d in deployed.values())  # nothing of the deploying shell
    # no database URL (nor any password) is baked into a deployment
    for deployment in deployed.values():
        assert "database" not in (deployment["parameters"] or {})
        assert "postgresql://" not in str(deployment)


def test_backfill_requires_its_date_range(deployed):
    schema = deployed["backfill"]["parameter_openapi_schema"]
    assert set(schema["required"]) == {"date_from", "date_to"}


def test_the_nightly_form_shows_every_parameter_with_its_default(deployed):
    schema = deployed["nightly"]["parameter_openapi_schema"]["properties"]
    assert schema["window_days"]["default"] == NightlyParams().window_days
    assert schema["top_n"]["default"] == NightlyParams().top_n
    where = {"database", "replica"}  # URLs without passwords; the cache is the worker's own
    assert set(schema) == {f.name for f in dataclasses.fields(NightlyParams)} | where
    assert "days of events read" in schema["window_days"]["description"]


def test_a_worker_in_another_folder_runs_a_deployment(
    prefect_env, deployed, migrated_duck, tmp_path
):
    """The worker imports the flow from the installed package: no checkout, no ROTATION_HOME."""
    env = prefect_env | {ENV_VAR: migrated_duck.url}
    started = prefect(
        env, "deployment", "run", "backfill/backfill",
        "--param", "date_from=2026-01-01", "--param", "date_to=2026-01-02", cwd=tmp_path,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    worker = prefect(
        env, "worker", "start", "--pool", "rotation-process", "--run-once", cwd=tmp_path
    )
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    response = httpx.post(f"{prefect_env['PREFECT_API_URL']}/flow_runs/filter", json={})
    runs = [r for r in response.json() if r["deployment_id"] == deployed["backfill"]["id"]]
    assert [r["state_type"] for r in runs] == ["COMPLETED"], worker.stdout[-3000:]
    with duckdb.connect(str(migrated_duck.path), read_only=True) as conn:
        jobs = conn.execute("SELECT job_type, job_status FROM jobs").fetchall()
    assert jobs == [("backfill", "completed")]
