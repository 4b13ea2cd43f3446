"""The Redis cache on real Postgres and Redis: a nightly run warms it and switches, and the read
module returns exactly what the Postgres read functions return, list by list, through a
switch too (reader threads during a second run: no reader goes back to the older run)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
import redis
from pg_helpers import connect
from pipeline_fixtures import fresh_pg, generate, params
from redis_helpers import namespace

from flows.cli.main import main
from flows.nightly import run_nightly
from flows.storage.cache import keys
from flows.storage.cache.reader import CacheReader
from transforms.columns import RECOMMENDATION_LISTS, SIMILARITY_TYPES

pytestmark = pytest.mark.postgres
LIMITS = (20, 3, 0, 150)


@pytest.fixture(scope="module")
def published(postgres_server, redis_server):
    """Yield (db, cache target, first run's result) after one nightly run with the cache,
    its users in 3 shards: the lists are warmed a shard at a time, as on a cluster."""
    with fresh_pg("rotation_cachetest") as db, namespace(redis_server) as cache:
        generate(db)
        result = run_nightly(db, params(shards=3), cache=cache)
        yield db, cache, result


@pytest.fixture(scope="module")
def readers(published):
    """Yield a reader through the cache and one of Postgres alone (the reference)."""
    db, cache, _ = published
    cached, plain = CacheReader(db, cache), CacheReader(db, None)
    yield cached, plain
    cached.close()
    plain.close()


def ids(db, sql: str) -> list[int]:
    """Return the first column of a query."""
    with connect(db) as conn:
        return [row[0] for row in conn.execute(sql)]


def all_users(db) -> list[int]:
    """Return every user id, and two that do not exist."""
    users = ids(db, "SELECT id FROM users ORDER BY id")
    return [*users, max(users) + 1, max(users) + 50]


def test_the_run_warms_and_switches(published):
    _, cache, result = published
    assert result.status == "completed" and result.warning is None
    assert "cache_warm" in [s["stage"] for s in result.stages]
    with redis.Redis.from_url(cache.url) as client:
        live = client.get(keys.live_key(cache.prefix)).decode()
        assert live == keys.run_tag(result.run_id)
        ttl_ms = client.pttl(keys.live_key(cache.prefix))
        sample = list(client.scan_iter(match=keys.run_pattern(cache.prefix, live), count=1000))
        ttls = [client.pttl(k) for k in sample]
    assert 0 < ttl_ms <= timedelta(hours=params().cache_ttl_hours).total_seconds() * 1000
    assert len(sample) > 100 and all(0 < t <= ttl_ms + 1000 for t in ttls)


def test_every_list_equals_the_postgres_function(published, readers):
    db, *_ = published
    cached, plain = readers
    sources: Counter = Counter()
    for user in all_users(db):
        for list_name in RECOMMENDATION_LISTS:
            for limit in LIMITS:
                served = cached.read("get_recommendations", user, list_name, limit)
                assert served.rows == plain.get_recommendations(user, list_name, limit), (
                    user,
                    list_name,
                    limit,
                )
                sources[list_name, served.source] += 1
    for list_name in RECOMMENDATION_LISTS:  # each list type really came from Redis
        assert sources[list_name, "redis"] > 0, list_name


def test_every_neighbour_list_equals_the_postgres_function(published, readers):
    db, *_ = published
    cached, plain = readers
    sources: Counter = Counter()
    for source_type, table in (("record", "records"), ("track", "tracks"), ("store", "stores")):
        for source_id in ids(db, f"SELECT id FROM {table} ORDER BY id")[:150]:
            for kind in SIMILARITY_TYPES:
                served = cached.read("get_similar", source_type, source_id, kind, 20)
                assert served.rows == plain.get_similar(source_type, source_id, kind, 20)
                sources[source_type, kind, served.source] += 1
    assert sources["record", "hybrid", "redis"] > 0 and sources["track", "content", "redis"] >= 0
    assert sum(n for (_, _, source), n in sources.items() if source == "redis") > 100


def test_every_users_preferences_equal_the_postgres_function(published, readers):
    db, *_ = published
    cached, plain = readers
    served = [cached.read("get_user_preferences", user) for user in all_users(db)]
    assert [s.rows for s in served] == [plain.get_user_preferences(u) for u in all_users(db)]
    assert sum(s.source == "redis" and bool(s.rows) for s in served) > 50


def test_a_cached_user_without_the_list_gets_the_popularity_fallback(published, readers):
    """The fallback computed from the run's cached popularity list equals the function's."""
    db, cache, result = published
    cached, plain = readers
    users = ids(
        db,
        "SELECT DISTINCT d.user_id FROM recommendation_data AS d "
        "JOIN favorites AS f ON f.user_id = d.user_id ORDER BY 1 LIMIT 3",
    )
    with connect(db) as conn:
        conn.execute(
            "DELETE FROM recommendation_data WHERE user_id = ANY(%s) "
            "AND list_name IN ('records', 'records_in_stock')",
            (users,),
        )
    tag = keys.run_tag(result.run_id)
    with redis.Redis.from_url(cache.url) as client:
        for user in users:
            client.hdel(keys.user_key(cache.prefix, tag, user), "records", "records_in_stock")
    for user in users:
        for list_name in ("records", "records_in_stock"):
            served = cached.read("get_recommendations", user, list_name, 20)
            assert served.source == "redis"
            assert served.rows == plain.get_recommendations(user, list_name, 20)
        assert cached.get_recommendations(user, "records", 20)[0]["is_fallback"] is True


def test_a_bad_argument_is_refused_like_the_function(readers):
    cached, _ = readers
    with pytest.raises(ValueError, match="list name"):
        cached.get_recommendations(1, "albums", 20)
    with pytest.raises(ValueError, match="p_limit"):
        cached.get_similar("record", 1, "hybrid", -1)


def _reader(
    cached: CacheReader, calls: list[tuple], seed: int, stop: threading.Event, out: list
) -> None:
    """Read `calls` in a random order until `stop`; append (call, rows, source) or errors."""
    rng = random.Random(seed)
    while not stop.is_set():
        call = rng.choice(calls)
        try:
            served = cached.read(*call)
        except Exception as exc:  # counted: the test wants none
            out.append((call, exc, "error"))
            continue
        out.append((call, served.rows, served.source))


def test_readers_through_a_switch_never_go_back_to_the_older_run(published, readers):
    db, cache, first = published
    _, plain = readers
    users = all_users(db)[:40] + all_users(db)[-2:]
    records = ids(db, "SELECT id FROM records ORDER BY id")[:40]
    calls = [("get_recommendations", u, name, 20) for u in users for name in RECOMMENDATION_LISTS]
    calls += [("get_similar", "record", r, kind, 20) for r in records for kind in SIMILARITY_TYPES]
    calls += [("get_user_preferences", u) for u in users]
    before = {call: plain.read(*call).rows for call in calls}

    stop, outs, threads = threading.Event(), [], []
    for seed in range(4):
        outs.append([])
        reader = CacheReader(db, cache)  # a reader (client, connections) per API worker
        thread = threading.Thread(target=_reader, args=(reader, calls, seed, stop, outs[-1]))
        threads.append((thread, reader))
        thread.start()
    try:  # other lists: fewer items, fewer neighbours (published whatever the gate says)
        second = run_nightly(db, params(top_n=15, similar_k=15, force_publish=True), cache=cache)
        finished = datetime.now().timestamp()
        while sum(len(o) for o in outs) < 200 or datetime.now().timestamp() < finished + 0.5:
            threading.Event().wait(0.05)
    finally:
        stop.set()
        for thread, reader in threads:
            thread.join()
            reader.close()
    after = {call: plain.read(*call).rows for call in calls}

    assert second.published and "cache" not in (second.warning or "")
    changed = {call for call in calls if before[call] != after[call]}
    assert len(changed) > len(calls) // 2
    errors, mixed, unknown, sides = [], 0, 0, Counter()
    for out in outs:
        seen_new = False
        for call, rows, source in out:
            if source == "error":
                errors.append(rows)
                continue
            if call not in changed:
                continue
            side = "new" if rows == after[call] else "old" if rows == before[call] else None
            unknown += side is None
            mixed += side == "old" and seen_new
            seen_new = seen_new or side == "new"
            sides[side, source] += 1
    assert errors == [] and unknown == 0 and mixed == 0
    assert sides["old", "redis"] > 0 and sides["new", "redis"] > 0  # they read through it
    with redis.Redis.from_url(cache.url) as client:
        old = keys.run_pattern(cache.prefix, keys.run_tag(first.run_id))
        assert list(client.scan_iter(match=old, count=1000)) == []
        assert client.get(keys.live_key(cache.prefix)).decode() == keys.run_tag(second.run_id)


def test_rotation_recommend_and_similar_read_through_the_cache(published, capsys):
    db, cache, _ = published
    user = ids(db, "SELECT min(user_id) FROM recommendation_data")[0]
    url = cache.url + f"?prefix={cache.prefix}"
    assert main(["-q", "recommend", str(user), "--database", db.url, "--cache", url]) == 0
    out, err = capsys.readouterr()
    assert "records_in_stock" in out and "from redis" in err
    record = ids(db, "SELECT min(source_id) FROM content_similarity WHERE source_type = 'record'")
    args = ["-q", "similar", "record", str(record[0]), "--database", db.url, "--cache", url]
    assert main(args) == 0
    out, _ = capsys.readouterr()
    assert "hybrid" in out and "content" in out


def test_a_cache_on_duckdb_is_one_line(tmp_path, capsys):
    database = f"duckdb:{tmp_path / 'r.duckdb'}"
    args = ["-q", "run", "nightly", "--database", database, "--cache", "redis://h:6379/0"]
    assert main(args) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "--cache needs a PostgreSQL database" in err
