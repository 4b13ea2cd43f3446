"""A read replica: where a run's heavy reads may go, the guard that it is fresh, and the one
snapshot its reads share.

A replica (`--replica`, ROTATION_REPLICA_URL or the Prefect Secret block rotation-replica-url:
flows/storage/secrets.py) must be a streaming hot standby of the database. Before anything is
read there, the run takes the primary's WAL position and waits until the standby has replayed
it (`pg_last_wal_replay_lsn()`, not the replay timestamp, which stalls while the primary is
idle): every transaction committed on the primary before the run started is then visible on
the standby. A standby that does not catch up within the wait fails the run with one line;
nothing is computed on stale data. Publishing and the job rows stay on the primary.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flows.storage.base import Storage, load_query
from flows.storage.database import Database
from flows.storage.errors import StorageError
from flows.storage.postgres import PostgresStorage, _clean, _close_quietly

SECRET_BLOCK = "rotation-replica-url"
POLL_S = (0.05, 2.0)  # first and longest pause between two looks at the standby
PROGRESS_EVERY_S = 5.0  # a waiting run says so (job row, progress line) this often
#: What pg_export_snapshot() returns (e.g. 00000003-0000001B-1): checked before it is
#: spliced into SET TRANSACTION SNAPSHOT, which takes no parameter.
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


@dataclass(frozen=True)
class StandbyState:
    """What the standby says of itself, compared with the primary's position."""

    in_recovery: bool
    cluster: str
    replayed: str | None
    behind: float | None  # bytes of WAL still to replay (None: it has replayed nothing)
    paused: bool | None

    @property
    def caught_up(self) -> bool:
        """Return True once the standby has replayed up to the primary's position."""
        return self.behind is not None and self.behind <= 0


def _size(n_bytes: float | None) -> str:
    """Return a byte count as a short human text (1.5 MiB)."""
    if n_bytes is None:
        return "an unknown amount"
    value, unit = float(n_bytes), "bytes"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"


def primary_position(primary: Storage) -> tuple[str, str]:
    """Return the primary's current WAL position and its cluster's system identifier."""
    position, cluster = primary.execute("replica/primary_position")[0]
    return position, cluster


def standby_state(standby: PostgresStorage, position: str) -> StandbyState:
    """Return the standby's state against the primary's WAL `position`."""
    in_recovery, cluster, replayed, behind, paused = standby.execute(
        "replica/standby_position", (position,)
    )[0]
    behind = None if behind is None else float(behind)  # numeric: a Decimal
    return StandbyState(in_recovery, cluster, replayed, behind, paused)


def refuse_non_standby(
    state: StandbyState, cluster: str, replica: Database, primary: Database
) -> None:
    """Raise StorageError (one line) unless the state is that of a standby of `primary`."""
    if not state.in_recovery:
        raise StorageError(
            f"--replica {replica.display} is not a standby (pg_is_in_recovery() is false "
            "there): nothing would say how fresh it is; give a streaming replica of "
            f"{primary.display}, or leave out --replica"
        )
    if state.cluster != cluster:
        raise StorageError(
            f"--replica {replica.display} is not a standby of {primary.display}: it replays "
            f"another cluster (system identifier {state.cluster}, the database's is {cluster})"
        )


def check_replica(primary: Storage, replica: Database, retry: bool = True) -> None:
    """Raise StorageError (one line) when `replica` cannot serve `primary`'s reads: unreachable,
    no Rotation schema, not a standby, or a standby of another cluster."""
    position, cluster = primary_position(primary)
    with PostgresStorage(replica) as standby:
        standby.check(retry)
        refuse_non_standby(standby_state(standby, position), cluster, replica, primary.db)


def wait_for_replica(
    primary: Storage, replica: Database, wait_s: float, say: Callable[[str], None]
) -> str:
    """Return the primary's WAL position once `replica` has replayed it; StorageError (one line)
    when it is no standby of the primary or has not caught up within `wait_s` seconds."""
    position, cluster = primary_position(primary)
    started, shown, pause = time.monotonic(), None, POLL_S[0]
    with PostgresStorage(replica) as standby:
        while True:
            state = standby_state(standby, position)
            refuse_non_standby(state, cluster, replica, primary.db)
            if state.caught_up:
                return position
            waited = time.monotonic() - started
            if waited >= wait_s:
                raise StorageError(_too_late(replica, position, state, wait_s))
            if shown is None or waited - shown >= PROGRESS_EVERY_S:
                say(
                    f"waiting for the replica to replay the primary's WAL to {position} "
                    f"({_size(state.behind)} behind{', replay paused' if state.paused else ''}; "
                    f"{waited:.0f} s of {wait_s:g} s)"
                )
                shown = waited
            time.sleep(min(pause, wait_s - waited))
            pause = min(pause * 2, POLL_S[1])


def _too_late(replica: Database, position: str, state: StandbyState, wait_s: float) -> str:
    """Return the one line of a replica that did not catch up in time."""
    paused = "; replay is paused there (pg_wal_replay_resume())" if state.paused else ""
    return (
        f"replica {replica.display} is {_size(state.behind)} behind the primary: it has "
        f"replayed WAL to {state.replayed or 'nothing'}, not to {position} (the primary's "
        f"position when the run started) after {wait_s:g} s (--replica-wait){paused}; "
        "nothing was read from it"
    )


#: A shard reader's work_mem. Its slice of an event table is read by a bitmap heap scan of the
#: (user_id, time) index; past work_mem the bitmap turns lossy (a page, not its rows), and
#: every row of a lossy page is read and rechecked: at L's 4MB default, 2.9 × the shard's
#: rows. 64MB keeps a bitmap exact up to about a million heap pages (8 GB) per partition.
BITMAP_WORK_MEM = "64MB"


class SharedSnapshotStorage(PostgresStorage):
    """Reads only, every one in ONE snapshot: the first ADBC connection opens a REPEATABLE
    READ, READ ONLY transaction and exports its snapshot, each other connection imports it
    (SET TRANSACTION SNAPSHOT; both work on a hot standby), and no read commits until close.

    The extract still reads ``readers`` tables at once, so the replica's replay between two
    reads cannot make the tables disagree (a play of a track not read yet, say).
    """

    def __init__(
        self, db: Database, snapshot: str | None = None, *, by_index: bool = False
    ) -> None:
        """`snapshot`: import that one (exported by another process's storage, still open)
        in every connection, instead of exporting one. `by_index`: no sequential scan where
        an index serves, and bitmaps kept exact (a shard's slice of a table: read through the
        user id index, its rows only, not the whole table's)."""
        super().__init__(db)
        if snapshot is not None and not SNAPSHOT_ID.fullmatch(snapshot):
            raise StorageError(f"unexpected snapshot id {snapshot!r}")
        self._snapshot: str | None = snapshot
        self._by_index = by_index
        self._opening = threading.Lock()  # the first connection exports before any imports

    def export_snapshot(self) -> str:
        """Return the shared snapshot's id, exported now unless a read already did: while this
        storage stays open, other processes read in it (``SharedSnapshotStorage(db, id)``)."""
        with self._arrow_conn():
            pass
        assert self._snapshot is not None  # the first connection exported it
        return self._snapshot

    def _new_arrow_conn(self):
        """Return a new ADBC connection inside the shared snapshot's transaction."""
        conn = super()._new_arrow_conn()
        with self._opening:
            try:
                with conn.cursor() as cur:
                    if self._by_index:
                        cur.execute("SET enable_seqscan = off")
                        cur.execute(f"SET work_mem = '{BITMAP_WORK_MEM}'")
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    if self._snapshot is None:
                        cur.execute(load_query("replica/export_snapshot"))
                        snapshot = cur.fetchone()[0]
                        if not SNAPSHOT_ID.fullmatch(snapshot):
                            raise StorageError(f"unexpected snapshot id {snapshot!r}")
                        self._snapshot = snapshot
                    else:
                        cur.execute(f"SET TRANSACTION SNAPSHOT '{self._snapshot}'")
            except Exception as exc:
                _close_quietly(conn)
                raise _clean(exc, self.db) from None
        return conn

    def _end_read(self, conn) -> None:
        """Keep the transaction open: the next read on this connection sees the same snapshot."""
