"""Extract: reads on several connections at once give the frames of one reader, errors stop it."""

from __future__ import annotations

import random
import threading
import time

import polars as pl
import pytest

from flows.stages.extract import Inputs, _sorted, extract_inputs, read_all
from flows.storage.backends import open_storage
from flows.storage.errors import StorageError
from tests.pipeline_fixtures import RUN_DATE, generate


@pytest.mark.postgres
def test_concurrent_reads_give_the_frames_of_one_reader(pg_database, monkeypatch):
    from flows.storage.postgres import PostgresStorage

    generate(pg_database)
    with open_storage(pg_database) as storage:
        assert isinstance(storage, PostgresStorage) and storage.readers == 2
        together = extract_inputs(storage, RUN_DATE, 30)
        assert storage._idle_arrow.qsize() == 2  # both connections kept for the next reads
        monkeypatch.setattr(storage, "readers", 1)
        alone = extract_inputs(storage, RUN_DATE, 30)
    assert together.plays.height > 0 and together.usage.height > 0
    for name in Inputs.__dataclass_fields__:
        assert getattr(together, name).equals(getattr(alone, name)), name
        assert getattr(together, name)[getattr(together, name).columns[0]].is_sorted(), name


@pytest.mark.postgres
def test_a_read_on_a_dropped_connection_fails_cleanly_and_the_next_one_reconnects(pg_database):
    from tests.pg_helpers import connect

    generate(pg_database)
    with open_storage(pg_database) as storage:
        first = storage.read("extract/users")
        with connect(pg_database) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StorageError) as failed:
            storage.read("extract/users")
        assert failed.value.transient
        assert storage._idle_arrow.qsize() == 0  # the broken connection was not kept
        assert storage.read("extract/users").equals(first)


class FakeStorage:
    """Reads that record their calls; usage fails once plays has started, plays take 0.5 s."""

    readers = 2

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.plays_started = threading.Event()

    def read(self, query, params=(), categorical=()):
        with self.lock:
            self.calls.append(query)
        if query == "extract/usage_metrics":
            assert self.plays_started.wait(5)
            raise StorageError("usage: connection lost", transient=True)
        if query == "extract/play_history":
            self.plays_started.set()
            time.sleep(0.5)
        return pl.DataFrame({"id": [2, 1]})


def test_a_failed_read_raises_its_error_and_the_queued_reads_never_start():
    storage = FakeStorage()
    reads = {
        "usage": ("extract/usage_metrics", (), ()),
        "plays": ("extract/play_history", (), ()),
        "users": ("extract/users", (), ()),
        "records": ("extract/records", (), ()),
    }
    with pytest.raises(StorageError, match="usage: connection lost"):
        read_all(storage, reads)
    assert sorted(storage.calls) == ["extract/play_history", "extract/usage_metrics"]


def test_one_reader_reads_in_order_and_sorts_each_frame_by_id():
    storage = FakeStorage()
    storage.readers = 1
    reads = {"records": ("extract/records", (), ()), "users": ("extract/users", (), ())}
    frames = read_all(storage, reads)
    assert storage.calls == ["extract/records", "extract/users"]
    assert [frame["id"].to_list() for frame in frames.values()] == [[1, 2], [1, 2]]


def test_a_chunked_frame_out_of_id_order_is_sorted_whole_by_id():
    ids = list(range(1_000))
    random.Random(7).shuffle(ids)
    parts = [
        pl.DataFrame(
            {
                "id": chunk,
                "text": [f"session-{i:06d}-long-enough" if i % 5 else None for i in chunk],
                "kind": pl.Series([("a", "b", "c")[i % 3] for i in chunk], dtype=pl.Categorical),
                "value": [float(i) / 3 for i in chunk],
            }
        )
        for chunk in (ids[i : i + 97] for i in range(0, len(ids), 97))
    ]
    frame = pl.concat(parts, rechunk=False)
    expected = frame.sort("id")
    assert frame.n_chunks() > 1
    result = _sorted(frame)
    assert result.equals(expected)
    assert result["id"].flags["SORTED_ASC"]
