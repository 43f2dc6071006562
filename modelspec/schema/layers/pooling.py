"""Pooling layers (channels-last): the window poolings MaxPooling1D/2D/3D and
AveragePooling1D/2D/3D, and the global poolings GlobalMaxPooling1D/2D/3D and
GlobalAveragePooling1D/2D/3D.

Only Keras's default layout, channels-last, exists here: like the convolutions, these
layers have no `data_format` field (a spec that writes one is refused as an unknown
field), so an input is always (batch, <spatial axes>, channels).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from modelspec.schema.base import PositiveInt
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.flops_math import per_example, times
from modelspec.schema.layers.shape_math import (
    SPATIAL_AXES,
    float_out,
    int_tuple,
    need_rank,
    spatial_out,
)
from modelspec.schema.tensors import LayerShape, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.pooling:"
_ONNX = "modelspec.compiler.layers.onnx.pooling:"
_AXES = {**SPATIAL_AXES, 3: "depth, height, width"}
"""How messages name the spatial axes, by their number (3D included)."""

IntOrList = PositiveInt | list[PositiveInt]


def need_spatial(x: TensorType, rank: int) -> None:
    """`x` must be (batch, <`rank` spatial axes>, channels)."""
    need_rank(x, rank + 2, f"(batch, {_AXES[rank]}, channels)")


def pooled_dtype(x: TensorType, keeps_integers: bool) -> str:
    """Max keeps integer (and bool) inputs as they are, as Keras does; means and float
    inputs follow Keras's float32 policy (float16/bfloat16 are computed in float32)."""
    return x.dtype if keeps_integers and not x.is_float else float_out(x)


class _Pool(LayerSpec):
    """Shared by the window poolings; `rank` is the number of spatial axes. Each
    subclass declares `pool_size` with Keras's default (max: 2; average: required)."""

    rank: ClassVar[int] = 0
    keeps_integers: ClassVar[bool] = False
    strides: IntOrList | None = None
    """Step between windows: an int (every spatial axis) or one per axis; default:
    pool_size (windows side by side)."""
    padding: Literal["valid", "same"] = "valid"
    """`valid` (only whole windows: output = floor((size - pool) / stride) + 1) or `same`
    (output = ceil(size / stride); the padded positions never count)."""

    def infer(self, x: TensorType) -> LayerShape:
        n = self.rank
        need_spatial(x, n)
        p = int_tuple(self.pool_size, n, "pool_size")
        s = int_tuple(self.strides if self.strides is not None else p, n, "strides")
        if not self.keeps_integers and x.dtype == "bool":
            # Keras's average pooling sums with reduce_window, which refuses booleans.
            raise ShapeError(
                f"cannot average a bool input {x} (Keras refuses it too)",
                field="inputs",
                received=f"dtype={x.dtype}",
                hint="Feed a float or integer tensor.",
            )
        spatial = spatial_out(
            x,
            p,
            s,
            (1,) * n,
            self.padding,
            field="pool_size",
            given=self.pool_size,
            smaller_than=f"pool_size {list(p)}",
        )
        out = (x.shape[0], *spatial, x.shape[-1])
        return LayerShape(TensorType(out, pooled_dtype(x, self.keeps_integers)))

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """One comparison or addition per window element, per output element."""
        window = math.prod(int_tuple(self.pool_size, self.rank, "pool_size"))
        return times(per_example(shape.output), window)


class MaxPooling1D(_Pool):
    """Max over each window of the steps axis of (batch, steps, features). Integer and
    bool inputs keep their dtype. Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "MaxPooling1D"
    onnx: ClassVar[str] = _ONNX + "lower_max_pool"
    rank: ClassVar[int] = 1
    keeps_integers: ClassVar[bool] = True
    type: Literal["MaxPooling1D"]
    pool_size: IntOrList = 2
    """Window length (an int or a 1-element list)."""


class MaxPooling2D(_Pool):
    """Max over each window of (batch, height, width, channels). Integer and bool inputs
    keep their dtype. Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "MaxPooling2D"
    onnx: ClassVar[str] = _ONNX + "lower_max_pool"
    rank: ClassVar[int] = 2
    keeps_integers: ClassVar[bool] = True
    type: Literal["MaxPooling2D"]
    pool_size: IntOrList = 2
    """Window size: an int (square) or [height, width]."""


class MaxPooling3D(_Pool):
    """Max over each window of (batch, depth, height, width, channels). Integer and bool
    inputs keep their dtype. Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "MaxPooling3D"
    onnx: ClassVar[str] = _ONNX + "lower_max_pool"
    rank: ClassVar[int] = 3
    keeps_integers: ClassVar[bool] = True
    type: Literal["MaxPooling3D"]
    pool_size: IntOrList = 2
    """Window size: an int (cube) or [depth, height, width]."""


class AveragePooling1D(_Pool):
    """Mean over each window of the steps axis of (batch, steps, features); with `same`
    padding each mean counts real steps only, as Keras's. The output is float; integer
    inputs are summed in their own dtype first, as in Keras (so uint8/int8 window sums
    wrap). Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "AveragePooling1D"
    onnx: ClassVar[str] = _ONNX + "lower_average_pool"
    rank: ClassVar[int] = 1
    type: Literal["AveragePooling1D"]
    pool_size: IntOrList
    """Window length (an int or a 1-element list); required, as in Keras."""


class AveragePooling2D(_Pool):
    """Mean over each window of (batch, height, width, channels); with `same` padding
    each mean counts real pixels only, as Keras's. The output is float; integer inputs
    are summed in their own dtype first, as in Keras (so uint8/int8 window sums wrap).
    Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "AveragePooling2D"
    onnx: ClassVar[str] = _ONNX + "lower_average_pool"
    rank: ClassVar[int] = 2
    type: Literal["AveragePooling2D"]
    pool_size: IntOrList
    """Window size: an int (square) or [height, width]; required, as in Keras."""


class AveragePooling3D(_Pool):
    """Mean over each window of (batch, depth, height, width, channels); with `same`
    padding each mean counts real voxels only, as Keras's. The output is float; integer
    inputs are summed in their own dtype first, as in Keras (so uint8/int8 window sums
    wrap). Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "AveragePooling3D"
    onnx: ClassVar[str] = _ONNX + "lower_average_pool"
    rank: ClassVar[int] = 3
    type: Literal["AveragePooling3D"]
    pool_size: IntOrList
    """Window size: an int (cube) or [depth, height, width]; required, as in Keras."""


class _GlobalPool(LayerSpec):
    """Shared by the global poolings: one value per channel over every spatial axis
    (`rank` of them)."""

    rank: ClassVar[int] = 0
    keeps_integers: ClassVar[bool] = False
    keepdims: bool = False
    """Keep the pooled axes with length 1: (batch, 1, ..., channels) instead of
    (batch, channels)."""

    def infer(self, x: TensorType) -> LayerShape:
        n = self.rank
        need_spatial(x, n)
        if self.keepdims:
            shape = (x.shape[0], *((1,) * n), x.shape[-1])
        else:
            shape = (x.shape[0], x.shape[-1])
        return LayerShape(TensorType(shape, pooled_dtype(x, self.keeps_integers)))

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """One comparison or addition per input element."""
        return per_example(x)


class GlobalMaxPooling1D(_GlobalPool):
    """Max over the steps axis of (batch, steps, features). Integer and bool inputs keep
    their dtype. Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "GlobalMaxPooling1D"
    onnx: ClassVar[str] = _ONNX + "lower_global_max_pool"
    rank: ClassVar[int] = 1
    keeps_integers: ClassVar[bool] = True
    type: Literal["GlobalMaxPooling1D"]


class GlobalMaxPooling2D(_GlobalPool):
    """Max over height and width of (batch, height, width, channels). Integer and bool
    inputs keep their dtype. Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "GlobalMaxPooling2D"
    onnx: ClassVar[str] = _ONNX + "lower_global_max_pool"
    rank: ClassVar[int] = 2
    keeps_integers: ClassVar[bool] = True
    type: Literal["GlobalMaxPooling2D"]


class GlobalMaxPooling3D(_GlobalPool):
    """Max over depth, height and width of (batch, depth, height, width, channels).
    Integer and bool inputs keep their dtype. Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "GlobalMaxPooling3D"
    onnx: ClassVar[str] = _ONNX + "lower_global_max_pool"
    rank: ClassVar[int] = 3
    keeps_integers: ClassVar[bool] = True
    type: Literal["GlobalMaxPooling3D"]


class GlobalAveragePooling1D(_GlobalPool):
    """Mean over the steps axis of (batch, steps, features). The output is float.
    Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "GlobalAveragePooling1D"
    onnx: ClassVar[str] = _ONNX + "lower_global_average_pool"
    rank: ClassVar[int] = 1
    mask_arg: ClassVar[bool] = True
    type: Literal["GlobalAveragePooling1D"]

    def infer_mask(self, x: TensorType, mask: TensorType | None) -> TensorType | None:
        """Keras: with a (batch, steps) mask the mean covers the unmasked steps only
        (a fully masked row divides by zero, as in Keras); the output has no mask."""
        if mask is not None and mask.shape[1:] != x.shape[1:2]:
            raise ShapeError(
                f"the input's mask {mask} does not match its steps {x}",
                field="inputs",
                received=f"mask={mask}",
            )
        return None


class GlobalAveragePooling2D(_GlobalPool):
    """Mean over height and width of (batch, height, width, channels). The output is
    float. Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "GlobalAveragePooling2D"
    onnx: ClassVar[str] = _ONNX + "lower_global_average_pool"
    rank: ClassVar[int] = 2
    type: Literal["GlobalAveragePooling2D"]


class GlobalAveragePooling3D(_GlobalPool):
    """Mean over depth, height and width of (batch, depth, height, width, channels). The
    output is float. Channels-last only (no `data_format`)."""

    nnx: ClassVar[str] = _NNX + "GlobalAveragePooling3D"
    onnx: ClassVar[str] = _ONNX + "lower_global_average_pool"
    rank: ClassVar[int] = 3
    type: Literal["GlobalAveragePooling3D"]
