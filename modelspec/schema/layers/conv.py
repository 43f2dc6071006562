"""Convolutions (channels-last, as Keras's default data_format)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt
from modelspec.schema.common import Activation as ActivationFn
from modelspec.schema.common import Initializer, LayerBase

IntOr1 = PositiveInt | list[PositiveInt]
IntOr2 = PositiveInt | list[PositiveInt]


class _Conv(LayerBase):
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


class Conv1D(_Conv):
    """1D convolution over (batch, steps, channels)."""

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

    type: Literal["Conv2D"]
    kernel_size: IntOr2
    """Window size: an int (square) or [height, width]."""
    strides: IntOr2 = 1
    """Strides: an int or [height, width]."""
    padding: Literal["valid", "same"] = "valid"
    """`valid` (no padding) or `same` (output size = ceil(input/stride))."""
    dilation_rate: IntOr2 = 1
    """Dilation: an int or [height, width]."""
