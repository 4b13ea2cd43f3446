"""DuckDB backend: the embedded default, one file, one connection per run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import polars as pl

from flows.storage import bulk
from flows.storage.base import (
    Replacement,
    Storage,
    StorageError,
    frame_from_batches,
    frame_parts,
    load_query,
)
from flows.storage.database import Database
from flows.storage.queries import sql_text


class DuckStorage(Storage):
    """Storage on a DuckDB file; writes are serialised through one connection."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._conn = None
        self._lock = threading.RLock()

    def _connection(self):
        if self._conn is None:
            if self.db.path is None:
                raise StorageError("duckdb: needs a file path")
            self.db.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = bulk.duckdb_connect(self.db)
                self._conn.execute("SET TimeZone = 'UTC'")
            except Exception as exc:
                raise StorageError(f"{self.db.display}: {str(exc).splitlines()[0]}") from None
        return self._conn

    def close(self) -> None:
        """Close the connection (DuckDB checkpoints the file)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def release_cache(self) -> None:
        """Close the connection: DuckDB frees the pages it keeps of the extract's reads (up to
        its memory limit) when its database closes; the next call opens it again."""
        self.close()

    def check(self, retry: bool = True) -> None:
        """Raise StorageError when the file is missing or holds no Rotation schema."""
        if self.db.path is None or not self.db.path.exists():
            raise StorageError(f"{self.db.display} does not exist; run `rotation db migrate` first")
        rows = self.execute_sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'play_history'"
        )
        if rows[0][0] == 0:
            raise StorageError(
                f"{self.db.display} has no Rotation schema; run `rotation db migrate`"
            )
        self.require_current_schema()

    def read(
        self, query: str, params: Sequence[Any] = (), categorical: Sequence[str] = ()
    ) -> pl.DataFrame:
        """Return the named query's rows as a polars frame (DuckDB → Arrow batches → polars)."""
        with self._lock:
            try:
                relation = self._connection().sql(load_query(query), params=list(params))
                frame = frame_from_batches(relation.to_arrow_reader(), categorical)
            except StorageError:
                raise
            except Exception as exc:
                raise StorageError(f"{query}: {str(exc).splitlines()[0]}") from None
        return frame

    def execute(self, query: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a named statement and return its rows, if any."""
        return self.execute_sql(load_query(query), params)

    def execute_sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one trusted SQL text and return its rows, if any."""
        with self._lock:
            try:
                cur = self._connection().execute(sql, list(params))
                return cur.fetchall() if cur.description else []
            except Exception as exc:
                raise StorageError(f"{self.db.display}: {str(exc).splitlines()[0]}") from None

    def cleanup(
        self, retention_days: int, now, play_retention_days: int | None = None
    ) -> dict[str, int]:
        """Run sql/duckdb/cleanup.sql's statements (and cleanup_plays.sql's with
        `play_retention_days`) and return rows deleted per table."""
        counts: dict[str, int] = {}
        self.execute_sql("SET VARIABLE cleanup_now = CAST($1 AS TIMESTAMPTZ)", (now,))
        self.execute_sql(
            "SET VARIABLE cleanup_cutoff = CAST($1 AS TIMESTAMPTZ)",
            (now - timedelta(days=retention_days),),
        )
        text = "\n".join(
            ln for ln in sql_text("duckdb", "cleanup.sql").splitlines() if not ln.startswith("--")
        )
        for statement in text.split(";"):
            body = statement.strip()
            if body:
                rows = self.execute_sql(body)
                table = body.split()[2]
                counts[table] = len(rows)
        if play_retention_days is not None:
            cutoff = now - timedelta(days=play_retention_days)
            counts["play_history"] = len(
                self.execute_sql(sql_text("duckdb", "cleanup_plays.sql"), (cutoff,))
            )
        return counts

    def fail_dead_jobs(self, now) -> list[tuple[int, str]]:
        """Close every job still 'running': one process at a time writes a DuckDB file."""
        return self.execute_sql(sql_text("duckdb", "fail_dead_jobs.sql"), (now,))

    def publish(
        self,
        replacements: Sequence[Replacement],
        job_id: int | None = None,
        before_swap: Callable[[], None] | None = None,
    ) -> dict[str, int]:
        """Delete and insert every table in one transaction: old rows or new, never a mix."""
        written = {}
        with self._lock:
            conn = self._connection()
            if before_swap is not None:
                before_swap()
            conn.execute("BEGIN TRANSACTION")
            try:
                for rep in replacements:
                    conn.execute(rep.delete_sql, list(rep.params))
                    parts = frame_parts(rep.frame)
                    written[rep.table] = sum(bulk.copy_frame(conn, rep.table, f) for f in parts)
                if job_id is not None:
                    conn.execute(sql_text("duckdb", "publish_committed.sql"), [job_id])
                conn.execute("COMMIT")
            except Exception as exc:
                conn.execute("ROLLBACK")
                raise StorageError(f"publish: {str(exc).splitlines()[0]}") from None
        return written
