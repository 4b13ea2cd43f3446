"""The recommendation API's read functions (migration 0008), called as service_role."""

from __future__ import annotations

import json

import psycopg
import pytest
from api_fixtures import (
    add_listing,
    add_recommendation,
    add_record_plays,
    add_similarity,
    insert_catalogue,
)
from pg_helpers import connect

RECS = "SELECT * FROM get_recommendations(%s, %s)"
RECS_LIMIT = "SELECT * FROM get_recommendations(%s, %s, %s)"
OVERALL = {"kind": "fallback", "scope": "overall"}


def _as_service(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("SET ROLE service_role")
    return conn


def _rows(conn: psycopg.Connection, sql: str, params: tuple) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _favorite(conn: psycopg.Connection, user_id: int, record_id: int) -> None:
    conn.execute(
        "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) "
        "VALUES (%s, 'record', %s)",
        (user_id, record_id),
    )


def _popularity(conn: psycopg.Connection) -> None:
    """Plays of the last 30 days: 10 > 20 > 30 > 21 > 11 > 12; 21's old plays do not count."""
    for record_id, plays in ((10, 500), (11, 50), (12, 10), (20, 300), (21, 100), (30, 200)):
        add_record_plays(conn, record_id, plays, days_ago=1)
    add_record_plays(conn, 21, 5000, days_ago=60)
    add_record_plays(conn, 12, 5, days_ago=3)  # summed over the window: 12 has 15


def test_recommendations_in_rank_order(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        for rank, item in ((3, 12), (1, 20), (2, 11)):
            add_recommendation(conn, 1, "records", rank, item_id=item, score=1.0 / rank)
        add_recommendation(conn, 2, "records", 1, item_id=30)
        add_recommendation(conn, 1, "tracks", 1, item_id=100, item_type="track")
        rows = _rows(_as_service(conn), RECS, (1, "records"))
    assert [(r["rank"], r["item_id"]) for r in rows] == [(1, 20), (2, 11), (3, 12)]
    assert all(r["is_fallback"] is False for r in rows)
    assert rows[0]["item_type"] == "record"
    assert rows[0]["model_version"] == "test-v1"
    assert rows[0]["reason"] == {"kind": "model"}
    assert rows[0]["confidence"] == pytest.approx(0.5)
    assert rows[1]["score"] == pytest.approx(0.5)
    assert rows[0]["expires_at"] is not None


def test_expired_rows_are_excluded(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        add_recommendation(conn, 1, "records", 1, item_id=20, expires_in="-1 minute")
        add_recommendation(conn, 1, "records", 2, item_id=21)
        add_recommendation(conn, 2, "records", 1, item_id=20, expires_in="-1 hour")
        add_record_plays(conn, 30, 10)
        svc = _as_service(conn)
        fresh = _rows(svc, RECS, (1, "records"))
        only_expired = _rows(svc, RECS, (2, "records"))
    assert [(r["rank"], r["item_id"], r["is_fallback"]) for r in fresh] == [(2, 21, False)]
    # every row of user 2 expired: the popularity fallback instead
    assert [(r["item_id"], r["is_fallback"]) for r in only_expired] == [(30, True)]


def test_fallback_prefers_the_users_genres(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        _popularity(conn)
        _favorite(conn, 1, 10)
        rows = _rows(_as_service(conn), RECS, (1, "records"))
    # Jazz records first (10 is the user's own, so excluded), then the overall most popular
    assert [r["item_id"] for r in rows] == [11, 12, 20, 30, 21]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(r["is_fallback"] is True for r in rows)
    assert rows[0]["reason"] == {"kind": "fallback", "scope": "genres", "genres": ["Jazz"]}
    assert rows[1]["reason"]["scope"] == "genres"
    assert [r["reason"] for r in rows[2:]] == [OVERALL] * 3
    assert rows[0]["score"] == pytest.approx((1 + 50 / 300) / 2)
    assert rows[2]["score"] == pytest.approx(0.5)
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(r["confidence"] == pytest.approx(0.2) for r in rows)
    assert all(r["item_type"] == "record" and r["model_version"] == "fallback" for r in rows)


def test_fallback_genres_from_plays(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        _popularity(conn)
        conn.execute("INSERT INTO play_history (user_id, track_id, action) VALUES (3, 200, 'play')")
        rows = _rows(_as_service(conn), RECS, (3, "records"))
    assert [r["item_id"] for r in rows] == [21, 10, 30, 11, 12]
    assert rows[0]["reason"] == {"kind": "fallback", "scope": "genres", "genres": ["Rock"]}
    assert [r["reason"] for r in rows[1:]] == [OVERALL] * 4


def test_fallback_overall_without_history(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        _popularity(conn)
        add_record_plays(conn, "not-a-record-id", 10_000)  # ignored, not an error
        add_record_plays(conn, 30, 10_000, days_ago=0)  # today is not a full day yet
        rows = _rows(_as_service(conn), RECS_LIMIT, (2, "records", 4))
        unknown_user = _rows(conn, RECS, (999, "records"))
        tracks = _rows(conn, RECS, (2, "tracks"))
    assert [r["item_id"] for r in rows] == [10, 20, 30, 21]
    assert all(r["is_fallback"] and r["reason"] == OVERALL for r in rows)
    assert rows[0]["score"] == pytest.approx(0.5)
    assert [r["item_id"] for r in unknown_user] == [10, 20, 30, 21, 11, 12]
    assert tracks == []  # no fallback for lists other than records / records_in_stock


def test_in_stock_fallback_is_restricted_to_active_stores(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        _popularity(conn)
        add_listing(conn, 1, 5, 10, "for_sale")
        add_listing(conn, 2, 5, 11, "sold")
        add_listing(conn, 3, 5, 12, "for_sale")
        add_listing(conn, 4, 6, 20, "for_sale")  # inactive store
        add_listing(conn, 5, 5, 30, "reserved")
        _favorite(conn, 1, 10)
        svc = _as_service(conn)
        user1 = _rows(svc, RECS, (1, "records_in_stock"))
        user2 = _rows(svc, RECS, (2, "records_in_stock"))
    assert [(r["item_id"], r["reason"]["scope"]) for r in user1] == [(12, "genres")]
    assert [r["item_id"] for r in user2] == [10, 12]
    assert all(r["is_fallback"] for r in user1 + user2)


@pytest.mark.parametrize(
    ("sql", "params", "named"),
    [
        (RECS, (1, "recordz"), "recordz"),
        (RECS, (1, None), "p_list_name"),
        (RECS_LIMIT, (1, "records", -1), "p_limit"),
        (RECS_LIMIT, (1, "records", None), "p_limit"),
        ("SELECT * FROM get_similar(%s, %s)", ("album", 10), "album"),
        ("SELECT * FROM get_similar(%s, %s, %s)", ("record", 10, "cosine"), "cosine"),
        ("SELECT * FROM get_similar(%s, %s, %s, %s)", ("record", 10, "content", -5), "p_limit"),
        ("SELECT * FROM get_user_preferences(%s)", (None,), "p_user_id"),
    ],
)
def test_bad_arguments_raise_invalid_parameter_value(migrated_pg, sql, params, named):
    with connect(migrated_pg) as conn, pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        _as_service(conn).execute(sql, params)
    assert info.value.sqlstate == "22023"
    assert named in str(info.value)


def test_limit_is_capped_at_100(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        for rank in range(1, 151):
            add_recommendation(conn, 1, "tracks", rank, item_id=rank, item_type="track")
        svc = _as_service(conn)
        default = _rows(svc, RECS, (1, "tracks"))
        seven = _rows(svc, RECS_LIMIT, (1, "tracks", 7))
        huge = _rows(svc, RECS_LIMIT, (1, "tracks", 500))
        none = _rows(svc, RECS_LIMIT, (1, "tracks", 0))
    assert [r["rank"] for r in default] == list(range(1, 21))
    assert [r["rank"] for r in seven] == list(range(1, 8))
    assert [r["rank"] for r in huge] == list(range(1, 101))
    assert none == []


def test_get_similar_rank_order_and_content_fallback(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        add_similarity(conn, 10, 12, "collaborative", 2, score=0.7)
        add_similarity(conn, 10, 11, "collaborative", 1, score=0.9)
        add_similarity(conn, 10, 20, "collaborative", 3, expires_in="-1 hour")
        add_similarity(conn, 10, 30, "content", 1)
        add_similarity(conn, 11, 12, "content", 2, score=0.4)
        add_similarity(conn, 11, 10, "content", 1, score=0.8, expires_in="1 day")
        add_similarity(conn, 11, 20, "content", 3, expires_in="-1 day")
        add_similarity(conn, 11, 21, "collaborative", 1, expires_in="-1 day")
        svc = _as_service(conn)
        collab = _rows(svc, "SELECT * FROM get_similar('record', 10, 'collaborative')", ())
        fallback = _rows(svc, "SELECT * FROM get_similar('record', 11, 'collaborative')", ())
        hybrid = _rows(svc, "SELECT * FROM get_similar('record', 11)", ())
        capped = _rows(svc, "SELECT * FROM get_similar('record', 11, 'hybrid', 1)", ())
        nothing = _rows(svc, "SELECT * FROM get_similar('record', 12)", ())
    assert [(r["rank"], r["target_id"], r["similarity_type"]) for r in collab] == [
        (1, 11, "collaborative"),
        (2, 12, "collaborative"),
    ]
    assert collab[0]["score"] == pytest.approx(0.9)
    assert collab[0]["target_type"] == "record"
    expected = [(1, 10, "content"), (2, 12, "content")]
    assert [(r["rank"], r["target_id"], r["similarity_type"]) for r in fallback] == expected
    assert [(r["rank"], r["target_id"], r["similarity_type"]) for r in hybrid] == expected
    assert [r["target_id"] for r in capped] == [10]
    assert nothing == []


def test_get_user_preferences(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        pref = {"data_type": "preference"}
        add_recommendation(conn, 1, "styles", 1, item_key="Bop", item_type="style", **pref)
        add_recommendation(conn, 1, "genres", 2, item_key="Rock", item_type="genre", **pref)
        add_recommendation(conn, 1, "genres", 1, item_key="Jazz", item_type="genre", **pref)
        add_recommendation(
            conn,
            1,
            "artists",
            1,
            item_key="Artist A",
            item_type="artist",
            expires_in="-1 hour",
            **pref,
        )
        add_recommendation(conn, 2, "genres", 1, item_key="Techno", item_type="genre", **pref)
        add_recommendation(conn, 1, "records", 1, item_id=10)
        rows = _as_service(conn).execute("SELECT * FROM get_user_preferences(1)").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("genres", 1, "Jazz"),
        ("genres", 2, "Rock"),
        ("styles", 1, "Bop"),
    ]
    assert rows[0][3] == pytest.approx(1.0)
    assert rows[0][4] == pytest.approx(0.5)


CALLS = (
    "SELECT * FROM get_recommendations(1, 'records')",
    "SELECT * FROM get_similar('record', 10)",
    "SELECT * FROM get_user_preferences(1)",
)


@pytest.mark.parametrize("role", ["anon", "authenticated", "rotation_pipeline"])
def test_only_service_role_may_execute(migrated_pg, role):
    with connect(migrated_pg) as conn:
        conn.execute(f"SET ROLE {role}")
        for sql in CALLS:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        conn.execute("RESET ROLE")
        conn.execute("SET ROLE service_role")
        for sql in CALLS:
            conn.execute(sql).fetchall()


# Plans: auto_explain logs each statement the functions run, as NOTICEs to this client ---


BULK_SQL = """
INSERT INTO records (id, discogs_release_id, artist, title, genres)
SELECT 1000 + g, 100000 + g, 'Artist ' || g, 'Title ' || g,
       ARRAY[(ARRAY['Jazz', 'Rock', 'Electronic'])[1 + g % 3]]
  FROM generate_series(1, 60) AS g;
INSERT INTO recommendation_data
    (user_id, data_type, list_name, item_type, item_id, score, confidence, rank,
     model_version, expires_at)
SELECT u, 'recommendation', 'records', 'record', 1000 + r, 1.0 / r, 0.5, r, 'v1',
       now() + interval '1 day'
  FROM generate_series(1, 1000) AS u, generate_series(1, 20) AS r;
INSERT INTO content_similarity
    (source_type, source_id, target_type, target_id, similarity_type, score, rank)
SELECT 'record', s, 'record', s + r, 'collaborative', 1.0 / r, r
  FROM generate_series(1, 1000) AS s, generate_series(1, 20) AS r;
INSERT INTO daily_metrics
    (metric_date, metric_type, entity_type, entity_id, metric_name, metric_value)
SELECT (now() AT TIME ZONE 'UTC')::date - d, 'record', 'record', (1000 + g)::text,
       'plays', g + d
  FROM generate_series(1, 60) AS g, generate_series(0, 364) AS d;
"""


def _plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(_plan_nodes(child))
    return nodes


def _logged_nodes(conn: psycopg.Connection, sql: str) -> list[dict]:
    """Return every plan node auto_explain logged while running `sql`."""
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    conn.execute(sql).fetchall()
    nodes: list[dict] = []
    for message in notices:
        if "plan:" in message:
            doc = json.loads(message.split("plan:", 1)[1])
            nodes.extend(_plan_nodes(doc["Plan"]))
    return nodes


def _assert_index_served(nodes: list[dict], relation: str, index: str) -> None:
    """Assert `relation` was read through `index` (plain, index-only or bitmap), never seq."""
    scans = [n["Node Type"] for n in nodes if n.get("Relation Name") == relation]
    assert scans, f"no logged plan reads {relation}"
    assert "Seq Scan" not in scans, f"{relation} is read by a Seq Scan: {scans}"
    used = {n.get("Index Name") for n in nodes if n["Node Type"] in INDEX_NODES}
    assert index in used, f"{index} not used; indexes used: {used}"


INDEX_NODES = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


def test_lookups_are_index_served(migrated_pg):
    with connect(migrated_pg) as conn:
        conn.execute(BULK_SQL)
        conn.execute("VACUUM ANALYZE recommendation_data, content_similarity, daily_metrics")
        conn.execute("ANALYZE records")
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_format = 'json'")
        conn.execute("SET auto_explain.log_level = 'notice'")
        svc = _as_service(conn)
        recs = _logged_nodes(svc, "SELECT * FROM get_recommendations(500, 'records')")
        similar = _logged_nodes(svc, "SELECT * FROM get_similar('record', 500, 'collaborative')")
        prefs = _logged_nodes(svc, "SELECT * FROM get_user_preferences(500)")
        fallback = _logged_nodes(svc, "SELECT * FROM get_recommendations(5000, 'records')")
    assert len(recs) > 1 and all(n.get("Relation Name") != "daily_metrics" for n in recs)
    _assert_index_served(recs, "recommendation_data", "idx_recommendation_data_lookup")
    _assert_index_served(similar, "content_similarity", "idx_content_similarity_lookup")
    _assert_index_served(prefs, "recommendation_data", "idx_recommendation_data_lookup")
    _assert_index_served(fallback, "recommendation_data", "idx_recommendation_data_lookup")
    _assert_index_served(fallback, "daily_metrics", "idx_daily_metrics_record_plays")
