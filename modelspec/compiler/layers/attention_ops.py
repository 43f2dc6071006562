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
which road Keras takes for it (`zero_masked`). Where Keras's fused road runs
`jax.nn.dot_product_attention`, so do MultiHeadAttention and GroupQueryAttention
(`fused_attention`, with the implementation `flash_attention` chooses).
"""

from __future__ import annotations

import functools
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


# Keras's `ops.dot_product_attention` road: jax.nn.dot_product_attention, and which of
# its implementations runs (`flash_attention`).

CUDNN_DTYPES = ("float16", "bfloat16")


@functools.cache
def cuda_capability() -> tuple[int, int] | None:
    """The (major, minor) compute capability of the default device when it is a CUDA GPU
    (where cuDNN's fused attention exists), else None. Devices do not change within a
    process, so it is asked once."""
    device = jax.devices()[0]
    if device.platform != "gpu" or "cuda" not in device.client.platform_version.lower():
        return None
    major, minor = str(device.compute_capability).split(".")[:2]
    return int(major), int(minor)


def cudnn_unavailable() -> str | None:
    """Why cuDNN flash attention cannot run on this backend (None where it can): jax's
    `check_compute_capability("8.0")`, an Ampere or newer CUDA GPU."""
    capability = cuda_capability()
    if capability is None:
        return f"it needs a CUDA GPU with cuDNN; the backend is {jax.devices()[0].platform}"
    if capability < (8, 0):
        found = ".".join(map(str, capability))
        return f"it needs a GPU of compute capability >= 8.0 (Ampere); this one has {found}"
    return None


def cudnn_refusal(dtype, head_dim: int, masked: bool, training: bool, t: int, s: int) -> str | None:
    """Why these inputs cannot take cuDNN flash attention (None where they can): jax's
    own conditions (`check_layout`, `check_is_flash_attention` in
    jax/_src/cudnn/fused_attention_stablehlo.py): a cuDNN-capable device, float16 or
    bfloat16 q/k/v, a head size that is a multiple of 8 and at most 128 (256 from
    Hopper on), and, when a mask (a cuDNN bias) is differentiated, even lengths."""
    problem = cudnn_unavailable()
    if problem is not None:
        return problem
    if jnp.dtype(dtype).name not in CUDNN_DTYPES:
        return (
            f"it needs float16 or bfloat16 attention (a mixed dtype policy); "
            f"the projections are {jnp.dtype(dtype).name}"
        )
    limit = 256 if cuda_capability() >= (9, 0) else 128
    if head_dim % 8 or head_dim > limit:
        return f"it needs a head size that is a multiple of 8 and at most {limit}; got {head_dim}"
    if masked and training and (t % 2 or s % 2):
        return f"a masked attention it trains needs even lengths; got {t} queries, {s} keys"
    return None


def implementation(flash: bool | None, refusal: str | None, layer: str) -> str:
    """`jax.nn.dot_product_attention`'s implementation for Keras's `flash_attention`:
    None takes cuDNN where it applies (`refusal` is None) and XLA elsewhere, False always
    XLA, True cuDNN or an error naming `layer` and the reason."""
    if flash is False or (flash is None and refusal is not None):
        return "xla"
    if refusal is not None:
        raise ValueError(f"{layer}: flash_attention=true cannot run: {refusal}")
    return "cudnn"


def fused_attention(q, k, v, mask, *, scale: float, is_causal: bool, implementation: str):
    """Keras's fused road: `jax.nn.dot_product_attention` on (B, T, N, H) q and (B, S, K,
    H) k/v (K divides N: grouped heads share keys and values), logits scaled after the
    product. `mask` (or None) broadcasts to (B, N, T, S); it is given full query and key
    lengths, as cuDNN's bias needs, keeping its unit batch and head axes."""
    if mask is not None:
        mask = jnp.broadcast_to(mask, (*mask.shape[:2], q.shape[1], k.shape[1]))
    return jax.nn.dot_product_attention(
        q, k, v, mask=mask, scale=scale, is_causal=is_causal, implementation=implementation
    )
