"""Spatial resizing: Cropping1D/2D/3D, ZeroPadding1D/2D/3D, UpSampling1D/2D/3D
(channels-last; NNX side of `schema/layers/resizing.py`).

Each layer reads its arguments with the same helpers as shape inference (`edges`,
`int_tuple`), so the built layer cannot disagree with `summary`. Cropping slices, padding
is `jnp.pad` with zeros, upsampling repeats elements (`jnp.repeat`, as Keras's JAX
backend does). UpSampling2D's interpolating modes call `jax.image.resize` with the
arguments Keras's JAX backend passes (target (batch, h * sh, w * sw, channels), no
antialiasing), so the numbers are the same; for integer and bool inputs the float
result is brought back to the input dtype by Keras's `saturate_cast` rule (`_saturate`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from modelspec.compiler.layers.base import Layer
from modelspec.compiler.layers.reshaping import policy_cast
from modelspec.schema.layers.resizing import edges
from modelspec.schema.layers.shape_math import int_tuple


class _Cropping(Layer):
    rank = 0

    def __init__(self, spec, x, shape, key):
        # Ints, not slice objects: module attributes must be hashable (graph definition).
        self.crops = edges(spec.cropping, self.rank, "cropping")

    def __call__(self, x, *, training=False, rngs=None):
        inner = tuple(slice(a, -b if b else None) for a, b in self.crops)
        return policy_cast(x)[(slice(None), *inner, slice(None))]


class Cropping1D(_Cropping):
    rank = 1


class Cropping2D(_Cropping):
    rank = 2


class Cropping3D(_Cropping):
    rank = 3


class _ZeroPadding(Layer):
    rank = 0

    def __init__(self, spec, x, shape, key):
        self.pads = ((0, 0), *edges(spec.padding, self.rank, "padding"), (0, 0))

    def __call__(self, x, *, training=False, rngs=None):
        return jnp.pad(policy_cast(x), self.pads)


class ZeroPadding1D(_ZeroPadding):
    rank = 1


class ZeroPadding2D(_ZeroPadding):
    rank = 2


class ZeroPadding3D(_ZeroPadding):
    rank = 3


class _UpSampling(Layer):
    rank = 0

    def __init__(self, spec, x, shape, key):
        self.size = int_tuple(spec.size, self.rank, "size")

    def __call__(self, x, *, training=False, rngs=None):
        x = policy_cast(x)
        for axis, factor in enumerate(self.size, start=1):
            x = jnp.repeat(x, factor, axis=axis)
        return x


class UpSampling1D(_UpSampling):
    rank = 1


class UpSampling2D(_UpSampling):
    """`nearest` repeats (the base class); other modes resize as Keras's JAX backend."""

    rank = 2

    def __init__(self, spec, x, shape, key):
        super().__init__(spec, x, shape, key)
        self.interpolation = spec.interpolation

    def __call__(self, x, *, training=False, rngs=None):
        if self.interpolation == "nearest":
            return super().__call__(x)
        x = policy_cast(x)
        b, h, w, c = x.shape
        target = (b, h * self.size[0], w * self.size[1], c)
        y = jax.image.resize(x, target, method=self.interpolation, antialias=False)
        return y if y.dtype == x.dtype else _saturate(y, x.dtype)


class UpSampling3D(_UpSampling):
    rank = 3


def _saturate(y: jax.Array, dtype) -> jax.Array:
    """Keras's cast of a resized image back to an integer/bool input dtype
    (`ops.image.resize` then `ops.saturate_cast`): integers are rounded (half to even),
    then values are clipped to the range of `dtype` — its bounds written in `y`'s float
    dtype, stepped towards zero where that float rounds them outside (int32's 2**31 - 1
    becomes 2**31 in float32) — and cast; bool clips to [0, 1], so any non-zero is True."""
    dtype = np.dtype(dtype)
    fdtype = np.dtype(y.dtype)
    if np.issubdtype(dtype, np.integer):
        y = jnp.round(y)
        info = np.iinfo(dtype)
        low, high = np.asarray(info.min).astype(fdtype), np.asarray(info.max).astype(fdtype)
        if low < info.min:
            low = np.nextafter(low, 0, dtype=fdtype)
        if high > info.max:
            high = np.nextafter(high, 0, dtype=fdtype)
    else:
        low, high = np.asarray(0, fdtype), np.asarray(1, fdtype)
    return jnp.clip(y, low, high).astype(dtype)
