"""Attention layers: MultiHeadAttention."""

from __future__ import annotations

from typing import ClassVar, Literal

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.calls import Call, Named
from modelspec.schema.layers.shape_math import float_out, known_last, need_min_rank
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType


class MultiHeadAttention(LayerSpec):
    """Multi-head scaled dot-product attention (Keras `MultiHeadAttention`).

    Call arguments come from `inputs`: `{query: a, value: b}` (key defaults to value),
    `{query: a, value: b, key: c}`, or a list `[query, value(, key)]`; a single name
    means self-attention."""

    call: ClassVar[Call] = Named(("query", "value", "key"), required=2)
    nnx: ClassVar[str] = "modelspec.compiler.layers.attention:MultiHeadAttention"
    call_kwargs: ClassVar[tuple[str, ...]] = ("use_causal_mask",)
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)
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
    use_causal_mask: bool = False
    """Mask future positions (a Keras call argument, fixed per layer here)."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the projection kernels."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the projection biases."""

    def infer(self, args: dict[str, TensorType]) -> LayerShape:
        q, v = args["query"], args["value"]
        k = args.get("key", v)
        for name, t in (("query", q), ("value", v), ("key", k)):
            need_min_rank(t, 3, f" for `{name}` (batch, ..., features)")
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
