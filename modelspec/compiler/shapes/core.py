"""Shape rules: Dense, Activation, Dropout, Flatten, Reshape, Rescaling, Embedding."""

from __future__ import annotations

import math

from modelspec.compiler.shapes.registry import float_out, known_last, mul_dims, need_min_rank, rule
from modelspec.compiler.types import INT_DTYPES, LayerShape, ParamInfo, ShapeError, TensorType


@rule("Dense")
def dense(layer, x: TensorType) -> LayerShape:
    need_min_rank(x, 2)
    d = known_last(x)
    params = [ParamInfo("kernel", (d, layer.units), ("embed", "mlp"))]
    if layer.use_bias:
        params.append(ParamInfo("bias", (layer.units,), ("mlp",)))
    return LayerShape(TensorType((*x.shape[:-1], layer.units), float_out(x)), tuple(params))


@rule("Activation", "Rescaling")
def elementwise(layer, x: TensorType) -> LayerShape:
    return LayerShape(TensorType(x.shape, float_out(x)))


@rule("Dropout")
def dropout(layer, x: TensorType) -> LayerShape:
    if layer.noise_shape is not None:
        ns = layer.noise_shape
        if len(ns) != x.rank:
            raise ShapeError(
                f"noise_shape needs {x.rank} entries (batch axis included)",
                field="noise_shape",
                received=f"noise_shape={ns}",
            )
        for i, (n, d) in enumerate(zip(ns, x.shape, strict=True)):
            if n is not None and n != 1 and d is not None and n != d:
                raise ShapeError(
                    f"noise_shape axis {i} must be 1, null or {d}",
                    field="noise_shape",
                    received=f"noise_shape={ns}",
                )
    return LayerShape(TensorType(x.shape, float_out(x)))


@rule("Flatten")
def flatten(layer, x: TensorType) -> LayerShape:
    rest = x.shape[1:]
    return LayerShape(TensorType((x.shape[0], mul_dims(rest) if rest else 1), x.dtype))


@rule("Reshape")
def reshape(layer, x: TensorType) -> LayerShape:
    target = list(layer.target_shape)
    shown = f"target_shape={target}"
    if target.count(-1) > 1:
        raise ShapeError(
            "at most one entry of target_shape may be -1", field="target_shape", received=shown
        )
    if any(t == 0 or t < -1 for t in target):
        raise ShapeError(
            "target_shape entries must be positive or -1", field="target_shape", received=shown
        )
    size = mul_dims(x.shape[1:])
    known = math.prod(t for t in target if t != -1)
    if -1 in target:
        if size is not None:
            if size % known:
                raise ShapeError(
                    f"cannot reshape {x} to {tuple(target)}: {size} values per "
                    f"sample do not divide into groups of {known}",
                    field="target_shape",
                    received=shown,
                )
            target[target.index(-1)] = size // known
        else:
            target[target.index(-1)] = None
    elif size is not None and size != known:
        raise ShapeError(
            f"cannot reshape {x} to {tuple(target)}: {size} values per sample vs {known}",
            field="target_shape",
            received=shown,
            hint=f"The product of target_shape must be {size}; use -1 for one axis to infer it.",
        )
    return LayerShape(TensorType((x.shape[0], *target), x.dtype))


@rule("Embedding")
def embedding(layer, x: TensorType) -> LayerShape:
    if x.dtype not in INT_DTYPES:
        raise ShapeError(
            f"Embedding needs integer token ids, but its input is {x.dtype}",
            field="inputs",
            received=f"dtype={x.dtype}",
            hint="Declare the model input with `dtype: int32`.",
        )
    params = (ParamInfo("embeddings", (layer.input_dim, layer.output_dim), ("vocab", "embed")),)
    return LayerShape(TensorType((*x.shape, layer.output_dim), "float32"), params)
