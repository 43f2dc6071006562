"""Feature preprocessing layers (NNX side of `schema/layers/features.py`).

State given in the spec (Normalization's `mean`/`variance`, Discretization's
`bin_boundaries`) is kept as static tuples, so it is a constant of the compiled
program, as Keras's are Python values. Adapted state is a non-trainable variable
(`Frozen`, collection "adapted"), written once by `runtime/adapt.py` before step 1 and
read from the checkpoint afterwards. The encodings mirror Keras's
`encode_categorical_inputs` on the JAX backend (`jax.nn.one_hot`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from modelspec.compiler.layers.base import Frozen, Layer
from modelspec.schema.layers.features import Normalization as NormalizationSpec

EPSILON = 1e-7
"""Keras's `backend.epsilon()`: the floor of sqrt(variance)."""


def _constant(values: list | float, shape: tuple[int, ...]) -> tuple[tuple[float, ...], tuple]:
    """A static (flat values, shape) pair: hashable, so it lives in the graph definition."""
    array = np.broadcast_to(np.asarray(values, np.float32), shape)
    return tuple(float(v) for v in array.ravel()), tuple(shape)


def _array(constant: tuple[tuple[float, ...], tuple]) -> jax.Array:
    values, shape = constant
    return jnp.asarray(values, jnp.float32).reshape(shape)


def encode(indices: jax.Array, mode: str, depth: int) -> jax.Array:
    """Keras's `encode_categorical_inputs` (dense, JAX backend): int32 indices, or
    float32 one-hot vectors, their max (`multi_hot`) or sum (`count`) over axis 1.
    Indices outside [0, depth) encode as zeros, as `jax.nn.one_hot` does."""
    if mode == "int":
        return indices.astype(jnp.int32)
    if mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices.reshape(indices.shape[:-1])
        return jax.nn.one_hot(indices, depth, dtype=jnp.float32)
    if mode == "multi_hot":
        return jnp.max(jax.nn.one_hot(indices.astype(jnp.int32), depth, dtype=jnp.float32), axis=1)
    return jnp.sum(jax.nn.one_hot(indices, depth, dtype=jnp.float32), axis=1)


class Normalization(Layer):
    """`(x - mean) / max(sqrt(var), 1e-7)`, or its inverse, with mean and variance
    reshaped to Keras's broadcast shape (1 on the reduced axes)."""

    def __init__(self, spec: NormalizationSpec, x, shape, key):
        self.invert = spec.invert
        kept = spec.kept_axes(x)
        if spec.mean is None:
            self.broadcast = tuple(x.shape[d] if d in kept else 1 for d in range(x.rank))
            self.create(shape.params, key, {"mean": "zeros", "variance": "ones", "count": "zeros"})
            self.count = Frozen(jnp.zeros((), jnp.int32), logical_axes=())  # Keras: int
            self.constants = None
            return
        written, broadcast = spec.constants(x)
        # Keras aligns the written shape with the kept axes from the right, then broadcasts.
        expanded = [1] * x.rank
        for i, size in enumerate(reversed(written)):
            expanded[kept[-1 - i]] = size
        full = tuple(1 if d is None else d for d in broadcast)
        mean = np.reshape(np.asarray(spec.mean, np.float32), expanded)
        variance = np.reshape(np.asarray(spec.variance, np.float32), expanded)
        self.constants = (_constant(mean, full), _constant(variance, full))

    def __call__(self, x, *, training=False, rngs=None):
        x = x.astype(jnp.float32)
        if self.constants is None:
            mean = self.mean.get_value().astype(jnp.float32).reshape(self.broadcast)
            variance = self.variance.get_value().astype(jnp.float32).reshape(self.broadcast)
        else:
            mean, variance = (_array(c) for c in self.constants)
        scale = jnp.maximum(jnp.sqrt(variance), EPSILON)
        return mean + x * scale if self.invert else (x - mean) / scale


class Discretization(Layer):
    """Bucket indices by `jnp.digitize` (as Keras's JAX backend), then encoded."""

    def __init__(self, spec, x, shape, key):
        self.mode, self.depth = spec.output_mode, spec.depth
        if spec.bin_boundaries is None:
            self.create(shape.params, key, {"bin_boundaries": "zeros"})
            self.bounds = None
        else:
            self.bounds = _constant(spec.bin_boundaries, (len(spec.bin_boundaries),))

    def __call__(self, x, *, training=False, rngs=None):
        if self.bounds is None:
            bounds = self.bin_boundaries.get_value().astype(jnp.float32)
        else:
            bounds = _array(self.bounds)
        return encode(jnp.digitize(x.astype(jnp.float32), bounds), self.mode, self.depth)


class CategoryEncoding(Layer):
    def __init__(self, spec, x, shape, key):
        self.mode = "multi_hot" if spec.output_mode == "binary" else spec.output_mode
        self.depth = spec.num_tokens

    def __call__(self, x, *, training=False, rngs=None):
        return encode(x, self.mode, self.depth)
