"""Convolutions (channels-last, as Keras's default data_format): Conv1D/2D/3D,
DepthwiseConv1D/2D, SeparableConv1D/2D and Conv1D/2D/3DTranspose.

Like the poolings, these layers have no `data_format` field (a spec that writes one is
refused as an unknown field). The shape rules they share, including the transposed
convolutions' output size and padding, are in `conv_shapes.py`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import NonNegativeInt, PositiveInt
from modelspec.schema.layer_args import Activation as ActivationFn
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.conv_shapes import (
    kernel_spatial,
    need_conv_input,
    need_float,
    no_strided_dilation,
    output_padding,
    transpose_size,
    window,
)
from modelspec.schema.layers.flops_math import affine, kernel_macs, rows
from modelspec.schema.layers.shape_math import float_out, int_tuple, known_last
from modelspec.schema.regularizers import (
    BiasPenalties,
    DepthwisePenalties,
    KernelPenalties,
    PointwisePenalties,
)
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType

IntOr1 = PositiveInt | list[PositiveInt]
IntOr2 = PositiveInt | list[PositiveInt]
IntOrN = PositiveInt | list[PositiveInt]
AXES_IN_OUT = ("conv_in", "conv_out")
"""Logical axes of a kernel's (input, output) channel axes."""
_NNX = "modelspec.compiler.layers.conv:"
_ONNX = "modelspec.compiler.layers.onnx.conv:"


class _Conv(LayerSpec, KernelPenalties):
    """Shared by Conv1D, Conv2D and Conv3D; `rank` is the number of spatial axes."""

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
        need_conv_input(x, n)
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
        spatial = kernel_spatial(self, x, k, s, d)
        axes = (None,) * n + ("conv_in", "conv_out")
        kernel = ParamInfo("kernel", (*k, c // g, self.filters), axes)
        return conv_output(self, x, spatial, [kernel], self.filters)

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """2 per kernel weight per output position (k·k·cin/groups·filters·H·W for a
        Conv2D), + bias and activation per output element."""
        macs = kernel_macs(shape, rows(shape.output))
        return affine(macs, shape.output, self.use_bias, self.activation)


class Conv1D(_Conv):
    """1D convolution over (batch, steps, channels)."""

    nnx: ClassVar[str] = _NNX + "Conv1D"
    onnx: ClassVar[str] = _ONNX + "lower_conv"
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
    onnx: ClassVar[str] = _ONNX + "lower_conv"
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


class Conv3D(_Conv):
    """3D convolution over (batch, depth, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "Conv3D"
    onnx: ClassVar[str] = _ONNX + "lower_conv"
    rank: ClassVar[int] = 3
    type: Literal["Conv3D"]
    kernel_size: IntOrN
    """Window size: an int (cube) or [depth, height, width]."""
    strides: IntOrN = 1
    """Strides: an int or [depth, height, width]."""
    padding: Literal["valid", "same"] = "valid"
    """`valid` (no padding) or `same` (output size = ceil(input/stride))."""
    dilation_rate: IntOrN = 1
    """Dilation: an int or [depth, height, width]."""


class _Window(LayerSpec):
    """The arguments the depthwise, separable and transposed convolutions share; each
    list has one entry per spatial axis (`rank`: 1 for steps, 2 for height and width,
    3 for depth, height and width)."""

    rank: ClassVar[int] = 0
    kernel_size: IntOrN
    """Window size: an int (the same on every spatial axis) or one per spatial axis."""
    strides: IntOrN = 1
    """Step of the window: an int or one per spatial axis."""
    padding: Literal["valid", "same"] = "valid"
    """`valid` (no padding) or `same` (output size = ceil(input/stride))."""
    dilation_rate: IntOrN = 1
    """Dilation of the window: an int or one per spatial axis."""
    activation: ActivationFn | None = None
    """Activation applied to the output (none by default)."""
    use_bias: bool = True
    """Whether to add a bias vector."""

    def checked_window(self, x: TensorType) -> tuple[int, ...]:
        """(kernel_size, strides, dilation_rate) per spatial axis, after refusing what
        Keras refuses for these layers: an input that is not (batch, *spatial, channels)
        or not float."""
        need_conv_input(x, self.rank)
        need_float(x, self.type)
        return window(self, self.rank)

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """2 per kernel weight per output position (a separable convolution's depthwise
        and pointwise kernels both), + bias and activation per output element."""
        macs = kernel_macs(shape, rows(shape.output))
        return affine(macs, shape.output, self.use_bias, self.activation)


def conv_output(
    spec: _Conv | _Window, x: TensorType, spatial: tuple, params: list[ParamInfo], filters: int
) -> LayerShape:
    """The shape of every convolution: output (batch, *spatial, filters) and the kernel
    `params`, followed by a bias of `filters` when the spec has `use_bias`."""
    if spec.use_bias:
        params.append(ParamInfo("bias", (filters,), ("conv_out",)))
    out = TensorType((x.shape[0], *spatial, filters), float_out(x))
    return LayerShape(out, tuple(params))


class _DepthwiseConv(_Window, DepthwisePenalties, BiasPenalties):
    """Each input channel convolved with its own `depth_multiplier` filters; unlike
    Conv, Keras accepts strides > 1 together with dilation_rate > 1 here."""

    penalty_weights: ClassVar[dict[str, tuple[str, ...]]] = {"depthwise": ("kernel",)}
    """`depthwise_regularizer`/`_constraint` apply to the weight Keras names `kernel`."""
    depth_multiplier: PositiveInt = 1
    """Filters per input channel: the output has channels * depth_multiplier channels
    (channel c's filters at c * depth_multiplier + i)."""
    depthwise_initializer: Initializer = "glorot_uniform"
    """Initializer of the depthwise kernel (Keras's weight name: `kernel`)."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""

    def infer(self, x: TensorType) -> LayerShape:
        n, m = self.rank, self.depth_multiplier
        k, s, d = self.checked_window(x)
        c = known_last(x)
        spatial = kernel_spatial(self, x, k, s, d)
        kernel = ParamInfo("kernel", (*k, c, m), (None,) * n + ("conv_in", None))
        return conv_output(self, x, spatial, [kernel], c * m)


class DepthwiseConv1D(_DepthwiseConv):
    """Depthwise 1D convolution over (batch, steps, channels)."""

    nnx: ClassVar[str] = _NNX + "DepthwiseConv1D"
    onnx: ClassVar[str] = _ONNX + "lower_depthwise_conv"
    rank: ClassVar[int] = 1
    type: Literal["DepthwiseConv1D"]


class DepthwiseConv2D(_DepthwiseConv):
    """Depthwise 2D convolution over (batch, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "DepthwiseConv2D"
    onnx: ClassVar[str] = _ONNX + "lower_depthwise_conv"
    rank: ClassVar[int] = 2
    type: Literal["DepthwiseConv2D"]


class _SeparableConv(_Window, DepthwisePenalties, PointwisePenalties, BiasPenalties):
    """A depthwise convolution (per-channel filters, `depth_multiplier` each) followed
    by a 1x1 pointwise convolution to `filters` channels; strides > 1 together with
    dilation_rate > 1 are accepted, as in Keras."""

    filters: PositiveInt
    """Number of output channels (of the pointwise convolution)."""
    depth_multiplier: PositiveInt = 1
    """Depthwise filters per input channel."""
    depthwise_initializer: Initializer = "glorot_uniform"
    """Initializer of the depthwise kernel."""
    pointwise_initializer: Initializer = "glorot_uniform"
    """Initializer of the pointwise kernel."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""

    def infer(self, x: TensorType) -> LayerShape:
        n, m = self.rank, self.depth_multiplier
        k, s, d = self.checked_window(x)
        c = known_last(x)
        spatial = kernel_spatial(self, x, k, s, d)
        params = [
            ParamInfo("depthwise_kernel", (*k, c, m), (None,) * n + ("conv_in", None)),
            ParamInfo(
                "pointwise_kernel", (1,) * n + (c * m, self.filters), (None,) * n + AXES_IN_OUT
            ),
        ]
        return conv_output(self, x, spatial, params, self.filters)


class SeparableConv1D(_SeparableConv):
    """Depthwise separable 1D convolution over (batch, steps, channels)."""

    nnx: ClassVar[str] = _NNX + "SeparableConv1D"
    onnx: ClassVar[str] = _ONNX + "lower_separable_conv"
    rank: ClassVar[int] = 1
    type: Literal["SeparableConv1D"]


class SeparableConv2D(_SeparableConv):
    """Depthwise separable 2D convolution over (batch, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "SeparableConv2D"
    onnx: ClassVar[str] = _ONNX + "lower_separable_conv"
    rank: ClassVar[int] = 2
    type: Literal["SeparableConv2D"]


class _ConvTranspose(_Window, KernelPenalties):
    """Transposed convolution (the gradient of a convolution with respect to its input,
    often called deconvolution): upsamples by `strides`."""

    filters: PositiveInt
    """Number of output channels."""
    padding: Literal["valid", "same"] = "valid"
    """`valid`: output = (input - 1) * stride + kernel span (at least the stride);
    `same`: output = input * stride. The kernel span is (kernel_size - 1) *
    dilation_rate + 1."""
    output_padding: NonNegativeInt | list[NonNegativeInt] | None = None
    """Output size adjustment per spatial axis, each smaller than its stride; when set,
    `valid` gives (input - 1) * stride + span + output_padding and `same` gives
    (input - 1) * stride + span % 2 + output_padding. Default (null): the rules above."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the kernel (shape: kernel_size + [filters, input channels])."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""

    def infer(self, x: TensorType) -> LayerShape:
        n = self.rank
        k, s, d = self.checked_window(x)
        pads = output_padding(self, n, s)
        no_strided_dilation(self, s, d)
        c = known_last(x)
        spatial = tuple(
            transpose_size(
                x.shape[1 + i], k[i], s[i], d[i], self.padding, None if pads is None else pads[i]
            )
            for i in range(n)
        )
        for i, size in enumerate(spatial):
            if size is not None and size <= 0:
                raise ShapeError(
                    f"the output would be empty on spatial axis {i}: with padding='same' and "
                    "output_padding set, the size is (input - 1) * strides + kernel span % 2 "
                    f"+ output_padding = 0 for the input {x} (Keras returns an empty tensor)",
                    field="output_padding",
                    received=f"output_padding={self.output_padding}",
                    hint="Use an odd kernel_size, output_padding >= 1 with strides >= 2, or "
                    "leave output_padding unset.",
                )
        kernel = ParamInfo("kernel", (*k, self.filters, c), (None,) * n + AXES_IN_OUT[::-1])
        return conv_output(self, x, spatial, [kernel], self.filters)

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """2 per kernel weight per *input* position (each input element is scattered
        through the whole kernel), + bias and activation per output element."""
        return affine(kernel_macs(shape, rows(x)), shape.output, self.use_bias, self.activation)


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1D convolution over (batch, steps, channels)."""

    nnx: ClassVar[str] = _NNX + "Conv1DTranspose"
    onnx: ClassVar[str] = _ONNX + "lower_conv_transpose"
    rank: ClassVar[int] = 1
    type: Literal["Conv1DTranspose"]


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2D convolution over (batch, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "Conv2DTranspose"
    onnx: ClassVar[str] = _ONNX + "lower_conv_transpose"
    rank: ClassVar[int] = 2
    type: Literal["Conv2DTranspose"]


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3D convolution over (batch, depth, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "Conv3DTranspose"
    onnx: ClassVar[str] = _ONNX + "lower_conv_transpose"
    rank: ClassVar[int] = 3
    type: Literal["Conv3DTranspose"]
