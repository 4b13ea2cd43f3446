"""skip_reason: when a run's lists must not replace the published ones (flows/stages/publish.py)."""

from __future__ import annotations

import polars as pl
import pytest

from flows.stages.publish import MIN_USERS_SHARE, Candidate, LastPublished, skip_reason

MEASURED = {"users": 40, "ndcg_at_10": 0.21}
UNMEASURED = {"users": 0}


def last(ndcg: float | None = 0.2, users: int | None = 1000) -> LastPublished:
    """Return a last published run with these figures."""
    return LastPublished(ndcg_at_10=ndcg, users_served=users, reference_ndcg_at_10=ndcg)


def test_the_first_run_ever_publishes_whatever_it_holds():
    assert skip_reason(Candidate(0, 0, UNMEASURED), None) is None


def test_a_normal_night_publishes():
    assert skip_reason(Candidate(5_000, 990, MEASURED), last()) is None


def test_no_event_in_the_window_is_skipped():
    assert "no play or usage events" in skip_reason(Candidate(0, 990, MEASURED), last())


@pytest.mark.parametrize(("served", "skipped"), [(499, True), (500, False), (0, True)])
def test_users_under_the_share_of_the_last_run_are_skipped(served, skipped):
    reason = skip_reason(Candidate(5_000, served, MEASURED), last(users=1000))
    assert MIN_USERS_SHARE == 0.5
    assert (reason is not None) is skipped
    if skipped:
        assert f"cover {served:,} users" in reason and "1,000" in reason


def test_a_last_run_from_before_users_were_counted_is_no_reference():
    assert skip_reason(Candidate(5_000, 1, MEASURED), last(users=None)) is None


def test_an_unmeasurable_quality_is_skipped_when_the_last_was_measured():
    reason = skip_reason(Candidate(5_000, 990, UNMEASURED), last(ndcg=0.2))
    assert "quality cannot be measured" in reason


def test_an_unmeasurable_quality_after_an_unmeasured_run_publishes():
    # README's ml-100k flow run twice: no holdout either time
    assert skip_reason(Candidate(100_000, 943, UNMEASURED), last(ndcg=None, users=943)) is None


def test_last_published_reads_the_query_row():
    frame = pl.DataFrame(
        {"ndcg_at_10": [None], "users_served": [12], "reference_ndcg_at_10": [0.3]},
        schema={"ndcg_at_10": pl.Float64, "users_served": pl.Int64,
                "reference_ndcg_at_10": pl.Float64},
    )  # fmt: skip
    assert LastPublished.from_frame(frame) == LastPublished(None, 12, 0.3)
    assert LastPublished.from_frame(frame.clear()) is None
