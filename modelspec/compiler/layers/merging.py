"""Merge layers: Add, Multiply, Concatenate, Subtract. They take a list of tensors.

Every input is first cast to the output dtype the spec's `infer` declared (float32 when
any input is a float — Keras's float32 policy autocasts float16/bfloat16 inputs — else
the common integer type), so the result's dtype is exactly what `summary` promised and
half-precision inputs are summed in float32 as in Keras. Add/Multiply fold left to
right like Keras's `_merge_function`; size-1 axes broadcast as `infer` allows.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer


class _Merge(Layer):
    def __init__(self, spec, xs, shape, key):
        self.dtype = jnp.dtype(shape.output.dtype)

    def _cast(self, xs):
        return [x.astype(self.dtype) for x in xs]


class Add(_Merge):
    def __call__(self, xs, *, training=False, rngs=None):
        return functools.reduce(jnp.add, self._cast(xs))


class Multiply(_Merge):
    def __call__(self, xs, *, training=False, rngs=None):
        return functools.reduce(jnp.multiply, self._cast(xs))


class Concatenate(_Merge):
    def __init__(self, spec, xs, shape, key):
        super().__init__(spec, xs, shape, key)
        self.axis = spec.axis

    def __call__(self, xs, *, training=False, rngs=None):
        return jnp.concatenate(self._cast(xs), axis=self.axis)


class Subtract(_Merge):
    """`xs[0] - xs[1]` (the call kind guarantees exactly two inputs)."""

    def __call__(self, xs, *, training=False, rngs=None):
        a, b = self._cast(xs)
        return jnp.subtract(a, b)
