"""Regularization layers (Keras's `keras/src/layers/regularization/`): spatial dropout,
Gaussian noise and dropout, alpha dropout, activity regularization. Dropout itself is in
`core` with the other basic layers."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import (
    float_out,
    need_float_input,
    need_noise_shape,
    need_rank,
)
from modelspec.schema.regularizers import L1L2, RegularizerSpec
from modelspec.schema.tensors import LayerShape, TensorType

_NNX = "modelspec.compiler.layers.regularization:"
_ONNX = "modelspec.compiler.layers.onnx.regularization:"

Penalty = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A regularization factor: finite and >= 0, as Keras's `validate_float_arg`."""


def need_float(x: TensorType, why: str) -> None:
    """Random-noise layers take float inputs only: on integers Keras either fails in
    training or returns the integers at inference but float32 in training (two output
    dtypes for one layer), which a spec's single inferred type cannot express."""
    need_float_input(x, f"needs a float input, got {x.dtype} ({why})")


class _SpatialDropout(LayerSpec):
    """Dropout of whole channels: in training each (sample, channel) pair is either
    zeroed at every spatial position or kept and scaled by 1/(1 - rate); identity at
    inference. Channels-last only (no `data_format`). Keras's `seed` argument is not
    taken: the randomness comes from the spec's `seed`."""

    dropout_fields: ClassVar[tuple[str, ...]] = ("rate",)
    inverted_dropout: ClassVar[bool] = True
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    spatial_axes: ClassVar[str] = ""
    """How the input's spatial axes are named in messages."""
    rate: UnitInterval
    """Fraction of the channels to drop, in [0, 1)."""

    def infer(self, x: TensorType) -> LayerShape:
        names = self.spatial_axes.split(", ")
        need_rank(x, len(names) + 2, f"(batch, {self.spatial_axes}, channels)")
        need_float(x, "Keras's dropout fails on integers in training")
        return LayerShape(TensorType(x.shape, float_out(x)))


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (batch, steps, channels): a dropped channel is zero at
    every step."""

    nnx: ClassVar[str] = _NNX + "SpatialDropout1D"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_regularization"
    spatial_axes: ClassVar[str] = "steps"
    type: Literal["SpatialDropout1D"]


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of (batch, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "SpatialDropout2D"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_regularization"
    spatial_axes: ClassVar[str] = "height, width"
    type: Literal["SpatialDropout2D"]


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes of (batch, depth, height, width, channels)."""

    nnx: ClassVar[str] = _NNX + "SpatialDropout3D"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_regularization"
    spatial_axes: ClassVar[str] = "depth, height, width"
    type: Literal["SpatialDropout3D"]


class GaussianNoise(LayerSpec):
    """Adds zero-mean Gaussian noise of standard deviation `stddev` in training (a form
    of data augmentation); identity at inference. Keras's `seed` argument is not taken:
    the randomness comes from the spec's `seed`."""

    nnx: ClassVar[str] = _NNX + "GaussianNoise"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_regularization"
    dropout_fields: ClassVar[tuple[str, ...]] = ("stddev",)
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["GaussianNoise"]
    stddev: float = Field(ge=0, le=1)
    """Standard deviation of the noise, in [0, 1] (Keras's range)."""

    def infer(self, x: TensorType) -> LayerShape:
        need_float(x, "Keras returns integers unchanged at inference but float32 in training")
        return LayerShape(TensorType(x.shape, float_out(x)))


class GaussianDropout(LayerSpec):
    """Multiplies the inputs by Gaussian noise of mean 1 and standard deviation
    `sqrt(rate / (1 - rate))` in training; identity at inference. Keras's `seed` argument
    is not taken: the randomness comes from the spec's `seed`."""

    nnx: ClassVar[str] = _NNX + "GaussianDropout"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_regularization"
    dropout_fields: ClassVar[tuple[str, ...]] = ("rate",)
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["GaussianDropout"]
    rate: UnitInterval
    """Drop probability as for Dropout, in [0, 1): sets the noise's deviation."""

    def infer(self, x: TensorType) -> LayerShape:
        need_float(x, "Keras returns integers unchanged at inference but float32 in training")
        return LayerShape(TensorType(x.shape, float_out(x)))


class AlphaDropout(LayerSpec):
    """Dropout for self-normalizing (SELU) networks: in training a fraction `rate` of the
    inputs is set to SELU's negative saturation value, then everything goes through the
    affine map `a*x + b` that restores the mean and variance; identity at inference.
    Keras's `seed` argument is not taken: the randomness comes from the spec's `seed`."""

    nnx: ClassVar[str] = _NNX + "AlphaDropout"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_regularization"
    dropout_fields: ClassVar[tuple[str, ...]] = ("rate",)
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["AlphaDropout"]
    rate: UnitInterval
    """Fraction of the inputs to drop, in [0, 1)."""
    noise_shape: list[PositiveInt | None] | None = None
    """Shape of the drop mask (batch axis included), e.g. `[null, 1, null]` to share it
    across timesteps; `null` takes the input's size. Default: the input shape. One entry
    per axis (Keras also takes fewer, broadcast from the right with its nulls filled from
    the left; that mix is refused here)."""

    def infer(self, x: TensorType) -> LayerShape:
        need_noise_shape(self.noise_shape, x)
        need_float(x, "Keras returns integers unchanged at inference but float32 in training")
        return LayerShape(TensorType(x.shape, float_out(x)))


class ActivityRegularization(LayerSpec):
    """Identity in its forward pass; its output `y` adds `(l1 * sum(|y|) + l2 *
    sum(y**2)) / batch_size` to the loss (Keras's `L1L2(l1, l2)` as the layer's activity
    regularizer, so also in `val_loss`). `activity_regularizer` itself is refused, as
    Keras's constructor refuses it."""

    nnx: ClassVar[str] = _NNX + "ActivityRegularization"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_regularization"
    masking: ClassVar[str] = "keep"
    activity_regularizer_refusal: ClassVar[str | None] = (
        "ActivityRegularization's penalty is set by its `l1` and `l2` (Keras refuses "
        "`activity_regularizer` here)"
    )
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["ActivityRegularization"]
    l1: Penalty = 0.0
    """L1 factor: the penalty adds `l1 * sum(|output|)` per batch sample."""
    l2: Penalty = 0.0
    """L2 factor: the penalty adds `l2 * sum(output**2)` per batch sample."""

    def infer(self, x: TensorType) -> LayerShape:
        # Like every Keras layer it autocasts floats to float32; ints pass unchanged.
        return LayerShape(TensorType(x.shape, float_out(x) if x.is_float else x.dtype))

    def activity_penalty(self) -> RegularizerSpec | None:
        """`L1L2(l1, l2)` on the output, recorded even when both are 0 (as Keras does);
        a written `activity_regularizer` is refused by `check_penalties`."""
        return L1L2(type="L1L2", l1=self.l1, l2=self.l2)
