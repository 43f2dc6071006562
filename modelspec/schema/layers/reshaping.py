"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector. They move values between
axes, never change them.

All four apply Keras's float32 dtype policy, as Keras 3 does for every layer:
float16/bfloat16 inputs come out float32, integer and bool inputs pass through
unchanged (`policy_dtype`). The spatial resizing layers (cropping, padding, upsampling)
are in `resizing.py`.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import float_out, mul_dims, need_rank
from modelspec.schema.tensors import MAX_RANK, LayerShape, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.reshaping:"
_ONNX = "modelspec.compiler.layers.onnx.reshaping:"


def policy_dtype(x: TensorType) -> str:
    """Output dtype of a layer that only moves values: Keras's float32 policy autocasts
    float inputs (float16/bfloat16 -> float32; float64 kept, as `float_out` says), and
    integer/bool inputs are left alone (Keras autocasts floats only)."""
    return float_out(x) if x.is_float else x.dtype


class Flatten(LayerSpec):
    """Flattens all non-batch axes into one."""

    nnx: ClassVar[str] = _NNX + "Flatten"
    onnx: ClassVar[str] = _ONNX + "lower_flatten"
    flops_per_element: ClassVar[int] = 0
    type: Literal["Flatten"]

    def infer(self, x: TensorType) -> LayerShape:
        rest = x.shape[1:]
        return LayerShape(TensorType((x.shape[0], mul_dims(rest) if rest else 1), policy_dtype(x)))


class Reshape(LayerSpec):
    """Reshapes the non-batch axes to `target_shape` (one entry may be -1)."""

    nnx: ClassVar[str] = _NNX + "Reshape"
    onnx: ClassVar[str] = _ONNX + "lower_reshape"
    flops_per_element: ClassVar[int] = 0
    type: Literal["Reshape"]
    target_shape: list[int] = Field(min_length=1, max_length=MAX_RANK - 1)
    """Target shape without the batch axis; one entry may be -1 (inferred)."""

    def infer(self, x: TensorType) -> LayerShape:
        target = list(self.target_shape)
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
                hint=f"The product of target_shape must be {size}; use -1 for one axis to "
                "infer it.",
            )
        return LayerShape(TensorType((x.shape[0], *target), policy_dtype(x)))


class Permute(LayerSpec):
    """Reorders the non-batch axes by the pattern `dims`, e.g. `[2, 1]` turns
    (batch, steps, features) into (batch, features, steps) — to connect RNNs and convnets.
    The input rank is the batch axis plus one axis per entry of `dims`."""

    nnx: ClassVar[str] = _NNX + "Permute"
    onnx: ClassVar[str] = _ONNX + "lower_permute"
    flops_per_element: ClassVar[int] = 0
    type: Literal["Permute"]
    dims: list[int] = Field(
        min_length=1, max_length=MAX_RANK - 1, json_schema_extra={"examples": [[2, 1]]}
    )
    """The permutation of the non-batch axes, numbered from 1 (the batch axis is never
    moved): output axis i is input axis `dims[i - 1]`. It must contain each of
    1..len(dims) once."""

    def infer(self, x: TensorType) -> LayerShape:
        dims = list(self.dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ShapeError(
                f"dims must contain each of 1..{len(dims)} exactly once (axes are numbered "
                "from 1; the batch axis cannot be permuted), as Keras requires",
                field="dims",
                received=f"dims={dims}",
            )
        need_rank(x, len(dims) + 1, f"(batch + {len(dims)} axes, one per entry of dims)")
        out = (x.shape[0], *(x.shape[d] for d in dims))
        return LayerShape(TensorType(out, policy_dtype(x)))


class RepeatVector(LayerSpec):
    """Repeats a (batch, features) input `n` times: (batch, n, features), e.g. to feed one
    encoding to every step of a decoder RNN."""

    nnx: ClassVar[str] = _NNX + "RepeatVector"
    onnx: ClassVar[str] = _ONNX + "lower_repeat_vector"
    flops_per_element: ClassVar[int] = 0
    type: Literal["RepeatVector"]
    n: PositiveInt = Field(json_schema_extra={"examples": [3]})
    """How many times to repeat the input (the length of the new axis 1)."""

    def infer(self, x: TensorType) -> LayerShape:
        need_rank(x, 2, "(batch, features)")
        return LayerShape(TensorType((x.shape[0], self.n, x.shape[1]), policy_dtype(x)))
