"""ONNX lowerings of the attention layers (`schema/layers/attention.py`):
MultiHeadAttention, GroupQueryAttention, Attention, AdditiveAttention.

They follow `compiler/layers/attention.py` step by step: the EinsumDense projections
as MatMuls with the kernels flattened to (dim, heads * head) and reshaped into heads,
the query scaled by 1/sqrt(head size), Keras's own score and combine einsums for
MultiHeadAttention's `attention_axes` (ONNX Einsum), the masks — the
`attention_mask` input (non-zero attends; GroupQueryAttention's Softmax road keeps
values > 0.5 as Keras does) and the causal mask (row-major over several axes) —
and-ed, expanded to the scores' rank as Keras expands them, then Keras's masked
softmax of the road the layer takes (`attention_ops.py`: -0.7 * float32 max for the
fused road, -1e9 and zeroed probabilities for the Softmax road). Attention and
AdditiveAttention shift masked scores by -1e9, as Keras's `_apply_scores`. Dropout is
the identity at inference. Keras input masks never reach these lowerings (the exporter
refuses them). Conventions: see `graph.py`.
"""

from __future__ import annotations

import math

import numpy as np

from modelspec.compiler.layers.onnx.graph import OnnxGraph, Unsupported
from modelspec.compiler.layers.onnx.resizing import repeat
from modelspec.schema.layers.einsum_math import attention_equations

F32_MAX = float(np.finfo(np.float32).max)


def _float(g: OnnxGraph, x: str, t) -> str:
    """Keras computes in promote(input, float32): float64 is refused (weights are
    exported in float32), everything else becomes float32."""
    if t.dtype == "float64":
        raise Unsupported("attention on float64 inputs is not exported to ONNX", "inputs")
    return g.cast_if(x, t.dtype, "float32")


def _project(g: OnnxGraph, x: str, rank: int, kernel: np.ndarray, bias) -> str:
    """EinsumDense "...d,dhk->...hk" (+ bias (h, k)) on `x` of `rank`."""
    d, h, k = kernel.shape
    y = g.binary("MatMul", x, g.initializer(kernel.reshape(d, h * k), "kernel"))
    y = g.reshape(y, [0] * (rank - 1) + [h, k])
    return y if bias is None else g.binary("Add", y, g.initializer(bias, "bias"))


def _output(g: OnnxGraph, context: str, rank: int, kernel: np.ndarray, bias) -> str:
    """EinsumDense "...hk,hko->...o" (+ bias) on the (..., heads, head) context."""
    h, k, o = kernel.shape
    y = g.reshape(context, [0] * (rank - 1) + [h * k])
    y = g.binary("MatMul", y, g.initializer(kernel.reshape(h * k, o), "kernel"))
    return y if bias is None else g.binary("Add", y, g.initializer(bias, "bias"))


def _projections(g: OnnxGraph, weights, inputs, types) -> tuple[str, str, str, int]:
    """(q unscaled, k, v) projected into heads, and the inputs' rank."""
    q = _float(g, inputs["query"], types["query"])
    v = _float(g, inputs["value"], types["value"])
    k = _float(g, inputs["key"], types["key"]) if "key" in inputs else v
    rank = types["query"].rank
    out = [
        _project(g, x, rank, weights[f"{n}/kernel"], weights.get(f"{n}/bias"))
        for n, x in (("query", q), ("key", k), ("value", v))
    ]
    return out[0], out[1], out[2], rank


def _expand(g: OnnxGraph, mask: str, mask_rank: int, rank: int, n_axes: int) -> str:
    """Keras's `expand_mask`: unit axes inserted before the query-position axes until
    the mask has the scores' rank."""
    while mask_rank < rank:
        mask = g.node("Unsqueeze", [mask, g.ints([-2 * n_axes - 1])])
        mask_rank += 1
    return mask


def _causal(g: OnnxGraph, scores: str, q_axes, k_axes) -> str:
    """The causal mask (*q_axes, *k_axes): key position j <= query position i in
    row-major order; a constant when the sizes are known, built from the scores' shape
    for a single attention axis otherwise."""
    if None not in (*q_axes, *k_axes):
        t, s = math.prod(q_axes), math.prod(k_axes)
        mask = np.arange(t)[:, None] >= np.arange(s)[None, :]
        return g.const(mask.reshape(*q_axes, *k_axes), "bool")
    if len(q_axes) != 1:
        raise Unsupported(
            "a causal mask over several attention axes of unknown size is not exported to ONNX",
            "use_causal_mask",
        )
    dims = g.node("Shape", [scores])
    t = g.node("Squeeze", [g.node("Slice", [dims, g.ints([-2]), g.ints([-1])])])
    s = g.node("Squeeze", [g.node("Slice", [dims, g.ints([-1]), g.ints([np.iinfo(np.int64).max])])])
    zero, one = g.const(0, "int64"), g.const(1, "int64")
    rows = g.node("Unsqueeze", [g.node("Range", [zero, t, one]), g.ints([1])])
    cols = g.node("Unsqueeze", [g.node("Range", [zero, s, one]), g.ints([0])])
    return g.node("GreaterOrEqual", [rows, cols])


def _and(g: OnnxGraph, a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return g.node("And", [a, b])


def masked_softmax(g: OnnxGraph, scores: str, mask: str | None, n_axes: int, zero: bool) -> str:
    """Softmax over the last `n_axes` axes jointly with masked scores replaced (-1e9 on
    Keras's Softmax road, which then zeroes them; -0.7 * float32 max on its fused one)."""
    if mask is not None:
        fill = -1e9 if zero else -0.7 * F32_MAX
        scores = g.node("Where", [mask, scores, g.const(fill)])
    if n_axes == 1:
        probs = g.node("Softmax", [scores], {"axis": -1})
    else:
        dims = g.node("Shape", [scores])
        lead = g.node("Slice", [dims, g.ints([0]), g.ints([-n_axes])])
        flat = g.node("Reshape", [scores, g.node("Concat", [lead, g.ints([-1])], {"axis": 0})])
        probs = g.node("Reshape", [g.node("Softmax", [flat], {"axis": -1}), dims])
    if mask is not None and zero:
        probs = g.node("Where", [mask, probs, g.const(0.0)])
    return probs


def _given_mask(g: OnnxGraph, inputs, types, threshold: bool) -> tuple[str | None, int]:
    """The `attention_mask` input as bool (non-zero attends, or > 0.5 with
    `threshold`), and its rank."""
    if "attention_mask" not in inputs:
        return None, 0
    m, t = inputs["attention_mask"], types["attention_mask"]
    if t.dtype == "bool":
        return m, t.rank
    if threshold:
        return g.node("Greater", [g.cast(m, "float32"), g.const(0.5)]), t.rank
    return g.cast(m, "bool"), t.rank


def lower_multi_head_attention(g: OnnxGraph, layer, weights, inputs, types, shape) -> str:
    q, k, v, rank = _projections(g, weights, inputs, types)
    q = g.binary("Mul", q, g.const(1.0 / math.sqrt(layer.key_dim)))
    axes = layer.attention_axes_for(rank)
    dot_eq, combine_eq, n_scores = attention_equations(rank + 1, axes)
    scores = g.node("Einsum", [k, q], {"equation": dot_eq})
    n = len(axes)
    causal = None
    if layer.use_causal_mask:
        qt, vt = types["query"], types["value"]
        causal = _causal(g, scores, [qt.shape[a] for a in axes], [vt.shape[a] for a in axes])
    given, given_rank = _given_mask(g, inputs, types, threshold=False)
    if given is not None:
        given = _expand(g, given, given_rank, n_scores, n)
    mask = _and(g, given, causal)
    zero_masked = float(layer.dropout) > 0.0 or rank != 3  # Keras's Softmax-layer road
    probs = masked_softmax(g, scores, mask, n, zero_masked)
    context = g.node("Einsum", [probs, v], {"equation": combine_eq})
    return _output(
        g, context, rank, weights["attention_output/kernel"], weights.get("attention_output/bias")
    )


def lower_group_query_attention(g: OnnxGraph, layer, weights, inputs, types, shape) -> str:
    q, k, v, rank = _projections(g, weights, inputs, types)
    q = g.binary("Mul", q, g.const(1.0 / math.sqrt(layer.head_dim)))
    repeats = layer.num_query_heads // layer.num_key_value_heads
    k, v = (repeat(g, t, 4, 2, repeats) for t in (k, v))
    scores = g.node("Einsum", [q, k], {"equation": "bquh,bkuh->buqk"})
    zero_masked = float(layer.dropout) > 0.0
    causal = None
    if layer.use_causal_mask:
        qt, vt = types["query"], types["value"]
        causal = _causal(g, scores, [qt.shape[1]], [vt.shape[1]])
    threshold = zero_masked and not layer.use_causal_mask
    given, given_rank = _given_mask(g, inputs, types, threshold)
    if given is not None:
        given = _expand(g, given, given_rank, 4, 1)
    probs = masked_softmax(g, scores, _and(g, given, causal), 1, zero_masked)
    context = g.node("Einsum", [probs, v], {"equation": "buqk,bkuh->bquh"})
    return _output(
        g, context, rank, weights["attention_output/kernel"], weights.get("attention_output/bias")
    )


def _dot_attention(g: OnnxGraph, layer, inputs, types, scores_fn) -> str:
    """Keras's `Attention`/`AdditiveAttention` call on float32 q, k, v."""
    q = _float(g, inputs["query"], types["query"])
    v = _float(g, inputs["value"], types["value"])
    k = _float(g, inputs["key"], types["key"]) if "key" in inputs else v
    scores = scores_fn(q, k)
    if layer.use_causal_mask:
        qt, vt = types["query"], types["value"]
        causal = _causal(g, scores, [qt.shape[-2]], [vt.shape[-2]])
        shifted = g.binary("Sub", scores, g.const(1e9))
        scores = g.node("Where", [causal, scores, shifted])
    probs = g.node("Softmax", [scores], {"axis": -1})
    return g.binary("MatMul", probs, v)


def _pairwise(g: OnnxGraph, q: str, k: str) -> str:
    """q[..., :, None, :] + k[..., None, :, :]."""
    return g.binary(
        "Add", g.node("Unsqueeze", [q, g.ints([-2])]), g.node("Unsqueeze", [k, g.ints([-3])])
    )


def lower_attention(g: OnnxGraph, layer, weights, inputs, types, shape) -> str:
    """Dot scores (q @ k^T, times the learned `scale`) or concat scores
    (`concat_score_weight * sum(tanh(scale * (q + k)))`)."""
    scale = g.initializer(weights["scale"], "scale") if "scale" in weights else None

    def scores(q: str, k: str) -> str:
        if layer.score_mode == "dot":
            rank = types["query"].rank
            perm = [*range(rank - 2), rank - 1, rank - 2]
            s = g.binary("MatMul", q, g.transpose(k, perm))
            return s if scale is None else g.binary("Mul", s, scale)
        summed = _pairwise(g, q, k)
        summed = summed if scale is None else g.binary("Mul", scale, summed)
        total = g.node("ReduceSum", [g.node("Tanh", [summed]), g.ints([-1])], {"keepdims": 0})
        weight = g.initializer(weights["concat_score_weight"], "concat_score_weight")
        return g.binary("Mul", weight, total)

    return _dot_attention(g, layer, inputs, types, scores)


def lower_additive_attention(g: OnnxGraph, layer, weights, inputs, types, shape) -> str:
    """Scores `sum(scale * tanh(q + k))` over the features (scale: a learned vector)."""

    def scores(q: str, k: str) -> str:
        t = g.node("Tanh", [_pairwise(g, q, k)])
        if "scale" in weights:
            t = g.binary("Mul", g.initializer(weights["scale"], "scale"), t)
        return g.node("ReduceSum", [t, g.ints([-1])], {"keepdims": 0})

    return _dot_attention(g, layer, inputs, types, scores)
