"""`rotation report`: one self-contained HTML file, rendered in headless Chromium."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from pipeline_fixtures import RUN_DATE, execute, generate, params, query

from flows.analyst.charts import nice_ceiling
from flows.analyst.report import ReportData, read_report_data, render_report, write_report
from flows.backfill import run_backfill
from flows.cli import main
from flows.nightly import run_nightly
from flows.storage.database import Database, parse_database

FIRST = RUN_DATE - dt.timedelta(days=29)
CHARTS = ("active-users", "plays", "rates", "rec-plays", "rec-share", "quality")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Database:
    """Return a DuckDB file with 30 days generated (one bad play), backfilled, two nightlies."""
    db = parse_database(f"duckdb:{tmp_path_factory.mktemp('report') / 'report.duckdb'}")
    generate(db)
    execute(  # one play the validation quarantines: the jobs table must count it
        db,
        "INSERT INTO play_history (id, user_id, track_id, action, played_at,"
        " completion_percentage) SELECT max(id) + 1, 1, 1, 'play', $1, 250 FROM play_history",
        (dt.datetime.combine(RUN_DATE - dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC),),
    )
    run_backfill(db, FIRST, RUN_DATE)
    run_nightly(db, params(run_date=RUN_DATE - dt.timedelta(days=1), force_publish=True))
    run_nightly(db, params(force_publish=True))
    return db


@pytest.fixture(scope="module")
def report(analysed, tmp_path_factory) -> Path:
    """Return the report of the whole range, written through the command line."""
    out = tmp_path_factory.mktemp("html") / "report.html"
    args = ["report", "--database", analysed.url, "--from", str(FIRST), "--to", str(RUN_DATE)]
    assert main([*args, "--out", str(out)]) == 0
    return out


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile; return the finished process."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


class Marks(HTMLParser):
    """Collects, per chart figure, its drawn marks: path 'd' lengths and rect heights."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, list]] = {}
        self._current: str | None = None
        self.references: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.references += [attrs[a] for a in ("src", "href") if a in attrs]
        if tag == "figure" and "chart" in (attrs.get("class") or ""):
            self._current = attrs["id"].removeprefix("chart-")
            self.charts[self._current] = {"paths": [], "rects": [], "circles": 0}
        elif self._current and tag == "path":
            self.charts[self._current]["paths"].append(attrs.get("d") or "")
        elif self._current and tag == "rect":
            self.charts[self._current]["rects"].append(float(attrs.get("height") or 0))
        elif self._current and tag == "circle":
            self.charts[self._current]["circles"] += 1

    def handle_endtag(self, tag):
        if tag == "figure":
            self._current = None


def _png(path: Path) -> tuple[int, int, bytes]:
    """Return (width, height, decompressed image data) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_report_is_self_contained(report):
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    for needle in ("<script", "<link", "@import", "url(", "<img", "<iframe"):
        assert needle not in html.lower(), needle
    assert html.count('<figure class="chart"') == len(CHARTS)
    assert f"{FIRST} to {RUN_DATE}" in html


def test_report_tables_hold_the_last_day_and_the_runs(analysed):
    data = read_report_data(analysed, FIRST, RUN_DATE)
    best = query(
        analysed,
        "SELECT max(metric_value) AS plays FROM daily_metrics WHERE metric_date = $1"
        " AND metric_type = 'record' AND metric_name = 'plays'",
        (RUN_DATE,),
    )["plays"][0]
    assert data.top_records["plays"][0] == best and data.top_records.height == 10
    assert data.top_records["plays"].is_sorted(descending=True)
    assert data.top_records["title"].null_count() == 0 and data.top_stores.height > 0
    assert data.jobs["job_type"].to_list() == ["nightly", "nightly", "backfill"]
    assert (data.jobs["duration_s"] >= 0).all()
    assert data.jobs["items_quarantined"].to_list() == [1, 1, 1]  # the bad play, each run
    assert data.platform.height == 30 and data.platform["plays"].null_count() == 0
    assert data.quality.drop_nulls().height == 2  # one point per nightly run


def test_report_renders_in_chromium_with_charts_drawn(report, tmp_path):
    dom = _chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    marks = Marks()
    marks.feed(dom)
    assert set(marks.charts) == set(CHARTS)
    assert [r for r in marks.references if "//" in r] == []
    for name, found in marks.charts.items():
        drawn = [d for d in found["paths"] if re.search(r"M[\d.]+,[\d.]+ [\d.]+,[\d.]+", d)]
        bars = [h for h in found["rects"] if h > 0]
        assert drawn or bars, f"chart {name} drew nothing"
    assert len([h for h in marks.charts["plays"]["rects"] if h > 0]) == 30
    assert len(marks.charts["quality"]["paths"]) == 2 and marks.charts["quality"]["circles"] == 4
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri())
    blank_page = tmp_path / "blank.html"
    blank_page.write_text("<!DOCTYPE html><html><body></body></html>")
    blank = tmp_path / "blank.png"
    _chromium(tmp_path, f"--screenshot={blank}", "--window-size=1200,2400", blank_page.as_uri())
    width, height, pixels = _png(shot)
    assert (width, height) == (1200, 2400)
    assert len(set(pixels)) > 100  # a blank page decodes to a handful of byte values
    assert len(set(_png(blank)[2])) < 10
    assert shot.stat().st_size > 5 * blank.stat().st_size
    print(f"report screenshot (CI artifact): {shot}")


def test_render_escapes_every_text():
    day = dt.date(2026, 1, 2)
    days = pl.DataFrame({"metric_date": [day]})
    data = ReportData(
        source="duckdb:<evil>.duckdb",
        first=day,
        last=day,
        platform=days.with_columns(
            active_users=pl.lit(3.0),
            plays=pl.lit(4.0),
            completion_rate=pl.lit(0.5),
            skip_rate=pl.lit(0.25),
        ),
        recommendation=days.with_columns(plays=pl.lit(1.0), share_of_plays=pl.lit(0.25)),
        quality=days.with_columns(ndcg_at_10=pl.lit(None, pl.Float64), precision_at_10=None),
        top_records=pl.DataFrame({"id": [1], "artist": ['<script>"x"</script>'], "title": ["A&B"]}),
        top_stores=pl.DataFrame({"id": [2], "name": ["<b>"]}),
        jobs=pl.DataFrame({"id": [3], "job_type": ["nightly"]}),
    )
    html = render_report(data)
    assert "<script" not in html and "&lt;script&gt;&quot;x&quot;" in html
    assert "A&amp;B" in html and "&lt;b&gt;" in html and "duckdb:&lt;evil&gt;" in html
    assert "no data in range" in html  # the empty quality chart says so instead of failing


def test_nice_axis_ceiling():
    assert [nice_ceiling(v) for v in (0, 0.37, 7.5, 93, 101, 2400)] == [1, 0.5, 10, 100, 200, 2500]


def test_report_defaults_and_errors(analysed, migrated_duck, tmp_path, capsys):
    out = write_report(analysed, tmp_path / "nested" / "default.html")
    assert f"{FIRST} to {RUN_DATE}" in out.read_text()  # default: 30 days to the last day
    assert not list(out.parent.glob("*.tmp-*"))
    code = main(["report", "--database", migrated_duck.url, "--out", str(tmp_path / "x.html")])
    assert code == 1 and "no daily metrics yet" in capsys.readouterr().err
    args = ["report", "--database", analysed.url, "--from", str(RUN_DATE), "--to", str(FIRST)]
    assert main([*args, "--out", str(tmp_path / "y.html")]) == 1
    assert "is after" in capsys.readouterr().err
