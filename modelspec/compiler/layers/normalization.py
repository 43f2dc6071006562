"""Normalization: BatchNormalization and LayerNormalization, as Keras 3 computes them.

Both follow Keras's JAX arithmetic step for step (not just the textbook formula) so
results agree to float rounding: the input is upcast to float32, then
`inv = rsqrt(var + epsilon) * gamma` and `out = x * inv + (beta - mean * inv)`.

BatchNormalization keeps `moving_mean`/`moving_variance` as nnx.BatchStat variables.
In training it normalizes with the batch's mean and *biased* variance and updates them
in place as `moving = moving * momentum + batch * (1 - momentum)`; a frozen layer
(`trainable: false`) uses and keeps its moving statistics even in training, as Keras's
`training and self.trainable` test does (that is what fine-tuning relies on).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer
from modelspec.compiler.layers.conv import as_float
from modelspec.schema.layers.shape_math import normalize_axes


def _normalize(x, mean, var, gamma, beta, epsilon):
    """Keras's `batch_normalization`/`layer_normalization` arithmetic (JAX backend)."""
    inv = jax.lax.rsqrt(var + epsilon)
    if gamma is not None:
        inv = inv * gamma
    res = -mean * inv
    if beta is not None:
        res = res + beta
    return x * inv + res


class _Normalization(Layer):
    """Shared by both layers: a variable (gamma, beta, statistics) shaped to broadcast
    against the input, or None when the layer has none (center/scale off)."""

    def _get(self, name: str, dtype):
        if not self.has(name):
            return None
        return getattr(self, name)[...].astype(dtype).reshape(self.broadcast)


class BatchNormalization(_Normalization):
    def __init__(self, spec, x, shape, key):
        (self.axis,) = normalize_axes(spec.axis, x)
        self.reduce = tuple(a for a in range(x.rank) if a != self.axis)
        self.broadcast = tuple(-1 if a == self.axis else 1 for a in range(x.rank))
        self.momentum = float(spec.momentum)
        self.epsilon = float(spec.epsilon)
        self.updates = bool(spec.trainable)
        self.create(
            shape.params,
            key,
            {
                "gamma": spec.gamma_initializer,
                "beta": spec.beta_initializer,
                "moving_mean": spec.moving_mean_initializer,
                "moving_variance": spec.moving_variance_initializer,
            },
        )

    def __call__(self, x, *, training=False, rngs=None):
        x = as_float(x)
        if training and self.updates:
            mean = jnp.mean(x, self.reduce)
            var = jnp.var(x, axis=self.reduce)
            m = self.momentum
            self.moving_mean[...] = self.moving_mean[...] * m + mean * (1.0 - m)
            self.moving_variance[...] = self.moving_variance[...] * m + var * (1.0 - m)
        else:
            mean = self.moving_mean[...]
            var = self.moving_variance[...]
        mean = mean.astype(x.dtype).reshape(self.broadcast)
        var = var.astype(x.dtype).reshape(self.broadcast)
        return _normalize(
            x, mean, var, self._get("gamma", x.dtype), self._get("beta", x.dtype), self.epsilon
        )


class LayerNormalization(_Normalization):
    """Per-sample normalization over `axis`.

    `rms_scaling: true` is Keras's (deprecated) variant, reproduced as Keras computes it:
    `x * rsqrt(var(x) + epsilon) * gamma` — scaled by the *variance* but not centred, and
    without beta — which is not RMSNorm (`x * rsqrt(mean(x**2) + epsilon)`).
    """

    def __init__(self, spec, x, shape, key):
        self.axes = normalize_axes(spec.axis, x)  # the order of gamma/beta's axes
        self.broadcast = tuple(x.shape[a] if a in self.axes else 1 for a in range(x.rank))
        self.epsilon = float(spec.epsilon)
        self.rms_scaling = bool(spec.rms_scaling)
        self.create(
            shape.params, key, {"gamma": spec.gamma_initializer, "beta": spec.beta_initializer}
        )

    def __call__(self, x, *, training=False, rngs=None):
        x = as_float(x)
        gamma = self._get("gamma", x.dtype)
        var = jnp.var(x, axis=self.axes, keepdims=True)
        if self.rms_scaling:
            y = x * jax.lax.rsqrt(var + self.epsilon)
            return y if gamma is None else y * gamma
        mean = jnp.mean(x, axis=self.axes, keepdims=True)
        return _normalize(x, mean, var, gamma, self._get("beta", x.dtype), self.epsilon)
