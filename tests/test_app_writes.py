"""Rows the app's own roles may write never stop or poison a nightly run (PostgreSQL).

For every table and column that `authenticated` (a signed-in user, under Row Level
Security) and `service_role` (the app's backend) may insert, update or delete under the
constraints, a property test writes hostile-but-allowed rows: ids of nothing, of deleted
rows and of the wrong type, extreme lengths, odd enum and type combinations, odd settings.
A write the database refuses is not allowed, so it is skipped. Then the nightly runs and:
it publishes; every row it reads is used or quarantined (used + quarantined = read, per
table, and the job counts what validation counted); no output row names an id that the
catalogue lacks. The reported cases are examples of their own, always run.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_fixtures import (
    PG_ADMIN_URL,
    RUN_DATE,
    fresh_pg,
    generate,
    latest_job,
    params,
    query,
)

from flows.nightly import run_nightly
from flows.stages.extract import extract_inputs
from flows.stages.validate import FIELDS, validate_inputs
from flows.storage.backends import open_storage
from flows.storage.database import parse_database
from transforms.columns import ENTITY_TYPES, EVENT_TYPES, PLAY_ACTIONS

pytestmark = pytest.mark.postgres
INT64 = [0, -5, -(2**63), 2**63 - 1, 999_999, 2_000_000_000]
LONG = ["x" * 10_000, "é" * 100_000, "t" * 1_000_000, "Evil\x1b]0;PWNED\x07", "Art\x1b[2J", ""]
TEXTS = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(LONG))
NOON = datetime.combine(RUN_DATE, time(12), tzinfo=UTC)

#: Counts of output rows naming an id the catalogue lacks.
CATALOGUE = """WITH catalogue AS (
    SELECT 'record' AS kind, id FROM records UNION ALL SELECT 'track', id FROM tracks
    UNION ALL SELECT 'store', id FROM stores)"""
DANGLING = {
    "content_similarity": f"""{CATALOGUE}
        SELECT count(*) FROM content_similarity AS s
         WHERE NOT EXISTS (SELECT 1 FROM catalogue c
                            WHERE c.kind = s.source_type AND c.id = s.source_id)
            OR NOT EXISTS (SELECT 1 FROM catalogue c
                            WHERE c.kind = s.target_type AND c.id = s.target_id)""",
    "recommendation_data": f"""{CATALOGUE}
        SELECT count(*) FROM recommendation_data AS d
         WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id)
            OR (d.item_type IN ('record', 'track', 'store') AND NOT EXISTS
                (SELECT 1 FROM catalogue c WHERE c.kind = d.item_type AND c.id = d.item_id))""",
    "daily_metrics": f"""{CATALOGUE}
        SELECT count(*) FROM daily_metrics AS m
         WHERE m.entity_type IN ('record', 'track', 'store') AND NOT EXISTS
               (SELECT 1 FROM catalogue c
                 WHERE c.kind = m.entity_type AND c.id::text = m.entity_id)""",
}  # fmt: skip


@pytest.fixture(scope="module")
def template(postgres_server):
    """Yield (database name, catalogue ids) of a generated database to copy for each example."""
    with fresh_pg("rotation_appwrites") as db:
        generate(db)
        with psycopg.connect(db.url, autocommit=True) as conn:
            ids = {
                table: [r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY id")]
                for table in ("users", "records", "tracks", "stores")
            }
        yield db.url.rsplit("/", 1)[1], ids


@contextmanager
def copy_of(template_name: str):
    """Yield a new database copied from the template, dropped afterwards."""
    name = f"rotation_appwrite_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    try:
        yield parse_database(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def some_id(ids: list[int]):
    """Return a known id, or one of nothing (negative, huge, unknown)."""
    return st.one_of(st.sampled_from(ids[:50]), st.sampled_from(INT64))


def hours_ago():
    """Return an instant inside the run's last six days."""
    return st.integers(0, 6 * 24).map(lambda h: NOON - timedelta(hours=h))


@st.composite
def favourite(draw, ids):
    """A signed-in user's favourite: of any type, of a known id or of nothing."""
    user, kind = (
        draw(st.sampled_from(ids["users"][:40])),
        draw(st.sampled_from(["record", "track", "store"])),
    )
    item = draw(some_id(ids[f"{kind}s"]))
    sql = "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) VALUES (%s, %s, %s)"
    return "authenticated", user, sql, (user, kind, item)


@st.composite
def collection(draw, ids):
    """A signed-in user's collection (any name), then maybe an item of it with any notes."""
    user = draw(st.sampled_from(ids["users"][:40]))
    if draw(st.booleans()):
        sql = (
            "INSERT INTO user_collections (user_id, name, description) "
            "VALUES (%s, coalesce(%s, 'c'), %s)"
        )
        return "authenticated", user, sql, (user, draw(TEXTS), draw(TEXTS))
    sql = (
        "INSERT INTO user_collection_items (collection_id, record_id, notes) "
        "SELECT id, %s, %s FROM user_collections WHERE user_id = %s LIMIT 1"
    )
    return (
        "authenticated",
        user,
        sql,
        (draw(st.sampled_from(ids["records"][:80])), draw(TEXTS), user),
    )


@st.composite
def follow(draw, ids):
    """A signed-in user follows a store."""
    user, store = draw(st.sampled_from(ids["users"][:40])), draw(st.sampled_from(ids["stores"]))
    return (
        "authenticated",
        user,
        "INSERT INTO user_follows (user_id, store_id) VALUES (%s, %s)",
        (user, store),
    )


@st.composite
def event(draw, ids):
    """A usage event from the backend: any type, entity and id, any session text."""
    values = (
        draw(st.one_of(st.none(), st.sampled_from(ids["users"][:40]))),
        draw(st.one_of(st.sampled_from(EVENT_TYPES), TEXTS)),
        draw(st.one_of(st.sampled_from(ENTITY_TYPES), TEXTS)),
        draw(st.one_of(st.none(), some_id(ids["records"]), some_id(ids["tracks"]))),
        draw(TEXTS),
        draw(hours_ago()),
    )
    sql = (
        "INSERT INTO usage_metrics (user_id, event_type, entity_type, entity_id, session_id, "
        "occurred_at) VALUES (%s, coalesce(%s, 'page_view'), %s, %s, %s, %s)"
    )
    return "service_role", None, sql, values


@st.composite
def play(draw, ids):
    """A play from the backend: known user and track (foreign keys), any texts."""
    values = (
        draw(st.sampled_from(ids["users"][:40])),
        draw(st.sampled_from(ids["tracks"][:200])),
        draw(st.sampled_from(PLAY_ACTIONS)),
        draw(TEXTS),
        draw(TEXTS),
        draw(TEXTS),
        draw(hours_ago()),
    )
    sql = (
        "INSERT INTO play_history (user_id, track_id, action, session_id, device_type, source, "
        "played_at, completion_percentage) VALUES (%s, %s, %s, %s, %s, %s, %s, 100)"
    )
    return "service_role", None, sql, values


@st.composite
def catalogue_change(draw, ids):
    """The backend edits a record (any title, artist, genres) or deletes a catalogue row."""
    if draw(st.booleans()):
        sql = (
            "UPDATE records SET title = coalesce(%s, title), artist = coalesce(%s, artist), "
            "genres = %s WHERE id = %s"
        )
        genres = draw(st.lists(TEXTS, max_size=4))
        return (
            "service_role",
            None,
            sql,
            (draw(TEXTS), draw(TEXTS), genres, draw(st.sampled_from(ids["records"][:80]))),
        )
    table = draw(st.sampled_from(["records", "tracks", "stores", "users"]))
    return (
        "service_role",
        None,
        f"DELETE FROM {table} WHERE id = %s",
        (draw(st.sampled_from(ids[table][:30])),),
    )


def setting():
    """The backend stores any JSON as the platform's start date."""
    values = st.sampled_from(["123", "{}", "[]", '"not a date"', '"2199-01-01"', "null"])
    sql = (
        "INSERT INTO settings (key, value) VALUES ('platform.start_date', %s::jsonb) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    return values.map(lambda v: ("service_role", None, sql, (v,)))


def writes(ids: dict[str, list[int]]):
    """Return a strategy of (role, user, sql, params): one write the app's roles may try."""
    return st.one_of(
        favourite(ids), collection(ids), follow(ids), event(ids), play(ids),
        catalogue_change(ids), setting(),
    )  # fmt: skip


def apply(db, operations) -> int:
    """Run each write as its role (a refused one is skipped); return how many the database took."""
    done = 0
    with psycopg.connect(db.url, autocommit=True) as conn:
        for role, user, sql, values in operations:
            try:
                with conn.transaction():
                    conn.execute(f"SET LOCAL ROLE {role}")
                    if user is not None:
                        conn.execute(
                            "SELECT set_config('request.jwt.claim.sub', %s, true)", (str(user),)
                        )
                    conn.execute(sql, values)
                done += 1
            except psycopg.Error:
                continue  # not an allowed write: the database refused it
    return done


def check_run(db) -> None:
    """Run the nightly; check it published, accounted for every row, named known ids only."""
    result = run_nightly(db, params(force_publish=True))
    assert result.status == "completed" and result.published, result.summary()
    assert result.dangling == {}  # validation left nothing for the last check to drop
    with open_storage(db) as storage:
        inputs = extract_inputs(storage, RUN_DATE, params().window_days)
    validation = validate_inputs(inputs, datetime.now(UTC))
    for table, field in FIELDS.items():
        read = getattr(inputs, field).height
        used = getattr(validation.inputs, field).height
        assert used + validation.quarantined[table].height == read, table
    assert latest_job(db)["result"]["quarantine"] == validation.counts.to_dicts()
    with psycopg.connect(db.url, autocommit=True) as conn:
        for table, sql in DANGLING.items():
            assert conn.execute(sql).fetchone()[0] == 0, table
        longest = "SELECT max(octet_length(reason::text)), max(octet_length(item_key)) FROM "
        reason, key = conn.execute(longest + "recommendation_data").fetchone()
        assert reason <= 4096 and (key or 0) <= 1024  # a 1 MB title is not copied around


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same examples every run: CI stays deterministic and bounded
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_but_allowed_writes_never_stop_the_run(template, data):
    name, ids = template
    operations = data.draw(st.lists(writes(ids), min_size=5, max_size=25), label="writes")
    with copy_of(name) as db:
        apply(db, operations)
        check_run(db)


#: The reported writes, each with what must show it was caught: a quarantine (table, reason)
#: of the run's job, or a warning line of its job_logs.
REPORTED = {
    "favourite of record 2000000000": (
        [("authenticated", 1, "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) "
          "VALUES (1, 'record', 2000000000)", ())],
        ("favorites", "unknown_item"),
    ),
    "page view of record 999999": (
        [("service_role", None, "INSERT INTO usage_metrics (user_id, event_type, entity_type, "
          "entity_id, occurred_at) VALUES (1, 'page_view', 'record', 999999, %s)", (NOON,))],
        ("usage_metrics", "unknown_entity"),
    ),
    "a favourited record deleted": (
        [("service_role", None, "DELETE FROM records WHERE id IN (SELECT favoritable_id "
          "FROM favorites WHERE favoritable_type = 'record' LIMIT 1)", ())],
        ("favorites", "unknown_item"),
    ),
    "favourite of track -5": (
        [("authenticated", 2, "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) "
          "VALUES (2, 'track', -5)", ())],
        ("favorites", "unknown_item"),
    ),
    "a 9,600-character device_type": (
        [("service_role", None, "INSERT INTO play_history (user_id, track_id, action, played_at, "
          "device_type) SELECT 1, min(id), 'play', %s, repeat('d', 9600) FROM tracks", (NOON,))],
        ("play_history", "text_too_long"),
    ),
    "a 1 MB record title": (
        [("service_role", None, "UPDATE records SET title = repeat('t', 1000000), "
          "artist = repeat('a', 100000) WHERE id IN (SELECT min(id) FROM records)", ())],
        "records: 1 row(s) had a text over 300 characters",
    ),
    "a non-text platform.start_date": (
        [("service_role", None, "INSERT INTO settings (key, value) VALUES "
          "('platform.start_date', '{}'::jsonb)", ())],
        "settings platform.start_date is {}, not a YYYY-MM-DD date in the past",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REPORTED))
def test_the_reported_writes_never_stop_the_run(template, case):
    operations, caught = REPORTED[case]
    with copy_of(template[0]) as db:
        assert apply(db, operations) == len(operations)
        check_run(db)
        job = latest_job(db)
        if isinstance(caught, tuple):
            reasons = {(q["table"], q["reason"]) for q in job["result"]["quarantine"]}
            assert caught in reasons
        else:
            logs = query(db, "SELECT message FROM job_logs WHERE job_id = %s", (job["id"],))
            assert any(caught in message for message in logs["message"])
