"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Rescaling, Embedding."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.activations import activation
from modelspec.compiler.layers.base import Layer
from modelspec.compiler.layers.registry import builder
from modelspec.compiler.layers.sharding import constrain


@builder("Dense")
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


@builder("Activation")
class Activation(Layer):
    def __init__(self, spec, x, shape, key):
        self.act = spec.activation

    def __call__(self, x, *, training=False, rngs=None):
        return activation(self.act)(x.astype(jnp.promote_types(x.dtype, jnp.float32)))


@builder("Dropout")
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


@builder("Flatten")
class Flatten(Layer):
    def __init__(self, spec, x, shape, key):
        pass

    def __call__(self, x, *, training=False, rngs=None):
        return x.reshape(x.shape[0], -1)


@builder("Reshape")
class Reshape(Layer):
    def __init__(self, spec, x, shape, key):
        self.target = tuple(d if d is not None else -1 for d in shape.output.shape[1:])

    def __call__(self, x, *, training=False, rngs=None):
        return x.reshape(x.shape[0], *self.target)


@builder("Rescaling")
class Rescaling(Layer):
    def __init__(self, spec, x, shape, key):
        self.scale, self.offset = float(spec.scale), float(spec.offset)

    def __call__(self, x, *, training=False, rngs=None):
        return x.astype(jnp.promote_types(x.dtype, jnp.float32)) * self.scale + self.offset


@builder("Embedding")
class Embedding(Layer):
    def __init__(self, spec, x, shape, key):
        self.create(shape.params, key, {"embeddings": spec.embeddings_initializer})

    def __call__(self, x, *, training=False, rngs=None):
        return jnp.take(self.embeddings[...], x.astype(jnp.int32), axis=0)
