"""The attention layers, numerically equal to Keras 3's: MultiHeadAttention,
GroupQueryAttention, Attention, AdditiveAttention (masks, softmax and dropout in
`attention_ops.py`).

Weights follow Keras's EinsumDense layouts (query/key/value kernels (dim, heads, head),
biases (heads, head), output kernel (heads, value_dim, out)), so checkpoints map 1:1.
Their initial fans are EinsumDense's: projections fan in over the input axis and out over
(heads, head); the output kernel fans in over (heads, value_dim) and out over its last axis.

MultiHeadAttention runs Keras's own einsum equations for its `attention_axes` (by
default every axis between batch and features, one softmax over all key positions
jointly), so scores have Keras's layout and an `attention_mask` broadcasts as in Keras;
over several axes the causal mask applies to the row-major positions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from modelspec.compiler.layers import attention_ops as ops
from modelspec.compiler.layers.base import Layer
from modelspec.compiler.sharding.constraints import constrain
from modelspec.schema.layers.einsum_math import attention_equations

_PROJECTION_FANS = ((0,), (1, 2))
_OUTPUT_FANS = ((0, 1), (2,))


def attention_mask(query_mask=None, value_mask=None, key_mask=None) -> jax.Array | None:
    """Keras's `_compute_attention_mask` from the inputs' Keras masks: (B, T, 1) from the
    query's, (B, 1, S) from the value's and the key's, and-ed into (B, T, S); None
    when no input is masked."""
    parts = []
    if query_mask is not None:
        parts.append(query_mask.astype(bool)[:, :, None])
    for m in (value_mask, key_mask):
        if m is not None:
            parts.append(m.astype(bool)[:, None, :])
    if not parts:
        return None
    mask = parts[0]
    for p in parts[1:]:
        mask = mask & p
    return mask


_input_masks = attention_mask  # `attention_mask` is also a call argument below


class _ProjectedAttention(Layer):
    """MultiHeadAttention and GroupQueryAttention: EinsumDense projections of the query,
    key and value into heads (scores scaled by 1/sqrt(`head_size`)), the subclass's
    attention weights per head, dropout on them, and the output projection back to
    features. Subclasses set `head_size`, `rate` and create the weights with
    `_create_projections`."""

    head_size: int

    def _create_projections(self, spec, shape, key) -> None:
        """The kernels and biases with their initializers and EinsumDense's fans."""
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
        """(B, ..., dim) @ (dim, heads, head) [+ (heads, head)] -> (B, ..., heads, head)."""
        y = jnp.einsum("...d,dhk->...hk", x, dense.kernel[...])
        y = y + dense.bias[...] if hasattr(dense, "bias") else y
        # heads on the tensor axis
        return constrain(y, ("batch",) + (None,) * (y.ndim - 3) + ("heads", "kv"))

    def _weights(self, q, k, attention_mask, inputs_mask):
        """Softmax attention weights (before dropout) from the projected q and k, the
        `attention_mask` argument and the inputs' combined Keras mask (or None)."""
        raise NotImplementedError

    def _context(self, weights, v):
        """The weighted values, (B, ..., heads, head)."""
        raise NotImplementedError

    def __call__(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        *,
        training=False,
        rngs=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
    ):
        key = value if key is None else key
        dtype = jnp.promote_types(query.dtype, self.query.kernel.dtype)  # mixed: bf16
        scale = jnp.asarray(1.0 / math.sqrt(self.head_size), dtype)
        q = self._project(self.query, query.astype(dtype)) * scale
        k = self._project(self.key, key.astype(dtype))
        v = self._project(self.value, value.astype(dtype))
        inputs_mask = _input_masks(query_mask, value_mask, key_mask)
        probs = self._weights(q, k, attention_mask, inputs_mask)
        probs = ops.dropout(probs.astype(dtype), self.rate, training, rngs)
        context = self._context(probs, v)
        out = jnp.einsum("...hk,hko->...o", context, self.attention_output.kernel[...])
        if hasattr(self.attention_output, "bias"):
            out = out + self.attention_output.bias[...]
        return out


class MultiHeadAttention(_ProjectedAttention):
    """Scaled dot-product attention over `num_heads` heads with learned projections."""

    def __init__(self, spec, x, shape, key):
        self.num_heads = spec.num_heads
        self.head_size = spec.key_dim
        self.rate = float(spec.dropout)
        self.causal = spec.use_causal_mask
        rank = x["query"].rank
        self.axes = spec.attention_axes_for(rank)
        self.dot_eq, self.combine_eq, _ = attention_equations(rank + 1, self.axes)
        # Keras's two roads (see attention_ops): fused attention for rank-3 inputs
        # without dropout, its Softmax layer otherwise.
        self.zero_masked = self.rate > 0.0 or rank != 3
        self._create_projections(spec, shape, key)

    def _weights(self, q, k, attention_mask, inputs_mask):
        # Keras's layout: (batch, other axes, heads, query positions, key positions).
        scores = jnp.einsum(self.dot_eq, k, q, preferred_element_type=jnp.float32)
        n, rank = len(self.axes), scores.ndim
        causal = None
        if self.causal:
            q_pos, k_pos = scores.shape[rank - 2 * n : rank - n], scores.shape[rank - n :]
            causal = ops.causal_over(q_pos, k_pos)
        given = None if attention_mask is None else attention_mask.astype(bool)
        mask = ops.combined_mask(
            ops.expand_mask(given, rank, n), ops.expand_mask(inputs_mask, rank, n), causal
        )
        axes = tuple(range(rank - n, rank))
        return ops.masked_softmax(scores, mask, axes, zero_masked=self.zero_masked)

    def _context(self, weights, v):
        return jnp.einsum(self.combine_eq, weights, v)


class GroupQueryAttention(_ProjectedAttention):
    """Keras's GroupQueryAttention: `num_query_heads` query heads, each group of
    num_query_heads / num_key_value_heads sharing one key/value head."""

    def __init__(self, spec, x, shape, key):
        self.head_size = spec.head_dim
        self.repeats = spec.num_query_heads // spec.num_key_value_heads
        self.rate = float(spec.dropout)
        self.causal = spec.use_causal_mask
        self.zero_masked = self.rate > 0.0  # Keras's Softmax-layer road (see attention_ops)
        self._create_projections(spec, shape, key)

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

    def _weights(self, q, k, attention_mask, inputs_mask):  # inputs_mask: (B, T, S) or None
        k = jnp.repeat(k, self.repeats, axis=2)
        scores = jnp.einsum("bquh,bkuh->buqk", q, k, preferred_element_type=jnp.float32)
        causal = ops.causal_mask(*scores.shape[-2:]) if self.causal else None
        given = self._given_mask(attention_mask, inputs_mask is not None)
        mask = ops.combined_mask(ops.expand_mask(given, 4), ops.expand_mask(inputs_mask, 4), causal)
        return ops.masked_softmax(scores, mask, (-1,), zero_masked=self.zero_masked)

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
