"""The bytes a result holds in its polars frames, for the results a Dask worker keeps.

Dask sizes an object it has no rule for by `sys.getsizeof`, i.e. its `__sizeof__`: a
dataclass of frames would pass for a few bytes of managed memory, never be spilled, and the
worker would run past its limit instead. The results the shard tasks keep (a shard's rows,
its summary, its partials) define `__sizeof__` as `frames_size(self)`.
"""

from __future__ import annotations

import dataclasses
import sys

import polars as pl


def frames_size(obj) -> int:
    """Return the bytes of the polars frames in `obj`: a frame, or dataclasses, dicts, lists
    and tuples holding frames; anything else counts its own size."""
    if isinstance(obj, pl.DataFrame):
        return int(obj.estimated_size())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(frames_size(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    if isinstance(obj, dict):
        return sum(frames_size(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(frames_size(v) for v in obj)
    return sys.getsizeof(obj)
