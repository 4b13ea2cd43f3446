"""A users×items interaction matrix that carries its ID ↔ index maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.kernels.codes import id_codes


def _index_of(sorted_ids: np.ndarray, ids) -> np.ndarray:
    """Return the positions of ``ids`` in ``sorted_ids`` (int64), -1 where absent."""
    ids = np.asarray(ids, dtype=np.int64)
    if sorted_ids.size == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    clipped = np.minimum(pos, sorted_ids.size - 1)
    return np.where(sorted_ids[clipped] == ids, clipped, -1).astype(np.int64)


@dataclass(frozen=True)
class InteractionMatrix:
    """A float32 CSR users×items matrix with the sorted user and item IDs of its rows/columns."""

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_arrays(cls, user_ids, item_ids, weights=None, *, all_items=None) -> InteractionMatrix:
        """Return the matrix of (user, item, weight) triples; duplicate pairs are summed.

        ``all_items`` adds columns for items without interactions (e.g. the whole catalogue).
        """
        users = np.asarray(user_ids, dtype=np.int64)
        items = np.asarray(item_ids, dtype=np.int64)
        w = np.ones(len(users), np.float32) if weights is None else np.asarray(weights, np.float32)
        if not len(users) == len(items) == len(w):
            raise ValueError("user_ids, item_ids and weights differ in length")
        uniq_users, (u_idx,) = id_codes(users)
        extra = [] if all_items is None else [np.asarray(all_items, dtype=np.int64)]
        uniq_items, (i_idx, *_) = id_codes(items, *extra)
        shape = (uniq_users.size, uniq_items.size)
        coo = sp.coo_matrix((w, (u_idx, i_idx)), shape=shape, dtype=np.float32)
        csr = coo.tocsr()  # sums duplicates
        csr.sum_duplicates()
        csr.sort_indices()
        return cls(csr, uniq_users, uniq_items)

    @property
    def shape(self) -> tuple[int, int]:
        """Return (n_users, n_items)."""
        return self.matrix.shape

    def user_index(self, ids) -> np.ndarray:
        """Return the row index of each user ID, -1 where absent."""
        return _index_of(self.user_ids, ids)

    def item_index(self, ids) -> np.ndarray:
        """Return the column index of each item ID, -1 where absent."""
        return _index_of(self.item_ids, ids)

    @classmethod
    def stacked(cls, parts: list[InteractionMatrix]) -> InteractionMatrix:
        """Return the matrix whose rows are `parts`' in order (users disjoint and ascending
        from one part to the next), over the union of their items: the matrix `from_arrays`
        makes of all their triples, entry for entry."""
        if len(parts) == 1:
            return parts[0]
        users = np.concatenate([part.user_ids for part in parts])
        if users.size > 1 and not np.all(users[1:] > users[:-1]):
            raise ValueError("the parts' users must be disjoint and in ascending order")
        items = np.unique(np.concatenate([part.item_ids for part in parts]))
        blocks = []
        for part in parts:
            columns = np.searchsorted(items, part.item_ids).astype(part.matrix.indices.dtype)
            m = part.matrix  # a monotone map of its columns: each row's indices stay sorted
            shape = (m.shape[0], items.size)
            blocks.append(sp.csr_matrix((m.data, columns[m.indices], m.indptr), shape=shape))
        csr = sp.vstack(blocks, format="csr", dtype=np.float32)
        csr.has_sorted_indices = True
        return cls(csr, users, items)
