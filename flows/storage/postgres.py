"""PostgreSQL backend: Arrow reads through ADBC, COPY writes, psycopg for small statements."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import polars as pl

from flows.database import Database, redact
from flows.storage.base import Replacement, Storage, StorageError, load_query

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT = "30min"  # no database call may hang a run forever
LOCK_TIMEOUT = "60s"
BOOKKEEPING_RETRY_S = (1, 3, 6)  # job rows, logs, timings: small statements worth retrying
TRANSIENT_ERRORS = {"OperationalError", "InterfaceError", "AdminShutdown", "ConnectionFailure"}
TRANSIENT_MARKERS = ("connection", "server closed", "terminating", "shutting down", "timeout")


def _with_connect_timeout(url: str) -> str:
    """Return `url` with libpq's connect_timeout set unless it already is."""
    if "connect_timeout=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}connect_timeout={CONNECT_TIMEOUT_S}"


def _clean(exc: BaseException, db: Database) -> StorageError:
    """Return a StorageError for `exc` whose message cannot hold the password."""
    if isinstance(exc, StorageError):
        return exc
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    transient = type(exc).__name__ in TRANSIENT_ERRORS or any(
        marker in message.lower() for marker in TRANSIENT_MARKERS
    )
    return StorageError(f"{db.display}: {redact(message)}", transient=transient)


class PostgresStorage(Storage):
    """Storage on PostgreSQL; the published tables are replaced in one transaction each."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._arrow = None
        self._small = None

    # connections ------------------------------------------------------------------------------
    def _arrow_conn(self):
        if self._arrow is None:
            import adbc_driver_postgresql.dbapi as adbc

            try:
                self._arrow = adbc.connect(_with_connect_timeout(self.db.url))
            except Exception as exc:
                raise _clean(exc, self.db) from None
            with self._arrow.cursor() as cur:
                cur.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
                cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
                cur.execute("SET TIME ZONE 'UTC'")
            self._arrow.commit()
        return self._arrow

    def _small_conn(self):
        if self._small is None or self._small.closed:
            import psycopg

            try:
                self._small = psycopg.connect(
                    self.db.url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_S,
                    cursor_factory=psycopg.RawCursor,
                    options=(
                        f"-c statement_timeout={STATEMENT_TIMEOUT} "
                        f"-c lock_timeout={LOCK_TIMEOUT} -c TimeZone=UTC"
                    ),
                )
            except Exception as exc:
                raise _clean(exc, self.db) from None
        return self._small

    def close(self) -> None:
        """Close both connections."""
        for conn in (self._arrow, self._small):
            if conn is not None:
                with contextlib.suppress(Exception):  # a broken connection must not hide the error
                    conn.close()
        self._arrow = self._small = None

    # interface --------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise StorageError when the server is unreachable or the schema is missing."""
        rows = self.execute_sql("SELECT to_regclass('public.play_history') IS NOT NULL")
        if not rows[0][0]:
            raise StorageError(
                f"{self.db.display} has no Rotation schema; run `rotation db migrate`"
            )
        self.require_current_schema()

    def read(self, query: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """Return the named query's rows through ADBC as a polars frame."""
        conn = self._arrow_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(load_query(query), parameters=tuple(params) or None)
                table = cur.fetch_arrow_table()
            conn.commit()
        except StorageError:
            raise
        except Exception as exc:
            self._reset()
            raise _clean(exc, self.db) from None
        return pl.from_arrow(table)

    def execute(self, query: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a named statement (autocommit) and return its rows, if any."""
        return self.execute_sql(load_query(query), params)

    def execute_sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one trusted SQL text (autocommit) and return its rows, retrying dropped links."""
        for delay in (*BOOKKEEPING_RETRY_S, None):
            try:
                return self._execute_once(sql, params)
            except StorageError as exc:
                if delay is None or not exc.transient:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _execute_once(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        try:
            cur = self._small_conn().execute(sql, tuple(params) or None)
            return cur.fetchall() if cur.description else []
        except StorageError:
            raise
        except Exception as exc:
            self._reset()
            raise _clean(exc, self.db) from None

    def cleanup(self, retention_days: int, now) -> dict[str, int]:
        """Call cleanup_old_analytics_data (the SQL function) and return its counts."""
        return dict(self.execute("cleanup_postgres", (retention_days, now)))

    def publish(self, replacements: Sequence[Replacement]) -> dict[str, int]:
        """Delete and COPY every table in one transaction: readers see the old rows until COMMIT."""
        from flows.bulk import copy_frame

        conn = self._arrow_conn()
        written = {}
        try:
            with conn.cursor() as cur:
                for table in sorted({r.table for r in replacements}):
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", parameters=(table,))
            for rep in replacements:
                with conn.cursor() as cur:
                    cur.execute(rep.delete_sql, parameters=rep.params or None)
                written[rep.table] = copy_frame(conn, rep.table, rep.frame)
            conn.commit()
        except Exception as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            self._reset()
            raise _clean(exc, self.db) from None
        return written

    def _reset(self) -> None:
        """Drop the connections after an error so that the next call reconnects."""
        self.close()
