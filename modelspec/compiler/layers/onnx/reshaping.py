"""ONNX lowerings of the reshaping layers (`schema/layers/reshaping.py`): Flatten,
Reshape, Permute, RepeatVector. Each applies Keras's float32 policy first (half floats
become float32; ints and bools move unchanged). Conventions: see `graph.py`."""

from __future__ import annotations

from modelspec.compiler.layers.onnx.graph import OnnxGraph, autocast


def lower_flatten(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    x, _ = autocast(g, x, t.dtype)
    return g.reshape(x, [0, -1])


def lower_reshape(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """The inferred output shape (Keras's -1 resolved); still-unknown sizes left to -1,
    and the batch axis copied (0)."""
    x, _ = autocast(g, x, t.dtype)
    return g.reshape(x, [0, *(-1 if d is None else d for d in shape.output.shape[1:])])


def lower_permute(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    x, _ = autocast(g, x, t.dtype)
    return g.transpose(x, [0, *layer.dims])


def lower_repeat_vector(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    x, _ = autocast(g, x, t.dtype)
    y = g.node("Unsqueeze", [x, g.ints([1])])
    return g.node("Tile", [y, g.ints([1, layer.n, 1])])
