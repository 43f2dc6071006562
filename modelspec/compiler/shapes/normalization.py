"""Shape rules: BatchNormalization, LayerNormalization."""

from __future__ import annotations

from modelspec.compiler.shapes.registry import float_out, need_min_rank, rule
from modelspec.compiler.types import LayerShape, ParamInfo, ShapeError, TensorType


def normalize_axes(axes: int | list[int], x: TensorType, field: str = "axis") -> list[int]:
    out = []
    for a in [axes] if isinstance(axes, int) else axes:
        b = a + x.rank if a < 0 else a
        if not 1 <= b < x.rank:
            raise ShapeError(
                f"axis {a} is out of range for input {x} (the batch axis 0 cannot be normalized)",
                field=field,
                received=f"{field}={axes}",
            )
        if x.shape[b] is None:
            raise ShapeError(
                f"axis {a} of the input {x} must have a known size",
                field=field,
                received=f"{field}={axes}",
            )
        out.append(b)
    return sorted(set(out))


@rule("BatchNormalization")
def batch_norm(layer, x: TensorType) -> LayerShape:
    need_min_rank(x, 2)
    (axis,) = normalize_axes(layer.axis, x)
    c = (x.shape[axis],)
    params = []
    if layer.scale:
        params.append(ParamInfo("gamma", c, ("norm",)))
    if layer.center:
        params.append(ParamInfo("beta", c, ("norm",)))
    params += [
        ParamInfo("moving_mean", c, ("norm",), "batch_stats", trainable=False),
        ParamInfo("moving_variance", c, ("norm",), "batch_stats", trainable=False),
    ]
    return LayerShape(TensorType(x.shape, float_out(x)), tuple(params))


@rule("LayerNormalization")
def layer_norm(layer, x: TensorType) -> LayerShape:
    need_min_rank(x, 2)
    axes = normalize_axes(layer.axis, x)
    shape = tuple(x.shape[a] for a in axes)
    names = ("norm",) + (None,) * (len(shape) - 1)
    params = []
    if layer.scale or layer.rms_scaling:
        params.append(ParamInfo("gamma", shape, names))
    if layer.center and not layer.rms_scaling:
        params.append(ParamInfo("beta", shape, names))
    return LayerShape(TensorType(x.shape, float_out(x)), tuple(params))
