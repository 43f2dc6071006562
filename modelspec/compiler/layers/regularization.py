"""Regularization layers (NNX side of `schema/layers/regularization.py`).

Each follows Keras 3's training-mode formula; the random numbers come from the model's
`rngs.dropout()` stream (seeded by the spec), not from a per-layer Keras `seed`, so the
draws differ from Keras's while their distribution and structure match (the property
tests in tests/conformance/test_regularization.py check both implementations).
At inference every layer is the identity after Keras's float32 autocast."""

from __future__ import annotations

import math
from typing import ClassVar

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.activations import autocast
from modelspec.compiler.layers.base import Layer

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class _TrainingNoise(Layer):
    """The identity (after Keras's float autocast) at inference and when the spec's
    `amount_field` (the rate or deviation) is 0; `_noisy` in training, with one key of
    the model's dropout stream."""

    amount_field: ClassVar[str] = "rate"

    def __init__(self, spec, x, shape, key):
        self.amount = float(getattr(spec, self.amount_field))

    def __call__(self, x, *, training=False, rngs=None):
        x = autocast(x)
        if not training or self.amount == 0.0:
            return x
        return self._noisy(x, rngs.dropout())

    def _noisy(self, x: jax.Array, key: jax.Array) -> jax.Array:
        raise NotImplementedError


class _SpatialDropout(_TrainingNoise):
    """Keras's `backend.random.dropout` with noise shape (batch, 1, ..., 1, channels):
    one keep/drop draw per sample and channel, broadcast over the spatial axes."""

    def _noisy(self, x, key):
        noise = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
        keep = jax.random.bernoulli(key, 1.0 - self.amount, noise)
        return jnp.where(keep, x / (1.0 - self.amount), jnp.zeros_like(x))


class SpatialDropout1D(_SpatialDropout):
    pass


class SpatialDropout2D(_SpatialDropout):
    pass


class SpatialDropout3D(_SpatialDropout):
    pass


class GaussianNoise(_TrainingNoise):
    """`x + normal(0, stddev)` in training, drawn in the compute dtype (float32)."""

    amount_field = "stddev"

    def _noisy(self, x, key):
        return x + jax.random.normal(key, x.shape, x.dtype) * self.amount


class GaussianDropout(_TrainingNoise):
    """`x * normal(1, sqrt(rate / (1 - rate)))` in training."""

    def _noisy(self, x, key):
        stddev = math.sqrt(self.amount / (1.0 - self.amount))
        return x * (jax.random.normal(key, x.shape, x.dtype) * stddev + 1.0)


class AlphaDropout(_TrainingNoise):
    """Keras's AlphaDropout step for step: keep where `uniform >= rate`, dropped values
    become `alpha_p = -alpha * scale` of SELU, then `a * x + b` with
    `a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5` and `b = -a * alpha_p * rate`,
    which keeps zero-mean unit-variance inputs so."""

    def __init__(self, spec, x, shape, key):
        super().__init__(spec, x, shape, key)
        self.noise_shape = None if spec.noise_shape is None else tuple(spec.noise_shape)

    def _noisy(self, x, key):
        shape = x.shape
        if self.noise_shape is not None:
            shape = tuple(
                d if n is None else n for n, d in zip(self.noise_shape, x.shape, strict=True)
            )
        rate = self.amount
        alpha_p = -SELU_ALPHA * SELU_SCALE
        kept = (jax.random.uniform(key, shape) >= rate).astype(x.dtype)
        a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * rate
        return a * (x * kept + alpha_p * (1 - kept)) + b


class ActivityRegularization(Layer):
    """Identity (after Keras's float autocast). Its penalty on the output is the spec
    class's `activity_penalty()` (L1L2), which `compiler/penalties.py` adds to the loss
    like any activity regularizer."""

    def __init__(self, spec, x, shape, key):
        pass

    def __call__(self, x, *, training=False, rngs=None):
        return autocast(x)
