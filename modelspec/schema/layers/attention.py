"""Attention layers: MultiHeadAttention, GroupQueryAttention, Attention, AdditiveAttention.

Every one is called with named tensors (`{query: a, value: b[, key: c]}`, a list in that
order, or one name for self-attention); MultiHeadAttention and GroupQueryAttention also
take an `attention_mask` tensor. `use_causal_mask` is a Keras call argument, fixed per
layer here (`call_kwargs`). Keras masks on the inputs (`Embedding(mask_zero: true)`)
hide the masked query rows and key positions; the output keeps the query's mask.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.attention_rules import (
    attention_flops,
    check_attention_mask,
    check_flash,
    query_mask,
    same_sizes,
)
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.calls import Call, Named
from modelspec.schema.layers.flops_math import rows, times, total
from modelspec.schema.layers.shape_math import float_out, known_last, need_min_rank, need_rank
from modelspec.schema.regularizers import KernelPenalties
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType


class MultiHeadAttention(LayerSpec, KernelPenalties):
    """Multi-head scaled dot-product attention (Keras `MultiHeadAttention`).

    Call arguments come from `inputs`: `{query: a, value: b}` (key defaults to value),
    `{query: a, value: b, key: c, attention_mask: m}`, or a list `[query, value(, key(,
    attention_mask))]`; a single name means self-attention. `attention_mask` is a
    tensor (bool, or nonzero = attend) that broadcasts to the scores, e.g. (batch, T, S)."""

    call: ClassVar[Call] = Named(("query", "value", "key", "attention_mask"), required=2)
    nnx: ClassVar[str] = "modelspec.compiler.layers.attention:MultiHeadAttention"
    decode: ClassVar[str | None] = "cached"  # init_cache / decode (KV cache)
    onnx: ClassVar[str] = "modelspec.compiler.layers.onnx.attention:lower_multi_head_attention"
    call_kwargs: ClassVar[tuple[str, ...]] = ("use_causal_mask",)
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)
    activity_regularizer_refusal: ClassVar[str | None] = (
        "Keras's MultiHeadAttention applies activity_regularizer to its query, key, value "
        "and output projections, not to its output; that is not supported"
    )
    masking: ClassVar[str] = "keep"  # the output keeps the query's mask
    mask_arg: ClassVar[bool] = True  # query_mask / value_mask / key_mask
    mask_args: ClassVar[tuple[str, ...]] = ("query", "value", "key")
    clears_input_masks: ClassVar[bool] = True
    type: Literal["MultiHeadAttention"]
    num_heads: PositiveInt
    """Number of attention heads."""
    key_dim: PositiveInt
    """Size of each head for query and key."""
    value_dim: PositiveInt | None = None
    """Size of each head for value; default: key_dim."""
    dropout: UnitInterval = 0.0
    """Dropout on the attention probabilities (training only)."""
    use_bias: bool = True
    """Whether the projections have biases."""
    output_shape: PositiveInt | None = None
    """Size of the output's last axis; default: the query's last axis."""
    attention_axes: int | Annotated[list[int], Field(min_length=1)] | None = None
    """Axes of the query (between batch and features; negative counts from the end of
    the input shape) that attention runs over, jointly; the other axes are independent
    batches. Default: every axis between batch and features."""
    use_causal_mask: bool = False
    """Mask future positions (a Keras call argument, fixed per layer here). Over several
    attention axes (where Keras fails) the positions are taken in row-major order."""
    flash_attention: bool | None = None
    """Which implementation of `jax.nn.dot_product_attention` computes the attention
    where Keras takes its fused road (no dropout, (batch, steps, features) inputs, value_dim equal to key_dim). `null`: cuDNN's flash attention where
    it applies (a CUDA GPU of compute capability >= 8.0, float16 or bfloat16 compute, i.e.
    a mixed dtype policy, a head size that is a multiple of 8 up to 128, or 256 from
    Hopper on), XLA's otherwise; `true`: cuDNN's, or an error naming the layer when the
    model is built or called where it cannot run (on CPU, as Keras fails there); `false`:
    XLA's (Keras 3.15 reads false as null unless flash attention is disabled globally).
    Not with `dropout` > 0, which Keras refuses. Ignored, as by Keras, for inputs of rank > 3."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the projection kernels."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the projection biases."""

    def attention_axes_for(self, rank: int) -> tuple[int, ...]:
        """`attention_axes` as input axes 1..rank-2, in the order written (the layout of
        the scores); Keras's normalization: a negative axis counts from the input's end."""
        if self.attention_axes is None:
            return tuple(range(1, rank - 1))
        given = self.attention_axes
        axes = [given] if isinstance(given, int) else given
        out = tuple(a + rank if a < 0 else a for a in axes)
        bad = [a for a, b in zip(axes, out, strict=True) if not 1 <= b <= rank - 2]
        if bad or len(set(out)) != len(out):
            problem = f"axis {bad[0]} is not" if bad else "repeated axes are not all"
            raise ShapeError(
                f"{problem} between the batch and feature axes of a rank-{rank} query "
                f"(allowed: 1..{rank - 2} or {1 - rank}..-2, each once)",
                field="attention_axes",
                received=f"attention_axes={given}",
            )
        return out

    def infer_mask(
        self, args: dict[str, TensorType], masks: dict[str, TensorType | None]
    ) -> TensorType | None:
        """Keras: the query's mask hides query rows, the value's (and key's) mask hides
        key positions; the output keeps the query's mask."""
        return query_mask(args, masks)

    def infer(self, args: dict[str, TensorType]) -> LayerShape:
        check_flash(self.flash_attention, self.dropout)
        q, v = args["query"], args["value"]
        k = args.get("key", v)
        for name, t in (("query", q), ("value", v), ("key", k)):
            need_min_rank(t, 3, f" for `{name}` (batch, ..., features)")
        if self.flash_attention and q.rank == 3 and self.value_dim not in (None, self.key_dim):
            raise ShapeError(
                "flash attention needs value_dim equal to key_dim (jax's fused attention "
                "has one head size; Keras fails there)",
                field="value_dim",
                received=f"value_dim={self.value_dim}, key_dim={self.key_dim}",
            )
        if q.rank != v.rank:
            raise ShapeError(
                f"query {q} and value {v} must have the same rank",
                field="inputs",
                received=f"query={q}, value={v}",
            )
        if k.shape[:-1] != v.shape[:-1] and None not in k.shape[1:-1] + v.shape[1:-1]:
            raise ShapeError(
                f"key {k} and value {v} must match on all but the last axis",
                field="inputs",
                received=f"key={k}, value={v}",
            )
        h, kd = self.num_heads, self.key_dim
        axes = self.attention_axes_for(q.rank)
        others = [i for i in range(1, q.rank - 1) if i not in axes]
        for i in others:
            if None not in (q.shape[i], v.shape[i]) and q.shape[i] != v.shape[i]:
                raise ShapeError(
                    f"query {q} and value {v} must match on axis {i}, which is not an "
                    "attention axis",
                    field="inputs",
                    received=f"query={q}, value={v}, attention_axes={self.attention_axes}",
                )
        if "attention_mask" in args:
            scores = (q.shape[0], *(q.shape[i] for i in others), h)
            scores += tuple(q.shape[a] for a in axes) + tuple(v.shape[a] for a in axes)
            check_attention_mask(args["attention_mask"], scores, len(axes))
        vd = self.value_dim or kd
        dq, dk, dv = known_last(q), known_last(k), known_last(v)
        out = self.output_shape or dq
        params: list[ParamInfo] = []
        for name, dim, head in (("query", dq, kd), ("key", dk, kd), ("value", dv, vd)):
            params.append(ParamInfo(f"{name}/kernel", (dim, h, head), ("embed", "heads", "kv")))
            if self.use_bias:
                params.append(ParamInfo(f"{name}/bias", (h, head), ("heads", "kv")))
        params.append(ParamInfo("attention_output/kernel", (h, vd, out), ("heads", "kv", "embed")))
        if self.use_bias:
            params.append(ParamInfo("attention_output/bias", (out,), ("embed",)))
        return LayerShape(TensorType((*q.shape[:-1], out), float_out(q)), tuple(params))

    def flops(self, args: dict[str, TensorType], shape: LayerShape) -> int | None:
        """The four projections, then per head and score (query position x key
        position, within each non-attention index): QK^T (2·key_dim), softmax (1) and
        the weighted sum of values (2·value_dim)."""
        q, v = args["query"], args["value"]
        axes = self.attention_axes_for(q.rank)
        others = [i for i in range(1, q.rank - 1) if i not in axes]
        dims = [q.shape[i] for i in (*others, *axes)] + [v.shape[a] for a in axes]
        scores = None if None in dims else math.prod(dims) * self.num_heads
        per_score = 2 * self.key_dim + 1 + 2 * (self.value_dim or self.key_dim)
        return attention_flops(args, shape, times(scores, per_score))


class _DotAttention(LayerSpec):
    """Keras's `Attention` family: no projections; scores from query and key, softmax
    over the key positions, the value's rows averaged by them."""

    call: ClassVar[Call] = Named(("query", "value", "key"), required=2, keras_list=True)
    call_kwargs: ClassVar[tuple[str, ...]] = ("use_causal_mask",)
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)
    masking: ClassVar[str] = "keep"  # the output keeps the query's mask
    mask_arg: ClassVar[bool] = True  # Keras: `mask=[query_mask, value_mask(, key_mask)]`
    mask_args: ClassVar[tuple[str, ...]] = ("query", "value", "key")
    dropout: UnitInterval = 0.0
    """Dropout on the attention weights (training only)."""
    use_causal_mask: bool = False
    """Query position i attends only to key positions j <= i (a Keras call argument,
    fixed per layer here)."""

    def _check(self, args: dict[str, TensorType]) -> tuple[TensorType, TensorType, int]:
        """(query, value, feature size) after Keras's shape rules: (batch, ..., T, dim)
        inputs of one rank; key and value share their positions; query and key their
        features."""
        q, v = args["query"], args["value"]
        k = args.get("key", v)
        for name, t in (("query", q), ("value", v), ("key", k)):
            need_min_rank(t, 3, f" for `{name}` (batch, steps, features)")
        if not q.rank == v.rank == k.rank:
            raise ShapeError(
                "query, value and key must have the same rank",
                field="inputs",
                received=f"query={q}, value={v}, key={k}",
            )
        same_sizes(q, k, f"query {q} and key {k} must have the same feature size", slice(-1, None))
        same_sizes(k, v, f"key {k} and value {v} must have the same steps", slice(1, -1))
        same_sizes(q, k, f"query {q} and key {k} must match before the steps", slice(1, -2))
        return q, v, known_last(q)

    def infer_mask(
        self, args: dict[str, TensorType], masks: dict[str, TensorType | None]
    ) -> TensorType | None:
        """Keras: the value's mask hides key positions (scores - 1e9), the query's zeroes
        the output rows it masks, and the output keeps the query's mask; a mask on
        `key` is ignored, as Keras ignores `mask[2]`."""
        return query_mask(args, masks, used=("query", "value"))


class Attention(_DotAttention):
    """Dot-product (Luong-style) attention without projections (Keras `Attention`):
    `softmax(query @ key^T) @ value`; the output has the query's steps and the value's
    features."""

    nnx: ClassVar[str] = "modelspec.compiler.layers.attention:Attention"
    onnx: ClassVar[str] = "modelspec.compiler.layers.onnx.attention:lower_attention"
    type: Literal["Attention"]
    use_scale: bool = False
    """Learn a scalar that multiplies the scores (initially 1)."""
    score_mode: Literal["dot", "concat"] = "dot"
    """`dot`: query·key; `concat`: sum(tanh(query + key)) times a learned scalar."""

    def infer(self, args: dict[str, TensorType]) -> LayerShape:
        q, v, _ = self._check(args)
        params = []
        if self.use_scale:
            params.append(ParamInfo("scale", (), ()))
        if self.score_mode == "concat":
            params.append(ParamInfo("concat_score_weight", (), ()))
        out = TensorType((*q.shape[:-1], v.shape[-1]), float_out(q))
        return LayerShape(out, tuple(params))

    def flops(self, args: dict[str, TensorType], shape: LayerShape) -> int | None:
        """Per score: 2 per feature (`dot`) or 3 (`concat`: add, tanh, sum), the scale
        (1), softmax (1) and the weighted sum of values (2 per value feature)."""
        q, v = args["query"], args["value"]
        per_score = (2 if self.score_mode == "dot" else 3) * q.shape[-1] + self.use_scale + 1
        return times(times(rows(q), v.shape[-2]), total([per_score, times(v.shape[-1], 2)]))


class AdditiveAttention(_DotAttention):
    """Additive (Bahdanau-style) attention without projections (Keras
    `AdditiveAttention`): scores `sum(scale * tanh(query + key))` over the features."""

    nnx: ClassVar[str] = "modelspec.compiler.layers.attention:AdditiveAttention"
    onnx: ClassVar[str] = "modelspec.compiler.layers.onnx.attention:lower_additive_attention"
    type: Literal["AdditiveAttention"]
    use_scale: bool = True
    """Learn a per-feature scale of the scores (glorot_uniform initialized)."""

    def infer(self, args: dict[str, TensorType]) -> LayerShape:
        q, v, dim = self._check(args)
        params = (ParamInfo("scale", (dim,), (None,)),) if self.use_scale else ()
        return LayerShape(TensorType((*q.shape[:-1], v.shape[-1]), float_out(q)), params)

    def flops(self, args: dict[str, TensorType], shape: LayerShape) -> int | None:
        """Per score: 4 per feature (add, tanh, scale, sum), softmax (1) and the
        weighted sum of values (2 per value feature)."""
        q, v = args["query"], args["value"]
        per_score = total([4 * q.shape[-1] + 1, times(v.shape[-1], 2)])
        return times(times(rows(q), v.shape[-2]), per_score)


class GroupQueryAttention(LayerSpec, KernelPenalties):
    """Grouped-query attention (Keras `GroupQueryAttention`): `num_query_heads` query
    heads share `num_key_value_heads` key/value heads (1: multi-query attention; equal:
    multi-head attention). Inputs are (batch, steps, features); the output has the
    query's shape. Call arguments as MultiHeadAttention's, `attention_mask` included."""

    call: ClassVar[Call] = Named(("query", "value", "key", "attention_mask"), required=2)
    nnx: ClassVar[str] = "modelspec.compiler.layers.attention:GroupQueryAttention"
    decode: ClassVar[str | None] = "cached"  # init_cache / decode (KV cache)
    onnx: ClassVar[str] = "modelspec.compiler.layers.onnx.attention:lower_group_query_attention"
    activity_regularizer_refusal: ClassVar[str | None] = (
        "Keras's GroupQueryAttention applies activity_regularizer to its output and again "
        "to its query, key, value and output projections; that is not supported"
    )
    call_kwargs: ClassVar[tuple[str, ...]] = ("use_causal_mask",)
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)
    masking: ClassVar[str] = "keep"  # the output keeps the query's mask
    mask_arg: ClassVar[bool] = True  # query_mask / value_mask / key_mask
    mask_args: ClassVar[tuple[str, ...]] = ("query", "value", "key")
    type: Literal["GroupQueryAttention"]
    head_dim: PositiveInt
    """Size of each attention head."""
    num_query_heads: PositiveInt
    """Number of query heads."""
    num_key_value_heads: PositiveInt
    """Number of key/value heads; must divide num_query_heads."""
    dropout: UnitInterval = 0.0
    """Dropout on the attention probabilities (training only)."""
    use_bias: bool = True
    """Whether the projections have biases."""
    use_causal_mask: bool = False
    """Mask future positions (a Keras call argument, fixed per layer here)."""
    flash_attention: bool | None = None
    """Which implementation of `jax.nn.dot_product_attention` computes the attention
    where Keras takes its fused road (no dropout). `null`: cuDNN's flash attention where
    it applies (a CUDA GPU of compute capability >= 8.0, float16 or bfloat16 compute, i.e.
    a mixed dtype policy, a head size that is a multiple of 8 up to 128, or 256 from
    Hopper on), XLA's otherwise; `true`: cuDNN's, or an error naming the layer when the
    model is built or called where it cannot run (on CPU, as Keras fails there); `false`:
    XLA's (Keras 3.15 reads false as null unless flash attention is disabled globally).
    Not with `dropout` > 0, which Keras refuses."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the projection kernels."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the projection biases."""

    def infer_mask(
        self, args: dict[str, TensorType], masks: dict[str, TensorType | None]
    ) -> TensorType | None:
        """Keras: the query's mask hides query rows, the value's and key's hide key
        positions (and-ed with `attention_mask`); the output keeps the query's mask.
        Unlike MultiHeadAttention, the inputs keep their masks."""
        return query_mask(args, masks)

    def infer(self, args: dict[str, TensorType]) -> LayerShape:
        check_flash(self.flash_attention, self.dropout)
        q, v = args["query"], args["value"]
        k = args.get("key", v)
        for t in (q, v, k):
            need_rank(t, 3, "(batch, steps, features)")
        if self.num_query_heads % self.num_key_value_heads:
            raise ShapeError(
                f"num_query_heads ({self.num_query_heads}) must be divisible by "
                "num_key_value_heads",
                field="num_key_value_heads",
                received=f"num_key_value_heads={self.num_key_value_heads}",
            )
        same_sizes(q, v, f"query {q} and value {v} must have the same features", slice(-1, None))
        same_sizes(k, v, f"key {k} and value {v} must have the same steps", slice(1, -1))
        u, g, hd = self.num_query_heads, self.num_key_value_heads, self.head_dim
        if "attention_mask" in args:
            check_attention_mask(args["attention_mask"], (q.shape[0], u, q.shape[1], v.shape[1]), 1)
        dq, dk, dv = known_last(q), known_last(k), known_last(v)
        params: list[ParamInfo] = []
        # Key/value heads stay whole on every device (few of them, shared by the groups).
        for name, dim, heads, axis in (
            ("query", dq, u, "heads"),
            ("key", dk, g, None),
            ("value", dv, g, None),
        ):
            params.append(ParamInfo(f"{name}/kernel", (dim, heads, hd), ("embed", axis, "kv")))
            if self.use_bias:
                params.append(ParamInfo(f"{name}/bias", (heads, hd), (axis, "kv")))
        params.append(ParamInfo("attention_output/kernel", (u, hd, dq), ("heads", "kv", "embed")))
        if self.use_bias:
            params.append(ParamInfo("attention_output/bias", (dq,), ("embed",)))
        return LayerShape(TensorType(q.shape, float_out(q)), tuple(params))

    def flops(self, args: dict[str, TensorType], shape: LayerShape) -> int | None:
        """As MultiHeadAttention's, with num_query_heads score matrices (the key/value
        heads are shared, not recomputed)."""
        scores = times(rows(args["query"]), args["value"].shape[1])
        return attention_flops(
            args, shape, times(scores, self.num_query_heads * (4 * self.head_dim + 1))
        )
