"""Convolutions (channels-last), numerically equal to Keras 3: Conv1D/2D/3D,
DepthwiseConv1D/2D, SeparableConv1D/2D and Conv1D/2D/3DTranspose.

Keras's JAX backend lowers Conv to one `jax.lax.conv_general_dilated` call with
the padding *string* ("SAME"/"VALID"), so XLA decides where `same` puts the odd pixel
(at the end). Passing the same string here, rather than computing pads ourselves, keeps
that rule and the arithmetic identical. `causal` is Keras's Conv1D-only mode: it pads
`dilation * (kernel - 1)` steps on the left explicitly and then runs a `valid` conv, so
step t only sees steps <= t.

The depthwise convolution is the same call with the kernel reshaped to
(*window, 1, channels * depth_multiplier) and one feature group per input channel;
the separable one follows it with a 1x1 `valid` conv. The transposed convolutions call
`jax.lax.conv_transpose(..., transpose_kernel=True)` with explicit (left, right) pads
from `conv_shapes.transpose_pads`, Keras's own formula, so `same` and output_padding
put the extra rows exactly where Keras does.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.activations import activation
from modelspec.compiler.layers.base import Layer
from modelspec.compiler.sharding.constraints import constrain
from modelspec.schema.layers.conv_shapes import output_padding, transpose_pads, window
from modelspec.schema.layers.shape_math import int_tuple

_DIMENSIONS = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


def as_float(x: jax.Array) -> jax.Array:
    """Keras layers compute in float32 (its default dtype policy casts float inputs, and
    conv casts ints to the kernel's dtype); float64 is kept as `infer` says."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


class _Conv(Layer):
    """Shared N-D convolution; `rank` is the number of spatial axes."""

    rank = 0

    def __init__(self, spec, x, shape, key):
        n = self.rank
        self.kernel_size = int_tuple(spec.kernel_size, n, "kernel_size")
        self.strides = int_tuple(spec.strides, n, "strides")
        self.dilation = int_tuple(spec.dilation_rate, n, "dilation_rate")
        self.padding = spec.padding
        self.groups = spec.groups
        self.act = spec.activation
        self.create(
            shape.params, key, {"kernel": spec.kernel_initializer, "bias": spec.bias_initializer}
        )

    def __call__(self, x, *, training=False, rngs=None):
        kernel = self.kernel[...]
        x = as_float(x).astype(kernel.dtype)
        if self.padding == "causal":
            left = self.dilation[0] * (self.kernel_size[0] - 1)
            x = jnp.pad(x, ((0, 0), (left, 0), (0, 0)))
            padding = "VALID"
        else:
            padding = self.padding.upper()
        y = jax.lax.conv_general_dilated(
            x,
            kernel,
            window_strides=self.strides,
            padding=padding,
            rhs_dilation=self.dilation,
            dimension_numbers=_DIMENSIONS[self.rank],
            feature_group_count=self.groups,
        )
        if self.has("bias"):
            y = y + self.bias[...]
        y = constrain(y, ("batch",) + (None,) * self.rank + ("conv_out",))
        return activation(self.act)(y)


class Conv1D(_Conv):
    """(batch, steps, channels) -> (batch, new_steps, filters); padding valid/same/causal."""

    rank = 1


class Conv2D(_Conv):
    """(batch, height, width, channels) -> (batch, new_h, new_w, filters)."""

    rank = 2


class Conv3D(_Conv):
    """(batch, depth, height, width, channels) -> (batch, new_d, new_h, new_w, filters)."""

    rank = 3


def depthwise(x: jax.Array, kernel: jax.Array, strides, padding: str, dilation) -> jax.Array:
    """Keras's `depthwise_conv`: kernel (*window, C, M) -> (*window, 1, C * M), C groups,
    so output channel c * M + i is channel c under its i-th filter."""
    c = x.shape[-1]
    kernel = kernel.reshape(kernel.shape[:-2] + (1, c * kernel.shape[-1]))
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=strides,
        padding=padding.upper(),
        rhs_dilation=dilation,
        dimension_numbers=_DIMENSIONS[x.ndim - 2],
        feature_group_count=c,
    )


class _Windowed(Layer):
    """Shared by the depthwise, separable and transposed convolutions: the window
    arguments, and bias + sharding constraint + activation after the subclass's
    `convolve(x)`. `initializer_fields` maps each weight to the spec field holding its
    initializer (Keras's names differ per layer kind)."""

    rank = 0
    initializer_fields: ClassVar[dict[str, str]] = {}

    def __init__(self, spec, x, shape, key):
        self.kernel_size, self.strides, self.dilation = window(spec, self.rank)
        self.padding = spec.padding
        self.act = spec.activation
        inits = {w: getattr(spec, f) for w, f in self.initializer_fields.items()}
        self.create(shape.params, key, inits)

    def __call__(self, x, *, training=False, rngs=None):
        y = self.convolve(as_float(x))
        if self.has("bias"):
            y = y + self.bias[...]
        y = constrain(y, ("batch",) + (None,) * self.rank + ("conv_out",))
        return activation(self.act)(y)


class _DepthwiseConv(_Windowed):
    """Kernel (*window, channels, depth_multiplier), named `kernel` as in Keras."""

    initializer_fields: ClassVar[dict[str, str]] = {
        "kernel": "depthwise_initializer",
        "bias": "bias_initializer",
    }

    def convolve(self, x):
        kernel = self.kernel[...]
        return depthwise(x.astype(kernel.dtype), kernel, self.strides, self.padding, self.dilation)


class DepthwiseConv1D(_DepthwiseConv):
    """(batch, steps, C) -> (batch, new_steps, C * depth_multiplier)."""

    rank = 1


class DepthwiseConv2D(_DepthwiseConv):
    """(batch, height, width, C) -> (batch, new_h, new_w, C * depth_multiplier)."""

    rank = 2


class _SeparableConv(_Windowed):
    """Depthwise conv (strides, padding, dilation) then a 1x1 pointwise conv."""

    initializer_fields: ClassVar[dict[str, str]] = {
        "depthwise_kernel": "depthwise_initializer",
        "pointwise_kernel": "pointwise_initializer",
        "bias": "bias_initializer",
    }

    def convolve(self, x):
        dw = self.depthwise_kernel[...]
        y = depthwise(x.astype(dw.dtype), dw, self.strides, self.padding, self.dilation)
        return jax.lax.conv_general_dilated(
            y,
            self.pointwise_kernel[...],
            window_strides=(1,) * self.rank,
            padding="VALID",
            rhs_dilation=self.dilation,  # as Keras passes it; a no-op on a 1x1 kernel
            dimension_numbers=_DIMENSIONS[self.rank],
        )


class SeparableConv1D(_SeparableConv):
    """(batch, steps, channels) -> (batch, new_steps, filters)."""

    rank = 1


class SeparableConv2D(_SeparableConv):
    """(batch, height, width, channels) -> (batch, new_h, new_w, filters)."""

    rank = 2


class _ConvTranspose(_Windowed):
    """Kernel (*window, filters, channels), flipped and transposed by `conv_transpose`;
    the (left, right) pads per axis are fixed at build time from the spec."""

    initializer_fields: ClassVar[dict[str, str]] = {
        "kernel": "kernel_initializer",
        "bias": "bias_initializer",
    }

    def __init__(self, spec, x, shape, key):
        super().__init__(spec, x, shape, key)
        out_pad = output_padding(spec, self.rank, self.strides)
        if out_pad is None:
            out_pad = (None,) * self.rank
        self.pads = tuple(
            transpose_pads(k, s, d, self.padding, p)
            for k, s, d, p in zip(
                self.kernel_size, self.strides, self.dilation, out_pad, strict=True
            )
        )

    def convolve(self, x):
        kernel = self.kernel[...]
        return jax.lax.conv_transpose(
            x.astype(kernel.dtype),
            kernel,
            self.strides,
            padding=self.pads,
            rhs_dilation=self.dilation,
            dimension_numbers=_DIMENSIONS[self.rank],
            transpose_kernel=True,
        )


class Conv1DTranspose(_ConvTranspose):
    """(batch, steps, channels) -> (batch, upsampled steps, filters)."""

    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """(batch, height, width, channels) -> (batch, upsampled h, w, filters)."""

    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """(batch, depth, height, width, channels) -> (batch, upsampled d, h, w, filters)."""

    rank = 3
