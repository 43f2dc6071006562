"""Masks, masked softmax and dropout shared by the attention layers (Keras numerics).

Every mask source of an attention layer — the `attention_mask` tensor, the causal mask,
and the Keras masks propagated with the inputs ((batch, T, 1) from the query's,
(batch, 1, S) from the value's and key's) — is a boolean "may attend" array that
broadcasts to the scores once `expand_mask` has put it in the scores' rank; they all
meet in `combined_mask`, one logical AND, before the one `masked_softmax`.

Keras reaches the softmax by two roads with different answers for a query row whose
keys are all masked: its fused `dot_product_attention` (masked logits -0.7·float max,
so such a row is uniform over every key) and its Softmax layer (masked logits -1e9, then
the masked probabilities zeroed, so such a row attends to nothing). Each layer says
which road Keras takes for it (`zero_masked`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def causal_mask(t: int, s: int) -> jax.Array:
    """Keras's `_compute_causal_mask`: query position i sees key positions j <= i
    (lower triangle anchored top-left, also when T != S)."""
    return jnp.arange(t)[:, None] >= jnp.arange(s)[None, :]


def causal_over(q_axes: tuple[int, ...], k_axes: tuple[int, ...]) -> jax.Array:
    """The causal mask over several attention axes, shaped (*q_axes, *k_axes): positions
    compared in row-major order (for one axis, Keras's mask)."""
    mask = causal_mask(math.prod(q_axes), math.prod(k_axes))
    return mask.reshape(*q_axes, *k_axes)


def expand_mask(mask: jax.Array | None, rank: int, n_axes: int = 1) -> jax.Array | None:
    """Keras's expansion of a mask to the scores' rank: unit axes inserted just before
    the `n_axes` query-position axes (so (B, T, S) -> (B, 1, T, S) over the heads)."""
    if mask is None:
        return None
    while mask.ndim < rank:
        mask = jnp.expand_dims(mask, -2 * n_axes - 1)
    return mask


def combined_mask(*masks: jax.Array | None) -> jax.Array | None:
    """The logical AND of the given masks (None entries skipped; None if all are):
    where attention_mask, causal mask and the inputs' propagated masks meet. Each must
    already broadcast to the scores (see `expand_mask`)."""
    out = None
    for m in masks:
        if m is not None:
            out = m if out is None else jnp.logical_and(out, m)
    return out


def masked_softmax(
    scores: jax.Array, mask: jax.Array | None, axes: tuple[int, ...], *, zero_masked: bool
) -> jax.Array:
    """Softmax over `axes` (jointly) of float32 `scores` with masked positions excluded,
    by Keras's Softmax layer (`zero_masked`) or its fused attention (see the module)."""
    if mask is not None:
        fill = -1e9 if zero_masked else -0.7 * float(jnp.finfo(scores.dtype).max)
        scores = jnp.where(mask, scores, jnp.asarray(fill, scores.dtype))
    probs = jax.nn.softmax(scores, axis=axes)
    if mask is not None and zero_masked:
        probs = jnp.where(mask, probs, 0.0)
    return probs


def dropout(probs: jax.Array, rate: float, training: bool, rngs) -> jax.Array:
    """Keras's Dropout on attention probabilities: in training, each is zeroed with
    probability `rate` and the rest scaled by 1/(1 - rate)."""
    if not training or rate <= 0.0:
        return probs
    keep = jax.random.bernoulli(rngs.dropout(), 1.0 - rate, probs.shape)
    return jnp.where(keep, probs / (1.0 - rate), jnp.zeros_like(probs))
