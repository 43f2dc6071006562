"""Pooling: MaxPooling2D, AveragePooling2D, GlobalAveragePooling1D/2D (channels-last).

Windows go through `jax.lax.reduce_window` with the padding *string*, as Keras's JAX
backend does, so `same` pads where XLA pads (the extra element at the end). Padded
positions never count: max pooling pads with the dtype's lowest value, and average
pooling with `same` divides each window's sum by the number of real elements in it
(a second reduce_window over ones) rather than by the full window size — Keras's rule,
which keeps border outputs from being pulled towards zero.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer
from modelspec.compiler.layers.conv import as_float
from modelspec.schema.layers.shape_math import int_tuple


def _lowest(dtype) -> float | int | bool:
    """Identity of `max` for `dtype` (-inf for floats; ints keep their dtype, as Keras's
    max pooling does). A Python scalar, not an array: only then does JAX recognize the
    (max, identity) monoid and give reduce_window a gradient inside jit."""
    if jnp.issubdtype(dtype, jnp.floating):
        return -float("inf")
    if dtype == jnp.bool_:
        return False
    return int(jnp.iinfo(dtype).min)


class _Pool2D(Layer):
    def __init__(self, spec, x, shape, key):
        pool = int_tuple(spec.pool_size, 2, "pool_size")
        strides = int_tuple(spec.strides, 2, "strides") if spec.strides is not None else pool
        self.dims = (1, *pool, 1)
        self.strides = (1, *strides, 1)
        self.padding = spec.padding.upper()

    def _reduce(self, x: jax.Array, init: jax.Array, fn) -> jax.Array:
        return jax.lax.reduce_window(x, init, fn, self.dims, self.strides, self.padding)


class MaxPooling2D(_Pool2D):
    """Max over each window; integer inputs stay integers (as in Keras)."""

    def __call__(self, x, *, training=False, rngs=None):
        if jnp.issubdtype(x.dtype, jnp.floating):
            x = as_float(x)
        return self._reduce(x, _lowest(x.dtype), jax.lax.max)


class AveragePooling2D(_Pool2D):
    """Mean over each window's real (non-padded) elements."""

    def __call__(self, x, *, training=False, rngs=None):
        x = as_float(x)
        total = self._reduce(x, 0.0, jax.lax.add)
        if self.padding == "VALID":
            return total / math.prod(self.dims)
        # Counts depend on the spatial position only: pool a (1, H, W, 1) map of ones.
        ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
        return total / self._reduce(ones, 0.0, jax.lax.add)


class _GlobalAverage(Layer):
    """Mean over every spatial axis (1 for 1D, 1 and 2 for 2D)."""

    axes: tuple[int, ...] = ()

    def __init__(self, spec, x, shape, key):
        self.keepdims = spec.keepdims

    def __call__(self, x, *, training=False, rngs=None):
        return jnp.mean(as_float(x), axis=self.axes, keepdims=self.keepdims)


class GlobalAveragePooling1D(_GlobalAverage):
    axes = (1,)


class GlobalAveragePooling2D(_GlobalAverage):
    axes = (1, 2)
