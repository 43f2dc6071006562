"""Core layers: Dense, EinsumDense, Activation, Dropout, Rescaling, Embedding, Identity (NNX side of
`schema/layers/core.py`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.activations import activation, autocast
from modelspec.compiler.layers.base import Layer
from modelspec.compiler.sharding.constraints import constrain
from modelspec.schema.layers.einsum_math import analyze_einsum


class Dense(Layer):
    def __init__(self, spec, x, shape, key):
        self.act = spec.activation
        self.create(
            shape.params, key, {"kernel": spec.kernel_initializer, "bias": spec.bias_initializer}
        )

    def __call__(self, x, *, training=False, rngs=None):
        y = jnp.matmul(x.astype(self.kernel.dtype), self.kernel[...])
        if self.has("bias"):
            y = y + self.bias[...]
        # The hidden features follow the kernel's output axis (tensor parallelism).
        y = constrain(y, ("batch",) + (None,) * (y.ndim - 2) + ("mlp",))
        return activation(self.act)(y)


class EinsumDense(Layer):
    """`einsum(equation, x, kernel) + bias`; the kernel's initial fans are EinsumDense's
    (in over its input-only axes, out over its output axes), read from the same analysis
    that shaped it."""

    def __init__(self, spec, x, shape, key):
        self.act = spec.activation
        self.equation = spec.equation
        plan = analyze_einsum(spec.equation, spec.bias_axes, x.shape, spec.output_shape)
        self.create(
            shape.params,
            key,
            {"kernel": spec.kernel_initializer, "bias": spec.bias_initializer},
            fan_axes={"kernel": (plan.fan_in_axes, plan.fan_out_axes)},
        )

    def __call__(self, x, *, training=False, rngs=None):
        y = jnp.einsum(self.equation, x.astype(self.kernel.dtype), self.kernel[...])
        if self.has("bias"):
            y = y + self.bias[...]
        return activation(self.act)(y)


class Activation(Layer):
    def __init__(self, spec, x, shape, key):
        self.act = spec.activation

    def __call__(self, x, *, training=False, rngs=None):
        return activation(self.act)(x.astype(jnp.promote_types(x.dtype, jnp.float32)))


class Dropout(Layer):
    def __init__(self, spec, x, shape, key):
        self.rate = float(spec.rate)
        self.noise_shape = None if spec.noise_shape is None else tuple(spec.noise_shape)

    def __call__(self, x, *, training=False, rngs=None):
        if not training or self.rate == 0.0:
            return x
        shape = (
            x.shape
            if self.noise_shape is None
            else tuple(
                d if n is None else n for n, d in zip(self.noise_shape, x.shape, strict=True)
            )
        )
        keep = jax.random.bernoulli(rngs.dropout(), 1.0 - self.rate, shape)
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x))


class Rescaling(Layer):
    def __init__(self, spec, x, shape, key):
        self.scale, self.offset = float(spec.scale), float(spec.offset)

    def __call__(self, x, *, training=False, rngs=None):
        return x.astype(jnp.promote_types(x.dtype, jnp.float32)) * self.scale + self.offset


class Embedding(Layer):
    def __init__(self, spec, x, shape, key):
        self.create(shape.params, key, {"embeddings": spec.embeddings_initializer})

    def __call__(self, x, *, training=False, rngs=None):
        return jnp.take(self.embeddings[...], x.astype(jnp.int32), axis=0)

    def compute_mask(self, x, mask):
        """`ids != 0` (called only with `mask_zero`, where the spec infers a mask)."""
        return x != 0


class Identity(Layer):
    def __init__(self, spec, x, shape, key):
        pass

    def __call__(self, x, *, training=False, rngs=None):
        return autocast(x)  # even Keras's Identity casts float16 inputs to float32


class PositionEmbedding(Layer):
    def __init__(self, spec, x, shape, key):
        self.create(shape.params, key, {"embeddings": spec.initializer})

    def __call__(self, x, *, training=False, rngs=None):
        table = self.embeddings[...][: x.shape[-2]]
        return jnp.broadcast_to(table, x.shape).astype(jnp.promote_types(x.dtype, jnp.float32))

    def decode(self, x, *, position):
        """What `__call__` returns for the positions [position, position + steps) of a
        longer sequence (KV-cache generation): those rows of the table, broadcast to
        `x`'s shape. `position` is an int32 scalar (traced under jit); past the table's
        end the slice would shift back, so the caller keeps position + steps <=
        sequence_length."""
        rows = jax.lax.dynamic_slice_in_dim(
            self.embeddings[...], jnp.asarray(position, jnp.int32), x.shape[-2], axis=0
        )
        return jnp.broadcast_to(rows, x.shape).astype(jnp.promote_types(x.dtype, jnp.float32))


class Masking(Layer):
    """Zeroes the steps whose features all equal `mask_value`; its mask marks the rest."""

    def __init__(self, spec, x, shape, key):
        self.mask_value = float(spec.mask_value)

    def __call__(self, x, *, training=False, rngs=None):
        x = autocast(x)
        keep = self.compute_mask(x, None)[..., None]
        return jnp.where(keep, x, jnp.zeros_like(x))

    def compute_mask(self, x, mask):
        return jnp.any(x != self.mask_value, axis=-1)
