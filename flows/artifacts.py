"""The run report: a markdown summary and a key-metrics table, as Prefect artifacts."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.params import NightlyParams
from flows.tracking import RunResult


def run_report_markdown(result: RunResult, params: NightlyParams) -> str:
    """Return the run report as markdown: status, warning, quality, rows, quarantine, stages."""
    lines = [
        f"# Nightly run {params.run_date}",
        f"- status: **{result.status}**, published: **{result.published}**",
        f"- run id: `{result.run_id}`, job: {result.job_id}",
    ]
    if result.warning:
        lines.append(f"- ⚠️ {result.warning}")
    if result.quality:
        lines += ["", "## Model quality (temporal holdout)", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in result.quality.items() if isinstance(v, float)]
    lines += ["", "## Rows written", "| table | rows |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(result.rows.items())]
    lines += ["", "## Quarantine", "| table | reason | rows |", "|---|---|---|"]
    lines += [f"| {q['table']} | {q['reason']} | {q['rows']} |" for q in result.quarantine]
    if not result.quarantine:
        lines.append("| — | none | 0 |")
    lines += [
        "",
        "## Stages",
        "| stage | seconds | rows in | rows out | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {s['stage']} | {s['seconds']} | {s['rows_in']} | {s['rows_out']} | {s['peak_rss_mb']} |"
        for s in result.stages
    ]
    return "\n".join(lines)


def key_metrics_table(result: RunResult) -> list[dict]:
    """Return the run's key figures as rows for a Prefect table artifact."""
    rows = [{"metric": f"rows.{k}", "value": v} for k, v in sorted(result.rows.items())]
    rows += [
        {"metric": f"quality.{k}", "value": round(v, 4)}
        for k, v in result.quality.items()
        if isinstance(v, float)
    ]
    rows.append({"metric": "quarantined", "value": sum(q["rows"] for q in result.quarantine)})
    return rows


def publish_artifacts(result: RunResult, params: NightlyParams) -> None:
    """Create the markdown run report and the key-metrics table artifacts of this flow run."""
    create_markdown_artifact(
        run_report_markdown(result, params),
        key="nightly-run-report",
        description=f"Nightly run {params.run_date}",
    )
    create_table_artifact(
        key_metrics_table(result),
        key="nightly-key-metrics",
        description=f"Key metrics {params.run_date}",
    )
