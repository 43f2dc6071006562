"""Finding NaN, ±inf and overflowing values in data before step 1, in bounded memory.

One NaN in a feature or a regression target turns the loss into NaN within a step, and
the run then stops (TerminateOnNaN) or trains on garbage, long after the cause is
obvious. So float data is scanned before training like labels are, and the first bad
value is reported with its position. Values are judged *after* the cast to the model's
dtype, so `1e39` in a float64 file, finite there but `inf` as float32, is caught too.
The scan walks memory-mapped arrays in row chunks of at most `CHUNK_BYTES`, so it never
loads more than one chunk of a large file at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_BYTES = 64 << 20
"""Bytes of the source array scanned per step (plus the cast copy and a bool mask)."""


@dataclass(frozen=True)
class NonFinite:
    """Where `find_nonfinite` found values that are not finite in the model's dtype."""

    count: int
    index: tuple[int, ...]
    """Position of the first one: (row, then the position inside the sample)."""
    value: float
    """The first one as stored in the data (before the cast)."""


def find_nonfinite(array: np.ndarray, dtype: np.dtype) -> NonFinite | None:
    """Count the values of `array` (rows first, ndim >= 1) that are NaN or ±inf once
    cast to `dtype`; None when every value is finite."""
    if array.ndim == 0 or array.size == 0:
        return None
    finite_as = getattr(array, "finite_as", None)  # data read lazily that bounds its values
    if finite_as is not None and finite_as(dtype):  # (streamed images): nothing to decode
        return None
    row_bytes = max(1, array.itemsize * (array.size // array.shape[0]))
    step = max(1, CHUNK_BYTES // row_bytes)
    count, first, value = 0, None, 0.0
    for start in range(0, array.shape[0], step):
        chunk = np.asarray(array[start : start + step])
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~np.isfinite(chunk.astype(dtype, copy=False))
        n = int(np.count_nonzero(bad))
        if n and first is None:
            pos = np.unravel_index(int(np.argmax(bad)), bad.shape)
            first = (start + int(pos[0]), *(int(p) for p in pos[1:]))
            value = chunk[pos].item()
        count += n
    return None if first is None else NonFinite(count, first, value)
