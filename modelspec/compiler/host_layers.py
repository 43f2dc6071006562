"""Layers that run on the host: which they are, what the device model receives instead,
and the shape-walk rules that keep strings off the device. Pure Python (no JAX).

JAX arrays cannot hold strings, so the text layers (TextVectorization, StringLookup,
IntegerLookup, Hashing: spec classes with a `host` reference) run in NumPy in the data
pipeline, before batches reach the devices (`runtime/host_stage.py`). Each reads one
model input directly; the compiled model then takes the layer's *output* as an input
named after the layer, so everything downstream (an Embedding, a Dense) is unchanged.
A `string` tensor may feed nothing else: shape inference refuses it, positioned.
"""

from __future__ import annotations

from typing import Any

from modelspec.schema.tensors import LayerShape, ShapeError, TensorType


def is_host(layer: Any) -> bool:
    """Whether the layer runs on the host (its spec class names a `host` class)."""
    return bool(type(layer).host)


def host_nodes(spec: Any) -> list[Any]:
    """The graph nodes that run on the host, in graph order."""
    return [n for n in spec.graph.nodes if is_host(n.layer)]


def host_layer_names() -> str:
    """The host layer types, for messages ("TextVectorization, StringLookup, ...")."""
    from modelspec.schema.layers import LAYER_TYPES

    return ", ".join(t for t, cls in LAYER_TYPES.items() if cls.host)


def check_host_inputs(node: Any, types: dict[str, TensorType], model_inputs: Any) -> None:
    """Raise ShapeError (on `inputs`) when a host layer reads anything but a model
    input, or a device layer reads a string tensor."""
    if is_host(node.layer):
        if node.kind != "single" or node.refs[0] not in model_inputs:
            raise ShapeError(
                f"{node.layer.type} runs on the host, in the data pipeline, before the "
                "model (strings cannot be device arrays), so it must read a model input "
                "directly",
                field="inputs",
                hint="Make it the first layer after a model input (`inputs: <input name>`).",
            )
        return
    strings = [r for r in node.refs if types[r].dtype == "string"]
    if strings:
        raise ShapeError(
            f"'{strings[0]}' holds strings, which only the text layers read "
            f"({host_layer_names()}); they turn text into numbers before the model",
            field="inputs",
            hint=f"Put a TextVectorization or StringLookup between '{strings[0]}' and "
            f"{node.layer.type}.",
        )


def device_input_types(spec: Any) -> dict[str, TensorType]:
    """What the compiled model is called with: the model inputs that device layers read
    (never strings), then one entry per host layer, named after it, holding its output."""
    from modelspec.compiler.infer import input_types

    host = host_nodes(spec)
    host_names = {n.name for n in host}
    read_by_device = {
        r for n in spec.graph.nodes if n.name not in host_names for r in n.refs
    } | set(spec.graph.outputs)
    read_by_host = {n.refs[0] for n in host}
    types = {
        name: t
        for name, t in input_types(spec).items()
        if t.dtype != "string" and (name in read_by_device or name not in read_by_host)
    }
    types.update({n.name: _shape(spec, n).output for n in host})
    return types


def _shape(spec: Any, node: Any) -> LayerShape:
    return spec.shapes[node.name]


__all__ = [
    "check_host_inputs",
    "device_input_types",
    "host_layer_names",
    "host_nodes",
    "is_host",
]
