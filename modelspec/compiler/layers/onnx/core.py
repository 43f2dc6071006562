"""ONNX lowerings of the core layers (`schema/layers/core.py`): Dense, EinsumDense,
Activation, Dropout, Rescaling, Embedding, Identity, PositionEmbedding, Masking.
Signature and conventions: see `graph.py`."""

from __future__ import annotations

from modelspec.compiler.layers.onnx.activations import activation
from modelspec.compiler.layers.onnx.graph import OnnxGraph, autocast, to_float


def lower_dense(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """x @ kernel + bias, then the activation; inputs cast to the kernel's float32."""
    x = g.cast_if(x, t.dtype, "float32")
    y = g.binary("MatMul", x, g.initializer(weights["kernel"], "kernel"))
    if "bias" in weights:
        y = g.binary("Add", y, g.initializer(weights["bias"], "bias"))
    return activation(g, y, layer.activation)


def lower_einsum_dense(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """`Einsum(equation, x, kernel) + bias` (the bias is stored already broadcastable)."""
    x = g.cast_if(x, t.dtype, "float32")
    kernel = g.initializer(weights["kernel"], "kernel")
    y = g.node("Einsum", [x, kernel], {"equation": layer.equation})
    if "bias" in weights:
        y = g.binary("Add", y, g.initializer(weights["bias"], "bias"))
    return activation(g, y, layer.activation)


def lower_activation(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    x, dtype = to_float(g, x, t.dtype)
    return activation(g, x, layer.activation, dtype)


def lower_identity(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Identity at inference (Dropout and the noise layers too), after Keras's autocast
    of half-precision floats; the output keeps the declared dtype."""
    y, dtype = autocast(g, x, t.dtype)
    y = g.cast_if(y, dtype, shape.output.dtype)
    return y if y != x else g.node("Identity", [x])


def lower_dropout(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Dropout is the identity at inference (no autocast: Keras returns the input)."""
    return g.cast_if(g.node("Identity", [x]), t.dtype, shape.output.dtype)


def lower_rescaling(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    x, dtype = to_float(g, x, t.dtype)
    y = g.binary("Mul", x, g.const(layer.scale, dtype))
    return g.binary("Add", y, g.const(layer.offset, dtype))


def lower_embedding(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Rows of the table by id (`Gather` on int64 ids)."""
    ids = g.cast_if(x, t.dtype, "int64")
    return g.node("Gather", [g.initializer(weights["embeddings"], "embeddings"), ids], {"axis": 0})


def lower_position_embedding(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """The table's first `steps` rows, broadcast to the input's shape."""
    table = g.initializer(weights["embeddings"], "embeddings")
    dims = g.node("Shape", [x])
    steps = g.node("Slice", [dims, g.ints([-2]), g.ints([-1])])
    rows = g.node("Slice", [table, g.ints([0]), steps, g.ints([0])])
    out = shape.output.dtype
    return g.cast_if(g.node("Expand", [rows, dims]), "float32", out)


def lower_masking(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Steps whose features all equal `mask_value` set to zero (the mask itself is not
    exported: the exporter refuses masks reaching layers that read them)."""
    x, dtype = autocast(g, x, t.dtype)
    differs = g.node("Not", [g.binary("Equal", x, g.const(layer.mask_value, dtype))])
    any_ = g.node("ReduceMax", [g.cast(differs, "float32")], {"axes": [-1], "keepdims": 1})
    keep = g.cast(any_, "bool")
    return g.node("Where", [keep, x, g.const(0, dtype)])
