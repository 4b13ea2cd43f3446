"""Dense integer codes of id arrays: the row and column positions of sparse matrices."""

from __future__ import annotations

import numpy as np


def id_codes(*arrays: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return (the sorted distinct ids of `arrays`, each array's positions in them).

    Ids in a compact non-negative range (serial keys) are coded through a flag table in
    linear time; others by np.unique and a binary search.
    """
    values = [np.asarray(a, dtype=np.int64) for a in arrays]
    low = min((int(v.min()) for v in values if v.size), default=0)
    high = max((int(v.max()) for v in values if v.size), default=0)
    if low >= 0 and high < 4 * sum(v.size for v in values) + (1 << 20):
        present = np.zeros(high + 1, dtype=bool)
        for v in values:
            present[v] = True
        ids = np.flatnonzero(present)
        position = np.cumsum(present, dtype=np.int64) - 1
        return ids, [position[v] for v in values]
    ids = np.unique(np.concatenate(values))
    return ids, [np.searchsorted(ids, v) for v in values]


_GOLDEN = 0x9E3779B97F4A7C15


def id_hash(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """Return a uint64 hash of each id under `seed` (splitmix64's finaliser): the same for an
    id wherever it is computed, so a sample drawn by it does not depend on which other ids
    are in the array (a shard of users draws the same users as the whole)."""
    offset = np.uint64(_GOLDEN * (seed + 1) % 2**64)  # Python ints: no scalar overflow
    z = np.asarray(ids, dtype=np.int64).view(np.uint64) + offset
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def smallest_hashes(ids: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """Return the positions (ascending) of the `cap` ids with the smallest `id_hash` (ties
    by id): a seeded sample that shards agree on, each sending its own `cap` smallest."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size <= cap:
        return np.arange(ids.size)
    order = np.lexsort((ids, id_hash(ids, seed)))
    return np.sort(order[:cap])
