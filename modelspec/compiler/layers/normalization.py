"""Normalization: BatchNormalization, LayerNormalization, GroupNormalization,
UnitNormalization and RMSNormalization, as Keras 3 computes them.

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


class GroupNormalization(_Normalization):
    """Keras's arithmetic: the input is reshaped to (..., groups, channels/groups, ...)
    at `axis`, normalized in float32 over every axis but the batch and the groups, cast
    back to the input dtype (Keras sets `autocast = False` on this layer, so float16
    inputs stay float16 until then and integers are truncated), then to float32."""

    def __init__(self, spec, x, shape, key):
        (self.axis,) = normalize_axes(spec.axis, x)
        dim = x.shape[self.axis]
        self.groups = dim if spec.groups == -1 else spec.groups
        per_group = dim // self.groups
        grouped_rank = x.rank + 1
        # The grouped tensor has `groups` at `axis` and the channels of a group after it.
        self.reduce = tuple(a for a in range(1, grouped_rank) if a != self.axis)
        self.broadcast = tuple(
            self.groups if a == self.axis else per_group if a == self.axis + 1 else 1
            for a in range(grouped_rank)
        )
        self.epsilon = float(spec.epsilon)
        self.out_dtype = jnp.dtype(shape.output.dtype)
        self.create(
            shape.params, key, {"gamma": spec.gamma_initializer, "beta": spec.beta_initializer}
        )

    def __call__(self, x, *, training=False, rngs=None):
        a = self.axis
        grouped_shape = (*x.shape[:a], self.groups, x.shape[a] // self.groups, *x.shape[a + 1 :])
        g = x.reshape(grouped_shape).astype(jnp.promote_types(x.dtype, jnp.float32))
        mean = jnp.mean(g, self.reduce, keepdims=True)
        var = jnp.var(g, axis=self.reduce, keepdims=True)
        y = _normalize(
            g, mean, var, self._get("gamma", g.dtype), self._get("beta", g.dtype), self.epsilon
        )
        return y.astype(x.dtype).reshape(x.shape).astype(self.out_dtype)


class UnitNormalization(Layer):
    """`ops.normalize(x, axis, order=2, epsilon=1e-12)` on the JAX backend:
    `x * minimum(rsqrt(sum(x**2)), 1/epsilon)`, after Keras's float32 autocast."""

    def __init__(self, spec, x, shape, key):
        self.axes = tuple(spec.axis) if isinstance(spec.axis, list) else spec.axis

    def __call__(self, x, *, training=False, rngs=None):
        x = as_float(x)
        inv_norm = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=self.axes, keepdims=True))
        return x * jnp.minimum(inv_norm, 1.0 / 1e-12)


class RMSNormalization(Layer):
    """`ops.rms_normalization`: in float32 (or wider), `x * rsqrt(mean(x**2) + epsilon)
    * scale`, cast back to the input's dtype after Keras's autocast (float inputs come
    out float32, integer inputs in their own dtype)."""

    def __init__(self, spec, x, shape, key):
        n = len(shape.params[0].shape)
        self.axes = tuple(range(x.rank - n, x.rank))  # `infer` allows the last axes only
        self.epsilon = float(spec.epsilon)
        self.out_dtype = jnp.dtype(shape.output.dtype)
        self.create(shape.params, key, {"scale": "ones"})

    def __call__(self, x, *, training=False, rngs=None):
        x = as_float(x)
        rrms = jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=self.axes, keepdims=True) + self.epsilon)
        return (x * rrms * self.scale[...].astype(x.dtype)).astype(self.out_dtype)
