"""ONNX export: the session's device model, lowered layer by layer (opset 17).

modelspec builds the ONNX graph itself from its checked layer graph with the `onnx`
package, instead of tracing JAX with jax2onnx: jax2onnx's releases pin
`orbax-checkpoint<0.11.37` (below ours) and it cannot convert reverse scans. Every
layer type declares its lowering in its spec class (`LayerSpec.onnx`, a
"module:function" in `modelspec.compiler.layers.onnx`; signature in that package's
`graph.py`), so an unsupported type is known before anything is written.

The graph computes what `ModelState.apply(inputs, training=False)` computes: Dropout,
noise and random augmentation are the identity, BatchNormalization uses its moving
statistics. Inputs and outputs are named as in the spec (a model with host layers
starts from their outputs, `device_input_types`; their state goes to
`preprocessing.json` beside the file), with a dynamic batch dimension "batch" and
other unknown sizes symbolic. Models under a mixed dtype policy are exported computing in float32
(their variables are float32 already). The file is checked with
`onnx.checker.check_model(full_check=True)`; shape inference runs only to validate,
and no `value_info` is stored (onnxruntime-web rejects stale ones).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
from onnx import helper

from modelspec.compiler.graph import output_refs
from modelspec.compiler.host_layers import device_input_types, is_host
from modelspec.compiler.infer import node_inputs
from modelspec.compiler.layer_stack import unstacked
from modelspec.compiler.layers.onnx.graph import OPSET, OnnxGraph, Unsupported, onnx_dtype
from modelspec.errors import SpecError
from modelspec.schema.precision import policy_rule
from modelspec.schema.tensors import LayerShape, TensorType
from modelspec.schema.vocabulary import load_reference

HALF = ("float16", "bfloat16")
PREPROCESSING = "preprocessing.json"
"""Beside the .onnx file, for models with host (text) layers: their state."""


def _layer_path(node: Any, field: str = "type") -> tuple:
    return ("model", "layers", node.index, field)


def refuse_unlowered(spec: Any) -> None:
    """Raise one SpecError listing every device layer whose type has no ONNX lowering
    (by name and type), before anything is built or written."""
    missing = [n for n in spec.graph.nodes if not is_host(n.layer) and not type(n.layer).onnx]
    if missing:
        raise SpecError(
            [
                spec.error(
                    _layer_path(n),
                    f"layer '{n.name}' ({n.layer.type}) has no ONNX lowering yet, so the "
                    "model cannot be exported to ONNX",
                    hint="Export with --format stablehlo or keras, or replace the layer.",
                )
                for n in missing
            ]
        )


def _refuse_masks(spec: Any) -> None:
    """Keras masks are not exported yet: refuse a model where one reaches a layer that
    reads it (its output would differ from `predict`)."""
    masked = {
        output_refs(n.name, len(spec.shapes[n.name].outputs))[0]
        for n in spec.graph.nodes
        if spec.shapes[n.name].mask is not None or spec.shapes[n.name].graph_mask is not None
    }
    problems = [
        spec.error(
            _layer_path(n, "inputs"),
            f"layer '{n.name}' ({n.layer.type}) reads the Keras mask of its input, and "
            "masks are not exported to ONNX yet",
            hint="Export with --format stablehlo, or drop mask_zero/Masking upstream.",
        )
        for n in spec.graph.nodes
        if type(n.layer).mask_arg and any(r in masked for r in n.refs)
    ]
    if problems:
        raise SpecError(problems)


def per_layer(state: Any, execution: Any) -> Any:
    """The state with scanned block stacks split into their copies' layers: the ONNX
    graph is unrolled layer by layer, so weights are read by layer name."""
    return SimpleNamespace(
        **{k: unstacked(getattr(state, k) or {}, execution) for k in _COLLECTIONS}
    )


_COLLECTIONS = ("params", "batch_stats", "frozen")


def layer_weights(state: Any, name: str) -> dict[str, np.ndarray]:
    """The layer's variables by Keras path ("kernel", "query/kernel"), from every
    collection of the state (trainable, batch statistics, frozen/adapted)."""
    out: dict[str, np.ndarray] = {}
    for tree in (state.params, state.batch_stats, state.frozen):
        sub = (tree or {}).get("layers", {}).get(name)
        if sub is not None:
            _flatten(sub, "", out)
    return out


def _flatten(tree: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(tree, dict):
        for k, v in tree.items():
            _flatten(v, f"{prefix}/{k}" if prefix else str(k), out)
    else:
        arr = np.asarray(tree)
        out[prefix] = arr.astype(np.float32) if arr.dtype.kind == "f" else arr


def _value_info(name: str, t: TensorType, dims_prefix: str) -> onnx.ValueInfoProto:
    dims = [
        ("batch" if i == 0 else f"{dims_prefix}_dim{i}") if d is None else d
        for i, d in enumerate(t.shape)
    ]
    return helper.make_tensor_value_info(name, onnx_dtype(t.dtype), dims)


def _as_exported(t: TensorType, mixed: bool) -> TensorType:
    """The dtype the ONNX graph carries: float32 where a mixed policy computes in half."""
    return dataclasses.replace(t, dtype="float32") if mixed and t.dtype in HALF else t


def _in_form(kind: str, args: tuple, table: dict[str, Any]) -> Any:
    if kind == "single":
        return table[args[0]]
    if kind == "multi":
        return [table[r] for r in args]
    return {a: table[r] for a, r in args}


def build_onnx(spec: Any, state: Any) -> onnx.ModelProto:
    """The ONNX model of the checked spec with `state`'s weights (SpecError when a layer
    has no lowering or a configuration cannot be lowered exactly)."""
    refuse_unlowered(spec)
    _refuse_masks(spec)
    state = per_layer(state, spec.execution)
    g = OnnxGraph()
    inputs = device_input_types(spec)
    names: dict[str, str] = {}
    types: dict[str, TensorType] = {}
    graph_inputs = []
    for name, t in inputs.items():
        g.reserve(name)
        names[name], types[name] = name, t
        graph_inputs.append(_value_info(name, t, name))
    for name in spec.graph.outputs:
        g.reserve(name)
    problems = []
    for node in spec.graph.nodes:
        if is_host(node.layer):
            continue
        shape: LayerShape = spec.shapes[node.name]
        mixed = policy_rule(node.layer, spec.model) is not None
        shape = dataclasses.replace(
            shape,
            output=_as_exported(shape.output, mixed),
            extra_outputs=tuple(_as_exported(t, mixed) for t in shape.extra_outputs),
        )
        lower = load_reference(type(node.layer).onnx)
        g.scope = node.name
        try:
            out = lower(
                g,
                node.layer,
                layer_weights(state, node.name),
                _in_form(node.kind, node.args, names),
                node_inputs(node, types),
                shape,
            )
        except Unsupported as exc:
            problems.append(spec.error(_layer_path(node, exc.field), str(exc)))
            continue
        refs = output_refs(node.name, len(shape.outputs))
        outs = out if isinstance(out, tuple) else (out,)
        names.update(zip(refs, outs, strict=True))
        types.update(zip(refs, shape.outputs, strict=True))
    if problems:
        raise SpecError(problems)
    g.scope = ""
    graph_outputs = []
    for name in spec.graph.outputs:
        g.nodes.append(helper.make_node("Identity", [names[name]], [name], name=g.fresh("output")))
        graph_outputs.append(_value_info(name, types[name], name))
    graph = helper.make_graph(
        g.nodes, spec.spec.name, graph_inputs, graph_outputs, initializer=g.initializers
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="modelspec"
    )
    model.ir_version = 8  # opset 17's IR: readable by onnxruntime releases since 1.14
    return model


def validate(model: onnx.ModelProto) -> None:
    """The checker with full type/shape inference; the inferred `value_info` is only
    looked at, never stored."""
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def export_onnx(session: Any, state: Any, output: Path) -> list[Path]:
    """Write the session's device model with `state`'s weights to `output` (and the
    host layers' state beside it as JSON); returns the files written."""
    model = build_onnx(session.spec, state)
    validate(model)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    onnx.save_model(model, str(tmp))
    os.replace(tmp, output)  # never a half-written model under the final name
    written = [output]
    if session.host:  # string ops are not in the graph: encode text with this state first
        host = output.with_name(PREPROCESSING)
        host.write_text(
            json.dumps(session.host.state(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        written.append(host)
    return written


__all__ = ["build_onnx", "export_onnx", "layer_weights", "refuse_unlowered", "validate"]
