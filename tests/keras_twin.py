"""Build the Keras 3 functional twin of a checked spec, and copy our weights into it.

Used by whole-model tests: the same graph, layer by layer, in Keras (the numerics
oracle), so total parameter counts and forward outputs can be compared."""

from __future__ import annotations

import keras
import numpy as np

from modelspec.compiler.graph import output_refs
from modelspec.compiler.load import load
from modelspec.compiler.model import flat
from tests.conformance.harness import keras_call_kwargs, keras_layer


def keras_twin(spec):
    an = load(spec)
    tensors = {
        n: keras.Input(shape=tuple(i.shape), dtype=i.dtype, name=n)
        for n, i in spec.model.inputs.items()
    }
    layers = {}
    for node in an.graph.nodes:
        args = node.layer.model_dump(exclude_unset=True, mode="json")
        args["type"] = node.layer.type
        layer = keras_layer(args)
        layers[node.name] = layer
        # Called as the spec class's call kind says, with its call-time fields.
        kw = keras_call_kwargs(node.layer)
        out = node.layer.call.invoke(layer, node.args, tensors, **kw)
        refs = output_refs(node.name, len(node.layer.output_labels))
        for ref, tensor in zip(refs, out if len(refs) > 1 else (out,), strict=True):
            tensors[ref] = tensor  # a multi-output layer's tensors: `name.0`, `name.1`...
    model = keras.Model(
        inputs=[tensors[n] for n in an.graph.inputs], outputs=[tensors[n] for n in an.graph.outputs]
    )
    return model, layers


def copy_weights(state, layers) -> None:
    """Our split state -> Keras variables, matched by layer name and weight path."""
    for coll in (state.params, state.batch_stats, state.frozen):
        for path, value in flat(coll):
            if path[1] not in layers:  # a scanned stack: copy i is slice i of every param
                for i, piece in enumerate(np.asarray(value)):
                    copy = (path[0], f"{path[1]}/{i}/{path[2]}", *path[3:])
                    _assign(layers, copy, piece)
                continue
            _assign(layers, path, value)


def _assign(layers, path, value) -> None:
    """Assign `value` to the Keras variable of our state path `path`."""
    layer_name, weight = path[1], "/".join(str(p) for p in path[2:])
    matches = [v for v in layers[layer_name].weights if v.path.endswith("/" + weight)]
    assert len(matches) == 1, (layer_name, weight, [v.path for v in layers[layer_name].weights])
    matches[0].assign(np.asarray(value))
