"""The generator's taste strength (`explore_share`, #34): its default leaves the output
byte-identical to the generator before the parameter existed; other values weaken taste."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import polars as pl
import pytest

from transforms.synthetic.frames import generate_frames
from transforms.synthetic.people import EXPLORE_SHARE

END = dt.date(2026, 11, 1)
#: sha256 of `frames_digest` computed with the generator of commit 35ac4fa, before
#: `explore_share` was added (polars 2.1.0's NDJSON writer), for (users, tracks, days, seed).
BEFORE = {
    (200, 2000, 30, 11): "5e9d7ce06d422ea3f00386f9bd80663a6d24af61ae205e1080b52b227e97c062",
    (300, 3000, 40, 5): "95f8149641131509981938589a5ca57f573568aca68f66856c606e8aa9980a94",
}


def frames_digest(frames: dict[str, pl.DataFrame]) -> str:
    """Return the sha256 of every frame's name and NDJSON rows, in the frames' order."""
    digest = hashlib.sha256()
    for name, frame in frames.items():
        buffer = io.BytesIO()
        frame.write_ndjson(buffer)
        digest.update(name.encode())
        digest.update(buffer.getvalue())
    return digest.hexdigest()


@pytest.mark.parametrize("size", sorted(BEFORE))
def test_default_taste_gives_the_same_bytes_as_before(size):
    users, tracks, days, seed = size
    assert frames_digest(generate_frames(users, tracks, days, seed, END)) == BEFORE[size]
    explicit = generate_frames(users, tracks, days, seed, END, explore_share=EXPLORE_SHARE)
    assert frames_digest(explicit) == BEFORE[size]


def completed_share(frames: dict[str, pl.DataFrame]) -> float:
    """Return the share of listens that end 'complete' (in-taste listens complete more)."""
    ends = frames["play_history"].filter(pl.col("action").is_in(["complete", "skip"]))
    return (ends["action"] == "complete").mean()


def test_weaker_taste_means_fewer_listens_in_taste():
    strong = generate_frames(200, 2000, 30, 11, END, explore_share=0.0)
    default = generate_frames(200, 2000, 30, 11, END)
    weak = generate_frames(200, 2000, 30, 11, END, explore_share=0.8)
    assert completed_share(strong) > completed_share(default) > completed_share(weak)
    assert weak["play_history"].height == default["play_history"].height
    with pytest.raises(ValueError, match="explore_share"):
        generate_frames(20, 200, 7, 1, END, explore_share=1.5)
