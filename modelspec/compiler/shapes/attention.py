"""Shape rule: MultiHeadAttention (query/value/key named inputs)."""

from __future__ import annotations

from modelspec.compiler.shapes.registry import float_out, known_last, need_min_rank, rule
from modelspec.compiler.types import LayerShape, ParamInfo, ShapeError, TensorType


@rule("MultiHeadAttention")
def mha(layer, args: dict[str, TensorType]) -> LayerShape:
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
    h, kd = layer.num_heads, layer.key_dim
    vd = layer.value_dim or kd
    dq, dk, dv = known_last(q), known_last(k), known_last(v)
    out = layer.output_shape or dq
    params: list[ParamInfo] = []
    for name, dim, head in (("query", dq, kd), ("key", dk, kd), ("value", dv, vd)):
        params.append(ParamInfo(f"{name}/kernel", (dim, h, head), ("embed", "heads", "kv")))
        if layer.use_bias:
            params.append(ParamInfo(f"{name}/bias", (h, head), ("heads", "kv")))
    params.append(ParamInfo("attention_output/kernel", (h, vd, out), ("heads", "kv", "embed")))
    if layer.use_bias:
        params.append(ParamInfo("attention_output/bias", (out,), ("embed",)))
    return LayerShape(TensorType((*q.shape[:-1], out), float_out(q)), tuple(params))
