"""An array whose rows are read only when a batch needs them.

Streamed image folders (`ImageFiles`: one file per row) and language-model corpora
(`TokenWindows`: one window of a memory-mapped token file per row) are too large to
hold in memory, yet the data code (`ArrayDataset` batches, validation splits, the
prefetching workers, resume) is written for arrays. A `LazyRows` has the shape and
dtype the materialized array would have and behaves like one where that code uses it:
`len`, `shape`, `size`, `nbytes`, slicing and fancy indexing (which give a smaller
`LazyRows` over the same source), `astype` (which records the cast) and `np.asarray`
(which reads every row). Rows are read by `read_into(rows, out)`, straight into a
batch's buffer, and nothing else is kept.

A subclass names what identifies each row (`keys`: file paths, window starts), the
shape of one row, how to make another view over other keys, and how to read rows.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

__all__ = ["LazyRows"]


class LazyRows:
    """Rows identified by `keys` (one per row), read on demand as `dtype`."""

    ndim: int

    def __init__(self, keys: np.ndarray, dtype: Any) -> None:
        self.keys = keys
        self.dtype = np.dtype(dtype)

    # -- what a subclass defines --------------------------------------------------------
    @property
    def row_shape(self) -> tuple[int, ...]:
        """The shape of one row."""
        raise NotImplementedError

    def _like(self, keys: np.ndarray, dtype: np.dtype) -> Self:
        """Another view over the same source: rows `keys`, read as `dtype`."""
        raise NotImplementedError

    def read_into(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Read rows `rows` (indices into this view) into `out`, cast to its dtype."""
        raise NotImplementedError

    # -- the array protocol the data code uses ------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.keys), *self.row_shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes the rows would take read (they never are, all at once)."""
        return self.size * self.itemsize

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, rows: Any) -> Self:
        """The rows `rows` (a slice or 1-D integer indices), still not read."""
        if isinstance(rows, slice):
            return self._like(self.keys[rows], self.dtype)
        index = np.asarray(rows)
        if index.ndim != 1 or index.dtype.kind not in "iu":
            name = type(self).__name__
            raise TypeError(f"{name} rows must be a slice or 1-D indices, not {rows!r}")
        return self._like(self.keys[index], self.dtype)

    def astype(self, dtype: Any, copy: bool = True) -> Self:
        """The same rows, read as `dtype` (the model input's dtype)."""
        return self._like(self.keys, np.dtype(dtype))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.dtype)
        self.read_into(np.arange(len(self)), out)
        return out if dtype is None else out.astype(dtype, copy=False)
