"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector (NNX side of
`schema/layers/reshaping.py`).

Reshape takes its target from the inferred output shape, where `-1` is already
resolved; only a still-unknown size (a variable-length input) is left to `-1`.
Every layer here first applies Keras's dtype policy (`policy_cast`), so its output
dtype is the one `infer` declared.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer
from modelspec.compiler.layers.conv import as_float


def policy_cast(x: jax.Array) -> jax.Array:
    """Keras's float32 policy for layers that only move values: float inputs are cast
    (float16/bfloat16 -> float32), integer and bool inputs are left alone."""
    return as_float(x) if jnp.issubdtype(x.dtype, jnp.floating) else x


class Flatten(Layer):
    def __init__(self, spec, x, shape, key):
        pass

    def __call__(self, x, *, training=False, rngs=None):
        return policy_cast(x).reshape(x.shape[0], -1)


class Reshape(Layer):
    def __init__(self, spec, x, shape, key):
        self.target = tuple(d if d is not None else -1 for d in shape.output.shape[1:])

    def __call__(self, x, *, training=False, rngs=None):
        return policy_cast(x).reshape(x.shape[0], *self.target)


class Permute(Layer):
    """`jnp.transpose` with the batch axis kept first (Keras's `dims` are 1-based)."""

    def __init__(self, spec, x, shape, key):
        self.axes = (0, *spec.dims)

    def __call__(self, x, *, training=False, rngs=None):
        return jnp.transpose(policy_cast(x), self.axes)


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features): a new axis 1, repeated `n` times."""

    def __init__(self, spec, x, shape, key):
        self.n = spec.n

    def __call__(self, x, *, training=False, rngs=None):
        return jnp.repeat(policy_cast(x)[:, None, :], self.n, axis=1)
