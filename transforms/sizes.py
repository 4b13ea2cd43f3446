"""The bytes a result holds in its polars frames, for the results a Dask worker keeps.

Dask sizes an object it has no rule for by `sys.getsizeof`, i.e. its `__sizeof__`: a
dataclass of frames would pass for a few bytes of managed memory, never be spilled, and the
worker would run past its limit instead. The results the shard tasks keep (a shard's rows,
its summary, its partials) define `__sizeof__` as `frames_size(self)`; a fitted model's
arrays are counted by `arrays_size`.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import polars as pl
import scipy.sparse as sp


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


def arrays_size(obj, seen: set[int] | None = None) -> int:
    """Return the bytes of the numpy arrays and scipy sparse matrices in `obj`'s attributes
    and in its attributes' attributes (a fitted model and its fitted parts), each once."""
    seen = set() if seen is None else seen
    if obj is None or id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if sp.issparse(obj):
        parts = ("data", "indices", "indptr", "row", "col")
        return sum(arrays_size(getattr(obj, name, None), seen) for name in parts)
    if isinstance(obj, list | tuple):
        return sum(arrays_size(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return sum(arrays_size(v, seen) for v in vars(obj).values())
    return 0
