"""Hostile input: arbitrary play_history and usage_metrics rows never crash the nightly run.

A property test on the DuckDB backend, where no constraint stops a row: nulls, unknown ids,
negative and enormous numbers, NaN and infinities, timestamps from 1900 to 2200, duplicated
events, unknown actions and event types, any unicode (NUL included), huge text, deeply
nested and huge JSON. Malformed JSON text is refused by DuckDB's JSON column itself: such a
value is stored as a JSON string holding the malformed text instead (and counted).

Every row the run reads is either used or quarantined with a counted reason:
used + quarantined = read, per table, and the counts in the job's result, its job_logs and
its validate stage are those counts.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_fixtures import RUN_DATE, generate, latest_job, params, query

from flows.nightly import run_nightly
from flows.stages.extract import day_end, extract_inputs
from flows.stages.validate import validate_inputs
from flows.storage.backends import open_storage
from flows.storage.database import parse_database
from transforms.columns import EVENT_TYPES, PLAY_ACTIONS

INT64 = st.integers(-(2**63), 2**63 - 1)
HUGE_TEXT = ["é" * 100_000, "\u0000" * 1000, "𝄞" * 20_000, "' OR 1=1; DROP TABLE users; --"]
HUGE_JSON = [
    json.dumps({"blob": "x" * 100_000}),
    "[" * 1000 + "]" * 1000,
    json.dumps([{"k": i, "v": "ü" * 50} for i in range(2000)]),
    "NaN",
    "1e999",
    '{"a": 1, "a": 2}',
]
MALFORMED_JSON = ["", "{", "not json", '{"a":', "\u0000", "[1, 2,,]", "{'single': 'quotes'}"]
PLAYED = "played_at"
OCCURRED = "occurred_at"
FIRST_ID = 10_000_000


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Return (path, user ids, track ids) of a generated DuckDB file: the base of each example."""
    path = tmp_path_factory.mktemp("hostile") / "template.duckdb"
    db = parse_database(f"duckdb:{path}")
    generate(db)
    ids = query(db, "SELECT id FROM users ORDER BY id")["id"].to_list()
    tracks = query(db, "SELECT id FROM tracks ORDER BY id LIMIT 200")["id"].to_list()
    return path, ids, tracks


def mostly(valid, hostile):
    """Return `valid` 80 % of the time, else `hostile`: most rows get past some checks, so
    hostile values in the other columns reach the metrics and the models."""
    return st.integers(0, 9).flatmap(lambda n: valid if n < 8 else hostile)


def texts():
    """Return any unicode text, sometimes huge."""
    return st.one_of(st.none(), st.text(max_size=40), st.sampled_from(HUGE_TEXT))


def moments():
    """Return timestamps mostly inside the run's window, else anywhere from 1900 to 2200."""
    end = datetime.combine(RUN_DATE, datetime.min.time())
    window = st.datetimes(min_value=end - timedelta(days=29), max_value=end)
    anywhere = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31))
    return mostly(window, st.one_of(st.none(), anywhere)).map(
        lambda m: m.replace(tzinfo=UTC) if m else None
    )


def ids_from(known: list[int]):
    """Return a known id most of the time, else null or any 64-bit integer."""
    return mostly(st.sampled_from(known), st.one_of(st.none(), INT64))


def jsons():
    """Return JSON text: valid, valid but huge or odd, or malformed."""
    leaves = st.one_of(st.none(), st.booleans(), INT64, st.floats(allow_nan=False), st.text())
    nested = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    ).map(json.dumps)
    return st.one_of(st.none(), nested, st.sampled_from(HUGE_JSON), st.sampled_from(MALFORMED_JSON))


@st.composite
def hostile_rows(draw, users: list[int], tracks: list[int]):
    """Return (play rows, usage rows): arbitrary rows, some duplicated."""
    play = st.fixed_dictionaries(
        {
            "user_id": ids_from(users),
            "track_id": ids_from(tracks),
            "action": mostly(
                st.sampled_from(PLAY_ACTIONS), st.one_of(st.none(), st.text(max_size=12))
            ),
            PLAYED: moments(),
            "duration_played_ms": mostly(st.integers(0, 400_000), st.one_of(st.none(), INT64)),
            "completion_percentage": mostly(st.floats(0, 100), st.one_of(st.none(), st.floats())),
            "session_id": texts(),
            "device_type": texts(),
            "source": texts(),
        }
    )
    usage = st.fixed_dictionaries(
        {
            "user_id": ids_from(users),
            "session_id": texts(),
            "event_type": mostly(st.sampled_from(EVENT_TYPES), texts()),
            "entity_type": texts(),
            "entity_id": st.one_of(st.none(), INT64),
            "properties": jsons(),
            OCCURRED: moments(),
        }
    )
    plays = draw(st.lists(play, min_size=5, max_size=60))
    events = draw(st.lists(usage, min_size=5, max_size=60))
    for rows in (plays, events):
        if rows:
            again = draw(st.lists(st.integers(0, len(rows) - 1), max_size=5))
            rows += [dict(rows[i]) for i in again]  # duplicated events: same values, new id
    return plays, events


PLAY_SCHEMA = {
    "id": pl.Int64,
    "user_id": pl.Int64,
    "track_id": pl.Int64,
    "action": pl.Utf8,
    PLAYED: pl.Datetime("us", "UTC"),
    "duration_played_ms": pl.Int64,
    "completion_percentage": pl.Float64,
    "session_id": pl.Utf8,
    "device_type": pl.Utf8,
    "source": pl.Utf8,
}
USAGE_SCHEMA = {
    "id": pl.Int64,
    "user_id": pl.Int64,
    "session_id": pl.Utf8,
    "event_type": pl.Utf8,
    "entity_type": pl.Utf8,
    "entity_id": pl.Int64,
    "properties": pl.Utf8,
    OCCURRED: pl.Datetime("us", "UTC"),
}


def _insert(path: Path, plays: list[dict], events: list[dict]) -> int:
    """Append the rows (ids from FIRST_ID up); return how many malformed JSON texts DuckDB
    refused (each is stored as a JSON string holding the malformed text instead)."""
    refused = 0
    with duckdb.connect(str(path)) as conn:
        for row in events:
            text = row["properties"]
            with conn.cursor() as cur:
                valid = text is None or cur.execute("SELECT json_valid(?)", [text]).fetchall()[0][0]
            if not valid:
                refused += 1
                row["properties"] = json.dumps(text)
        for table, rows, schema in (
            ("play_history", plays, PLAY_SCHEMA),
            ("usage_metrics", events, USAGE_SCHEMA),
        ):
            if not rows:
                continue
            frame = pl.DataFrame(
                [{"id": FIRST_ID + i, **row} for i, row in enumerate(rows)],
                schema=schema,
                orient="row",
            )
            conn.register("hostile", frame.to_arrow())
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM hostile")
            conn.unregister("hostile")
    return refused


def _quarantine_totals(counts: list[dict]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in counts:
        totals[row["table"]] = totals.get(row["table"], 0) + row["rows"]
    return totals


def _check_one_example(template, plays: list[dict], events: list[dict], tried: dict) -> None:
    """Insert the rows into a copy of the template, run the nightly flow, check the counts."""
    path, _, _ = template
    with tempfile.TemporaryDirectory() as directory:
        copy = Path(directory) / "hostile.duckdb"
        shutil.copy(path, copy)
        tried["json_refused"] += _insert(copy, plays, events)
        db = parse_database(f"duckdb:{copy}")
        p = params(window_days=0)  # all history: 1900 onwards is read
        with open_storage(db) as storage:  # what the run will read, judged the same way
            inputs = extract_inputs(storage, p.run_date, p.window_days)
        validation = validate_inputs(inputs, day_end(p.run_date))

        result = run_nightly(db, p)  # must not raise

        job = latest_job(db)
        logged = query(
            db,
            "SELECT details FROM job_logs WHERE job_id = $1 AND stage = 'validate' "
            "AND log_level = 'warning'",
            (job["id"],),
        )["details"].to_list()
    tried["examples"] += 1
    tried["rows"] += len(plays) + len(events)
    for frame in (inputs.plays, inputs.usage):
        tried["read"] += int((frame["id"] >= FIRST_ID).sum())
    for frame in validation.quarantined.values():
        hostile = frame.filter(pl.col("id") >= FIRST_ID)
        tried["quarantined"] += hostile.height
        for reason in hostile["reason"]:
            tried["reasons"][reason] = tried["reasons"].get(reason, 0) + 1

    assert result.status in ("completed", "completed_with_warnings")
    assert job["job_status"] == result.status
    for table, read, used in (
        ("play_history", inputs.plays, validation.inputs.plays),
        ("usage_metrics", inputs.usage, validation.inputs.usage),
    ):
        rejected = validation.quarantined[table]
        # used + quarantined = read, and each row is in exactly one of them
        assert used.height + rejected.height == read.height, table
        assert set(used["id"]).isdisjoint(rejected["id"])
        assert set(used["id"]) | set(rejected["id"]) == set(read["id"])
        assert rejected["reason"].null_count() == 0
    expected = validation.counts.to_dicts()
    assert result.quarantine == expected
    assert job["result"]["quarantine"] == expected
    assert sorted(json.dumps(json.loads(d), sort_keys=True) for d in logged) == sorted(
        json.dumps(row, sort_keys=True) for row in expected
    )
    assert sum(row["rows"] for row in expected) == validation.rejected
    assert job["items_quarantined"] == validation.rejected
    stage = next(s for s in job["result"]["stages"] if s["stage"] == "validate")
    assert stage["rows_in"] == inputs.rows()
    assert stage["rows_in"] - stage["rows_out"] == validation.rejected


def test_hostile_rows_are_used_or_quarantined_never_fatal(template):
    _, users, tracks = template
    tried = dict.fromkeys(("examples", "rows", "read", "quarantined", "json_refused"), 0)
    tried["reasons"] = {}

    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(rows=hostile_rows(users, tracks))
    def check(rows):
        _check_one_example(template, *rows, tried)

    check()

    print(f"\nhostile input tried: {tried}")
    assert tried["examples"] == 15
    assert tried["rows"] > 100  # the property test had teeth: rows of every kind were read
    assert 0 < tried["quarantined"] < tried["read"]
