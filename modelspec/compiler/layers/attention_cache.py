"""KV-cache decoding of MultiHeadAttention and GroupQueryAttention (the "cached" decode
kind of the spec classes): the projected keys and values of every position decoded so
far are kept, so each new position costs one projection and one row of attention.

`init_cache(batch, length, dtype)` makes the zero cache; `decode(query, value, *,
cache, position)` takes the inputs of positions [position, position + T) (the prompt at
prefill, then one token at a time), writes their projected keys and values at
`position` and attends causally over the cache: query position i sees cache positions
j <= i, so the slots not written yet are masked. The output equals the layer's
`__call__` on the whole sequence with `use_causal_mask: true` at those positions, in
inference mode, by the same road (jax's fused attention, or the explicit one).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer


class CachedAttention(Layer):
    """`init_cache` and `decode` over the projections and roads of
    `attention_projected._ProjectedAttention` (its subclass)."""

    def init_cache(self, batch: int, length: int, dtype) -> dict[str, jax.Array]:
        """Zeros for `length` positions: projected keys (batch, length, key/value heads,
        key head size) and values (batch, length, key/value heads, value head size), in
        `dtype` (None: float32); decode casts them to the compute dtype it reads them in."""
        dtype = jnp.float32 if dtype is None else dtype
        _, heads, key_size = self.key.kernel.shape
        value_size = self.value.kernel.shape[-1]
        return {
            "key": jnp.zeros((batch, length, heads, key_size), dtype),
            "value": jnp.zeros((batch, length, heads, value_size), dtype),
        }

    def decode(self, query, value, key=None, attention_mask=None, *, cache, position):
        """(output for positions [position, position + T), the cache with their keys and
        values written). `position` is an int32 scalar (traced under jit); the caller
        keeps position + T <= the cache length (`dynamic_update_slice` would shift the
        write back inside the cache)."""
        if self.rank != 3 or not self.causal or attention_mask is not None:
            raise ValueError(
                f"{self.label}: decoding with a KV cache needs causal self-attention on "
                "(batch, steps, features) inputs (use_causal_mask: true) without an attention_mask"
            )
        q, k, v = self._projections(query, value, key)
        position = jnp.asarray(position, jnp.int32)
        zero = jnp.zeros((), jnp.int32)
        start = (zero, position, zero, zero)
        keys = jax.lax.dynamic_update_slice(cache["key"], k.astype(cache["key"].dtype), start)
        values = jax.lax.dynamic_update_slice(cache["value"], v.astype(cache["value"].dtype), start)
        steps, length = q.shape[1], keys.shape[1]
        visible = (position + jnp.arange(steps))[:, None] >= jnp.arange(length)[None, :]
        mask = visible[None, None]  # (1, 1, T, cache length): broadcasts over batch, heads
        k_all, v_all = keys.astype(q.dtype), values.astype(q.dtype)
        if self.jax_road:
            context = self._fused(
                q, k_all, v_all, mask, is_causal=False, training=False, decoding=True
            )
        else:
            context = self._explicit(q, k_all, v_all, mask, False, None)
        return self._output(context), {"key": keys, "value": values}
