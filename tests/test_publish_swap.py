"""Whole-table publishing by swapping in a fresh table (migration 0012, PostgresStorage.publish).

Run as a login that holds rotation_pipeline (owns nothing, RLS applies), as in production.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg
import pytest

import flows.storage.postgres as pg_storage
import flows.storage.swap_build as swap_build
from flows.storage.base import FrameParts, Replacement
from flows.storage.database import Database, parse_database
from flows.storage.errors import StorageError
from flows.storage.postgres import PostgresStorage

pytestmark = pytest.mark.postgres

SWAPPED = ("content_similarity", "recommendation_data")
NOW = datetime(2026, 11, 25, 3, tzinfo=UTC)
# What the migrations made of the two tables: names, definitions, policies, grants, flags.
CATALOGUE = """
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1)
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE conrelid::regclass::text = ANY($1)
UNION ALL
SELECT 'policy', tablename || '.' || policyname,
       concat_ws(' ', permissive, roles::text, cmd, qual, with_check)
  FROM pg_policies WHERE tablename = ANY($1)
UNION ALL
SELECT 'relation', relname,
       concat_ws(' ', relkind, relowner::regrole, relacl::text, relrowsecurity,
                 relforcerowsecurity, reloptions::text, relpersistence)
  FROM pg_class WHERE relname = ANY($1) OR relname IN (SELECT unnest($1) || '_id_seq')
UNION ALL
SELECT 'column', attrelid::regclass::text || '.' || attname,
       concat_ws(' ', format_type(atttypid, atttypmod), attnotnull, attidentity,
                 pg_get_expr(d.adbin, d.adrelid), attacl::text)
  FROM pg_attribute AS a
  LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE attrelid::regclass::text = ANY($1) AND attnum > 0 AND NOT attisdropped
UNION ALL
SELECT 'leftover', relname, '' FROM pg_class
 WHERE relname LIKE ANY (SELECT unnest($1) || '\\_%' ) AND relname !~ '_(pkey|key|id_seq)$'
ORDER BY 1, 2
"""


def _similarity(n: int, version: str) -> pl.DataFrame:
    """Return n content_similarity rows sorted by the lookup key, scores varying with version."""
    offset = 0.5 if version == "b" else 0.0
    return pl.DataFrame(
        {
            "source_type": ["record"] * n,
            "source_id": [10 + i // 5 for i in range(n)],
            "target_type": ["record"] * n,
            "target_id": [1000 + i for i in range(n)],
            "similarity_type": ["hybrid"] * n,
            "score": [1.0 / (1 + i % 5) + offset for i in range(n)],
            "rank": [1 + i % 5 for i in range(n)],
            "model_version": [f"test-{version}"] * n,
            "run_id": [f"run-{version}"] * n,
            "computed_at": [NOW] * n,
            "expires_at": [NOW + timedelta(days=3650)] * n,
        }
    )


def _recommendations(n: int, version: str) -> pl.DataFrame:
    """Return n recommendation_data rows sorted by (user_id, list_name, rank)."""
    return pl.DataFrame(
        {
            "user_id": [1 + i // 10 for i in range(n)],
            "data_type": ["recommendation"] * n,
            "list_name": ["records"] * n,
            "item_type": ["record"] * n,
            "item_id": [(7 if version == "b" else 3) * i for i in range(n)],
            "score": [1.0 - (i % 10) / 10 for i in range(n)],
            "confidence": [0.5] * n,
            "rank": [1 + i % 10 for i in range(n)],
            "reason": [f'{{"kind": "similar", "seed": {i}}}' for i in range(n)],
            "model_version": [f"test-{version}"] * n,
            "run_id": [f"run-{version}"] * n,
            "expires_at": [NOW + timedelta(days=3650)] * n,
        }
    )


def _replacements(version: str, n: int = 400) -> list[Replacement]:
    return [
        Replacement.whole("content_similarity", _similarity(n, version)),
        Replacement.whole("recommendation_data", _recommendations(n, version)),
    ]


@pytest.fixture
def as_pipeline(migrated_pg: Database):
    """Yield (admin db, the same db as a login holding rotation_pipeline); roles are
    cluster-wide, so the login is dropped afterwards."""
    login = f"rotation_swap_login_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(migrated_pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {login} LOGIN INHERIT IN ROLE rotation_pipeline")
    try:
        yield migrated_pg, parse_database(migrated_pg.url.replace("//root@", f"//{login}@", 1))
    finally:
        with psycopg.connect(migrated_pg.url, autocommit=True) as conn:
            # wait for each backend to end: until it has, its temporary tables still
            # belong to the login, and DROP ROLE refuses
            conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = %s",
                (login,),
            )
            conn.execute(f"DROP ROLE IF EXISTS {login}")


def _admin(db: Database) -> psycopg.Connection:
    return psycopg.connect(db.url, autocommit=True, connect_timeout=10)


def _catalogue(db: Database) -> list[tuple]:
    with _admin(db) as conn:
        return psycopg.RawCursor(conn).execute(CATALOGUE, (list(SWAPPED),)).fetchall()


def _rows(db: Database, table: str, columns: list[str]) -> list[tuple]:
    """Return the table's `columns` (jsonb as text) in id order: the order they were loaded in."""
    select = ", ".join(f"{c}::text" if c == "reason" else c for c in columns)
    with _admin(db) as conn:
        return conn.execute(f"SELECT {select} FROM {table} ORDER BY id").fetchall()


def _sizes(db: Database) -> dict[str, int]:
    with _admin(db) as conn:
        return {
            t: conn.execute("SELECT pg_total_relation_size(%s::regclass)", (t,)).fetchone()[0]
            for t in SWAPPED
        }


def _publish(db: Database, version: str, **kwargs) -> dict[str, int]:
    with PostgresStorage(db) as storage:
        return storage.publish(_replacements(version, **kwargs))


def _assert_holds(db: Database, version: str, n: int = 400) -> None:
    for rep in _replacements(version, n):
        assert _rows(db, rep.table, rep.frame.columns) == list(rep.frame.iter_rows()), rep.table


def test_two_publishes_keep_the_catalogue_and_leave_no_bloat(as_pipeline):
    admin, pipeline = as_pipeline
    before = _catalogue(admin)
    assert _publish(pipeline, "a") == {"content_similarity": 400, "recommendation_data": 400}
    _assert_holds(admin, "a")
    first = _sizes(admin)
    _publish(pipeline, "b")
    _assert_holds(admin, "b")
    assert _catalogue(admin) == before  # indexes, keys, policies, grants, RLS, owner, no _next
    assert _sizes(admin) == first  # a fresh table each time: no dead rows, no index bloat
    with _admin(admin) as conn:
        ids = conn.execute("SELECT min(id) FROM recommendation_data").fetchone()[0]
        assert ids == 401  # the ids go on from the previous table's sequence
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner <> "
            "(SELECT relowner FROM pg_class WHERE relname = 'users')"
            " AND relnamespace = 'public'::regnamespace"
        ).fetchone()[0]
        assert owned == 0  # the login owns nothing it created
        plan = conn.execute(
            "EXPLAIN SELECT * FROM recommendation_data WHERE user_id = 3 "
            "AND list_name = 'records' ORDER BY rank LIMIT 20"
        ).fetchall()
    assert "idx_recommendation_data_lookup" in " ".join(r[0] for r in plan)


def test_a_publish_failing_after_the_swap_keeps_the_previous_table(as_pipeline, monkeypatch):
    admin, pipeline = as_pipeline
    _publish(pipeline, "a")
    before = _catalogue(admin)
    with _admin(admin) as conn:
        oids = conn.execute("SELECT 'content_similarity'::regclass::oid").fetchone()
    real_apply = pg_storage._apply
    swapped: list[int] = []

    def apply_then_fail(conn, replacements, built, job_id=None):
        real_apply(conn, replacements, built, job_id)
        swapped.append(conn.execute("SELECT count(*) FROM recommendation_data").fetchone()[0])
        raise RuntimeError("injected failure after the swap")

    monkeypatch.setattr(pg_storage, "_apply", apply_then_fail)
    with pytest.raises(StorageError, match="injected failure after the swap"):
        _publish(pipeline, "b", n=100)
    assert swapped == [100]  # the swap had happened inside the transaction
    _assert_holds(admin, "a")
    assert _catalogue(admin) == before
    with _admin(admin) as conn:
        assert conn.execute("SELECT 'content_similarity'::regclass::oid").fetchone() == oids


def test_a_build_failing_on_one_table_discards_the_other_built_table(as_pipeline, monkeypatch):
    """The tables are built at once on separate connections and committed before the swap:
    when one build fails, the other's finished <table>_next is dropped (publish_discard)."""
    import flows.storage.bulk

    admin, pipeline = as_pipeline
    _publish(pipeline, "a")
    before = _catalogue(admin)
    real_copy = flows.storage.bulk.copy_frame
    loaded: list[str] = []

    def failing_copy(conn, name, frame, *args, **kwargs):
        if name == "recommendation_data_next":
            raise RuntimeError("injected failure while building")
        loaded.append(name)
        return real_copy(conn, name, frame, *args, **kwargs)

    monkeypatch.setattr(flows.storage.bulk, "copy_frame", failing_copy)
    with pytest.raises(StorageError, match="injected failure while building"):
        _publish(pipeline, "b", n=100)
    assert loaded == ["content_similarity_next"]  # built, committed, then discarded
    _assert_holds(admin, "a")
    assert _catalogue(admin) == before  # no <table>_next left behind
    monkeypatch.undo()
    assert _publish(pipeline, "c") == {"content_similarity": 400, "recommendation_data": 400}
    _assert_holds(admin, "c")


@pytest.mark.parametrize("at_once", [True, False], ids=["at-once", "one-at-a-time"])
def test_indexes_built_at_once_or_one_at_a_time_give_the_same_tables(
    as_pipeline, monkeypatch, at_once
):
    """The last table to finish loading builds its indexes on several connections, the
    others one at a time: either way the swapped-in tables match what the migrations made."""
    admin, pipeline = as_pipeline
    before = _catalogue(admin)
    monkeypatch.setattr(swap_build.LoadsInFlight, "finish_one", lambda self: at_once)
    built: list[str] = []
    real_build = swap_build._build_index
    monkeypatch.setattr(
        swap_build, "_build_index", lambda c, t, i: (built.append(i), real_build(c, t, i))
    )
    _publish(pipeline, "a")
    _publish(pipeline, "b")
    _assert_holds(admin, "b")
    assert _catalogue(admin) == before  # keys, indexes and column defaults as migrated
    assert len(built) == (14 if at_once else 0)  # 4 + 3 indexes, two publishes


@pytest.mark.parametrize("at_once", [True, False], ids=["at-once", "one-at-a-time"])
def test_index_builds_run_without_parallel_workers(as_pipeline, monkeypatch, at_once):
    """Workers would take the cores from the other table's COPY, which runs beside the
    builds of the table loaded first, and from the last table's builds run at once."""
    _, pipeline = as_pipeline
    monkeypatch.setattr(swap_build.LoadsInFlight, "finish_one", lambda self: at_once)
    names: list[str] = []  # the build statements run
    settings: list[str] = []  # the setting each ran with
    real_load_query = swap_build.load_query

    def load_query(name: str) -> str:
        if name.startswith("publish/build"):
            names.append(name)
        return real_load_query(name)

    builds = {real_load_query("publish/build"), real_load_query("publish/build_index")}
    real_connect = PostgresStorage._psycopg_connect

    def connect(self):
        conn = real_connect(self)
        real_execute = conn.execute

        def execute(query, *args, **kwargs):
            if query in builds:  # the setting the build will run with
                (setting,) = real_execute("SHOW max_parallel_maintenance_workers").fetchone()
                settings.append(setting)
            return real_execute(query, *args, **kwargs)

        conn.execute = execute
        return conn

    monkeypatch.setattr(swap_build, "load_query", load_query)
    monkeypatch.setattr(PostgresStorage, "_psycopg_connect", connect)
    _publish(pipeline, "a")
    assert len(names) == (9 if at_once else 2)  # 4 + 3 at once and 2 finishing builds
    assert settings == ["0"] * len(names)


def test_the_constant_columns_are_filled_by_defaults_then_restored(as_pipeline, monkeypatch):
    """Columns holding one value in every row leave the COPY: the server fills them by a
    default of t_next, which gets the live table's defaults back before the swap."""
    import flows.storage.bulk

    admin, pipeline = as_pipeline
    sent: dict[str, list[str]] = {}
    real_copy = flows.storage.bulk.copy_frame

    def recording_copy(conn, name, frame, *args, **kwargs):
        sent[name] = frame.columns
        return real_copy(conn, name, frame, *args, **kwargs)

    monkeypatch.setattr(flows.storage.bulk, "copy_frame", recording_copy)
    before = _catalogue(admin)
    _publish(pipeline, "a")
    _assert_holds(admin, "a")  # model_version, run_id, expires_at... as the frames had them
    assert _catalogue(admin) == before  # created_at DEFAULT now() back, no other default
    assert sent == {  # floats always go by COPY (their text form is not read back exactly)
        "content_similarity_next": ["source_id", "target_id", "score", "rank", "id"],  # no types
        "recommendation_data_next": [
            "user_id",
            "item_id",
            "score",
            "confidence",
            "rank",
            "reason",
            "id",
        ],
    }


def _sequence(db: Database, table: str) -> tuple[int, bool]:
    """Return (last_value, is_called) of the table's id sequence."""
    with _admin(db) as conn:
        return conn.execute(f"SELECT last_value, is_called FROM {table}_id_seq").fetchone()


def test_the_ids_sent_are_those_nextval_would_give_in_copy_order(as_pipeline):
    """publish_reserve_ids hands out one block: ids go on from the previous table's, one per
    row in the frame's order, and the sequence is left at the last (as 400 nextval calls)."""
    admin, pipeline = as_pipeline
    _publish(pipeline, "a")
    assert _sequence(admin, "recommendation_data") == (400, True)
    _publish(pipeline, "b", n=300)
    for table, frame in [(r.table, r.frame) for r in _replacements("b", n=300)]:
        with _admin(admin) as conn:
            ids = [r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY id")]
        assert ids == list(range(401, 701)), table
        assert _rows(admin, table, frame.columns) == list(frame.iter_rows())  # id order = frame's
        assert _sequence(admin, table) == (700, True)
    with _admin(admin) as conn:  # the next id drawn after a publish follows the block
        conn.execute("BEGIN")
        (drawn,) = conn.execute("SELECT nextval('recommendation_data_id_seq')").fetchone()
        conn.execute("ROLLBACK")
    assert drawn == 701


def test_publish_reserve_ids_skips_sent_columns_and_empty_loads(as_pipeline):
    _, pipeline = as_pipeline
    with _admin(pipeline) as conn, conn.transaction():
        conn.execute("SELECT publish_prepare('recommendation_data')")
        reserve = "SELECT * FROM publish_reserve_ids('recommendation_data', %s, %s)"
        assert conn.execute(reserve, (5, ["id", "user_id"])).fetchall() == []  # id is sent
        assert conn.execute(reserve, (0, [])).fetchall() == []  # no row, no nextval
        assert conn.execute(reserve, (5, ["user_id"])).fetchall() == [("id", 1, 1)]
        assert conn.execute(reserve, (2, ["user_id"])).fetchall() == [("id", 6, 1)]
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="0 or more, not -1"):
            conn.execute(reserve, (-1, []))


def test_publish_reserve_ids_refuses_a_block_past_the_sequence_end(as_pipeline):
    """As nextval refuses the id past MAXVALUE, the block that would pass it is refused."""
    admin, pipeline = as_pipeline
    with _admin(admin) as conn:
        conn.execute("ALTER SEQUENCE recommendation_data_id_seq MAXVALUE 450")
    _publish(pipeline, "a")  # ids 1..400
    with pytest.raises(StorageError, match="400 ids from 401 would pass the end"):
        _publish(pipeline, "b")
    _assert_holds(admin, "a")  # the previous tables stay
    assert _sequence(admin, "recommendation_data") == (400, True)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("[]", "must be a JSON object"),
        ('{"no_such_column": "1"}', "no_such_column is not a plain column"),
        ('{"id": "1"}', "id is not a plain column"),
        ('{"rank": 1}', "rank is not a plain column of recommendation_data with a text value"),
    ],
)
def test_publish_defaults_refuses_what_it_cannot_set(as_pipeline, values, message):
    _, pipeline = as_pipeline
    with _admin(pipeline) as conn, conn.transaction():
        conn.execute("SELECT publish_prepare('recommendation_data')")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
            conn.execute("SELECT publish_defaults('recommendation_data', %s::jsonb)", (values,))


def test_stale_next_and_old_tables_do_not_break_the_next_publish(as_pipeline):
    admin, pipeline = as_pipeline
    with _admin(admin) as conn:  # as runs that prepared outside a transaction and died
        conn.execute("CREATE TABLE recommendation_data_next (junk int)")
        conn.execute("INSERT INTO recommendation_data_next VALUES (1)")
        conn.execute("SELECT publish_prepare('content_similarity')")
        # and one killed between its COMMIT and the drop of the replaced table
        conn.execute("CREATE TABLE content_similarity_old (LIKE content_similarity)")
    _publish(pipeline, "a")
    _assert_holds(admin, "a")
    assert not [r for r in _catalogue(admin) if r[0] == "leftover"]


def test_the_replaced_tables_are_dropped_after_the_publish_returns(as_pipeline, monkeypatch):
    """The swap's COMMIT ends the publish; the replaced tables go in the background, and
    close() waits for them (a process that exits leaves nothing but what a kill would)."""
    admin, pipeline = as_pipeline
    _publish(pipeline, "a")
    release, drop = threading.Event(), pg_storage._drop_replaced

    def held(conn, swapped):
        release.wait(30)
        drop(conn, swapped)

    monkeypatch.setattr(pg_storage, "_drop_replaced", held)
    storage = PostgresStorage(pipeline)
    try:
        assert storage.publish(_replacements("b")) == {t: 400 for t in SWAPPED}
        _assert_holds(admin, "b")  # committed: readers see the new rows already
        left = {r[1] for r in _catalogue(admin) if r[0] == "leftover"}
        assert {f"{t}_old" for t in SWAPPED} <= left  # not dropped yet (nor their indexes)
    finally:
        release.set()
        storage.close()
    assert not [r for r in _catalogue(admin) if r[0] == "leftover"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT publish_prepare('users')",
        "SELECT publish_prepare(NULL)",
        "SELECT publish_prepare('content_similarity; DROP TABLE users')",
        "SELECT publish_build('daily_metrics')",
        "SELECT publish_defaults('users', '{}')",
        "SELECT publish_build_index('users', 'users_pkey')",
        "SELECT publish_reserve_ids('users', 1, '{}')",
        "SELECT publish_swap('content_similarity', 'jobs')",
        "SELECT publish_swap('record_popularity')",
        "SELECT publish_discard('users')",
    ],
)
def test_the_functions_refuse_other_tables(as_pipeline, sql):
    admin, pipeline = as_pipeline
    with _admin(pipeline) as conn, pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        conn.execute(sql)
    assert "by swapping: only content_similarity, recommendation_data are" in str(err.value)
    with _admin(admin) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() is not None


def test_the_helpers_and_ddl_stay_out_of_reach_of_the_pipeline(as_pipeline):
    _, pipeline = as_pipeline
    with _admin(pipeline) as conn:
        for sql in (
            "SELECT publish_swap_one('content_similarity')",
            "SELECT publish_drop_suffixed(ARRAY['content_similarity'], '')",
            "SELECT publish_copy_access('content_similarity', 'users')",
            "CREATE TABLE content_similarity_next (id int)",
            "DROP TABLE content_similarity",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)


def test_temporary_tables_cannot_stand_in_for_the_catalogue(as_pipeline):
    _, pipeline = as_pipeline
    owners = (
        "SELECT relname, relowner::regrole::text FROM pg_catalog.pg_class "
        "WHERE relname LIKE 'content\\_similarity%' AND relkind = 'r' ORDER BY 1"
    )
    with _admin(pipeline) as conn:
        conn.execute(  # a pg_class claiming the pipeline owns the table
            "CREATE TEMPORARY TABLE pg_class AS SELECT * FROM pg_catalog.pg_class "
            "WHERE relname = 'content_similarity'"
        )
        conn.execute("UPDATE pg_temp.pg_class SET relowner = current_user::regrole")
        conn.execute("BEGIN")
        conn.execute("SELECT publish_prepare('content_similarity')")
        (live, owner), (_, next_owner) = conn.execute(owners).fetchall()
        (login,) = conn.execute("SELECT current_user").fetchone()
        conn.execute("ROLLBACK")
    assert live == "content_similarity" and next_owner == owner != login


def test_nothing_depends_on_the_swapped_tables(migrated_pg):
    """A view, a foreign key to them, a function of their row type, a trigger or a
    publication would follow the dropped table (or block its DROP)."""
    with _admin(migrated_pg) as conn:
        for table in SWAPPED:
            dependents = conn.execute(
                """
                SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
                  FROM pg_depend AS d
                 WHERE d.deptype = 'n'
                   AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = %s::regclass)
                        OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = %s::regtype))
                   AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (
                            SELECT oid FROM pg_constraint WHERE conrelid = %s::regclass
                                                            AND contype <> 'f'))
                """,
                (table, table, table),
            ).fetchall()
            triggers = conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass", (table,)
            ).fetchall()
            assert dependents == [] and triggers == [], table
            assert conn.execute("SELECT publish_dependents(%s)", (table,)).fetchone()[0] == []


def test_a_dependent_view_is_refused_before_anything_changes(as_pipeline):
    admin, pipeline = as_pipeline
    _publish(pipeline, "a")
    with _admin(admin) as conn:
        conn.execute("CREATE VIEW similar_view AS SELECT source_id FROM content_similarity")
    with pytest.raises(StorageError, match="view similar_view would follow the old table"):
        _publish(pipeline, "b")
    _assert_holds(admin, "a")


def _lock_waiters(db: Database, table: str) -> int:
    with _admin(db) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
            (table,),
        ).fetchone()[0]


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_long_reader_delays_the_swap_without_blocking_other_readers(as_pipeline):
    admin, pipeline = as_pipeline
    _publish(pipeline, "a")
    errors: list[str] = []
    outcome: list[object] = []
    with _admin(admin) as long_reader, _admin(admin) as reader:
        reader.execute("SET lock_timeout = '100ms'")
        long_reader.execute("BEGIN")
        long_reader.execute("SELECT count(*) FROM recommendation_data")  # holds its lock
        publisher = threading.Thread(target=lambda: outcome.append(_publish(pipeline, "b")))
        publisher.start()
        _wait_for(lambda: _lock_waiters(admin, "recommendation_data") > 0)
        for _ in range(40):  # 1 s of short reads while the swap keeps trying
            try:
                reader.execute("SELECT count(*) FROM recommendation_data WHERE user_id = 1")
                reader.execute("SELECT count(*) FROM content_similarity WHERE source_id = 10")
            except psycopg.Error as exc:
                errors.append(str(exc))
            time.sleep(0.025)
        assert publisher.is_alive()  # still waiting for the long reader
        long_reader.execute("COMMIT")
        publisher.join(timeout=60)
    assert errors == []
    assert outcome == [{"content_similarity": 400, "recommendation_data": 400}]
    _assert_holds(admin, "b")


def test_a_reader_that_waited_on_the_swap_finds_the_new_rows(as_pipeline):
    """Its snapshot predates the COMMIT (the lock wait happens inside a STABLE function):
    rows loaded without FREEZE would be invisible to it, and the table would look empty."""
    admin, pipeline = as_pipeline
    _publish(pipeline, "a")
    found: list[list] = []
    with (
        psycopg.connect(pipeline.url, autocommit=True, cursor_factory=psycopg.RawCursor) as conn,
        _admin(admin) as reader,
    ):
        reader.execute("SET ROLE service_role")
        replacements = _replacements("b")
        storage = PostgresStorage(pipeline)
        swap_build.build_all_next(
            storage._psycopg_connect, {r.table: r.frame for r in replacements}
        )
        with conn.transaction():
            pg_storage._apply(conn, replacements, {r.table for r in replacements})
            lookup = threading.Thread(
                target=lambda: found.append(
                    reader.execute(
                        "SELECT target_id, score FROM get_similar('record', 10, 'hybrid')"
                    ).fetchall()
                )
            )
            lookup.start()
            _wait_for(lambda: _lock_waiters(admin, "content_similarity") > 0)
        lookup.join(timeout=10)
    expected = _similarity(400, "b").filter(pl.col("source_id") == 10)
    assert found == [list(zip(expected["target_id"], expected["score"], strict=True))]


POLICIES = """
    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
           array(SELECT p.polname || ':' || p.polcmd::text || ':' || p.polroles::regrole[]::text
                   FROM pg_policy AS p WHERE p.polrelid = c.oid ORDER BY p.polname)
      FROM pg_class AS c WHERE c.relname = ANY(%s) ORDER BY c.relname
"""


def test_a_built_next_table_has_the_live_tables_security_before_the_swap(as_pipeline):
    """Once loaded (committed), t_next is open to any session: it must already deny what t
    denies, whatever grant comes later."""
    admin, pipeline = as_pipeline
    migrated = _live_security(admin)
    _publish(pipeline, "a")
    storage = PostgresStorage(pipeline)
    swap_build.build_all_next(
        storage._psycopg_connect, {r.table: r.frame for r in _replacements("b")}
    )
    with _admin(admin) as conn:
        for table in SWAPPED:
            live, nxt = conn.execute(POLICIES, ([table, f"{table}_next"],)).fetchall()
            assert live[0] == table and nxt[0] == f"{table}_next"
            assert nxt[1:] == live[1:] and live[1] and live[3]  # RLS on, same policies
            conn.execute(f"GRANT SELECT ON {table}_next TO authenticated")  # the later grant
            conn.execute("SET ROLE authenticated")
            assert conn.execute(f"SELECT count(*) FROM {table}_next").fetchone()[0] == 0
            conn.execute("RESET ROLE")
    _publish(pipeline, "b")  # the swap takes the secured tables in, policies and all
    assert _live_security(admin) == migrated


def _live_security(db: Database) -> list[tuple]:
    """Return the security (RLS flags, policies) of each swapped table, as first migrated."""
    with _admin(db) as conn:
        return conn.execute(POLICIES, (list(SWAPPED),)).fetchall()


def test_rows_in_parts_are_published_as_the_whole_frame(as_pipeline):
    """A table's rows in parts (a sharded run's lists, fetched one shard at a time) make the
    table the whole frame makes: the same rows in the same order, the ids one block. Each
    part's constant columns are its own: a part whose item type varies sends that column,
    one of a single row sends every column. A part is let go before the next is fetched."""
    admin, pipeline = as_pipeline
    whole = _recommendations(400, "a").with_columns(
        pl.when(pl.col("user_id") > 30)
        .then(pl.lit("track"))
        .otherwise("item_type")
        .alias("item_type")
    )
    bounds = [(0, 150), (150, 1), (151, 0), (151, 249)]
    fetched: list[int] = []
    earlier: list[weakref.ref] = []

    def fetch(index: int) -> pl.DataFrame:
        assert all(ref() is None for ref in earlier), "a part held while the next is fetched"
        fetched.append(index)
        part = whole.slice(*bounds[index])
        earlier.append(weakref.ref(part))
        return part

    rows = FrameParts(tuple(length for _, length in bounds), fetch)
    before = _catalogue(admin)
    with PostgresStorage(pipeline) as storage:
        written = storage.publish([Replacement.whole("recommendation_data", rows)])
    assert written == {"recommendation_data": 400} and fetched == [0, 1, 2, 3]
    assert _rows(admin, "recommendation_data", whole.columns) == list(whole.iter_rows())
    with _admin(admin) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM recommendation_data ORDER BY id")]
    assert ids == list(range(1, 401))
    assert _catalogue(admin) == before  # the table's own defaults back, none of a part's
