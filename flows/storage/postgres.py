"""PostgreSQL backend: ADBC (Arrow) reads; psycopg publishes (binary COPY) and small statements."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import polars as pl
import psycopg

from flows.storage import bulk
from flows.storage.base import (
    Replacement,
    Storage,
    frame_from_batches,
    frame_parts,
    load_query,
)
from flows.storage.database import Database
from flows.storage.errors import StorageError, storage_error
from flows.storage.literals import inline
from flows.storage.swap_build import build_all_next

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT = "30min"  # no database call may hang a run forever
LOCK_TIMEOUT = "60s"
BOOKKEEPING_RETRY_S = (1, 3, 6)  # job rows, logs, timings: small statements worth retrying
# published by building a fresh table and swapping it in (publish_target() in migration 0012)
SWAPPED = frozenset({"content_similarity", "recommendation_data"})


def _swapped(replacements: Sequence[Replacement]) -> set[str]:
    """Return the tables to publish by swapping: SWAPPED ones replaced whole, once."""
    tables = [r.table for r in replacements]
    return {
        r.table
        for r in replacements
        if r.every_row and r.table in SWAPPED and tables.count(r.table) == 1
    }


def _apply(
    conn, replacements: Sequence[Replacement], swapped: set[str], job_id: int | None = None
) -> dict[str, int]:
    """Apply the replacements inside the open transaction of `conn`; swap in the built tables.

    Returns rows per table replaced here (the swapped tables were loaded before). The
    caller holds the publish's advisory locks (_lock_statements). With `job_id`, the job
    records that its results are live, in this same transaction.
    """
    written = {}
    for rep in replacements:
        if rep.table not in swapped:
            conn.execute(rep.delete_sql, rep.params or None)
            parts = frame_parts(rep.frame)
            written[rep.table] = sum(bulk.copy_frame(conn, rep.table, f) for f in parts)
    if job_id is not None:
        conn.execute(load_query("tracking/publish_committed"), (job_id,))
    if swapped:  # last: its ACCESS EXCLUSIVE locks are held until COMMIT
        conn.execute(load_query("publish/swap"), (sorted(swapped),))
    return written


def _lock_statements(replacements: Sequence[Replacement]) -> list[tuple[str, tuple]]:
    """Return the advisory lock calls of a publish, in the one order every publish uses.

    A replacement of the whole table locks the table; one confined to dates (``days``)
    shares the table's lock and locks each of its dates (two-int keys: hashtext(table),
    the date ordinal), so publishes of disjoint dates run at once. Table locks come first,
    by name, then date locks in (table, date) order: no two publishes deadlock.
    """
    tables = {r.table for r in replacements}
    exclusive = {r.table for r in replacements if not r.days}
    statements = [
        (
            "SELECT pg_advisory_lock(hashtext($1))"
            if table in exclusive
            else "SELECT pg_advisory_lock_shared(hashtext($1))",
            (table,),
        )
        for table in sorted(tables)
    ]
    shared = [r for r in replacements if r.table not in exclusive]
    days = sorted({(r.table, day) for r in shared for day in r.days})
    statements += [("SELECT pg_advisory_lock(hashtext($1), $2::int)", key) for key in days]
    return statements


def _build_and_swap(
    conn,
    replacements: Sequence[Replacement],
    swapped: list[str],
    connect: Callable[[], Any],
    job_id: int | None = None,
    before_swap: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Build the swapped tables, then replace the others and swap in ONE transaction on `conn`.

    `before_swap` is called between the builds and that transaction. On failure the built
    <table>_next tables are discarded before the error goes on.
    """
    frames = {r.table: r.frame for r in replacements if r.table in swapped}
    try:
        written = build_all_next(connect, frames)
        if before_swap is not None:
            before_swap()
        with conn.transaction():
            return written | _apply(conn, replacements, set(swapped), job_id)
    except BaseException:
        if swapped:  # never swapped in: their disk space back now, not at the next publish
            with contextlib.suppress(Exception):
                conn.execute(load_query("publish/discard"), (swapped,))
        raise


def _publish_on(
    conn,
    replacements: Sequence[Replacement],
    connect: Callable[[], Any],
    job_id: int | None = None,
    before_swap: Callable[[], None] | None = None,
) -> tuple[dict[str, int], list[str]]:
    """Run one publish from `conn` (autocommit); return rows written per table, swapped tables.

    `conn` takes session advisory locks first (``_lock_statements``: every table, or the
    dates of a dated replacement) and keeps them until it is closed, so no other publish
    replaces a <table>_next between its build (on connections from `connect`) and the swap,
    nor the same dates at once, nor prepares one before the replaced tables are dropped
    (``_drop_replaced``, after this returns).
    """
    swapped = sorted(_swapped(replacements))
    for statement, params in _lock_statements(replacements):
        conn.execute(statement, params)
    if swapped:  # left by a run killed after its COMMIT: dropped here, outside any swap lock
        conn.execute(load_query("publish/drop_old"), (swapped,))
    written = _build_and_swap(conn, replacements, swapped, connect, job_id, before_swap)
    return written, swapped


def _drop_replaced(conn, swapped: Sequence[str]) -> None:
    """Drop the tables a committed swap replaced, then close `conn` (ending its locks).

    Freeing gigabytes of files takes seconds of disk time; readers saw the new rows at the
    COMMIT already, so PostgresStorage runs this in the background until it is closed.
    """
    try:
        with contextlib.suppress(Exception):  # committed; else the next publish drops them
            conn.execute(load_query("publish/drop_old"), (list(swapped),))
    finally:
        _close_quietly(conn)


def _with_connect_timeout(url: str) -> str:
    """Return `url` with libpq's connect_timeout set unless it already is."""
    if "connect_timeout=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}connect_timeout={CONNECT_TIMEOUT_S}"


def _close_quietly(conn) -> None:
    """Close a connection; a broken one's error must not hide the error being raised."""
    with contextlib.suppress(Exception):
        conn.close()


def _clean(exc: BaseException, db: Database) -> StorageError:
    """Return a StorageError for `exc` whose message cannot hold the password."""
    return storage_error(exc, db.display)


class PostgresStorage(Storage):
    """Storage on PostgreSQL; each publish replaces its tables in one transaction."""

    publishers = 2  # each publish has a connection of its own; the server uses a core each
    readers = 2  # each read has an ADBC connection of its own (extract: two tables at once)

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._idle_arrow: queue.SimpleQueue = queue.SimpleQueue()  # ADBC, between reads
        self._small = None
        self._claims: list[int] = []  # jobs this process's runs hold (claim_job)
        self._dropping: list[threading.Thread] = []  # replaced tables dropped after a publish

    # connections ------------------------------------------------------------------------------
    def _new_arrow_conn(self):
        """Return a new ADBC connection with the pipeline's timeouts, in UTC."""
        import adbc_driver_postgresql.dbapi as adbc  # lazy: 0.35 s, for the reads only

        try:
            conn = adbc.connect(_with_connect_timeout(self.db.url))
        except Exception as exc:
            raise _clean(exc, self.db) from None
        try:
            with conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
                cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
                cur.execute("SET TIME ZONE 'UTC'")
            conn.commit()
        except Exception as exc:
            _close_quietly(conn)
            raise _clean(exc, self.db) from None
        return conn

    @contextlib.contextmanager
    def _arrow_conn(self) -> Iterator[Any]:
        """Yield an ADBC connection for one read: an idle one or a new one.

        It goes back to the idle set afterwards, or is closed when the read failed (the next
        read reconnects). Each thread reading at once holds a connection of its own.
        """
        try:
            conn = self._idle_arrow.get_nowait()
        except queue.Empty:
            conn = self._new_arrow_conn()
        try:
            yield conn
        except BaseException:
            _close_quietly(conn)
            self._close_idle_arrow()  # they may be broken too (a restarted server, say)
            raise
        self._idle_arrow.put(conn)

    def _close_idle_arrow(self) -> None:
        while not self._idle_arrow.empty():
            with contextlib.suppress(queue.Empty):  # another thread took it meanwhile
                _close_quietly(self._idle_arrow.get_nowait())

    def _small_conn(self):
        if self._small is None or self._small.closed:
            self._small = self._psycopg_connect()
            for job_id in self._claims:  # a dropped connection lost them: the run lives on
                self._small.execute(load_query("tracking/claim_job"), (job_id,))
        return self._small

    def claim_job(self, job_id: int) -> None:
        """Hold `job_id` on the bookkeeping connection while this run lives (a session lock,
        taken again whenever that connection is opened again)."""
        opened = self._small is not None and not self._small.closed
        self._claims.append(job_id)
        if opened:
            self.execute("tracking/claim_job", (job_id,))
        else:
            self.execute_sql("SELECT 1")  # opening the connection takes every claim, this one too

    def release_job(self, job_id: int) -> None:
        """End this run's hold on `job_id`."""
        if job_id in self._claims:
            self._claims.remove(job_id)
            self.execute("tracking/release_job", (job_id,))

    def fail_dead_jobs(self, now) -> list[tuple[int, str]]:
        """Close the running jobs whose hold is free (their process died)."""
        return self.execute("tracking/fail_dead_jobs", (now,))

    def _psycopg_connect(self):
        """Return a new autocommit psycopg connection ($1 placeholders, timeouts, UTC)."""
        try:
            return psycopg.connect(
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

    def close(self) -> None:
        """Wait for the replaced tables to be dropped, then close every connection."""
        while self._dropping:
            self._dropping.pop().join()
        self._close_idle_arrow()
        if self._small is not None:
            _close_quietly(self._small)
        self._small = None

    # interface --------------------------------------------------------------------------------
    def check(self, retry: bool = True) -> None:
        """Raise StorageError when the server is unreachable or the schema is missing.

        `retry=False` (a command's preflight) reports a refused connection at once; a run
        under way retries what may heal (a server restarting).
        """
        sql = "SELECT to_regclass('public.play_history') IS NOT NULL"
        rows = self.execute_sql(sql) if retry else self._execute_once(sql, ())
        if not rows[0][0]:
            raise StorageError(
                f"{self.db.display} has no Rotation schema; run `rotation db migrate`"
            )
        self.require_current_schema()

    def read(
        self, query: str, params: Sequence[Any] = (), categorical: Sequence[str] = ()
    ) -> pl.DataFrame:
        """Return the named query's rows through ADBC as a polars frame, batch by batch."""
        try:
            with self._arrow_conn() as conn, conn.cursor() as cur:
                sql, bound = inline(load_query(query), params)  # no parameters: COPY stream
                cur.execute(sql, parameters=bound or None)
                frame = frame_from_batches(cur.fetch_record_batch(), categorical)
                self._end_read(conn)
        except StorageError:
            raise
        except Exception as exc:
            raise _clean(exc, self.db) from None
        return frame

    def _end_read(self, conn) -> None:
        """End the read's transaction (each read sees the database as it is when it starts)."""
        conn.commit()

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

    def cleanup(
        self, retention_days: int, now, play_retention_days: int | None = None
    ) -> dict[str, int]:
        """Call cleanup_old_analytics_data (the SQL function: whole monthly partitions of
        events) and return its counts."""
        params = (retention_days, now, play_retention_days)
        return dict(self.execute("publish/cleanup_postgres", params))

    def publish(
        self,
        replacements: Sequence[Replacement],
        job_id: int | None = None,
        before_swap: Callable[[], None] | None = None,
    ) -> dict[str, int]:
        """Apply every replacement in ONE transaction; return rows written per table.

        SWAPPED tables replaced whole are first loaded into a fresh <table>_next and indexed,
        each on its own connection and all at once (sql/postgres/0012_publish_swap.sql);
        then one transaction replaces the other tables by DELETE + COPY and swaps every
        <table>_next in. Readers see the old rows of every table until that COMMIT; the
        replaced tables are dropped after it, in the background until `close` (which waits).
        """
        conn = self._psycopg_connect()  # its own: one publish transaction
        try:
            written, swapped = _publish_on(
                conn, replacements, self._psycopg_connect, job_id, before_swap
            )
        except BaseException as exc:
            _close_quietly(conn)  # its advisory locks go with it
            if not isinstance(exc, Exception):
                raise
            self._reset()
            raise _clean(exc, self.db) from None
        if not swapped:  # nothing to drop: its locks end now
            _close_quietly(conn)
            return written
        dropping = threading.Thread(
            target=_drop_replaced, args=(conn, swapped), name="publish-drop-replaced"
        )
        dropping.start()
        self._dropping.append(dropping)
        return written

    def _reset(self) -> None:
        """Drop the connections after an error so that the next call reconnects."""
        self.close()
