"""Shape rules and FLOPs shared by the attention layer specs (`attention.py`): the
output mask and the masks Keras applies, `attention_mask` broadcasting, equal sizes,
the projections' FLOPs, and Keras's `flash_attention` constraints."""

from __future__ import annotations

from modelspec.schema.layers.flops_math import projection, total
from modelspec.schema.tensors import LayerShape, ShapeError, TensorType, format_shape


def attention_flops(
    args: dict[str, TensorType], shape: LayerShape, scores: int | None
) -> int | None:
    """The query, key, value and output projections plus the `scores` FLOPs."""
    q, v = args["query"], args["value"]
    k = args.get("key", v)
    pairs = (("query", q), ("key", k), ("value", v), ("attention_output", q))
    return total([*(projection(shape, name, t) for name, t in pairs), scores])


def query_mask(
    args: dict[str, TensorType],
    masks: dict[str, TensorType | None],
    used: tuple[str, ...] = ("query", "value", "key"),
) -> TensorType | None:
    """The output mask of an attention layer: the query's (Keras's `compute_mask`),
    after checking that every mask the layer `used` is a (batch, steps) mask of a
    (batch, steps, features) input, the only layout whose masks Keras applies as
    query rows and key positions."""
    for name, mask in masks.items():
        if name in used and mask is not None and (args[name].rank != 3 or mask.rank != 2):
            raise ShapeError(
                f"a mask on `{name}` is supported for (batch, steps, features) inputs "
                f"with a (batch, steps) mask; `{name}` is {args[name]} with mask {mask}",
                field="inputs",
                received=f"{name}={args[name]}",
            )
    return masks.get("query")


def check_attention_mask(mask: TensorType, scores: tuple, n_axes: int) -> None:
    """An `attention_mask` must broadcast to the attention scores, laid out as (batch,
    other axes, heads, query positions, key positions) with `n_axes` attention axes each:
    Keras inserts unit axes in front of the query positions until the ranks agree, then
    its Softmax requires every mask axis to be 1 or the scores' size."""
    expanded = list(mask.shape)
    if mask.rank < 2 * n_axes or mask.rank > len(scores):
        raise ShapeError(
            f"attention_mask {mask} must have {2 * n_axes} to {len(scores)} axes, to "
            f"broadcast to the attention scores {format_shape(scores)} (batch, ..., heads, "
            "query positions, key positions)",
            field="inputs",
            received=f"attention_mask={mask}",
        )
    while len(expanded) < len(scores):
        expanded.insert(len(expanded) - 2 * n_axes, 1)
    for m, d in zip(expanded, scores, strict=True):
        if None not in (m, d) and m not in (1, d):
            raise ShapeError(
                f"attention_mask {mask} does not broadcast to the attention scores "
                f"{format_shape(scores)} (batch, ..., heads, query positions, key positions)",
                field="inputs",
                received=f"attention_mask={mask}",
                hint="Give it the shape (batch, query steps, key steps).",
            )


def same_sizes(a: TensorType, b: TensorType, what: str, axes: slice) -> None:
    """`a` and `b` must agree on `axes` wherever both sizes are known."""
    for x, y in zip(a.shape[axes], b.shape[axes], strict=True):
        if None not in (x, y) and x != y:
            raise ShapeError(f"{what}", field="inputs", received=f"{a} and {b}")


def check_flash(flash: bool | None, dropout: float) -> None:
    """Keras refuses `flash_attention=True` with dropout at construction ("Dropout is
    not supported when flash attention is enabled")."""
    if flash and dropout > 0.0:
        raise ShapeError(
            "flash attention has no dropout (Keras refuses it); set dropout to 0 or "
            "flash_attention to null or false",
            field="flash_attention",
            received=f"flash_attention=True, dropout={dropout}",
        )
