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

from modelspec.compiler.adapt_inputs import AdaptInputs
from modelspec.compiler.graph import Graph, Node, output_refs
from modelspec.compiler.host_layers import check_host_inputs
from modelspec.errors import Diagnostic, Locate
from modelspec.schema.penalty_rules import check_penalties
from modelspec.schema.precision import infer_with_policy
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


def node_masks(node: Node, masks: dict[str, Any]) -> Any:
    """A node's input masks in its call kind's form (None for an unmasked input); works
    for mask types (shape inference) and mask arrays (the compiled model) alike."""
    if node.kind == "single":
        return masks.get(node.args[0])
    if node.kind == "multi":
        return [masks.get(r) for r in node.args]
    return {arg: masks.get(r) for arg, r in node.args}


def takes_recorded_masks(layer_cls: type, kind: str) -> bool:
    """Whether the layer gets the masks Keras's graph recorded (`mask=` of a single or
    merge call); named calls (`query_mask=`..., and Keras's `Attention([q, v])`, whose
    `mask=` list is gathered at run time) get the run-time masks (see `layer_masks`)."""
    return layer_cls.mask_arg and kind != "named"


def per_output(mask: Any, count: int) -> tuple:
    """`infer_mask`'s (or `compute_mask`'s) result as one mask per output: Keras masks
    only the first output unless the layer returns a tuple (one per output)."""
    if isinstance(mask, tuple):
        return mask + (None,) * (count - len(mask))
    return (mask,) + (None,) * (count - 1)


def layer_masks(node: Node, inputs: Any, graph_masks: dict, masks: dict) -> tuple:
    """(graph mask, run-time mask) of a node's output, as Keras's functional model has
    them: the graph mask follows the masks recorded when the model was built; layers
    taking `mask=` receive those, so their run-time mask is the same; the others (and
    attention's `query_mask=`...) see the run-time masks, which attention may clear."""
    layer = node.layer
    graph_mask = layer.infer_mask(inputs, node_masks(node, graph_masks))
    if takes_recorded_masks(type(layer), node.kind):
        return graph_mask, graph_mask
    return graph_mask, layer.infer_mask(inputs, node_masks(node, masks))


def infer(
    graph: Graph, spec: Any, locate: Locate
) -> tuple[dict[str, LayerShape], list[Diagnostic]]:
    """Shapes of every layer; layers downstream of an error are skipped, not re-reported."""
    types: dict[str, TensorType] = input_types(spec)
    masks: dict[str, TensorType] = {}  # ref -> Keras mask of that tensor (masked ones only)
    graph_masks: dict[str, TensorType] = {}  # the same, as Keras's graph recorded them
    shapes: dict[str, LayerShape] = {}
    errors: list[Diagnostic] = []
    adapt_inputs = AdaptInputs(types)  # adapted layers' inputs must need no weights
    for node in graph.nodes:
        if any(r not in types for r in node.refs):
            continue
        try:
            check_host_inputs(node, types, spec.model.inputs)  # strings stay on the host
            result = infer_with_policy(node.layer, spec.model, node_inputs(node, types))
            graph_mask, mask = layer_masks(node, node_inputs(node, types), graph_masks, masks)
            check_penalties(node.layer, result)  # regularizers/constraints fit the weights
            adapt_inputs.check(node, result)
        except ShapeError as exc:
            errors.append(_diagnostic(exc, node, types, locate))
            continue
        if not node.layer.trainable:
            frozen = tuple(dataclasses.replace(p, trainable=False) for p in result.params)
            result = dataclasses.replace(result, params=frozen)
        refs = output_refs(node.name, len(node.layer.output_labels))
        if len(result.outputs) != len(refs):  # a spec class breaking its own contract
            raise AssertionError(
                f"{node.layer.type}.infer returned {len(result.outputs)} outputs for "
                f"output_labels {node.layer.output_labels}"
            )
        if type(node.layer).clears_input_masks:
            for r in node.refs:
                masks.pop(r, None)
        # Keras masks only a layer's first output (an RNN's states get none), unless
        # `infer_mask` gives one per output; LayerShape records the first output's.
        mask, graph_mask = per_output(mask, len(refs)), per_output(graph_mask, len(refs))
        result = dataclasses.replace(result, mask=mask[0], graph_mask=graph_mask[0])
        for table, values in ((masks, mask), (graph_masks, graph_mask)):
            for ref, value in zip(refs, values, strict=True):
                if value is not None:
                    table[ref] = value
        shapes[node.name] = result
        adapt_inputs.record(node, refs, result)
        types.update(zip(refs, result.outputs, strict=True))
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
        # a dotted field points into a nested layer spec (`layer.units` of a wrapper)
        path = (*base, *exc.field.split(".")) if exc.field else base
        received = exc.received
        message = f"{node.layer.type} '{node.name}' (input {listing}): {exc.message}"
    return Diagnostic.at(locate(path, False), path, message, received, exc.hint)


__all__ = [
    "infer",
    "input_types",
    "node_inputs",
    "node_masks",
    "per_output",
    "takes_recorded_masks",
]
