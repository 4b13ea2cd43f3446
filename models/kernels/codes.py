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
