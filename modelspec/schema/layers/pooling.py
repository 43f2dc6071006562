"""Pooling layers: MaxPooling2D, AveragePooling2D, GlobalAveragePooling1D/2D
(channels-last)."""

from __future__ import annotations

from typing import ClassVar, Literal

from modelspec.schema.base import PositiveInt
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import (
    float_out,
    int_tuple,
    need_channels_last,
    spatial_out,
)
from modelspec.schema.tensors import LayerShape, TensorType

_NNX = "modelspec.compiler.layers.pooling:"


class _Pool2D(LayerSpec):
    """Shared by the 2D window poolings."""

    keeps_integers: ClassVar[bool] = False
    pool_size: PositiveInt | list[PositiveInt] = 2
    """Window size: an int (square) or [height, width]."""
    strides: PositiveInt | list[PositiveInt] | None = None
    """Strides; default: pool_size."""
    padding: Literal["valid", "same"] = "valid"
    """`valid` or `same`."""

    def infer(self, x: TensorType) -> LayerShape:
        need_channels_last(x, 2)
        p = int_tuple(self.pool_size, 2, "pool_size")
        s = int_tuple(self.strides if self.strides is not None else p, 2, "strides")
        spatial = spatial_out(
            x,
            p,
            s,
            (1, 1),
            self.padding,
            field="pool_size",
            given=self.pool_size,
            smaller_than=f"pool_size {list(p)}",
        )
        # Max pooling keeps integer inputs integer (as Keras does); averages are floats.
        dtype = x.dtype if self.keeps_integers and not x.is_float else float_out(x)
        return LayerShape(TensorType((x.shape[0], *spatial, x.shape[3]), dtype))


class MaxPooling2D(_Pool2D):
    """Max over each window of (batch, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "MaxPooling2D"
    keeps_integers: ClassVar[bool] = True
    type: Literal["MaxPooling2D"]


class AveragePooling2D(_Pool2D):
    """Mean over each window; with `same` padding the mean counts real pixels only."""

    nnx: ClassVar[str] = _NNX + "AveragePooling2D"
    type: Literal["AveragePooling2D"]


class _GlobalAverage(LayerSpec):
    """Mean over every spatial axis; `rank` is their number."""

    rank: ClassVar[int] = 0

    def infer(self, x: TensorType) -> LayerShape:
        n = self.rank
        need_channels_last(x, n)
        if self.keepdims:
            shape = (x.shape[0], *((1,) * n), x.shape[-1])
        else:
            shape = (x.shape[0], x.shape[-1])
        return LayerShape(TensorType(shape, float_out(x)))


class GlobalAveragePooling1D(_GlobalAverage):
    """Mean over the steps axis of (batch, steps, features)."""

    nnx: ClassVar[str] = _NNX + "GlobalAveragePooling1D"
    rank: ClassVar[int] = 1
    type: Literal["GlobalAveragePooling1D"]
    keepdims: bool = False
    """Keep the pooled axis with length 1."""


class GlobalAveragePooling2D(_GlobalAverage):
    """Mean over height and width of (batch, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "GlobalAveragePooling2D"
    rank: ClassVar[int] = 2
    type: Literal["GlobalAveragePooling2D"]
    keepdims: bool = False
    """Keep the pooled axes with length 1."""
