"""Reshaping layers: Flatten, Reshape. They move values between axes, never change them
(the dtype is kept)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import mul_dims
from modelspec.schema.tensors import LayerShape, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.reshaping:"


class Flatten(LayerSpec):
    """Flattens all non-batch axes into one."""

    nnx: ClassVar[str] = _NNX + "Flatten"
    type: Literal["Flatten"]

    def infer(self, x: TensorType) -> LayerShape:
        rest = x.shape[1:]
        return LayerShape(TensorType((x.shape[0], mul_dims(rest) if rest else 1), x.dtype))


class Reshape(LayerSpec):
    """Reshapes the non-batch axes to `target_shape` (one entry may be -1)."""

    nnx: ClassVar[str] = _NNX + "Reshape"
    type: Literal["Reshape"]
    target_shape: list[int] = Field(min_length=1)
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
        return LayerShape(TensorType((x.shape[0], *target), x.dtype))
