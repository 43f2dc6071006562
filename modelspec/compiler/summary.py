"""Keras-style model summary as data, from shape inference alone (no JAX, no devices).
The terminal rendering lives in `modelspec/summary_table.py`.

Counting follows Keras: batch statistics and frozen weights are non-trainable params.
FLOPs are forward FLOPs per example, from each spec class's `flops` rule (the
convention: `schema/layers/flops_math.py`); null where a non-batch size is unknown.
"""

from __future__ import annotations

from typing import Any

from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.graph import output_refs
from modelspec.compiler.infer import input_types, node_inputs
from modelspec.compiler.memory import BYTES_PER_PARAM, estimate
from modelspec.compiler.stacks import Execution, stacked_params
from modelspec.schema.precision import layer_policy


def summarize(spec: CheckedSpec) -> dict[str, Any]:
    """Summary as plain data (the `--format json` output)."""
    an = spec
    layers = []
    flops = layer_flops(spec)
    for name, inp in spec.model.inputs.items():
        layers.append(
            {
                "name": name,
                "type": "InputLayer",
                "output_shape": [None, *inp.shape],
                "dtype": inp.dtype,
                "params": 0,
                "trainable_params": 0,
                "flops": 0,
                "inputs": [],
            }
        )
    for node in sorted(an.graph.nodes, key=lambda n: n.index):
        shape = an.shapes.get(node.name)
        if shape is None:
            continue
        layers.append(
            {
                "name": node.name,
                "type": node.layer.type,
                "output_shape": list(shape.output.shape),
                "dtype": shape.output.dtype,
                "dtype_policy": layer_policy(node.layer, spec.model),
                # every tensor of a multi-output layer (`name.0`, `name.1`, ...)
                "output_shapes": [list(t.shape) for t in shape.outputs],
                "params": shape.trainable_count + shape.non_trainable_count,
                "trainable_params": shape.trainable_count,
                "flops": flops[node.name],
                "inputs": list(node.refs),
                "variables": [
                    {
                        "path": p.path,
                        "shape": list(p.shape),
                        "axes": list(p.axes),
                        "trainable": p.trainable,
                    }
                    for p in shape.params
                ],
            }
        )
    trainable = sum(s.trainable_count for s in an.shapes.values())
    non_trainable = sum(s.non_trainable_count for s in an.shapes.values())
    memory = estimate(spec)
    return {
        "name": spec.name,
        "dtype_policy": spec.model.dtype_policy,
        "inputs": list(an.graph.inputs),
        "outputs": list(an.graph.outputs),
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "total_bytes": (trainable + non_trainable) * BYTES_PER_PARAM,
        "total_flops": _sum_known(flops.values()),
        "flops_complete": None not in flops.values(),
        "training_bytes_per_device": memory.as_dict(),
        "examples_per_device": memory.batch_per_device,
        "layers": layers,
        "stacks": stack_rows(spec),
    }


def stack_rows(spec: CheckedSpec) -> list[dict[str, Any]]:
    """The repeated block uses: copies, whether they scan (then their variables as the
    model holds them: stacked on a leading `layers` axis), and their remat policy."""
    execution = spec.execution or Execution()
    scanned = {s.name: s for s in execution.stacks}
    remat = {seg.nodes[0]: seg.remat for seg in execution.segments}
    stacked = dict(
        (f"{layer}/{info.path}", list(info.shape))
        for layer, info in stacked_params(spec, execution)
        if layer in scanned
    )
    rows = []
    for entry in spec.model.stacks:
        stack = scanned.get(entry.name)
        first = f"{entry.name}/0/" if entry.repeat > 1 else f"{entry.name}/"
        seg_remat = next((r for n, r in remat.items() if n.startswith(first)), "none")
        rows.append(
            {
                "name": entry.name,
                "repeat": entry.repeat,
                "scan": stack is not None,
                "remat": stack.remat if stack else seg_remat,
                "variables": [
                    {"path": p, "shape": shape}
                    for p, shape in stacked.items()
                    if p.startswith(entry.name + "/")
                ]
                if stack
                else [],
            }
        )
    return rows


def layer_flops(spec: CheckedSpec) -> dict[str, int | None]:
    """Forward FLOPs per example of every layer, by name (None: a non-batch size is
    unknown). Each layer's rule sees its input types in its call kind's form, as `infer`
    did."""
    types = input_types(spec)
    out: dict[str, int | None] = {}
    for node in spec.graph.nodes:
        shape = spec.shapes.get(node.name)
        if shape is None:
            continue
        out[node.name] = node.layer.flops(node_inputs(node, types), shape)
        types.update(zip(output_refs(node.name, len(shape.outputs)), shape.outputs, strict=True))
    return out


def _sum_known(values) -> int:
    """The sum of the known counts (the total is then a lower bound: `flops_complete`)."""
    return sum(v for v in values if v is not None)
