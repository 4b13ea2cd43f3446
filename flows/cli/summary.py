"""What `rotation run` prints when a run ends: a few lines for a person (stdout), the
warning on stderr, or with --json the summary alone, as JSON, on stdout."""

from __future__ import annotations

import json
import sys

from flows.analyst.terminal import printable
from flows.cli.progress import end_progress

#: The summary keys `--json` prints, per flow.
JSON_KEYS = {
    "nightly": ("status", "published", "warning", "events", "users_served", "rows", "quality"),
    "backfill": ("status", "rows"),
    "tune": ("status", "rows", "model"),
}
#: Exit code of a nightly run that was skipped (its lists not published): not 0, so that a
#: scheduler notices, not 1 (failed), so that it can tell the two apart.
SKIPPED_EXIT = 3


def quality_line(quality: dict) -> str:
    """Return the holdout figures as one line ('not measured' when the holdout was empty)."""
    figures = [f"{k} {v:.4f}" for k, v in quality.items() if isinstance(v, float)]
    if not figures:
        return "quality: not measured (no holdout user with a new record)"
    users = quality.get("holdout_users", quality.get("users"))
    return f"quality on the holdout ({users:,} users): " + ", ".join(figures)


def rows_line(rows: dict[str, int]) -> str:
    """Return the rows written per table as one line."""
    return "rows written: " + (", ".join(f"{t} {n:,}" for t, n in rows.items()) or "none")


def human_lines(flow: str, summary: dict, dates: str) -> list[str]:
    """Return the run's summary as lines for a person."""
    head = f"{flow}{dates}: {summary['status']}"
    if flow == "nightly":
        published = "published" if summary["published"] else "not published"
        head += f", lists {published} ({summary.get('users_served', 0):,} users)"
        return [head, rows_line(summary["rows"]), quality_line(summary["quality"])]
    if flow == "tune":
        return [head, rows_line(summary["rows"]), tuning_line(summary.get("model") or {})]
    return [head, rows_line(summary["rows"])]


def tuning_line(model: dict) -> str:
    """Return the tune run's choice as one line: parameters and validation nDCG@10."""
    if model.get("validation_ndcg") is None:
        return f"parameters recorded: the defaults (no validation data) {model.get('params')}"
    return (
        f"parameters recorded: {model['params']}; validation nDCG@10 "
        f"{model['validation_ndcg']:.4f} (defaults {model['default_ndcg']:.4f}, "
        f"{model['candidates']} candidates, {model['validation_users']:,} users)"
    )


def report(flow: str, summary: dict, dates: str, as_json: bool) -> int:
    """Print the run's summary; return the command's exit code."""
    end_progress()  # stdout and stderr share the terminal: the summary starts on a new line
    if as_json:
        print(json.dumps({k: summary.get(k) for k in JSON_KEYS[flow]}, indent=2, default=str))
    else:
        print("\n".join(printable(line) for line in human_lines(flow, summary, dates)))
    if summary.get("warning"):
        label = "skipped" if summary["status"] == "skipped" else "warning"
        print(f"rotation: {label}: {printable(summary['warning'])}", file=sys.stderr)
    if summary["status"] == "failed":
        return 1
    return SKIPPED_EXIT if summary["status"] == "skipped" else 0
