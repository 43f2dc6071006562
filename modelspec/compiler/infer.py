"""Shape inference over a resolved graph, in pure Python (no JAX).

`infer` calls each layer spec's `infer` in graph order and returns every layer's
LayerShape. A ShapeError becomes a diagnostic positioned on the layer (or on the
argument at fault), and input-shape errors list the inputs by name with their shapes.
The per-layer rules live on the spec classes (`schema/layers/<family>.py`); this module
only walks the graph and positions the errors.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modelspec.compiler.graph import Graph, Node
from modelspec.errors import Diagnostic, Locate
from modelspec.schema.tensors import LayerShape, ShapeError, TensorType


def input_types(spec: Any) -> dict[str, TensorType]:
    """The model inputs as tensor types (batch axis unknown)."""
    return {n: TensorType((None, *i.shape), i.dtype) for n, i in spec.model.inputs.items()}


def node_inputs(node: Node, types: dict[str, TensorType]) -> Any:
    """A node's input types in its call kind's form: one, a list, or a dict by argument."""
    if node.kind == "single":
        return types[node.args[0]]
    if node.kind == "multi":
        return [types[r] for r in node.args]
    return {arg: types[r] for arg, r in node.args}


def infer(
    graph: Graph, spec: Any, locate: Locate
) -> tuple[dict[str, LayerShape], list[Diagnostic]]:
    """Shapes of every layer; layers downstream of an error are skipped, not re-reported."""
    types: dict[str, TensorType] = input_types(spec)
    shapes: dict[str, LayerShape] = {}
    errors: list[Diagnostic] = []
    for node in graph.nodes:
        if any(r not in types for r in node.refs):
            continue
        try:
            result = node.layer.infer(node_inputs(node, types))
        except ShapeError as exc:
            errors.append(_diagnostic(exc, node, types, locate))
            continue
        if not node.layer.trainable:
            frozen = tuple(dataclasses.replace(p, trainable=False) for p in result.params)
            result = LayerShape(result.output, frozen)
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
    return Diagnostic.at(locate(path, False), path, message, received, exc.hint)


__all__ = ["infer", "input_types", "node_inputs"]
