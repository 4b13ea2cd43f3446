"""The storage interface every backend implements, and the named-query loader."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import polars as pl

from flows.storage.database import Database
from flows.storage.errors import StorageError
from flows.storage.migrate import pending_migrations
from flows.storage.queries import QUERIES, sql_file


@cache
def load_query(name: str) -> str:
    """Return the text of sql/queries/NAME.sql (a named query with $1.. placeholders).

    Queries are grouped by their reader: "extract/users", "publish/swap", ...
    """
    path = sql_file("queries", f"{name}.sql")
    if not path.is_file():
        raise StorageError(f"no named query {name!r} in {QUERIES}")
    return path.read_text(encoding="utf-8")


def frame_from_batches(batches, categorical: Sequence[str] = ()) -> pl.DataFrame:
    """Return one polars frame from Arrow record batches, `categorical` columns dictionary-coded.

    Each batch is converted (its text columns coded or copied, every other column copied) and
    released before the next is read, so a large event table never sits in memory twice, as
    the driver's Arrow batches and again as polars columns.
    """
    frames = []
    for batch in batches:
        frame = pl.from_arrow(batch)
        coded = [c for c in categorical if c in frame.columns]
        text = [c for c, dtype in frame.schema.items() if dtype == pl.String and c not in coded]
        other = [c for c in frame.columns if c not in coded and c not in text]
        # every column copied out of the batch: polars would share its buffers (numbers
        # as they are, strings as views into it), and any value still in use, in this frame
        # or one gathered from it, would keep the whole batch alive
        frames.append(
            frame.with_columns(
                pl.col(coded).cast(pl.Categorical),
                pl.col(text) + pl.lit(""),
                pl.col(other).gather(pl.int_range(pl.len())),
            )
        )
    if not frames:
        return pl.from_arrow(batches.schema.empty_table())
    return pl.concat(frames, rechunk=False)  # a copy of the whole table saved; chunks are fine


@dataclass(frozen=True)
class FrameParts:
    """A table's rows in parts, fetched one at a time and in order (`fetch(i)`: part i), so
    that no more than one part is ever held here: a sharded run's lists, each shard's where
    it was computed; content_similarity's, by source type. `heights`: each part's rows."""

    heights: tuple[int, ...]
    fetch: Callable[[int], pl.DataFrame]

    @property
    def height(self) -> int:
        """Return the rows of every part."""
        return sum(self.heights)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        return (self.fetch(index) for index in range(len(self.heights)))


def frame_parts(rows: pl.DataFrame | FrameParts) -> Iterable[pl.DataFrame]:
    """Return the frames of `rows` in order: a frame alone, or each part fetched in turn."""
    return [rows] if isinstance(rows, pl.DataFrame) else rows


@dataclass(frozen=True)
class Replacement:
    """Rows to delete (a trusted statement and its parameters) and the frame (or the frame's
    parts, fetched in turn) that replaces them.

    `every_row` marks a replacement of the whole table: a backend may then build a new table
    and swap it in rather than DELETE (PostgresStorage does for the big published tables).
    `days` (date ordinals) confines it to those dates: replacements of disjoint dates of a
    table may then be published at once (PostgresStorage locks the dates, not the table).
    """

    table: str
    delete_sql: str
    params: tuple
    frame: pl.DataFrame | FrameParts
    every_row: bool = False
    days: tuple[int, ...] = ()

    @classmethod
    def whole(cls, table: str, frame: pl.DataFrame | FrameParts) -> Replacement:
        """Return a replacement of every row of `table`."""
        return cls(table, f"DELETE FROM {table}", (), frame, every_row=True)

    @classmethod
    def metrics(cls, frame: pl.DataFrame, dates: Sequence, types: Sequence[str]) -> Replacement:
        """Return a replacement of the daily_metrics slice `dates` × `types`."""
        days = tuple(sorted({d.toordinal() for d in dates}))
        params = (list(dates), list(types))
        return cls(
            "daily_metrics", load_query("publish/delete_daily_metrics"), params, frame, days=days
        )


class Storage(ABC):
    """Reads named queries as polars frames and publishes frames, on one database."""

    #: Publishes of disjoint ``days`` that may run at once (from different threads).
    publishers = 1
    #: Reads that may run at once (from different threads; flows.stages.extract.read_all).
    readers = 1

    def __init__(self, db: Database) -> None:
        self.db = db

    @abstractmethod
    def read(
        self, query: str, params: Sequence[Any] = (), categorical: Sequence[str] = ()
    ) -> pl.DataFrame:
        """Return the rows of named query `query` as a polars frame (columnar, via Arrow).

        Columns named in `categorical` come dictionary-coded (pl.Categorical): repeated text
        such as event types and session ids then costs 4 bytes a row.
        """

    @abstractmethod
    def execute(self, query: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run named statement `query` in its own committed transaction; return any rows."""

    @abstractmethod
    def publish(
        self,
        replacements: Sequence[Replacement],
        job_id: int | None = None,
        before_swap: Callable[[], None] | None = None,
    ) -> dict[str, int]:
        """Apply every replacement in ONE transaction; return rows written per table.

        With `job_id`, the same transaction records on that job that its results are live.
        `before_swap` is called right before that transaction begins (the cache unpoints).
        """

    @abstractmethod
    def fail_dead_jobs(self, now) -> list[tuple[int, str]]:
        """Close the jobs left 'running' by a dead process; return their (id, new status)."""

    def claim_job(self, job_id: int) -> None:  # noqa: B027 - a single-writer backend: no-op
        """Hold `job_id` for this living run (fail_dead_jobs of another run skips it)."""

    def release_job(self, job_id: int) -> None:  # noqa: B027 - as claim_job
        """End this run's hold on `job_id`."""

    def replace_daily_metrics(
        self, frame: pl.DataFrame, dates: Sequence, types: Sequence[str]
    ) -> int:
        """Replace daily_metrics rows of `dates` × `types` with `frame` in one transaction."""
        return self.publish([Replacement.metrics(frame, dates, types)])["daily_metrics"]

    @abstractmethod
    def cleanup(
        self, retention_days: int, now, play_retention_days: int | None = None
    ) -> dict[str, int]:
        """Remove expired outputs and aggregated raw events; return rows deleted per table.

        `play_retention_days` (None: keep every play) also removes plays older than that.
        """

    @abstractmethod
    def check(self, retry: bool = True) -> None:
        """Raise StorageError with one clear line when the database cannot be used.

        `retry=False`: no retry of a failed connection (a command's preflight).
        """

    def require_current_schema(self) -> None:
        """Raise StorageError naming the pending migrations when the schema is behind."""
        pending = pending_migrations(self.db)
        if pending:
            raise StorageError(
                f"{self.db.display} is {len(pending)} migration(s) behind "
                f"({', '.join(pending)}); run `rotation db migrate`"
            )

    def close(self) -> None:  # noqa: B027 - a backend without connections has nothing to close
        """Close any open connection."""

    def release_cache(self) -> None:  # noqa: B027 - a server's cache is not in this process
        """Give back what an embedded engine caches of the rows it read, in this process."""

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
