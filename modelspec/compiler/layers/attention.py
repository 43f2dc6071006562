"""The attention layers, numerically equal to Keras 3's: MultiHeadAttention and
GroupQueryAttention (their projections and Keras's two attention roads in
`attention_projected.py`, KV-cache decoding in `attention_cache.py`), Attention and
AdditiveAttention (masks, softmax and dropout in `attention_ops.py`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers import attention_ops as ops
from modelspec.compiler.layers.attention_projected import ProjectedAttention, attention_mask
from modelspec.compiler.layers.base import Layer
from modelspec.schema.layers.einsum_math import attention_equations

__all__ = [
    "AdditiveAttention",
    "Attention",
    "GroupQueryAttention",
    "MultiHeadAttention",
    "attention_mask",
]


class MultiHeadAttention(ProjectedAttention):
    """Scaled dot-product attention over `num_heads` heads with learned projections."""

    def __init__(self, spec, x, shape, key):
        self.num_heads = spec.num_heads
        self.head_size = spec.key_dim
        self.rate = float(spec.dropout)
        self.causal = spec.use_causal_mask
        self.rank = x["query"].rank
        self.axes = spec.attention_axes_for(self.rank)
        self.softmax_axes = tuple(range(-len(self.axes), 0))
        self.dot_eq, self.combine_eq, _ = attention_equations(self.rank + 1, self.axes)
        # Keras's fused road: rank-3 inputs (4-D projections) without dropout.
        self.fused = self.rate == 0.0 and self.rank == 3
        self.zero_masked = not self.fused
        self._setup(spec, shape, key, spec.value_dim or spec.key_dim)

    def _mask(self, q, k, attention_mask, inputs_mask, causal: bool):
        # Scores: (batch, other axes, heads, query positions, key positions).
        n = len(self.axes)
        rank = q.ndim - 1 + n
        causal_mask = None
        if causal:
            q_pos = tuple(q.shape[a] for a in self.axes)
            causal_mask = ops.causal_over(q_pos, tuple(k.shape[a] for a in self.axes))
        given = None if attention_mask is None else attention_mask.astype(bool)
        return ops.combined_mask(
            ops.expand_mask(given, rank, n), ops.expand_mask(inputs_mask, rank, n), causal_mask
        )

    def _scores(self, q, k):
        return jnp.einsum(self.dot_eq, k, q, preferred_element_type=jnp.float32)

    def _context(self, weights, v):
        return jnp.einsum(self.combine_eq, weights, v)


class GroupQueryAttention(ProjectedAttention):
    """Keras's GroupQueryAttention: `num_query_heads` query heads, each group of
    num_query_heads / num_key_value_heads sharing one key/value head (jax's fused
    attention shares them itself; the explicit road repeats them, as Keras)."""

    def __init__(self, spec, x, shape, key):
        self.head_size = spec.head_dim
        self.repeats = spec.num_query_heads // spec.num_key_value_heads
        self.rate = float(spec.dropout)
        self.causal = spec.use_causal_mask
        self.rank = 3
        self.fused = self.rate == 0.0  # Keras's fused road (inputs are always rank 3)
        self.zero_masked = not self.fused
        self._setup(spec, shape, key, spec.head_dim)

    def _given_mask(self, attention_mask, input_masked: bool):
        """The `attention_mask` as Keras reads it: cast to bool, except on the Softmax
        road without a causal mask or masked inputs (Keras and-s those with the cast
        tensor), where Keras's Softmax keeps values > 0.5."""
        if attention_mask is None:
            return None
        cast = not self.zero_masked or self.causal or input_masked
        if attention_mask.dtype == jnp.bool_ or cast:
            return attention_mask.astype(bool)
        return attention_mask > 0.5

    def _mask(self, q, k, attention_mask, inputs_mask, causal: bool):
        causal_mask = ops.causal_mask(q.shape[1], k.shape[1]) if causal else None
        given = self._given_mask(attention_mask, inputs_mask is not None)
        return ops.combined_mask(
            ops.expand_mask(given, 4), ops.expand_mask(inputs_mask, 4), causal_mask
        )

    def _scores(self, q, k):
        k = jnp.repeat(k, self.repeats, axis=2)
        return jnp.einsum("bquh,bkuh->buqk", q, k, preferred_element_type=jnp.float32)

    def _context(self, weights, v):
        return jnp.einsum("buqk,bkuh->bquh", weights, jnp.repeat(v, self.repeats, axis=2))


class _DotAttention(Layer):
    """Keras's Attention/AdditiveAttention call: scores, the value's Keras mask and the
    causal mask as a -1e9 shift of the masked scores (not a replacement: Keras's
    `_apply_scores`, so a fully masked row attends as if unmasked), softmax over the key
    positions, dropout, the weights times the value, then the rows the query's mask
    hides set to zero. A key mask is ignored, as Keras ignores `mask[2]`."""

    initializers: dict[str, str] = {}

    def __init__(self, spec, x, shape, key):
        self.rate = float(spec.dropout)
        self.causal = spec.use_causal_mask
        self.create(shape.params, key, self.initializers)

    def _scores(self, q, k):
        raise NotImplementedError

    def __call__(
        self,
        query,
        value,
        key=None,
        *,
        training=False,
        rngs=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,  # Keras's Attention ignores it
    ):
        key = value if key is None else key
        dtype = jnp.promote_types(query.dtype, jnp.float32)
        q, k, v = (t.astype(dtype) for t in (query, key, value))
        scores = self._scores(q, k)
        causal = ops.causal_mask(*scores.shape[-2:]) if self.causal else None
        keys = None if value_mask is None else value_mask.astype(bool)[..., None, :]
        mask = ops.combined_mask(keys, causal)
        if mask is not None:
            scores = jnp.where(mask, scores, scores - jnp.asarray(1e9, scores.dtype))
        weights = ops.dropout(jax.nn.softmax(scores, axis=-1), self.rate, training, rngs)
        out = jnp.matmul(weights, v)
        if query_mask is not None:
            out = jnp.where(query_mask.astype(bool)[..., None], out, jnp.zeros((), out.dtype))
        return out


class Attention(_DotAttention):
    """Keras's `Attention`: dot or concat scores, an optional learned scalar scale."""

    initializers = {"scale": "ones", "concat_score_weight": "ones"}

    def __init__(self, spec, x, shape, key):
        self.mode = spec.score_mode
        super().__init__(spec, x, shape, key)

    def _scores(self, q, k):
        scale = self.scale[...] if self.has("scale") else None
        if self.mode == "dot":
            scores = jnp.matmul(q, jnp.swapaxes(k, -2, -1))
            return scores if scale is None else scores * scale
        summed = q[..., :, None, :] + k[..., None, :, :]
        summed = summed if scale is None else scale * summed
        return self.concat_score_weight[...] * jnp.sum(jnp.tanh(summed), axis=-1)


class AdditiveAttention(_DotAttention):
    """Keras's `AdditiveAttention`: scores `sum(scale * tanh(q + k))` over features."""

    initializers = {"scale": "glorot_uniform"}

    def _scores(self, q, k):
        scale = self.scale[...] if self.has("scale") else 1.0
        return jnp.sum(scale * jnp.tanh(q[..., :, None, :] + k[..., None, :, :]), axis=-1)
