"""Smoke test of bench/api.py on the tiny XS profile: the report's shape, not its timings."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def report(postgres_server):
    """Return the report of a 2 s-per-phase run of 4 clients on the XS profile."""
    sys.path.insert(0, str(BENCH))  # api.py imports its sibling profiles.py; spawn needs it too
    api = importlib.import_module("api")
    profile = api.PROFILES["XS"]
    db = api.ensure_profile(profile, postgres_server)
    api.ensure_published(db)
    return api, api.bench(db, profile, clients=4, seconds=2, seed=7, fallback_share=0.3)


def test_both_phases_and_every_function_are_reported(report):
    api, rep = report
    assert set(rep["phases"]) == {"at_rest", "during_publish"}
    for phase in rep["phases"].values():
        assert set(phase["functions"]) == set(api.FUNCTIONS)
        for figures in [*phase["functions"].values(), phase["all"]]:
            assert {"queries", "queries_per_s", "p50_ms", "p95_ms", "p99_ms", "errors"} <= set(
                figures
            )
            assert figures["queries"] > 0
            assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]


def test_no_call_failed(report):
    _, rep = report
    for phase in rep["phases"].values():
        assert phase["all"]["errors"] == 0, phase["error_samples"]
    assert all(v["errors"] == 0 for v in rep["verdict"].values())


def test_the_second_phase_ran_during_publishes(report):
    _, rep = report
    publisher = rep["phases"]["during_publish"]["publisher"]
    assert publisher["error"] is None
    assert publisher["publishes"] >= 1
    assert publisher["rows"]["recommendation_data"] > 0
    assert publisher["queries_inside_publish"] > 0


def test_the_report_names_the_machine_and_the_profile(report):
    _, rep = report
    assert rep["profile"]["name"] == "XS"
    assert {"cores", "memory_gib", "load_average"} <= set(rep["machine"])
    assert rep["clients"] == 4


@pytest.fixture(scope="module")
def cache_report(report, postgres_server, redis_server):
    """Return the report of the cache mode (2 s per phase, each client paced at RATE calls/s)
    on the same XS database."""
    api, _ = report
    profile = api.PROFILES["XS"]
    db = api.ensure_profile(profile, postgres_server)  # reused: generated for `report`
    return api.bench(db, profile, 4, 2, 7, 0.3, cache_url=redis_server, rate=RATE)


RATE = 100.0


def test_paced_clients_call_at_their_rate_and_no_faster(cache_report):
    for phase in cache_report["phases"].values():
        calls = phase["all"]["queries"]  # 4 clients × 2 s × RATE, less what fell behind
        assert 0.5 * 4 * 2 * RATE <= calls <= 4 * (2 * RATE + 1)


def test_the_cache_mode_reports_both_sides_and_redis_memory(cache_report):
    assert set(cache_report["phases"]) == {"cache_at_rest", "cache_during_switch"}
    for phase in cache_report["phases"].values():
        assert phase["all"]["errors"] == 0, phase["error_samples"]
        assert any(name.endswith("[redis]") for name in phase["functions"])
        assert "get_recommendations:fallback [postgres]" in phase["functions"]
    warmer = cache_report["phases"]["cache_during_switch"]["warmer"]
    assert warmer["error"] is None and warmer["rounds"] >= 1
    memory = cache_report["memory"]
    assert memory["bytes_per_user_key"] > memory["bytes_per_list"] > 0
    assert memory["users"] > 0 and memory["lists"] >= memory["users"]


def test_the_anchor_is_timed_beside_the_read_module_and_left_out_of_the_verdict(
    report, cache_report
):
    api, _ = report
    for name, phase in cache_report["phases"].items():
        anchor = phase["functions"][api.ANCHOR]
        calls = sum(f["queries"] for f in phase["functions"].values())
        assert 0.1 * calls <= anchor["queries"] <= 0.3 * calls  # one call in ANCHOR_EVERY
        assert phase["anchor"]["anchor_p99_ms"] == anchor["p99_ms"]
        assert phase["anchor"]["redis_p99_ms"] > 0 and phase["anchor"]["ratio"] > 0
        assert api.ANCHOR not in cache_report["verdict"][name]["over_target"]


def test_paced_clients_interleave_instead_of_firing_together():
    sys.path.insert(0, str(BENCH))
    clients = importlib.import_module("api_clients")
    rate, n = 10.0, 4  # 100 ms between a client's calls: client i starts i × 25 ms late
    for i in range(n):
        began = time.perf_counter()
        pace = clients.Pace(rate, i / n)
        first, second = pace.start(), pace.start()
        assert 0 <= first - began - i / (n * rate) < 0.005
        assert second - first == pytest.approx(1 / rate)
