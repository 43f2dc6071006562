"""Convolutions: Conv1D, Conv2D (channels-last, as Keras's default data_format)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt
from modelspec.schema.layer_args import Activation as ActivationFn
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import (
    float_out,
    int_tuple,
    known_last,
    need_channels_last,
    spatial_out,
)
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType

IntOr1 = PositiveInt | list[PositiveInt]
IntOr2 = PositiveInt | list[PositiveInt]
_NNX = "modelspec.compiler.layers.conv:"


class _Conv(LayerSpec):
    """Shared by Conv1D and Conv2D; `rank` is the number of spatial axes."""

    rank: ClassVar[int] = 0
    filters: PositiveInt
    """Number of output channels."""
    activation: ActivationFn | None = None
    """Activation applied to the output (none by default)."""
    use_bias: bool = True
    """Whether to add a bias vector."""
    groups: PositiveInt = 1
    """Number of channel groups; input and output channels must both divide by it."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the kernel."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""

    def infer(self, x: TensorType) -> LayerShape:
        n = self.rank
        need_channels_last(x, n)
        k = int_tuple(self.kernel_size, n, "kernel_size")
        s = int_tuple(self.strides, n, "strides")
        d = int_tuple(self.dilation_rate, n, "dilation_rate")
        if max(s) > 1 and max(d) > 1:
            raise ShapeError(
                "strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)",
                field="strides",
                received=f"strides={self.strides}",
            )
        c = known_last(x)
        g = self.groups
        if c % g or self.filters % g:
            raise ShapeError(
                f"input channels ({c}) and filters ({self.filters}) must both be divisible "
                "by groups",
                field="groups",
                received=f"groups={g}",
            )
        spatial = spatial_out(
            x,
            k,
            s,
            d,
            self.padding,
            field="kernel_size",
            given=self.kernel_size,
            smaller_than=f"the kernel {list(k)} with padding='valid'",
        )
        axes = (None,) * n + ("conv_in", "conv_out")
        params = [ParamInfo("kernel", (*k, c // g, self.filters), axes)]
        if self.use_bias:
            params.append(ParamInfo("bias", (self.filters,), ("conv_out",)))
        out = TensorType((x.shape[0], *spatial, self.filters), float_out(x))
        return LayerShape(out, tuple(params))


class Conv1D(_Conv):
    """1D convolution over (batch, steps, channels)."""

    nnx: ClassVar[str] = _NNX + "Conv1D"
    rank: ClassVar[int] = 1
    type: Literal["Conv1D"]
    kernel_size: IntOr1 = Field(json_schema_extra={"examples": [3]})
    """Length of the convolution window (an int or a 1-element list)."""
    strides: IntOr1 = 1
    """Stride of the window."""
    padding: Literal["valid", "same", "causal"] = "valid"
    """`valid` (no padding), `same` (output length = ceil(input/stride)) or `causal`
    (left padding only, for autoregressive models)."""
    dilation_rate: IntOr1 = 1
    """Dilation of the window."""


class Conv2D(_Conv):
    """2D convolution over (batch, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "Conv2D"
    rank: ClassVar[int] = 2
    type: Literal["Conv2D"]
    kernel_size: IntOr2
    """Window size: an int (square) or [height, width]."""
    strides: IntOr2 = 1
    """Strides: an int or [height, width]."""
    padding: Literal["valid", "same"] = "valid"
    """`valid` (no padding) or `same` (output size = ceil(input/stride))."""
    dilation_rate: IntOr2 = 1
    """Dilation: an int or [height, width]."""
