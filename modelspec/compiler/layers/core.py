"""Core layers: Dense, Activation, Dropout, Rescaling, Embedding, Identity (NNX side of
`schema/layers/core.py`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.activations import activation, autocast
from modelspec.compiler.layers.base import Layer
from modelspec.compiler.sharding.constraints import constrain


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


class Identity(Layer):
    def __init__(self, spec, x, shape, key):
        pass

    def __call__(self, x, *, training=False, rngs=None):
        return autocast(x)  # even Keras's Identity casts float16 inputs to float32
