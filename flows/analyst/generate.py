"""Fill a database with synthetic Rotation data: migrate, generate, bulk-load (COPY)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from importlib.resources.abc import Traversable

from flows.storage.backends import open_storage
from flows.storage.bulk import write_frames
from flows.storage.database import Database
from flows.storage.migrate import migrate
from flows.storage.partitions import partitions_for
from transforms.synthetic.frames import frame_sizes, generate_frames


def generate_into(
    db: Database,
    users: int,
    tracks: int,
    days: int,
    seed: int,
    end: dt.date | None = None,
    plays: int | None = None,
    events: int | None = None,
    progress: Callable[[str], None] | None = None,
    sql_dir: Traversable | None = None,
) -> dict[str, int]:
    """Return rows written per table after replacing db's input tables with synthetic data.

    `end` (default: today, UTC) is exclusive: events fall in the `days` days before it.
    `sql_dir` replaces the packaged migrations (a benchmark's older schema).
    """
    say = progress or (lambda line: None)
    end = end or dt.datetime.now(dt.UTC).date()
    applied = migrate(db, sql_dir)
    say(f"migrated {db.display}: {len(applied)} migration(s) applied")
    start = time.perf_counter()
    frames = generate_frames(users, tracks, days, seed, end, plays=plays, events=events)
    rows = sum(frame_sizes(frames).values())
    say(f"generated {rows:,} rows in {time.perf_counter() - start:.1f} s (seed {seed})")
    with open_storage(db) as storage:  # every event row straight into its month's partition
        made = partitions_for(storage, frames)
    if made:
        say(f"made {len(made)} monthly partition(s) for the generated events")
    start = time.perf_counter()
    counts = write_frames(db, frames, replace=True)
    say(f"loaded {sum(counts.values()):,} rows in {time.perf_counter() - start:.1f} s")
    return counts
