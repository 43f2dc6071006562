"""MultiHeadAttention, numerically equal to Keras 3's `MultiHeadAttention`.

Weights follow Keras's EinsumDense layouts (query/key/value kernels (dim, heads, head),
biases (heads, head), output kernel (heads, value_dim, out)), so checkpoints map 1:1.
Their initial fans are EinsumDense's: projections fan in over the input axis and out over
(heads, head); the output kernel fans in over (heads, value_dim) and out over its last axis.

Inputs of rank > 3 attend over every axis between batch and features (Keras's default
`attention_axes=None`, a softmax over all key positions jointly). That equals attention
over the flattened positions, so those axes are flattened and restored afterwards; the
causal mask then applies to the flattened (row-major) positions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer
from modelspec.compiler.sharding.constraints import constrain

_PROJECTION_FANS = ((0,), (1, 2))
_OUTPUT_FANS = ((0, 1), (2,))


def causal_mask(t: int, s: int) -> jax.Array:
    """Keras's `_compute_causal_mask`: query position i sees key positions j <= i
    (lower triangle anchored top-left, also when T != S)."""
    return jnp.arange(t)[:, None] >= jnp.arange(s)[None, :]


class MultiHeadAttention(Layer):
    """Scaled dot-product attention over `num_heads` heads with learned projections."""

    def __init__(self, spec, x, shape, key):
        self.num_heads = spec.num_heads
        self.key_dim = spec.key_dim
        self.rate = float(spec.dropout)
        self.causal = spec.use_causal_mask
        inits, fans = {}, {}
        for info in shape.params:
            is_kernel = info.path.endswith("/kernel")
            inits[info.path] = spec.kernel_initializer if is_kernel else spec.bias_initializer
            if is_kernel:
                fans[info.path] = (
                    _OUTPUT_FANS if info.path.startswith("attention_output/") else _PROJECTION_FANS
                )
        self.create(shape.params, key, inits, fan_axes=fans)

    @staticmethod
    def _project(dense, x):
        """(B, N, dim) @ (dim, heads, head) [+ (heads, head)] -> (B, N, heads, head)."""
        y = jnp.einsum("bnd,dhk->bnhk", x, dense.kernel[...])
        y = y + dense.bias[...] if hasattr(dense, "bias") else y
        return constrain(y, ("batch", None, "heads", "kv"))  # heads on the tensor axis

    def __call__(self, query, value, key=None, *, training=False, rngs=None):
        key = value if key is None else key
        dtype = jnp.promote_types(query.dtype, jnp.float32)
        batch, q_axes = query.shape[0], query.shape[1:-1]
        # Flatten the attention axes: (B, ..., d) -> (B, positions, d).
        q, k, v = (
            t.astype(dtype).reshape(t.shape[0], -1, t.shape[-1]) for t in (query, key, value)
        )

        q = self._project(self.query, q) * jnp.asarray(1.0 / math.sqrt(self.key_dim), dtype)
        k = self._project(self.key, k)
        v = self._project(self.value, v)

        scores = jnp.einsum("bthk,bshk->bhts", q, k).astype(jnp.float32)
        if self.causal:
            mask = causal_mask(scores.shape[-2], scores.shape[-1])
            # Keras's Softmax layer: masked positions get a large negative logit.
            scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
        if training and self.rate > 0.0:
            keep = jax.random.bernoulli(rngs.dropout(), 1.0 - self.rate, probs.shape)
            probs = jnp.where(keep, probs / (1.0 - self.rate), jnp.zeros_like(probs))

        context = jnp.einsum("bhts,bshk->bthk", probs, v)
        out = jnp.einsum("bthk,hko->bto", context, self.attention_output.kernel[...])
        if hasattr(self.attention_output, "bias"):
            out = out + self.attention_output.bias[...]
        return out.reshape(batch, *q_axes, out.shape[-1])
