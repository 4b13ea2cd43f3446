"""The `rotation` command line: one clear line on bad input, and the analyst's round trip."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pipeline_fixtures import RUN_DATE, SIZE, execute, query

from flows.cli import main
from flows.storage.database import ENV_VAR, parse_database

pytest_plugins = ["prefect_fixtures"]

ROTATION = Path(sys.executable).with_name("rotation")
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_environment(monkeypatch):
    """The CLI sets ROTATION_DATABASE_URL and Prefect variables for its process: undo them."""
    for name in (ENV_VAR, "PREFECT_LOGGING_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED"):
        monkeypatch.delenv(name, raising=False)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed `rotation` script; return its exit code and output."""
    environment = {k: v for k, v in os.environ.items() if k != ENV_VAR} | (env or {})
    return subprocess.run(
        [str(ROTATION), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=PROJECT,
        timeout=300,
    )


PROGRESS = re.compile(r"\[ *\d+\.\d%\] ")


def error_lines(stderr: str) -> list[str]:
    """Return the non-empty lines of stderr that are not progress lines ("[ 12.5%] …")."""
    return [line for line in stderr.splitlines() if line.strip() and not PROGRESS.match(line)]


# bad input -------------------------------------------------------------------------------------


def test_unsupported_database_is_one_line_with_exit_code_2(tmp_path):
    done = run_cli("run", "nightly", "--database", "mysql://x", env={"PREFECT_HOME": str(tmp_path)})

    assert done.returncode == 2
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "mysql://x" in lines[0]
    assert "postgresql://" in lines[0] and "duckdb:PATH" in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["db", "migrate"], ["recommend", "1"]])
def test_unsupported_database_in_process(capsys, command):
    assert main([*command, "--database", "mysql://x"]) == 2
    captured = capsys.readouterr()
    lines = error_lines(captured.err)
    assert len(lines) == 1 and lines[0].startswith("rotation: error:")
    assert "accepted" in lines[0]


def test_a_date_that_is_not_a_date_is_refused_clearly(tmp_path):
    done = run_cli(
        "run",
        "nightly",
        "--database",
        f"duckdb:{tmp_path / 'x.duckdb'}",
        "--date",
        "2024-13-45",
        env={"PREFECT_HOME": str(tmp_path)},
    )

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    errors = [line for line in error_lines(done.stderr) if "error" in line]
    assert len(errors) == 1
    assert "'2024-13-45' is not a date (expected YYYY-MM-DD)" in errors[0]


def test_backfill_dates_are_checked_too(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "backfill", "--from", "yesterday", "--to", "2024-01-02"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "'yesterday' is not a date" in err and "Traceback" not in err


def test_negative_window_days_is_rejected(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "nightly", "--database", f"duckdb:{tmp_path / 'x.duckdb'}",
              "--window-days", "-1"])  # fmt: skip
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "--window-days" in err and "-1 must be 0 or more" in err
    assert "Traceback" not in err


def test_missing_duckdb_file_is_one_clear_line(capsys, tmp_path):
    path = tmp_path / "nowhere" / "missing.duckdb"

    code = main(["run", "nightly", "--database", f"duckdb:{path}", "--date", "2026-01-01"])

    assert code != 0
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and "does not exist" in lines[0]
    assert "rotation db migrate" in lines[0]
    assert not path.exists()  # checking does not create an empty database


def test_migrate_twice_says_up_to_date(capsys, tmp_path):
    url = f"duckdb:{tmp_path / 'r.duckdb'}"

    assert main(["db", "migrate", "--database", url]) == 0
    first = capsys.readouterr().out
    assert main(["db", "migrate", "--database", url]) == 0
    second = capsys.readouterr().out

    assert "applied" in first
    assert second.strip().endswith("up to date")


# the analyst's round trip ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def round_trip(prefect_harness, tmp_path_factory):
    """Return the duckdb: URL filled by `rotation generate` + `run nightly`, and what the
    nightly command printed."""
    url = f"duckdb:{tmp_path_factory.mktemp('cli') / 'rotation.duckdb'}"
    end = (RUN_DATE + timedelta(days=1)).isoformat()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ENV_VAR, raising=False)
        generate = ["generate", "--database", url, "--end", end, "--seed", str(SIZE["seed"])]
        sizes = ["--users", "120", "--tracks", "1200", "--days", "30"]
        assert main(["-q", *generate, *sizes]) == 0
        nightly = ["run", "nightly", "--json", "--database", url, "--date", RUN_DATE.isoformat()]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["-q", *nightly]) == 0
    return url, printed.getvalue()


def test_run_nightly_prints_the_summary(round_trip):
    url, printed = round_trip
    summary = json.loads(printed)
    assert summary["status"] == "completed" and summary["published"] is True
    assert summary["rows"]["recommendation_data"] > 0
    assert 0 <= summary["quality"]["ndcg_at_10"] <= 1
    status = query(parse_database(url), "SELECT job_status FROM jobs WHERE job_type = 'nightly'")
    assert status["job_status"].to_list() == ["completed"]


def test_recommend_prints_the_lists_with_reasons(round_trip, capsys):
    url, _ = round_trip
    db = parse_database(url)
    user = query(
        db,
        "SELECT user_id FROM recommendation_data WHERE list_name = 'records' "
        "AND CAST(reason AS VARCHAR) LIKE '%similar_to%' ORDER BY user_id LIMIT 1",
    )["user_id"][0]

    assert main(["recommend", str(user), "--database", url]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"user {user}")
    lines = out.splitlines()
    assert "records" in lines and "records_in_stock" in lines
    assert any(line.strip().startswith("1. ") for line in lines)
    assert "because you played" in out


def test_recommend_for_an_unknown_user_says_so_on_stderr(round_trip, capsys):
    url, _ = round_trip
    assert main(["recommend", "999999", "--database", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [f"rotation: error: user 999999 does not exist in {url}"]


def test_recommend_for_a_user_without_lists_says_so(round_trip, capsys, tmp_path):
    url = copy_of(round_trip[0], tmp_path)
    execute(
        parse_database(url), "INSERT INTO users (id, email, username) VALUES (999998, 'n', 'n')"
    )
    assert main(["recommend", "999998", "--database", url]) == 1
    assert "no unexpired recommendations" in capsys.readouterr().out


def test_similar_for_an_unknown_item_says_so_on_stderr(round_trip, capsys):
    assert main(["similar", "track", "-5", "--database", round_trip[0]]) == 1
    assert "track -5 does not exist" in capsys.readouterr().err


def copy_of(url: str, directory) -> str:
    """Return the duckdb: URL of a copy of a DuckDB file (a test may change the copy)."""
    copy = directory / "copy.duckdb"
    shutil.copyfile(url.removeprefix("duckdb:"), copy)
    return f"duckdb:{copy}"


def test_data_never_reaches_the_terminal_as_control_codes(round_trip, capsys, tmp_path):
    """A title with an escape sequence (retitle the window, clear the screen) is printed
    with the sequence's control characters replaced."""
    url = copy_of(round_trip[0], tmp_path)
    db = parse_database(url)
    execute(db, "UPDATE records SET title = title || chr(27) || ']0;PWNED' || chr(7), "
                "artist = 'Art' || chr(27) || '[2J'")  # fmt: skip
    record = query(db, "SELECT min(source_id) AS id FROM content_similarity "
                       "WHERE source_type = 'record'")["id"][0]  # fmt: skip
    user = query(db, "SELECT min(user_id) AS id FROM recommendation_data")["id"][0]

    assert main(["similar", "record", str(record), "--database", url]) == 0
    assert main(["recommend", str(user), "--database", url]) == 0

    out = capsys.readouterr().out
    assert "PWNED" in out and "\ufffd]0;PWNED\ufffd" in out  # shown, but harmless
    assert "\x1b" not in out and "\x07" not in out


def test_similar_prints_the_neighbours(round_trip, capsys):
    url, _ = round_trip
    db = parse_database(url)
    record = query(
        db,
        "SELECT source_id FROM content_similarity WHERE source_type = 'record' "
        "AND similarity_type = 'collaborative' ORDER BY source_id LIMIT 1",
    )["source_id"][0]

    assert main(["similar", "record", str(record), "--database", url]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"record {record}"
    assert {"collaborative", "content", "hybrid"} <= set(lines)
    ranked = [line for line in lines if line.strip()[:3].strip().rstrip(".").isdigit()]
    assert ranked and all(" — " in line for line in ranked)  # labelled 'artist — title'


def test_similar_through_the_installed_script(round_trip, tmp_path):
    url, _ = round_trip
    db = parse_database(url)
    record = query(
        db, "SELECT min(source_id) AS id FROM content_similarity WHERE source_type = 'record'"
    )["id"][0]

    done = run_cli(
        "similar", "record", str(record), "--database", url, "--type", "content",
        env={"PREFECT_HOME": str(tmp_path)},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"record {record}"
    assert "content" in done.stdout.splitlines()
    assert "collaborative" not in done.stdout


@pytest.mark.parametrize("preset", [None, "45"])
def test_the_prefect_server_gets_time_for_its_first_start(monkeypatch, capsys, preset):
    name = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    monkeypatch.setenv(name, preset or "")  # recorded, so the test leaves the variable as it was
    if preset is None:
        monkeypatch.delenv(name)
    with pytest.raises(SystemExit):
        main(["--help"])
    # Prefect's own 20 s was too short for the first start on a busy machine (`rotation demo`)
    assert os.environ[name] == (preset or "180")


def test_a_skipped_run_says_why_in_one_line_and_exits_3(round_trip, capsys, tmp_path):
    url = copy_of(round_trip[0], tmp_path)
    later = (RUN_DATE + timedelta(days=400)).isoformat()  # no event in its window
    capsys.readouterr()

    code = main(["-q", "run", "nightly", "--database", url, "--date", later, "--window-days", "30"])

    out, err = capsys.readouterr()
    assert code == 3
    assert out.startswith(f"nightly {later}: skipped, lists not published (")
    assert err.splitlines() == [
        "rotation: skipped: no play or usage events in the run's window: the published lists "
        "are kept (--force-publish overrides)"
    ]
