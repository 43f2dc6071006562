"""ONNX lowerings of the pooling layers (`schema/layers/pooling.py`): Max/Average
1D/2D/3D and the global poolings.

Keras is channels-last and ONNX's MaxPool/AveragePool channels-first, so windows are
pooled between two Transposes. `same` padding is XLA's: the total pad
`max((out - 1) * stride + window - size, 0)` with the odd element at the end, written
as explicit pads where the spatial size is known (`auto_pad=SAME_UPPER`, the same rule,
where it is not). Average pooling excludes padded elements from the count
(`count_include_pad=0`), as Keras's `same` does. Integer inputs are pooled in float64
(exact for these widths) and cast back: max pooling keeps their dtype, average pooling
of integers is refused (Keras sums them in their own type, which wraps around).
"""

from __future__ import annotations

import math

from modelspec.compiler.layers.onnx.graph import FLOATS, OnnxGraph, Unsupported, autocast, to_float
from modelspec.schema.layers.shape_math import int_tuple


def same_pads(sizes, window, strides, dilation=None) -> list[int] | None:
    """ONNX `pads` (all begins, then all ends) of XLA's SAME rule; None when a spatial
    size is unknown."""
    if any(s is None for s in sizes):
        return None
    dilation = dilation or (1,) * len(sizes)
    begins, ends = [], []
    for size, k, s, d in zip(sizes, window, strides, dilation, strict=True):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def padding_attrs(padding: str, sizes, window, strides, dilation=None) -> dict:
    """`pads` / `auto_pad` for Keras's valid/same."""
    rank = len(window)
    if padding == "valid":
        return {"pads": [0] * (2 * rank)}
    pads = same_pads(sizes, window, strides, dilation)
    return {"auto_pad": "SAME_UPPER"} if pads is None else {"pads": pads}


def _pool(g: OnnxGraph, op: str, layer, x: str, t, extra: dict) -> str:
    rank = layer.rank
    window = int_tuple(layer.pool_size, rank, "pool_size")
    strides = int_tuple(layer.strides, rank, "strides") if layer.strides is not None else window
    attrs = {"kernel_shape": list(window), "strides": list(strides), **extra}
    attrs.update(padding_attrs(layer.padding, t.shape[1:-1], window, strides))
    y = g.node(op, [g.to_channels_first(x, t.rank)], attrs)
    return g.to_channels_last(y, t.rank)


def _int_input(g: OnnxGraph, x: str, t, what: str) -> str:
    if t.dtype in ("int64", "uint64"):
        raise Unsupported(f"{what} on {t.dtype} inputs is not exported to ONNX yet", "inputs")
    return g.cast(x, "float64")


def lower_max_pool(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    if t.dtype in FLOATS:
        x, _ = autocast(g, x, t.dtype)
        return _pool(g, "MaxPool", layer, x, t, {})
    y = _pool(g, "MaxPool", layer, _int_input(g, x, t, layer.type), t, {})
    return g.cast(y, shape.output.dtype)


def lower_average_pool(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    if t.dtype in FLOATS:
        x, _ = autocast(g, x, t.dtype)
        return _pool(g, "AveragePool", layer, x, t, {"count_include_pad": 0})
    raise Unsupported(
        f"{layer.type} on {t.dtype} inputs is not exported to ONNX (Keras sums the windows "
        "in the integer type, which wraps around, and onnxruntime pools only floats)",
        "inputs",
    )


def _axes(layer) -> list[int]:
    return list(range(1, layer.rank + 1))


def lower_global_max_pool(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    attrs = {"axes": _axes(layer), "keepdims": int(layer.keepdims)}
    if t.dtype in FLOATS:
        x, _ = autocast(g, x, t.dtype)
        return g.node("ReduceMax", [x], attrs)
    y = g.node("ReduceMax", [_int_input(g, x, t, layer.type)], attrs)
    return g.cast(y, shape.output.dtype)


def lower_global_average_pool(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """The mean over the spatial axes (masks never reach here: the exporter refuses)."""
    x, _ = to_float(g, x, t.dtype)
    return g.node("ReduceMean", [x], {"axes": _axes(layer), "keepdims": int(layer.keepdims)})
