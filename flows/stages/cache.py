"""A run's cache work around its publish: warm, unpoint before the swap, switch after it.

Order (flows/storage/cache/reader.py relies on it): the run's keys are written under its tag
before the Postgres swap; right before the swap transaction the live pointer is removed
(reads go to Postgres, which still serves run N-1, then N from its COMMIT); right after the
COMMIT the pointer names run N; then run N-1's keys are deleted. Any Redis failure (down,
full, slower than the write timeout) leaves the pointer removed, so every read goes to
Postgres until a later run switches, and becomes the run's one warning line; the Postgres
publish goes on and stands.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import polars as pl

from flows.storage.base import FrameParts
from flows.storage.cache.keys import run_tag
from flows.storage.cache.target import CacheTarget
from flows.storage.cache.writer import CacheError, CacheWriter


def cache_deadline(now: datetime, ttl_hours: float, expires_at: datetime) -> datetime:
    """Return when a run's keys expire: `ttl_hours` from now, never past its rows' expiry."""
    return min(now + timedelta(hours=ttl_hours), expires_at)


class CacheStep:
    """The cache side of one publish; `warning` holds the one line a failure leaves."""

    def __init__(self, target: CacheTarget, run_id: str, deadline: datetime) -> None:
        self.target, self.run_id, self.deadline = target, run_id, deadline
        self.writer = CacheWriter(target)
        self.tag = run_tag(run_id)
        self.warning: str | None = None
        self.notes: list[str] = []  # what went wrong after the switch: logged, not a warning
        self.previous: str | None = None  # the tag the pointer named before the swap
        self.warmed = False

    def _fail(self, what: str, exc: CacheError) -> None:
        self.warning = (
            f"cache: {what} failed ({exc}); the lists are published in Postgres, and the API "
            "reads them from there until a later run warms the cache"
        )
        with contextlib.suppress(CacheError):
            self.previous = self.writer.unpoint() or self.previous
        for tag in {self.previous, self.tag} - {None}:  # unreachable now: memory back
            with contextlib.suppress(CacheError):
                self.writer.drop(tag)

    def warm(
        self,
        recommendations: pl.DataFrame | FrameParts,
        neighbours: pl.DataFrame | FrameParts,
        popular: pl.DataFrame,
    ) -> dict[str, int]:
        """Write the run's lists under its tag; on failure record the warning, unpoint."""
        try:
            written = self.writer.warm(
                self.run_id, recommendations, neighbours, popular, self.deadline
            )
        except CacheError as exc:
            self._fail("warming", exc)
            return {"keys": 0}
        self.warmed = True
        return written

    def before_swap(self) -> None:
        """Remove the live pointer right before the swap (called inside the publish)."""
        if not self.warmed:
            return
        try:
            self.previous = self.writer.unpoint()
        except CacheError as exc:
            self.warmed = False
            self._fail("removing the live pointer", exc)

    def after_publish(self) -> None:
        """Point readers at this run, then delete the previous run's keys."""
        if not self.warmed:
            return
        try:
            self.writer.switch(self.run_id, self.deadline)
        except CacheError as exc:
            self._fail("the switch", exc)
            return
        if self.previous and self.previous != self.tag:
            try:
                self.writer.drop(self.previous)
            except CacheError as exc:
                self.notes.append(f"cache: deleting run {self.previous}'s keys failed ({exc})")

    def abandon(self) -> None:
        """The publish failed: delete this run's keys (the pointer stays where it is)."""
        with contextlib.suppress(CacheError):
            self.writer.drop(self.tag)
        self.writer.close()

    def close(self) -> None:
        """Close the Redis client."""
        self.writer.close()
