"""What MultiHeadAttention and GroupQueryAttention (`attention.py`) share: projections,
the two attention roads and the output projection (`ProjectedAttention`).

Weights follow Keras's EinsumDense layouts (query/key/value kernels (dim, heads, head),
biases (heads, head), output kernel (heads, value_dim, out)), so checkpoints map 1:1.
Their initial fans are EinsumDense's: projections fan in over the input axis and out over
(heads, head); the output kernel fans in over (heads, value_dim) and out over its last axis.

Keras 3.15 computes the attention by one of two roads, and so does each layer here:

- its `ops.dot_product_attention` road, taken without dropout on rank-3 inputs (4-D
  projected tensors): `jax.nn.dot_product_attention`, `is_causal=True` when the causal
  mask is the only mask, otherwise every mask and-ed into one boolean (B|1, N|1, T, S)
  mask; `flash_attention` chooses its XLA or cuDNN implementation;
- its explicit road otherwise: Keras's einsum equations for the `attention_axes` (by
  default every axis between batch and features, one softmax over all key positions
  jointly), its masked Softmax layer and dropout, so scores have Keras's layout and an
  `attention_mask` broadcasts as in Keras; over several axes the causal mask applies to
  the row-major positions.

(MultiHeadAttention with value_dim != key_dim has no fused road in jax — Keras's call
fails there — and takes the explicit road with the fused road's masking.) The KV-cache
`init_cache`/`decode` methods (causal self-attention, one new position at a time) are
`attention_cache.CachedAttention`'s.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from modelspec.compiler.layers import attention_ops as ops
from modelspec.compiler.layers.attention_cache import CachedAttention
from modelspec.compiler.sharding.constraints import constrain

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


def layer_label(spec) -> str:
    """How errors name the layer: its type and, where the spec names it, its name."""
    return spec.type if spec.name is None else f"{spec.type} layer {spec.name!r}"


class ProjectedAttention(CachedAttention):
    """EinsumDense projections of the query, key and value into heads, the attention of
    the road Keras takes (module docstring), and the output projection back to features.
    Subclasses set `head_size`, `rate`, `causal`, `fused` (Keras's
    `ops.dot_product_attention` road) and `zero_masked` (its Softmax-layer masking), then
    call `_setup`."""

    head_size: int

    def _setup(self, spec, shape, key, value_size: int) -> None:
        """`flash_attention`, whether jax's fused attention runs (it needs equal key and
        value head sizes), a cuDNN check at build, and the weights."""
        self.label = layer_label(spec)
        self.flash = spec.flash_attention
        self.scale = 1.0 / math.sqrt(float(self.head_size))  # Keras's float
        self.jax_road = self.fused and value_size == self.head_size
        if self.jax_road and self.flash and (problem := ops.cudnn_unavailable()) is not None:
            raise ValueError(f"{self.label}: flash_attention=true cannot run: {problem}")
        self._create_projections(spec, shape, key)

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

    def _projections(self, query, value, key):
        """The projected (unscaled) q, k and v in the compute dtype (bfloat16 when
        mixed: the query's dtype promoted with the kernels')."""
        key = value if key is None else key
        dtype = jnp.promote_types(query.dtype, self.query.kernel.dtype)
        q = self._project(self.query, query.astype(dtype))
        k = self._project(self.key, key.astype(dtype))
        v = self._project(self.value, value.astype(dtype))
        return q, k, v

    def _mask(self, q, k, attention_mask, inputs_mask, causal: bool):
        """The `attention_mask`, the inputs' combined Keras mask and (with `causal`) the
        causal mask, and-ed into one mask that broadcasts to the scores (or None)."""
        raise NotImplementedError

    def _scores(self, q, k):
        """float32 scores of the scaled q against k, in the explicit road's layout."""
        raise NotImplementedError

    def _context(self, weights, v):
        """The weighted values, (B, ..., heads, head)."""
        raise NotImplementedError

    softmax_axes: tuple[int, ...] = (-1,)

    def _explicit(self, q, k, v, mask, training, rngs):
        """Keras's explicit road: q scaled first, einsum scores, masked softmax, dropout
        on the weights, weighted values."""
        q = q * jnp.asarray(self.scale, q.dtype)
        probs = ops.masked_softmax(
            self._scores(q, k), mask, self.softmax_axes, zero_masked=self.zero_masked
        )
        probs = ops.dropout(probs.astype(q.dtype), self.rate, training, rngs)
        return self._context(probs, v)

    def _fused(self, q, k, v, mask, *, is_causal: bool, training: bool, decoding: bool = False):
        """Keras's `ops.dot_product_attention` road (jax's fused attention). In
        `decoding` (a few query rows against a KV cache, where the flash kernel saves
        little), `flash_attention: null` keeps XLA; `true` still asks for cuDNN."""
        masked = mask is not None
        t, s = q.shape[1], k.shape[1]  # (B, T, N, H) and (B, S, K, H)
        refusal = ops.cudnn_refusal(q.dtype, self.head_size, masked, training, t, s)
        flash = False if decoding and self.flash is None else self.flash
        impl = ops.implementation(flash, refusal, self.label)
        return ops.fused_attention(
            q, k, v, mask, scale=self.scale, is_causal=is_causal, implementation=impl
        )

    def _attend(self, q, k, v, attention_mask, inputs_mask, training, rngs):
        """The context by the road Keras takes; causal-only attention on the fused road
        is jax's `is_causal`, as Keras's `causal_only`."""
        causal_only = self.causal and attention_mask is None and inputs_mask is None
        if self.jax_road and causal_only:
            return self._fused(q, k, v, None, is_causal=True, training=training)
        mask = self._mask(q, k, attention_mask, inputs_mask, self.causal)
        if self.jax_road:
            return self._fused(q, k, v, mask, is_causal=False, training=training)
        return self._explicit(q, k, v, mask, training, rngs)

    def _output(self, context):
        """The output projection (heads, head) -> features."""
        out = jnp.einsum("...hk,hko->...o", context, self.attention_output.kernel[...])
        if hasattr(self.attention_output, "bias"):
            out = out + self.attention_output.bias[...]
        return out

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
        q, k, v = self._projections(query, value, key)
        inputs_mask = _input_masks(query_mask, value_mask, key_mask)
        return self._output(self._attend(q, k, v, attention_mask, inputs_mask, training, rngs))
