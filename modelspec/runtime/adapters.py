"""Keras's `adapt()` algorithms, on the host with numpy: the state a preprocessing
layer learns from its input over the training split.

Each function is named by its spec class's `adapter` reference and returns the values
of the layer's "adapted" variables by path. They reproduce what Keras computes for
`layer.adapt(x_train)` with the training split as one array (Keras's array path), so
the state equals Keras's bit for bit where Keras computes in numpy, and within float32
rounding otherwise. Numpy only: nothing here imports JAX or Keras.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelspec.errors import AdaptError  # noqa: F401 - raised by the adapters here


def normalization(layer: Any, data: np.ndarray) -> dict[str, np.ndarray]:
    """Keras's Normalization.adapt on an array: `np.mean` and `np.var` over every axis
    but the kept ones (the batch axis included)."""
    ndim = data.ndim
    kept = _kept(layer.axis, ndim)
    reduce = tuple(d for d in range(ndim) if d not in kept)
    return {
        "mean": np.asarray(np.mean(data, axis=reduce), np.float32),
        "variance": np.asarray(np.var(data, axis=reduce), np.float32),
    }


def _kept(axis: int | list[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return ()
    axes = [axis] if isinstance(axis, int) else axis
    return tuple(sorted(a + ndim if a < 0 else a for a in axes))


def discretization(layer: Any, data: np.ndarray) -> dict[str, np.ndarray]:
    """Keras's Discretization.adapt on an array: the summary of the sorted values
    (about 1 / epsilon points), compressed to `num_bins` quantiles; the boundaries are
    all but the last. Fewer values than that give fewer boundaries in Keras (a
    different number of buckets than declared), so they are refused."""
    values = np.asarray(data).astype("float32")
    summary = _merge(
        _summarize(values, layer.epsilon), np.array([[], []], "float32"), layer.epsilon
    )
    bounds = _compress(summary, 1.0 / layer.num_bins)[0, :-1]
    want = layer.num_bins - 1
    if bounds.shape[0] != want:
        raise AdaptError(
            f"adapting {layer.num_bins} bins on {values.size} values gives "
            f"{bounds.shape[0]} boundaries in Keras, not {want}",
            field="num_bins",
            hint="Use fewer bins, more training data, or give `bin_boundaries`.",
        )
    return {"bin_boundaries": np.asarray(bounds, np.float32)}


def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    """Keras's `summarize`: every step-th sorted value, each weighing `step`."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(np.size(values) / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1) :: int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def _merge(prev: np.ndarray, nxt: np.ndarray, epsilon: float) -> np.ndarray:
    """Keras's `merge_summaries`: concatenated, sorted by value, compressed."""
    merged = np.concatenate((prev, nxt), axis=1)
    merged = np.take(merged, np.argsort(merged[0]), axis=1)
    return _compress(merged, epsilon)


def _compress(summary: np.ndarray, epsilon: float) -> np.ndarray:
    """Keras's `compress_summary`: values at evenly spaced cumulative-weight quantiles."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_percents, summary[0])
    cum_weights = np.interp(percents, cum_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")
