"""ONNX lowerings of the convolutions (`schema/layers/conv.py`): Conv1D/2D/3D,
DepthwiseConv1D/2D, SeparableConv1D/2D, Conv1D/2D/3DTranspose.

Keras's kernels are (*window, in, out) on channels-last tensors; ONNX's Conv takes
(out, in / groups, *window) on channels-first ones, so the kernel is transposed once,
at export, and the input/output between two Transposes. Padding follows XLA's `same`
rule (see `pooling.same_pads`, dilation included); Conv1D's `causal` pads
`dilation * (kernel - 1)` steps at the start, as Keras does. The depthwise kernel
(*window, C, M) becomes C groups of M filters (output channel c * M + i), and the
separable convolution is that followed by a 1x1 Conv. Inputs are cast to the kernel's
float32 (ints too, as Keras's conv does). Conventions: see `graph.py`.
"""

from __future__ import annotations

import numpy as np

from modelspec.compiler.layers.onnx.activations import activation
from modelspec.compiler.layers.onnx.graph import OnnxGraph
from modelspec.compiler.layers.onnx.pooling import padding_attrs
from modelspec.schema.layers.conv_shapes import output_padding, transpose_pads, window
from modelspec.schema.layers.shape_math import int_tuple


def onnx_kernel(kernel: np.ndarray) -> np.ndarray:
    """(*window, in, out) -> (out, in, *window)."""
    rank = kernel.ndim - 2
    return np.ascontiguousarray(np.transpose(kernel, (rank + 1, rank, *range(rank))))


def dynamic_same_pad(g: OnnxGraph, x: str, window_, strides, dilation) -> str:
    """XLA's `same` pads computed from the runtime shape of channels-first `x` (unknown
    spatial sizes), applied with a Pad: onnxruntime's `auto_pad=SAME_UPPER` refuses
    dilated convolutions."""
    rank = len(window_)
    spatial = g.node("Slice", [g.node("Shape", [x]), g.ints([2]), g.ints([2 + rank])])
    s = g.ints(strides)
    out = g.binary("Div", g.binary("Add", spatial, g.ints([v - 1 for v in strides])), s)
    span = g.ints([(k - 1) * d + 1 for k, d in zip(window_, dilation, strict=True)])
    need = g.binary(
        "Sub",
        g.binary("Add", g.binary("Mul", g.binary("Sub", out, g.ints([1] * rank)), s), span),
        spatial,
    )
    total = g.binary("Max", need, g.ints([0] * rank))
    begin = g.binary("Div", total, g.ints([2] * rank))
    end = g.binary("Sub", total, begin)
    pads = g.node("Concat", [g.ints([0, 0]), begin, g.ints([0, 0]), end], {"axis": 0})
    return g.node("Pad", [x, pads, g.const(0.0)])


def conv(
    g: OnnxGraph, x: str, kernel: np.ndarray, bias, *, t, strides, dilation, padding, groups=1
) -> str:
    """One channels-first Conv on channels-last `x` (type `t`), returned channels-last."""
    rank = kernel.ndim - 2
    window_ = kernel.shape[:rank]
    attrs = {
        "kernel_shape": list(window_),
        "strides": list(strides),
        "dilations": list(dilation),
        "group": groups,
    }
    x = g.to_channels_first(x, t.rank)
    if padding == "causal":
        attrs["pads"] = [dilation[0] * (window_[0] - 1), 0]
    elif padding == "same" and any(d is None for d in t.shape[1:-1]):
        x = dynamic_same_pad(g, x, window_, strides, dilation)
    else:
        attrs.update(padding_attrs(padding, t.shape[1:-1], window_, strides, dilation))
    inputs = [x, g.initializer(onnx_kernel(kernel), "kernel")]
    if bias is not None:
        inputs.append(g.initializer(bias, "bias"))
    return g.to_channels_last(g.node("Conv", inputs, attrs), t.rank)


def lower_conv(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    rank = layer.rank
    x = g.cast_if(x, t.dtype, "float32")
    y = conv(
        g,
        x,
        weights["kernel"],
        weights.get("bias"),
        t=t,
        strides=int_tuple(layer.strides, rank, "strides"),
        dilation=int_tuple(layer.dilation_rate, rank, "dilation_rate"),
        padding=layer.padding,
        groups=layer.groups,
    )
    return activation(g, y, layer.activation)


def _depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """(*window, C, M) -> (*window, 1, C * M), Keras's depthwise layout as one conv."""
    return kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])


def lower_depthwise_conv(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    _, strides, dilation = window(layer, layer.rank)
    x = g.cast_if(x, t.dtype, "float32")
    kernel = weights["kernel"]
    y = conv(
        g,
        x,
        _depthwise_kernel(kernel),
        weights.get("bias"),
        t=t,
        strides=strides,
        dilation=dilation,
        padding=layer.padding,
        groups=kernel.shape[-2],
    )
    return activation(g, y, layer.activation)


def lower_separable_conv(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    _, strides, dilation = window(layer, layer.rank)
    x = g.cast_if(x, t.dtype, "float32")
    dw = weights["depthwise_kernel"]
    y = conv(
        g,
        x,
        _depthwise_kernel(dw),
        None,
        t=t,
        strides=strides,
        dilation=dilation,
        padding=layer.padding,
        groups=dw.shape[-2],
    )
    mid = type(t)((None,) * t.rank, "float32")  # only the rank matters for a 1x1 conv
    y = conv(
        g,
        y,
        weights["pointwise_kernel"],
        weights.get("bias"),
        t=mid,
        strides=(1,) * layer.rank,
        dilation=(1,) * layer.rank,
        padding="valid",
    )
    return activation(g, y, layer.activation)


def _transpose_attrs(layer, kernel_shape) -> dict:
    """ConvTranspose attributes equal to `lax.conv_transpose` with Keras's (left, right)
    pads: ONNX pads the dilated input by span - 1 - pad on each side (its `pads` crop the
    full output), so a right pad beyond span - 1 (`valid`'s extra steps) becomes
    `output_padding`: steps past the full output, which no input reaches in either
    graph (only the bias)."""
    rank = layer.rank
    k, s, d = window(layer, rank)
    out_pad = output_padding(layer, rank, s) or (None,) * rank
    begins, ends, extras = [], [], []
    for kk, ss, dd, pp in zip(k, s, d, out_pad, strict=True):
        left, right = transpose_pads(kk, ss, dd, layer.padding, pp)
        span = (kk - 1) * dd + 1
        begins.append(span - 1 - left)
        end = span - 1 - right
        ends.append(max(end, 0))
        extras.append(max(-end, 0))
    return {
        "kernel_shape": list(kernel_shape),
        "strides": list(s),
        "dilations": list(d),
        "pads": begins + ends,
        "output_padding": extras,
    }


def lower_conv_transpose(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """ONNX ConvTranspose: Keras's kernel (*window, filters, channels) is already the
    forward convolution's (in=filters, out=channels) kernel that ConvTranspose wants as
    (channels, filters, *window)."""
    kernel = weights["kernel"]
    attrs = _transpose_attrs(layer, kernel.shape[: layer.rank])
    x = g.to_channels_first(g.cast_if(x, t.dtype, "float32"), t.rank)
    inputs = [x, g.initializer(onnx_kernel(kernel), "kernel")]
    if "bias" in weights:
        inputs.append(g.initializer(weights["bias"], "bias"))
    y = g.to_channels_last(g.node("ConvTranspose", inputs, attrs), t.rank)
    return activation(g, y, layer.activation)
