"""ONNX lowerings of the normalization layers (`schema/layers/normalization.py`):
BatchNormalization (moving statistics: inference), LayerNormalization (with Keras's
`rms_scaling` variant), GroupNormalization, UnitNormalization, RMSNormalization.

Written as explicit arithmetic in Keras's order (`inv = rsqrt(var + epsilon) * gamma`,
`out = x * inv + (beta - mean * inv)`, variance = mean of squared deviations) rather
than with ONNX's fused operators, whose axis conventions (channels-first for
BatchNormalization, trailing axes only for LayerNormalization) would need transposes
for Keras's free choice of axes. BatchNormalization's affine map is folded into two
constants at export. Conventions: see `graph.py`.
"""

from __future__ import annotations

import numpy as np

from modelspec.compiler.layers.onnx.graph import OnnxGraph, to_float
from modelspec.schema.layers.shape_math import normalize_axes


def lower_batch_norm(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """x * inv + (beta - mean * inv), inv = gamma / sqrt(moving_variance + epsilon)."""
    x, dtype = to_float(g, x, t.dtype)
    (axis,) = normalize_axes(layer.axis, t)
    broadcast = [-1 if a == axis else 1 for a in range(t.rank)][1:]
    var = weights["moving_variance"].astype(np.float32)
    inv = (np.float32(1.0) / np.sqrt(var + np.float32(layer.epsilon))).astype(np.float32)
    if "gamma" in weights:
        inv = inv * weights["gamma"]
    res = -weights["moving_mean"] * inv
    if "beta" in weights:
        res = res + weights["beta"]
    scale = g.initializer(inv.astype(dtype).reshape(broadcast), "scale")
    shift = g.initializer(res.astype(dtype).reshape(broadcast), "shift")
    return g.binary("Add", g.binary("Mul", x, scale), shift)


def _moments(g: OnnxGraph, x: str, axes) -> tuple[str, str]:
    """(mean, biased variance) over `axes`, kept for broadcasting."""
    attrs = {"axes": list(axes), "keepdims": 1}
    mean = g.node("ReduceMean", [x], attrs)
    dev = g.binary("Sub", x, mean)
    return mean, g.node("ReduceMean", [g.binary("Mul", dev, dev)], attrs)


def _rsqrt(g: OnnxGraph, v: str, epsilon: float, dtype: str) -> str:
    return g.node("Reciprocal", [g.node("Sqrt", [g.binary("Add", v, g.const(epsilon, dtype))])])


def _affine(g: OnnxGraph, x, mean, var, gamma, beta, epsilon: float, dtype: str) -> str:
    """Keras's `_normalize`: x * inv + (beta - mean * inv)."""
    inv = _rsqrt(g, var, epsilon, dtype)
    if gamma is not None:
        inv = g.binary("Mul", inv, gamma)
    res = g.node("Neg", [g.binary("Mul", mean, inv)])
    if beta is not None:
        res = g.binary("Add", res, beta)
    return g.binary("Add", g.binary("Mul", x, inv), res)


def _weight(g: OnnxGraph, weights, name: str, broadcast, dtype: str) -> str | None:
    if name not in weights:
        return None
    return g.initializer(weights[name].astype(dtype).reshape(broadcast), name)


def lower_layer_norm(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    x, dtype = to_float(g, x, t.dtype)
    axes = normalize_axes(layer.axis, t)
    broadcast = [t.shape[a] if a in axes else 1 for a in range(t.rank)]
    gamma = _weight(g, weights, "gamma", broadcast, dtype)
    mean, var = _moments(g, x, axes)
    if layer.rms_scaling:  # Keras's variant: scaled by the variance, not centred
        y = g.binary("Mul", x, _rsqrt(g, var, layer.epsilon, dtype))
        return y if gamma is None else g.binary("Mul", y, gamma)
    beta = _weight(g, weights, "beta", broadcast, dtype)
    return _affine(g, x, mean, var, gamma, beta, layer.epsilon, dtype)


def lower_group_norm(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Reshape to (..., groups, channels/groups, ...), normalize over all but the batch
    and group axes, cast back to the input dtype, reshape, cast to the output dtype."""
    (a,) = normalize_axes(layer.axis, t)
    dim = t.shape[a]
    groups = dim if layer.groups == -1 else layer.groups
    dims = g.node("Shape", [x])
    grouped_shape = g.node(
        "Concat",
        [
            g.node("Slice", [dims, g.ints([0]), g.ints([a])]),
            g.ints([groups, dim // groups]),
            g.node("Slice", [dims, g.ints([a + 1]), g.ints([t.rank])]),
        ],
        {"axis": 0},
    )
    grouped, dtype = to_float(g, g.node("Reshape", [x, grouped_shape]), t.dtype)
    rank = t.rank + 1
    reduce = [i for i in range(1, rank) if i != a]
    broadcast = [groups if i == a else dim // groups if i == a + 1 else 1 for i in range(rank)]
    mean, var = _moments(g, grouped, reduce)
    gamma = _weight(g, weights, "gamma", broadcast, dtype)
    beta = _weight(g, weights, "beta", broadcast, dtype)
    y = _affine(g, grouped, mean, var, gamma, beta, layer.epsilon, dtype)
    y = g.node("Reshape", [g.cast_if(y, dtype, t.dtype), dims])
    return g.cast_if(y, t.dtype, shape.output.dtype)


def lower_unit_norm(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """x * min(1 / sqrt(sum(x^2, axis)), 1e12)."""
    x, dtype = to_float(g, x, t.dtype)
    axes = layer.axis if isinstance(layer.axis, list) else [layer.axis]
    squares = g.node("ReduceSum", [g.binary("Mul", x, x), g.ints(axes)], {"keepdims": 1})
    inv = g.node("Reciprocal", [g.node("Sqrt", [squares])])
    return g.binary("Mul", x, g.binary("Min", inv, g.const(1.0 / 1e-12, dtype)))


def lower_rms_norm(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """x * rsqrt(mean(x^2) + epsilon) * scale over the last axes, in the output dtype."""
    x, dtype = to_float(g, x, t.dtype)
    scale = weights["scale"]
    axes = list(range(t.rank - scale.ndim, t.rank))
    mean_sq = g.node("ReduceMean", [g.binary("Mul", x, x)], {"axes": axes, "keepdims": 1})
    y = g.binary("Mul", x, _rsqrt(g, mean_sq, layer.epsilon, dtype))
    y = g.binary("Mul", y, g.initializer(scale.astype(dtype), "scale"))
    return g.cast_if(y, dtype, shape.output.dtype)
