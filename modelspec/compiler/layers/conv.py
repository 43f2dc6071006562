"""Convolutions: Conv1D and Conv2D (channels-last), numerically equal to Keras 3.

Keras's JAX backend lowers both layers to one `jax.lax.conv_general_dilated` call with
the padding *string* ("SAME"/"VALID"), so XLA decides where `same` puts the odd pixel
(at the end). Passing the same string here, rather than computing pads ourselves, keeps
that rule and the arithmetic identical. `causal` is Keras's Conv1D-only mode: it pads
`dilation * (kernel - 1)` steps on the left explicitly and then runs a `valid` conv, so
step t only sees steps <= t.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.activations import activation
from modelspec.compiler.layers.base import Layer
from modelspec.compiler.sharding.constraints import constrain
from modelspec.schema.layers.shape_math import int_tuple

_DIMENSIONS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


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
