"""Where Keras 3 keeps each weight in `model.weights.h5`, and in which order it names
layers, so that export and import agree with `keras.saving` without importing it.

Keras's saver (`keras/src/saving/saving_lib.py`) walks the model: a Functional or
Sequential model's `layers` list is a container whose items are named after their class
in snake case, made unique by a counter (`dense`, `dense_1`, ...; not by layer name);
a layer's own variables go to `<path>/vars/<i>` (trainable ones first, each in creation
order); its sub-layers go under the attribute that holds them (`cell` of an RNN,
`forward_layer` of Bidirectional, `layer` of TimeDistributed, `query_dense` of
MultiHeadAttention). Our ParamInfo paths use Keras's weight names, so the mapping is the
few sub-layer rules below; a layer whose weights nest in any other way is refused
rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from modelspec.schema.layers.nesting import nested_name
from modelspec.schema.layers.rnn_base import RecurrentSpec

ATTENTION_SUBLAYERS = {
    "MultiHeadAttention": {
        "query": "query_dense",
        "key": "key_dense",
        "value": "value_dense",
        "attention_output": "output_dense",
    },
    "GroupQueryAttention": {
        "query": "_query_dense",
        "key": "_key_dense",
        "value": "_value_dense",
        "attention_output": "_output_dense",
    },
}
"""Keras attribute holding each projection (an EinsumDense) of the attention layers."""

KERAS_CLASSES = {"GroupQueryAttention": "GroupedQueryAttention"}
"""Our type -> the Python class behind it, where `keras.layers` exports an alias:
config.json says the alias, but the weights file names the layer after the class."""
NON_TRAINABLE = ("batch_stats", "adapted")
"""ParamInfo collections Keras creates as non-trainable variables (saved after the
trainable ones)."""


class LayoutError(ValueError):
    """A layer whose weights modelspec cannot place in Keras's file layout."""


def snake_case(name: str) -> str:
    """Keras's `naming.to_snake_case` (the container names of the weights file)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def container_names(class_names: Iterable[str]) -> list[str]:
    """The names Keras gives a model's layers in the weights file, in `model.layers`
    order: the class's snake case, then `_1`, `_2`, ... for later layers of the class."""
    used: dict[str, int] = {}
    out = []
    for cls in class_names:
        base = snake_case(KERAS_CLASSES.get(cls, cls))
        if base in used:
            used[base] += 1
            out.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            out.append(base)
    return out


def weight_slots(layer: Any, params: Sequence[Any]) -> list[tuple[str, Any]]:
    """(h5 path below the layer's group, ParamInfo) for every variable Keras saves of
    `layer` (a spec object) given its inferred `params`: `vars/0`, `cell/vars/1`,
    `forward_layer/cell/vars/0`, ... Raises LayoutError for an unknown nesting."""
    return _slots(layer, [(p.path, p) for p in params])


def _own(items: list[tuple[str, Any]], prefix: str, layer: Any) -> list[tuple[str, Any]]:
    nested = [path for path, _ in items if "/" in path]
    if nested:
        raise LayoutError(
            f"{layer.type} has nested weights ({', '.join(nested)}) whose place in Keras's "
            "weights file modelspec does not know"
        )
    trainable = [i for i in items if i[1].collection not in NON_TRAINABLE]
    others = [i for i in items if i[1].collection in NON_TRAINABLE]
    return [(f"{prefix}vars/{n}", info) for n, (_, info) in enumerate(trainable + others)]


def _split(items: list[tuple[str, Any]]) -> dict[str, list[tuple[str, Any]]]:
    groups: dict[str, list[tuple[str, Any]]] = {}
    for path, info in items:
        head, _, rest = path.partition("/")
        groups.setdefault(head, []).append((rest, info))
    return groups


def _slots(layer: Any, items: list[tuple[str, Any]], prefix: str = "") -> list[tuple[str, Any]]:
    kind = layer.type
    if not items:
        return []
    if kind == "Bidirectional":
        forward, backward = layer.wrapped_names()
        backward_spec = layer.backward_layer or layer.layer
        groups = _split(items)
        unknown = set(groups) - {forward, backward}
        if unknown:
            raise LayoutError(f"Bidirectional: unexpected weights under {sorted(unknown)}")
        return _slots(layer.layer, groups.get(forward, []), prefix + "forward_layer/") + _slots(
            backward_spec, groups.get(backward, []), prefix + "backward_layer/"
        )
    if kind == "TimeDistributed":
        inner = nested_name(layer.layer)
        groups = _split(items)
        if set(groups) != {inner}:
            raise LayoutError(f"TimeDistributed: unexpected weights under {sorted(groups)}")
        return _slots(layer.layer, groups[inner], prefix + "layer/")
    if isinstance(layer, RecurrentSpec):  # the weights live in the cell
        if all("/" in path for path, _ in items):  # inside a wrapper: `lstm_cell/kernel`
            (items,) = _split(items).values()
        return _own(items, prefix + "cell/", layer)
    if kind in ATTENTION_SUBLAYERS:
        table = ATTENTION_SUBLAYERS[kind]
        groups = _split(items)
        out = []
        for head, sub in groups.items():  # the order inside the file does not matter
            if head not in table:
                raise LayoutError(f"{kind}: unexpected weights under {head!r}")
            out += _own(sub, f"{prefix}{table[head]}/", layer)
        return out
    return _own(items, prefix, layer)


def keras_layer_order(inputs: Sequence[str], outputs: Sequence[str], parents: dict) -> list[str]:
    """The order of a Functional model's `layers` after Keras rebuilds it from its config
    (`keras/src/ops/function.py::map_graph`): operations by decreasing depth from the
    outputs, ties by first visit of a depth-first walk from each output through the
    inputs of each call (in the order Keras flattens the call's arguments).
    `parents`: operation -> the operations producing its input tensors, in that order."""
    index: dict[str, int] = {}
    finished: set[str] = set()
    post: list[str] = []
    for out in outputs:
        if out in finished:
            continue
        index.setdefault(out, len(index))
        stack = [(out, iter(parents.get(out, ())))]
        while stack:
            op, pending = stack[-1]
            for parent in pending:
                if parent not in finished:  # a DAG: a parent is never on the stack
                    index.setdefault(parent, len(index))
                    stack.append((parent, iter(parents.get(parent, ()))))
                    break
            else:
                stack.pop()
                finished.add(op)
                post.append(op)
    depth: dict[str, int] = {}
    for op in reversed(post):
        d = depth.setdefault(op, 0)
        for parent in parents.get(op, ()):
            depth[parent] = max(depth.get(parent, 0), d + 1)
    for name in inputs:  # inputs no output depends on
        if name not in depth:
            depth[name], index[name] = 0, -1
    return sorted(depth, key=lambda op: (-depth[op], index[op]))


def keras_name(name: str) -> str:
    """Our layer name as a Keras layer name: Keras refuses `/` (block-expanded names such
    as `stage/0/conv`), so it is written `__`; import turns `__` back into `/`."""
    return name.replace("/", "__")


def spec_name(name: str) -> str:
    """A Keras layer name as ours (the inverse of `keras_name`)."""
    return re.sub(r"(?<=[^_])__(?=[^_])", "/", name)
