"""Shape rules: Conv1D, Conv2D, pooling and global pooling (channels-last)."""

from __future__ import annotations

from modelspec.compiler.shapes.registry import as_tuple, float_out, known_last, need_rank, rule
from modelspec.compiler.types import Dim, LayerShape, ParamInfo, ShapeError, TensorType


def window_out(size: Dim, window: int, stride: int, dilation: int, padding: str) -> Dim:
    """Output length of a sliding window (Keras/XLA rule)."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    span = dilation * (window - 1) + 1
    return (size - span) // stride + 1 if size >= span else 0


@rule("Conv1D", "Conv2D")
def conv(layer, x: TensorType) -> LayerShape:
    n = 1 if layer.type == "Conv1D" else 2
    need_rank(x, n + 2, "(batch, " + ("steps" if n == 1 else "height, width") + ", channels)")
    k = as_tuple(layer.kernel_size, n, "kernel_size")
    s = as_tuple(layer.strides, n, "strides")
    d = as_tuple(layer.dilation_rate, n, "dilation_rate")
    if max(s) > 1 and max(d) > 1:
        raise ShapeError(
            "strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)",
            field="strides",
            received=f"strides={layer.strides}",
        )
    c = known_last(x)
    g = layer.groups
    if c % g or layer.filters % g:
        raise ShapeError(
            f"input channels ({c}) and filters ({layer.filters}) must both be divisible by groups",
            field="groups",
            received=f"groups={g}",
        )
    spatial = tuple(window_out(x.shape[1 + i], k[i], s[i], d[i], layer.padding) for i in range(n))
    if any(o == 0 for o in spatial):
        raise ShapeError(
            f"the input {x} is smaller than the kernel {list(k)} with padding='valid'",
            field="kernel_size",
            received=f"kernel_size={layer.kernel_size}",
            hint="Use a smaller kernel_size or padding: same.",
        )
    axes = (None,) * n + ("conv_in", "conv_out")
    params = [ParamInfo("kernel", (*k, c // g, layer.filters), axes)]
    if layer.use_bias:
        params.append(ParamInfo("bias", (layer.filters,), ("conv_out",)))
    out = TensorType((x.shape[0], *spatial, layer.filters), float_out(x))
    return LayerShape(out, tuple(params))


@rule("MaxPooling2D", "AveragePooling2D")
def pool2d(layer, x: TensorType) -> LayerShape:
    need_rank(x, 4, "(batch, height, width, channels)")
    p = as_tuple(layer.pool_size, 2, "pool_size")
    s = as_tuple(layer.strides if layer.strides is not None else p, 2, "strides")
    spatial = tuple(window_out(x.shape[1 + i], p[i], s[i], 1, layer.padding) for i in range(2))
    if any(o == 0 for o in spatial):
        raise ShapeError(
            f"the input {x} is smaller than pool_size {list(p)}",
            field="pool_size",
            received=f"pool_size={layer.pool_size}",
            hint="Use a smaller pool_size or padding: same.",
        )
    # Max pooling keeps integer inputs integer (as Keras does); averages are floats.
    keep = layer.type == "MaxPooling2D" and not x.is_float
    dtype = x.dtype if keep else float_out(x)
    return LayerShape(TensorType((x.shape[0], *spatial, x.shape[3]), dtype))


@rule("GlobalAveragePooling1D", "GlobalAveragePooling2D")
def global_pool(layer, x: TensorType) -> LayerShape:
    n = 1 if layer.type.endswith("1D") else 2
    need_rank(x, n + 2, "(batch, " + ("steps" if n == 1 else "height, width") + ", channels)")
    shape = (x.shape[0], *((1,) * n), x.shape[-1]) if layer.keepdims else (x.shape[0], x.shape[-1])
    return LayerShape(TensorType(shape, float_out(x)))
