"""ONNX lowerings of the feature preprocessing layers (`schema/layers/features.py`):
Normalization, Discretization, CategoryEncoding.

The state — written in the spec or adapted (the layer's `mean`/`variance` and
`bin_boundaries` weights) — is known at export, so it becomes constants. Normalization
divides by `max(sqrt(variance), 1e-7)` computed once in float32 (sqrt is correctly
rounded in both). Discretization is `jnp.digitize`, reproduced step by step: its
`searchsorted` is a fixed number of binary-search steps (`_searchsorted_via_scan`), so
the ONNX graph takes the same steps (Gather, Less, Where), which gives JAX's answer
even for boundaries that are not sorted; decreasing boundaries take digitize's
reversed branch. The encodings follow `compiler/layers/features.encode`: one-hot by
comparing with 0..depth-1 (out-of-range indices encode as zeros, like
`jax.nn.one_hot`), its max (`multi_hot`) or sum (`count`) over axis 1.
Conventions: see `graph.py`.
"""

from __future__ import annotations

import math

import numpy as np

from modelspec.compiler.layers.onnx.graph import OnnxGraph

EPSILON = np.float32(1e-7)
"""Keras's `backend.epsilon()`: the floor of sqrt(variance)."""


def _expanded(values, written: tuple[int, ...], kept: tuple[int, ...], rank: int) -> np.ndarray:
    """The written `mean`/`variance` aligned with the kept axes from the right (as
    Keras, `compiler/layers/features.Normalization`), 1 elsewhere: broadcastable."""
    expanded = [1] * rank
    for i, size in enumerate(reversed(written)):
        expanded[kept[-1 - i]] = size
    return np.reshape(np.asarray(values, np.float32), expanded)


def lower_normalization(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """`(x - mean) / scale`, or `mean + x * scale` with `invert`."""
    kept = layer.kept_axes(t)
    if layer.mean is None:
        broadcast = [t.shape[d] if d in kept else 1 for d in range(t.rank)]
        mean = weights["mean"].astype(np.float32).reshape(broadcast)
        variance = weights["variance"].astype(np.float32).reshape(broadcast)
    else:
        written, _ = layer.constants(t)
        mean = _expanded(layer.mean, written, kept, t.rank)
        variance = _expanded(layer.variance, written, kept, t.rank)
    scale = np.maximum(np.sqrt(variance), EPSILON).astype(np.float32)
    x = g.cast_if(x, t.dtype, "float32")
    m, s = g.initializer(mean, "mean"), g.initializer(scale, "scale")
    if layer.invert:
        return g.binary("Add", m, g.binary("Mul", x, s))
    return g.binary("Div", g.binary("Sub", x, m), s)


def _searchsorted_right(g: OnnxGraph, bins: np.ndarray, x: str) -> str:
    """`jnp.searchsorted(bins, x, side="right")` by JAX's scan method: from
    (low, high) = (0, n), ceil(log2(n + 1)) steps of mid = (low + high) // 2,
    going left where x < bins[mid]; the answer is `high` (int64)."""
    n = len(bins)
    table = g.const(bins.astype(np.float32))
    shape = g.node("Shape", [x])
    low = g.node("Expand", [g.const(0, "int64"), shape])
    high = g.node("Expand", [g.const(n, "int64"), shape])
    two = g.const(2, "int64")
    for _ in range(int(math.ceil(math.log2(n + 1)))):
        mid = g.binary("Div", g.binary("Add", low, high), two)
        left = g.binary("Less", x, g.node("Gather", [table, mid], {"axis": 0}))
        low, high = g.node("Where", [left, low, mid]), g.node("Where", [left, mid, high])
    return high


def _digitize(g: OnnxGraph, x: str, bins: np.ndarray) -> str:
    """`jnp.digitize(x, bins)` (right=False) for float32 `x`: int64 bucket indices
    (all 0 without boundaries)."""
    if len(bins) == 0:
        return g.node("Expand", [g.const(0, "int64"), g.node("Shape", [x])])
    if bins[-1] >= bins[0]:
        return _searchsorted_right(g, bins, x)
    reversed_ = _searchsorted_right(g, np.ascontiguousarray(bins[::-1]), x)
    return g.binary("Sub", g.const(len(bins), "int64"), reversed_)


def _one_hot(g: OnnxGraph, indices: str, depth: int, dtype: str) -> str:
    """`jax.nn.one_hot(indices, depth)`: float32 vectors on a new last axis, all zero
    for indices outside [0, depth); `indices` of `dtype` (ints as int64, or float)."""
    arange = g.const(np.arange(depth), dtype)
    hit = g.binary("Equal", g.node("Unsqueeze", [indices, g.ints([-1])]), arange)
    return g.cast(hit, "float32")


def encode(g: OnnxGraph, indices: str, mode: str, depth: int, dtype: str) -> str:
    """`compiler/layers/features.encode` on `indices` of `dtype` (int64 or a float
    type)."""
    if mode == "int":
        return g.cast(indices, "int32")
    if mode == "multi_hot":
        if dtype != "int64":  # Keras casts to int32 first (truncating floats)
            indices, dtype = g.cast(g.cast(indices, "int32"), "int64"), "int64"
        return g.node(
            "ReduceMax", [_one_hot(g, indices, depth, dtype)], {"axes": [1], "keepdims": 0}
        )
    if mode == "one_hot":
        return _one_hot(g, indices, depth, dtype)
    hot = _one_hot(g, indices, depth, dtype)
    return g.node("ReduceSum", [hot, g.ints([1])], {"keepdims": 0})


def lower_discretization(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Bucket indices of the float32 input, then encoded (`output_mode`)."""
    if layer.bin_boundaries is None:
        bins = np.asarray(weights["bin_boundaries"], np.float32).reshape(-1)
    else:
        bins = np.asarray(layer.bin_boundaries, np.float32)
    x = g.cast_if(x, t.dtype, "float32")
    indices = _digitize(g, x, bins)
    if layer.output_mode == "one_hot" and t.rank > 1 and t.shape[-1] == 1:
        indices = g.node("Squeeze", [indices, g.ints([-1])])
    y = encode(g, indices, layer.output_mode, layer.depth, "int64")
    return g.cast_if(y, "int32" if layer.output_mode == "int" else "float32", shape.output.dtype)


def lower_category_encoding(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """One-hot, multi-hot (`binary` too) or count vectors of `num_tokens`."""
    mode = "multi_hot" if layer.output_mode == "binary" else layer.output_mode
    dtype = t.dtype if t.dtype.startswith(("float", "bfloat")) else "int64"
    if dtype == "bfloat16":
        x, dtype = g.cast(x, "float32"), "float32"
    else:
        x = g.cast_if(x, t.dtype, dtype)
    if mode == "one_hot" and t.rank > 1 and t.shape[-1] == 1:
        x = g.node("Squeeze", [x, g.ints([-1])])
    y = encode(g, x, mode, layer.num_tokens, dtype)
    return g.cast_if(y, "float32", shape.output.dtype)
