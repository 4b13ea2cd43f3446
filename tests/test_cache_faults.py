"""Redis failing during a run's warming, on private redis-servers (password set, no
persistence): killed, or full (maxmemory, noeviction). The Postgres publish stands, the live
pointer is gone, reads are served by Postgres, the run carries one warning line (job row,
Prefect artifact) without the password; the next run with Redis back switches again."""

from __future__ import annotations

import json

import pytest
import redis
from pg_helpers import connect
from pipeline_fixtures import RUN_DATE, fresh_pg, generate, params
from redis_helpers import REQUIREPASS, namespace, private_redis

from flows.nightly import nightly, run_nightly
from flows.storage.cache import keys, writer
from flows.storage.cache.reader import CacheReader
from flows.storage.cache.target import CACHE_ENV_VAR
from flows.storage.database import ENV_VAR

pytest_plugins = ["prefect_fixtures"]
pytestmark = pytest.mark.postgres
PUBLISH = params(force_publish=True)  # the runs re-publish the same date, gate or not


def leaks(*texts: str) -> bool:
    """Return True when any text holds the private server's password, raw or encoded."""
    return any(REQUIREPASS in t or REQUIREPASS.replace("#", "%23") in t for t in texts)


def run_records(db) -> list[str]:
    """Return every jobs, job_logs and performance_metrics row as JSON text."""
    with connect(db) as conn:
        return [
            row[0]
            for table in ("jobs", "job_logs", "performance_metrics")
            for row in conn.execute(f"SELECT row_to_json(t)::text FROM {table} AS t")
        ]


def live_run(db) -> str:
    """Return the run id of the published recommendation_data."""
    with connect(db) as conn:
        return conn.execute("SELECT DISTINCT run_id FROM recommendation_data").fetchone()[0]


def reads(db, cache) -> tuple[set[str], bool]:
    """Return the sources of a sample of reads and whether each equals Postgres alone."""
    cached, plain = CacheReader(db, cache), CacheReader(db, None)
    try:
        calls = [("get_recommendations", u, "records", 20) for u in range(1, 40)]
        calls += [("get_similar", "record", r, "hybrid", 20) for r in range(1, 40)]
        calls += [("get_user_preferences", u) for u in range(1, 40)]
        served = [cached.read(*call) for call in calls]
        same = all(s.rows == plain.read(*c).rows for s, c in zip(served, calls, strict=True))
        return {s.source for s in served}, same
    finally:
        cached.close()
        plain.close()


def pointer(cache) -> str | None:
    """Return the live pointer's tag, or None."""
    with redis.Redis.from_url(cache.url) as client:
        tag = client.get(keys.live_key(cache.prefix))
    return tag.decode() if tag else None


@pytest.fixture
def generated(postgres_server):
    """Yield a fresh Postgres database with the tiny generated data."""
    with fresh_pg("rotation_cachefault") as db:
        generate(db)
        yield db


def test_redis_killed_during_warming_then_started_again(generated, monkeypatch):
    db = generated
    with private_redis() as server, namespace(server.url) as cache:
        first = run_nightly(db, PUBLISH, cache=cache)
        assert pointer(cache) == keys.run_tag(first.run_id)

        encode, calls = writer.recommendation_values, []

        def kill_on_the_third_slice(frame):
            calls.append(frame.height)
            if len(calls) == 3:  # some of the run's keys are written already
                server.kill()
            return encode(frame)

        monkeypatch.setattr(writer, "SLICE_ROWS", 2_000)
        monkeypatch.setattr(writer, "recommendation_values", kill_on_the_third_slice)
        second = run_nightly(db, PUBLISH, cache=cache)
        monkeypatch.undo()

        assert len(calls) >= 3
        assert second.status == "completed_with_warnings" and second.published
        assert second.warning.startswith("cache: warming") and "\n" not in second.warning
        assert live_run(db) == second.run_id  # the Postgres publish stands
        assert reads(db, cache) == ({"postgres"}, True)  # Redis down: Postgres serves

        server.start()  # empty (no persistence): no pointer, Postgres serves
        assert pointer(cache) is None and reads(db, cache) == ({"postgres"}, True)
        third = run_nightly(db, PUBLISH, cache=cache)
        assert third.status == "completed" and pointer(cache) == keys.run_tag(third.run_id)
        sources, same = reads(db, cache)
        assert "redis" in sources and same
    with connect(db) as conn:
        status, result = conn.execute(
            "SELECT job_status::text, result FROM jobs WHERE run_id = %s", (second.run_id,)
        ).fetchone()
        logged = conn.execute(
            "SELECT count(*) FROM job_logs AS l JOIN jobs AS j ON j.id = l.job_id "
            "WHERE j.run_id = %s AND l.log_level = 'warning' AND l.message LIKE 'cache:%%'",
            (second.run_id,),
        ).fetchone()[0]
    assert status == "completed_with_warnings" and result["warning"] == second.warning
    assert logged == 1
    assert not leaks(*run_records(db), json.dumps(second.summary()), repr(cache))


def test_a_full_redis_is_a_warning_through_prefect_and_the_next_run_switches(
    generated, prefect_harness, monkeypatch
):
    from prefect_fixtures import flow_run_artifacts, flow_run_logs

    db = generated
    with private_redis(maxmemory="64mb") as server, namespace(server.url) as cache:
        first = run_nightly(db, PUBLISH, cache=cache)
        client = server.client()
        used = client.info("memory")["used_memory"]
        client.config_set("maxmemory", used + 64 * 1024)  # far less than a run's keys

        monkeypatch.setenv(ENV_VAR, db.url)
        monkeypatch.setenv(CACHE_ENV_VAR, server.url + f"?prefix={cache.prefix}")
        state = nightly(run_date=RUN_DATE, force_publish=True, return_state=True)
        summary = state.result()
        flow_run_id = state.state_details.flow_run_id

        assert state.is_completed() and summary["status"] == "completed_with_warnings"
        assert summary["warning"].startswith("cache: warming") and "maxmemory" in summary["warning"]
        assert live_run(db) == summary["run_id"]  # the Postgres publish stands
        assert pointer(cache) is None and reads(db, cache) == ({"postgres"}, True)
        old = keys.run_pattern(cache.prefix, keys.run_tag(first.run_id))
        assert list(client.scan_iter(match=old)) == []  # unreachable keys deleted

        artifacts = [str(a.data) for a in flow_run_artifacts(flow_run_id)]
        report = next(a for a in artifacts if "# Nightly run" in a)
        assert [line for line in report.splitlines() if "cache:" in line] == [
            f"- ⚠️ {summary['warning']}"
        ]
        assert not leaks(*artifacts, *flow_run_logs(flow_run_id), *run_records(db))

        client.config_set("maxmemory", 0)
        third = run_nightly(db, PUBLISH, cache=cache)
        assert third.status == "completed" and pointer(cache) == keys.run_tag(third.run_id)
        client.close()
