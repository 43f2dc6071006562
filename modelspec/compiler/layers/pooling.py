"""Pooling (channels-last): MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and the global
poolings GlobalMaxPooling1D/2D/3D, GlobalAveragePooling1D/2D/3D.

Windows go through `jax.lax.reduce_window` with the padding *string*, as Keras's JAX
backend does, so `same` pads where XLA pads (the extra element at the end). Padded
positions never count: max pooling pads with the dtype's lowest value, and average
pooling with `same` divides each window's sum by the number of real elements in it
(a second reduce_window over ones) rather than by the full window size — Keras's rule,
which keeps border outputs from being pulled towards zero. Integer inputs are reduced in
their own dtype, as Keras does: max pooling keeps it, average pooling divides the integer
window sum into float32.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer
from modelspec.compiler.layers.conv import as_float
from modelspec.schema.layers.shape_math import int_tuple

_MAX_IDENTITY = -float("inf")
"""The init value of every max pooling, whatever the input dtype (Keras's JAX backend
passes the same): a Python scalar equal to float32's `max` identity makes JAX pick its
max monoid, whose reduction keeps the operand's dtype (ints, bools) and has a gradient
inside jit."""


def _policy_cast(x: jax.Array) -> jax.Array:
    """Floats are computed in float32 (Keras's policy); ints and bools stay as they are."""
    return as_float(x) if jnp.issubdtype(x.dtype, jnp.floating) else x


class _Pool(Layer):
    """A window pooling over the `rank` spatial axes of (batch, ..., channels)."""

    rank = 0

    def __init__(self, spec, x, shape, key):
        n = self.rank
        pool = int_tuple(spec.pool_size, n, "pool_size")
        strides = int_tuple(spec.strides, n, "strides") if spec.strides is not None else pool
        self.dims = (1, *pool, 1)
        self.strides = (1, *strides, 1)
        self.padding = spec.padding.upper()

    def _reduce(self, x: jax.Array, init, fn) -> jax.Array:
        return jax.lax.reduce_window(x, init, fn, self.dims, self.strides, self.padding)


class _MaxPool(_Pool):
    """Max over each window; integer and bool inputs keep their dtype (as in Keras)."""

    def __call__(self, x, *, training=False, rngs=None):
        return self._reduce(_policy_cast(x), _MAX_IDENTITY, jax.lax.max)


class _AveragePool(_Pool):
    """Mean over each window's real (non-padded) elements. Integer inputs are summed in
    their own dtype and the sum divided afterwards, exactly as Keras does: the output is
    float32, but uint8/int8 window sums wrap around past their range (as in Keras)."""

    def __call__(self, x, *, training=False, rngs=None):
        x = _policy_cast(x)
        total = self._reduce(x, 0.0, jax.lax.add)
        if self.padding == "VALID":
            return total / math.prod(self.dims)
        # Counts depend on the spatial position only: pool a (1, ..., 1) map of ones.
        ones = jnp.ones((1, *x.shape[1:-1], 1), x.dtype)
        return total / self._reduce(ones, 0.0, jax.lax.add)


class MaxPooling1D(_MaxPool):
    rank = 1


class MaxPooling2D(_MaxPool):
    rank = 2


class MaxPooling3D(_MaxPool):
    rank = 3


class AveragePooling1D(_AveragePool):
    rank = 1


class AveragePooling2D(_AveragePool):
    rank = 2


class AveragePooling3D(_AveragePool):
    rank = 3


class _Global(Layer):
    """A reduction over every spatial axis (1 .. rank) of (batch, ..., channels)."""

    rank = 0

    def __init__(self, spec, x, shape, key):
        self.keepdims = spec.keepdims
        self.axes = tuple(range(1, self.rank + 1))


class _GlobalMax(_Global):
    def __call__(self, x, *, training=False, rngs=None):
        return jnp.max(_policy_cast(x), axis=self.axes, keepdims=self.keepdims)


class _GlobalAverage(_Global):
    def __call__(self, x, *, training=False, rngs=None):
        return jnp.mean(as_float(x), axis=self.axes, keepdims=self.keepdims)


class GlobalMaxPooling1D(_GlobalMax):
    rank = 1


class GlobalMaxPooling2D(_GlobalMax):
    rank = 2


class GlobalMaxPooling3D(_GlobalMax):
    rank = 3


class GlobalAveragePooling1D(_GlobalAverage):
    rank = 1

    def __call__(self, x, *, training=False, rngs=None, mask=None):
        if mask is None:
            return super().__call__(x)
        # Keras: zero the masked steps, then divide by the number of unmasked ones.
        x = as_float(x)
        keep = mask.astype(bool)[:, :, None]
        total = jnp.sum(jnp.where(keep, x, 0), axis=1, keepdims=self.keepdims)
        return total / jnp.sum(keep.astype(x.dtype), axis=1, keepdims=self.keepdims)


class GlobalAveragePooling2D(_GlobalAverage):
    rank = 2


class GlobalAveragePooling3D(_GlobalAverage):
    rank = 3
