"""Vectorised helpers shared by the synthetic data generator (numpy in, polars out)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
UTC_US = pl.Datetime("us", "UTC")
TABLE_SIZE = 1 << 20  # inverse-CDF buckets for large weighted draws
TABLE_MIN_WEIGHTS = 1024


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """Return a Generator seeded by (seed, stream) so each table draws independently."""
    key = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, key])


def pick(values: Sequence[str], idx: np.ndarray) -> pl.Series:
    """Return a Utf8 series of values[idx] (a gather from a tiny series, no Python loop)."""
    return pl.Series(list(values), dtype=pl.Utf8).gather(np.asarray(idx, dtype=np.int64))


def weighted(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """Return n indices drawn with probability proportional to `weights`.

    Many draws from many weights use an inverse-CDF lookup table of TABLE_SIZE buckets (a
    gather instead of a binary search per draw; probabilities exact to 1 / TABLE_SIZE).
    """
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    u = rng.random(n)
    if len(cdf) < TABLE_MIN_WEIGHTS or n < 4 * TABLE_SIZE:
        return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1)
    mids = (np.arange(TABLE_SIZE) + 0.5) * (cdf[-1] / TABLE_SIZE)
    table = np.minimum(np.searchsorted(cdf, mids, side="right"), len(cdf) - 1)
    return table[(u * TABLE_SIZE).astype(np.int64)]


def categorical(rng: np.random.Generator, probs: Sequence[float], n: int) -> np.ndarray:
    """Return n category indices drawn from the (unnormalised) probabilities `probs`."""
    return weighted(rng, np.asarray(probs, dtype=np.float64), n)


def uniform_us(rng: np.random.Generator, lo: np.ndarray | int, hi: np.ndarray | int, n: int):
    """Return n int64 microsecond timestamps uniform in [lo, hi) (hi clipped to lo + 1)."""
    lo = np.asarray(lo, dtype=np.int64)
    span = np.maximum(np.asarray(hi, dtype=np.int64) - lo, 1)
    return lo + (rng.random(n) * span).astype(np.int64)


def ts(us: np.ndarray) -> pl.Series:
    """Return int64 microseconds since the epoch as a Datetime('us', 'UTC') series."""
    return pl.Series(np.asarray(us, dtype=np.int64)).cast(UTC_US)


def list_column(offsets: np.ndarray, values: pl.Series) -> pl.Series:
    """Return a List series whose row i holds values[offsets[i]:offsets[i+1]]."""
    arr = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values.to_arrow())
    return pl.Series(arr)


def unique_ids(rng: np.random.Generator, n: int, start: int, max_step: int) -> np.ndarray:
    """Return n distinct, shuffled int64 ids (random increments from `start`)."""
    ids = start + np.cumsum(rng.integers(1, max_step, n, dtype=np.int64))
    return rng.permutation(ids)


def top_k_without_replacement(
    rng: np.random.Generator, weights: np.ndarray, n: int, k: int
) -> np.ndarray:
    """Return an (n, k) array of distinct category indices per row (Gumbel top-k)."""
    keys = np.log(np.asarray(weights, dtype=np.float64)) + rng.gumbel(size=(n, len(weights)))
    return np.argsort(-keys, axis=1)[:, :k]


def group_starts(sorted_groups: np.ndarray) -> np.ndarray:
    """Return, for each row of a sorted group array, the index of its group's first row."""
    n = len(sorted_groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], sorted_groups[1:] != sorted_groups[:-1]]))
    return np.repeat(starts, np.diff(np.append(starts, n)))


def concat(*parts: pl.Series | str) -> pl.Series:
    """Return the row-wise concatenation of series and literal strings as one Utf8 series."""
    exprs = [pl.lit(p) if isinstance(p, str) else pl.lit(p).cast(pl.Utf8) for p in parts]
    return pl.select(pl.concat_str(exprs)).to_series()


def names(rng: np.random.Generator, first: Sequence[str], second: Sequence[str], n: int):
    """Return n 'First Second' strings drawn from two word lists."""
    a = pick(first, rng.integers(0, len(first), n))
    b = pick(second, rng.integers(0, len(second), n))
    return concat(a, " ", b)
