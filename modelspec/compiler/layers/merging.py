"""Merge layers: Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract.
They take a list of tensors.

Every input is first cast to the output dtype the spec's `infer` declared (float32 when
any input is a float — Keras's float32 policy autocasts float16/bfloat16 inputs — else
the common integer type), so the result's dtype is exactly what `summary` promised and
half-precision inputs are computed in float32 as in Keras. Add/Multiply/Maximum/Minimum
fold left to right like Keras's `_merge_function`; size-1 axes broadcast as `infer`
allows. Average sums in the inputs' common dtype before dividing (as Keras does: bools
are or-ed, int8 sums wrap), so only its quotient is float. Dot is Keras's `batch_dot`
as one `dot_general` with the batch axis as batch dimension.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer
from modelspec.schema.layers.merging import result_dtype

_EPSILON = 1e-7
"""Keras's `backend.epsilon()`: L2 normalization caps 1/norm at 1/epsilon."""


class _Merge(Layer):
    def __init__(self, spec, xs, shape, key):
        self.dtype = jnp.dtype(shape.output.dtype)

    def _cast(self, xs):
        return [x.astype(self.dtype) for x in xs]

    def compute_mask(self, xs, masks):
        """Keras's merge rule: the masks or-ed (the spec infers a mask only when every
        input has one)."""
        return functools.reduce(jnp.logical_or, masks)


class Add(_Merge):
    def __call__(self, xs, *, training=False, rngs=None):
        return functools.reduce(jnp.add, self._cast(xs))


class Average(_Merge):
    """Sum in the inputs' common dtype, then divide by their number (Keras's order)."""

    def __init__(self, spec, xs, shape, key):
        super().__init__(spec, xs, shape, key)
        self.common = jnp.dtype(result_dtype(xs))

    def __call__(self, xs, *, training=False, rngs=None):
        total = functools.reduce(jnp.add, [x.astype(self.common) for x in xs])
        return (total / len(xs)).astype(self.dtype)


class Concatenate(_Merge):
    def __init__(self, spec, xs, shape, key):
        super().__init__(spec, xs, shape, key)
        self.axis = spec.axis

    def __call__(self, xs, *, training=False, rngs=None):
        return jnp.concatenate(self._cast(xs), axis=self.axis)

    def compute_mask(self, xs, masks):
        """Keras's rule: masks widened to their inputs' shapes (all True for an unmasked
        input), concatenated along `axis`, any() over the last axis."""
        wide = []
        for x, m in zip(xs, masks, strict=True):
            if m is None:
                m = jnp.ones(x.shape, bool)
            elif m.ndim < x.ndim:
                m = jnp.broadcast_to(m[..., None], x.shape)
            wide.append(m)
        return jnp.any(jnp.concatenate(wide, axis=self.axis), axis=-1)


def _l2_normalize(x: jax.Array, axis: int) -> jax.Array:
    """Keras's `ops.normalize(order=2)`: x * min(rsqrt(sum(x²)), 1/epsilon), so an
    all-zero vector stays zero instead of becoming NaN."""
    inv = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
    return x * jnp.minimum(inv, 1.0 / _EPSILON)


class Dot(_Merge):
    """Per-sample dot product of two inputs along one axis of each (`spec.dot_axes`).

    `dot_general` with batch dimension 0 and one contracting axis per input gives
    exactly `batch_dot`'s layout: the first input's remaining axes, then the second's;
    a (batch,) result gets Keras's trailing axis of size 1."""

    def __init__(self, spec, xs, shape, key):
        super().__init__(spec, xs, shape, key)
        self.axes = spec.dot_axes(xs)
        self.normalize = spec.normalize

    def __call__(self, xs, *, training=False, rngs=None):
        x, y = self._cast(xs)
        a0, a1 = self.axes
        if self.normalize:
            x, y = _l2_normalize(x, a0), _l2_normalize(y, a1)
        out = jax.lax.dot_general(x, y, (((a0,), (a1,)), ((0,), (0,))))
        return out[:, None] if out.ndim == 1 else out


class Maximum(_Merge):
    def __call__(self, xs, *, training=False, rngs=None):
        return functools.reduce(jnp.maximum, self._cast(xs))


class Minimum(_Merge):
    def __call__(self, xs, *, training=False, rngs=None):
        return functools.reduce(jnp.minimum, self._cast(xs))


class Multiply(_Merge):
    def __call__(self, xs, *, training=False, rngs=None):
        return functools.reduce(jnp.multiply, self._cast(xs))


class Subtract(_Merge):
    """`xs[0] - xs[1]` (the call kind guarantees exactly two inputs)."""

    def __call__(self, xs, *, training=False, rngs=None):
        a, b = self._cast(xs)
        return jnp.subtract(a, b)
