"""Keras-style model summary as data, from shape inference alone (no JAX, no devices).
The terminal rendering lives in `modelspec/summary_table.py`.

Counting follows Keras: batch statistics and frozen weights are non-trainable params.
"""

from __future__ import annotations

from typing import Any

from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.memory import BYTES_PER_PARAM, estimate
from modelspec.schema.precision import layer_policy


def summarize(spec: CheckedSpec) -> dict[str, Any]:
    """Summary as plain data (the `--format json` output)."""
    an = spec
    layers = []
    for name, inp in spec.model.inputs.items():
        layers.append(
            {
                "name": name,
                "type": "InputLayer",
                "output_shape": [None, *inp.shape],
                "dtype": inp.dtype,
                "params": 0,
                "trainable_params": 0,
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
    return {
        "name": spec.name,
        "dtype_policy": spec.model.dtype_policy,
        "inputs": list(an.graph.inputs),
        "outputs": list(an.graph.outputs),
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "total_bytes": (trainable + non_trainable) * BYTES_PER_PARAM,
        "training_bytes_per_device": estimate(spec).as_dict(),
        "layers": layers,
    }
