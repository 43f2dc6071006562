"""Shape inference over a resolved graph, in pure Python (no JAX).

`infer` runs each layer's rule in graph order and returns every layer's LayerShape;
rule errors become diagnostics positioned on the layer (or the argument at fault), and
input-shape errors list the inputs by name with their shapes.
"""

from __future__ import annotations

from collections.abc import Callable

from modelspec.compiler.graph import Graph, Node
from modelspec.compiler.shapes import attention, conv, core, merging, normalization, recurrent  # noqa: F401
from modelspec.compiler.shapes.registry import RULES
from modelspec.compiler.types import LayerShape, ShapeError, TensorType
from modelspec.errors import Diagnostic, Path, format_path

Locate = Callable[[Path, bool], tuple[str, int, int]]


def input_types(spec) -> dict[str, TensorType]:
    return {n: TensorType((None, *i.shape), i.dtype) for n, i in spec.model.inputs.items()}


def node_inputs(node: Node, types: dict[str, TensorType]):
    if node.kind == "single":
        return types[node.args[0]]
    if node.kind == "multi":
        return [types[r] for r in node.args]
    return {arg: types[r] for arg, r in node.args}


def infer(graph: Graph, spec, locate: Locate) -> tuple[dict[str, LayerShape], list[Diagnostic]]:
    """Shapes of every layer; layers downstream of an error are skipped, not re-reported."""
    types: dict[str, TensorType] = input_types(spec)
    shapes: dict[str, LayerShape] = {}
    errors: list[Diagnostic] = []
    for node in graph.nodes:
        if any(r not in types for r in node.refs):
            continue
        try:
            result = RULES[node.layer.type](node.layer, node_inputs(node, types))
        except ShapeError as exc:
            errors.append(_diagnostic(exc, node, types, locate))
            continue
        if not node.layer.trainable:
            result = LayerShape(
                result.output,
                tuple(type(p)(p.path, p.shape, p.axes, p.collection, False) for p in result.params),
            )
        shapes[node.name] = result
        types[node.name] = result.output
    return shapes, errors


def _diagnostic(exc: ShapeError, node: Node, types, locate: Locate) -> Diagnostic:
    base = ("model", "layers", node.index)
    listing = ", ".join(f"'{r}' {types[r]}" for r in node.refs)
    if exc.field == "inputs":
        path = (*base, "inputs") if node.layer.inputs is not None else base
        received = (
            exc.received
            if exc.received and len(node.refs) == 1 and "=" in exc.received
            else listing
        )
        message = f"{node.layer.type} '{node.name}': {exc.message}"
    else:
        path = (*base, exc.field) if exc.field else base
        received = exc.received
        message = f"{node.layer.type} '{node.name}' (input {listing}): {exc.message}"
    pos = locate(path, False)
    return Diagnostic(pos[0], pos[1], pos[2], format_path(path), message, received, exc.hint)


__all__ = ["infer", "input_types", "node_inputs", "RULES"]
