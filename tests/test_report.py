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

from flows.analyst.charts import Days, YAxis, bar_chart, line_chart
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


class Charts(HTMLParser):
    """Reads, per chart figure of a page, what matplotlib drew: tick positions and labels,
    axis titles, bars and each series' path (by the ids charts.py gives them)."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict] = {}
        self.references: list[str] = []
        self._chart: str | None = None
        self._groups: list[str] = []  # the ids of the open <g> elements
        self._depth: list[str] = []  # the open tags inside the chart

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.references += [v for k, v in attrs.items() if k in ("src", "href", "xlink:href")]
        if tag == "figure" and "chart" in (attrs.get("class") or ""):
            self._chart = attrs["id"].removeprefix("chart-")
            self.charts[self._chart] = {
                "x_ticks": {}, "x_labels": {}, "y_labels": [], "x_title": [], "y_title": [],
                "bars": 0, "series": {}, "texts": [],
            }  # fmt: skip
            return
        if self._chart is None or tag in ("br", "img"):
            return
        chart = self.charts[self._chart]
        self._depth.append(tag)
        self._groups.append(attrs.get("id", "").removeprefix(f"{self._chart}-"))
        group = self._groups[-1]
        if group.startswith("bar-"):
            chart["bars"] += 1
        tick = self._inside("xtick_")
        if tag == "use" and tick:
            chart["x_ticks"][tick] = round(float(attrs["x"]), 2)
        series = self._inside("series-")
        if tag == "path" and series:
            chart["series"].setdefault(series.removeprefix("series-"), attrs.get("d", ""))

    def handle_endtag(self, tag):
        if tag == "figure":
            self._chart = None
        elif self._chart is not None and self._depth:
            self._depth.pop()
            self._groups.pop()

    def handle_data(self, data):
        text = data.strip()
        if self._chart is None or not text or not self._depth or self._depth[-1] != "text":
            return
        chart = self.charts[self._chart]
        chart["texts"].append(text)
        if tick := self._inside("xtick_"):
            chart["x_labels"][tick] = text
        elif self._inside("ytick_"):
            chart["y_labels"].append(text)
        elif self._inside("matplotlib.axis_1"):
            chart["x_title"].append(text)
        elif self._inside("matplotlib.axis_2"):
            chart["y_title"].append(text)

    def _inside(self, prefix: str) -> str | None:
        """Return the id of the innermost open group starting with `prefix`, or None."""
        return next((g for g in reversed(self._groups) if g.startswith(prefix)), None)


def vertices(path: str) -> list[list[str]]:
    """Return an SVG path's subpaths (a move starts one), each as its list of points."""
    parts = re.split(r"\s*M\s*", path.strip())
    return [re.findall(r"-?[\d.]+ -?[\d.]+", part) for part in parts if part]


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
    """Nothing in the page could fetch: no script, no stylesheet or image link, no URL but
    the SVG namespaces (names, never fetched), no reference but to an id of the page."""
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    urls = set(re.findall(r"\w+://[^\"'\s)]*", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    for url in urls:
        assert not re.search(rf"""(?<!xmlns)(?<!xmlns:xlink)=["']{re.escape(url)}""", html)
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html, re.I)
    assert references and all(r.startswith("#") for r in references), set(references)
    assert set(re.findall(r"url\(([^)]*)\)", html)) <= {
        f"#{i}" for i in re.findall(r'id="([^"]+)"', html)
    }
    for needle in ("<script", "<link", "@import", "<img", "<iframe", "<image", "<object"):
        assert needle not in html.lower(), needle
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids repeat across the charts"
    assert html.count('<figure class="chart"') == len(CHARTS)
    assert f"{FIRST} to {RUN_DATE}" in html
    assert f"On {RUN_DATE}, the last day of the range" in html


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


def test_report_renders_in_chromium_with_charts_drawn(report, analysed, tmp_path):
    dom = _chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    charts = Charts()
    charts.feed(dom)
    assert set(charts.charts) == set(CHARTS)
    assert [r for r in charts.references if not r.startswith("#")] == []
    # one date axis: every chart has the same labelled ticks at the same places
    axes = {name: (c["x_ticks"], c["x_labels"]) for name, c in charts.charts.items()}
    ticks, labels = axes["plays"]
    assert len(labels) >= 4 and set(labels) == set(ticks), labels
    assert all(axis == (ticks, labels) for axis in axes.values()), axes
    for name, chart in charts.charts.items():
        assert "day (UTC)" in chart["x_title"], name
        assert chart["y_title"] and len(chart["y_labels"]) >= 3, name
    for name in ("active-users", "plays", "rec-plays"):  # counts: whole numbers only
        assert all(re.fullmatch(r"[\d,]+", t) for t in charts.charts[name]["y_labels"]), name
    for name in ("rates", "rec-share"):
        assert all(t.endswith("%") for t in charts.charts[name]["y_labels"]), name
    data = read_report_data(analysed, FIRST, RUN_DATE)
    assert charts.charts["plays"]["bars"] == 30
    assert charts.charts["rec-plays"]["bars"] == data.recommendation["plays"].count() > 20
    assert len(vertices(charts.charts["active-users"]["series"]["active_users"])[0]) == 30
    quality = charts.charts["quality"]
    assert set(quality["series"]) == {"ndcg_at_10", "precision_at_10"}
    assert [len(p) for s in quality["series"].values() for p in vertices(s)] == [2, 2]
    assert {"nDCG@10", "precision@10"} <= set(quality["texts"])  # the legend
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


def test_a_missing_day_breaks_the_line_and_the_range_is_the_reports():
    first = dt.date(2026, 3, 1)
    frame = pl.DataFrame(
        {
            "metric_date": pl.date_range(first, first + dt.timedelta(days=9), eager=True),
            "active_users": [5.0, 6.0, 7.0, None, 8.0, 9.0, None, None, 4.0, 3.0],
        }
    )
    wide = Days(first - dt.timedelta(days=20), first + dt.timedelta(days=9))
    charts = Charts()
    charts.feed(line_chart(frame, {"active_users": "users"}, "u", "Users", wide, YAxis("users")))
    charts.feed(bar_chart(frame, "active_users", "b", "Users", wide, YAxis("users")))

    line, bars = charts.charts["u"], charts.charts["b"]
    assert [len(p) for p in vertices(line["series"]["active_users"])] == [3, 2, 2]
    assert bars["bars"] == 7  # a bar per day with a value
    assert (line["x_ticks"], line["x_labels"]) == (bars["x_ticks"], bars["x_labels"])
    # the axis spans the range, not the data: February's ticks, then March's
    assert list(line["x_labels"].values()) == ["Feb 15", "Feb 22", "Mar 01", "Mar 08"]


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


def test_report_defaults_and_errors(analysed, migrated_duck, tmp_path, capsys):
    out = write_report(analysed, tmp_path / "nested" / "default.html")
    assert f"{FIRST} to {RUN_DATE}" in out.read_text()  # default: 30 days to the last day
    assert not list(out.parent.glob("*.tmp-*"))
    code = main(["report", "--database", migrated_duck.url, "--out", str(tmp_path / "x.html")])
    assert code == 1 and "no daily metrics yet" in capsys.readouterr().err
    args = ["report", "--database", analysed.url, "--from", str(RUN_DATE), "--to", str(FIRST)]
    assert main([*args, "--out", str(tmp_path / "y.html")]) == 1
    assert "is after" in capsys.readouterr().err
